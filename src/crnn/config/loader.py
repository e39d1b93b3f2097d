"""Loading: YAML files with ``_BASE_`` merging, ``-o Section.key=value`` overrides, then typed building.

Every key must be known: an unknown or misspelled key is an error that names it, so a PaddleOCR
option this project does not implement is never silently ignored. A few keys PaddleOCR's configs
carry have no effect here; ``load_config`` accepts them with a warning naming them (``checks.NO_EFFECT``).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import yaml

from crnn.config.checks import no_effect, validate
from crnn.config.schema import Config, ConfigError
from crnn.config.typed import Override, build
from crnn.limits import MAX_CONFIG_VALUES, count_values

log = logging.getLogger("crnn.config")


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if isinstance(child, Override) and isinstance(child.value, dict):  # a section set by an earlier -o
            child = node[part] = child.value
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(overrides: list[str] | None) -> list[tuple[str, Any]]:
    """Parse ``["A.b=1", ...]`` into (dotted key, YAML-typed value) pairs."""
    pairs = []
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like Section.key=value")
        key, raw = item.split("=", 1)
        pairs.append((key.strip(), yaml.safe_load(raw)))
    return pairs


def check_size(data: Any) -> None:
    """Refuse a config that expands to more than ``MAX_CONFIG_VALUES`` values.

    YAML aliases (``&a`` / ``*a``) share one object, so a 286-byte file of nested aliases parses
    in microseconds into a structure that, walked or printed, holds billions of values (a
    "billion laughs"): a 226 MB error line, a MemoryError, gigabytes on stderr. The same structure
    survives in the config a checkpoint stores, so the check runs on every config built here.
    """
    if count_values(data) > MAX_CONFIG_VALUES:
        raise ConfigError(f"the config expands to more than {MAX_CONFIG_VALUES} values (nested YAML aliases "
                          "&name / *name?); refused")


def config_from_dict(data: dict[str, Any], overrides: list[str] | None = None) -> Config:
    """Build a validated ``Config`` from a nested dict plus ``-o`` overrides.

    Raises:
        ConfigError: an unknown key, a wrongly typed value, an unsupported option or a config that
            expands (through aliases) beyond ``MAX_CONFIG_VALUES``.
    """
    check_size(data)
    data = copy.deepcopy(data)
    for item, (key, value) in zip(overrides or [], parse_overrides(overrides), strict=True):
        _set_path(data, key, Override(value, item.split("=", 1)[1].strip()))
    cfg = build(Config, data, "")
    validate(cfg)
    return cfg


BASE_KEY = "_BASE_"


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``child`` into ``base``: sections merge key by key; lists and scalars replace."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a config file and resolve its ``_BASE_`` files (PaddleDetection's convention).

    ``_BASE_`` names one file or a list of files, relative to this one; later bases override
    earlier ones and this file overrides them all. A recipe that changes a few values of another
    thus states only those values.
    """
    path = path.resolve()
    if path in chain:
        raise ConfigError(f"{path}: {BASE_KEY} cycle: {' -> '.join(str(p) for p in (*chain, path))}")
    if not path.is_file():
        where = f" (named by {BASE_KEY} in {chain[-1]})" if chain else ""
        raise FileNotFoundError(f"config file {path} not found{where}")
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = yaml.safe_load(f)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text (UTF-8) YAML file: {e.reason} at byte {e.start}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: malformed YAML{where}: {getattr(e, 'problem', None) or e}") from None
    if data is None:
        raise ConfigError(f"{path}: the config file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    try:
        check_size(data)  # before _BASE_ merging walks it
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    bases = data.pop(BASE_KEY, None) or []
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: {BASE_KEY} must be a file name or a list of file names")
    merged: dict[str, Any] = {}
    for base in bases:
        merged = _merge(merged, _read_yaml(path.parent / base, (*chain, path)))
    return _merge(merged, data)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Load a YAML config file (PaddleOCR layout, optional ``_BASE_``) with ``-o`` overrides."""
    path = Path(path)
    data = _read_yaml(path)
    try:
        cfg = config_from_dict(data, overrides)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    unused = no_effect(cfg)
    if unused:
        log.warning("%s: these keys have no effect in crnn (accepted for PaddleOCR's configs): %s", path,
                    "; ".join(unused))
    return cfg
