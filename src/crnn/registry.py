"""Component tables: one plain ``dict[str, Entry]`` per kind of part, in that part's own module.

``BACKBONES`` (``crnn.models.backbones``), ``NECKS`` and ``HEADS`` (``crnn.models``), ``SOURCES``
(``crnn.data.datasets``), ``OPTIMIZERS`` and ``LR_SCHEDULES`` (``crnn.optim``) and ``DECODERS``
(``crnn.decoders``). The config loader asks these tables which names and keys are valid, so a new
entry needs no edit of the config code. Torch-free: an entry may name its target as
``"module:attribute"``, imported only when it is built.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crnn.config.schema import ConfigError


@dataclass(frozen=True)
class Entry:
    """One row of a table: what to build and the config keys it reads (key -> type annotation)."""

    target: str | Callable[..., Any]  # "module:attribute" (imported on first use) or the callable itself
    keys: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> Callable[..., Any]:
        """The class or function this entry builds with."""
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        return typing.cast(Callable[..., Any], getattr(importlib.import_module(module), attr))


def entry_for(obj: Callable[..., Any], skip: Iterable[str] = ()) -> Entry:
    """An entry whose keys are ``obj``'s parameters with their annotations, less the ``skip`` ones
    (those the builder passes itself, e.g. a neck's ``in_channels``)."""
    hints = typing.get_type_hints(getattr(obj, "__init__") if isinstance(obj, type) else obj)  # noqa: B009
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    keys = {n: hints.get(n, Any) for n, p in inspect.signature(obj).parameters.items()
            if p.kind in kinds and n not in set(skip)}
    return Entry(obj, keys)


def lookup(table: Mapping[str, Entry], name: str, where: str, kind: str) -> Entry:
    """``table[name]``, or a ``ConfigError`` naming ``where`` and the known names."""
    if name not in table:
        raise ConfigError(f"{where}: unknown {kind} {name!r} (known: {', '.join(sorted(table))})")
    return table[name]
