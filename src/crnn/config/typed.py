"""Typed building: a nested dict (parsed YAML) -> the schema's dataclasses, every key and type checked."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union

from crnn.config.schema import (
    BackboneConfig,
    ComponentConfig,
    ConfigError,
    DatasetConfig,
    HeadConfig,
    NeckConfig,
    RecAugConfig,
    TransformsConfig,
)
from crnn.limits import shown

T = TypeVar("T")


@dataclass(frozen=True)
class Override:
    """A ``-o KEY=VALUE`` value: YAML-typed, with the text as given (a string key keeps the text, so
    ``-o Global.pretrained_sha256=000...0`` stays those digits instead of becoming the int 0)."""

    value: Any
    text: str


def _raw(value: Any) -> Any:
    return value.value if isinstance(value, Override) else value


_RECAUG_OPS = {"RecAug", "BaseDataAugmentation"}
# each supported transform operator and the keys it accepts (RecAug's: RecAugConfig's fields)
_OPS: dict[str, set[str]] = {
    "DecodeImage": {"img_mode", "channel_first"},
    "CTCLabelEncode": set(),
    "RecResizeImg": {"image_shape", "padding"},
    "KeepKeys": {"keep_keys"},
    **{op: {f.name for f in dataclasses.fields(RecAugConfig)} for op in _RECAUG_OPS},
}


def parse_transforms(ops: Any, where: str) -> TransformsConfig:
    """PaddleOCR's list of one-key transform mappings (or an already flat mapping) -> ``TransformsConfig``."""
    ops = _raw(ops)
    if ops is None:
        return TransformsConfig()
    if isinstance(ops, dict):  # already flattened (a config saved by this project)
        return build(TransformsConfig, ops, where)
    if not isinstance(ops, list):
        raise ConfigError(f"{where}: expected a list of transform operators, got {type(ops).__name__}")
    flat: dict[str, Any] = {}
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or len(op) != 1:
            raise ConfigError(f"{where}[{i}]: each transform is a one-key mapping, got {shown(op)}")
        (name, params), = op.items()
        params = params or {}
        if name not in _OPS:
            raise ConfigError(f"{where}[{i}]: transform {shown(name)} is not supported (supported: {sorted(_OPS)})")
        unknown = set(params) - _OPS[name]
        if unknown:
            raise ConfigError(f"{where}.{name}: unknown key(s) {sorted(unknown)}")
        if name in _RECAUG_OPS:
            flat["rec_aug"] = params
        else:
            flat.update(params)
    return build(TransformsConfig, flat, where)


def _component_table(cls: type[ComponentConfig]) -> tuple[Mapping[str, Any], str]:
    """The table a model part's ``name`` is looked up in (imported here: the tables import the registry)."""
    from crnn.models import HEADS, NECKS
    from crnn.models.backbones import BACKBONES

    tables: dict[type[ComponentConfig], tuple[Mapping[str, Any], str]] = {
        BackboneConfig: (BACKBONES, "backbone"), NeckConfig: (NECKS, "neck"), HeadConfig: (HEADS, "head")}
    return tables[cls]


def _component(cls: type[ComponentConfig], data: dict[str, Any], where: str) -> dict[str, Any]:
    """``data`` with the entry's own keys moved into ``params``, each checked against the table entry."""
    from crnn.registry import lookup

    fields = {f.name for f in dataclasses.fields(cls)} - {"params"}
    name = _raw(data.get("name")) or cls().name
    table, kind = _component_table(cls)
    entry = lookup(table, str(name), f"{where}.name", kind)
    params = dict(_raw(data.get("params")) or {})  # a ComponentConfig built in code, then dumped
    for key, value in data.items():
        if key in fields or key == "params" or _raw(value) is None:  # None: the entry's default
            continue
        if key not in entry.keys:
            raise ConfigError(f"{where}.{key}: not an option of {kind} {name} (its options: "
                              f"{', '.join(sorted(entry.keys)) or 'none'})")
        params[key] = value
    params = {k: _convert(entry.keys[k], v, f"{where}.{k}") for k, v in params.items()}
    return {**{k: v for k, v in data.items() if k in fields}, "params": params}


def _convert_union(tp: Any, value: Any, where: str) -> Any:
    args = typing.get_args(tp)
    if _raw(value) is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{where}: a value is required")
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(arg, value, where)
        except ConfigError:
            if len(args) == 2:
                raise
    raise ConfigError(f"{where}: {shown(_raw(value))} does not fit {tp}")


def _convert_scalar(tp: Any, value: Any, where: str) -> Any:
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {shown(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {shown(value)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {shown(value)}")
        return value
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # YAML read digits as a number: "0123" would silently become "123", so the user quotes it
            raise ConfigError(f"{where}: got the number {shown(value)}; quote it ('...') so YAML keeps it as text")
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {shown(value)}")
        return value
    raise ConfigError(f"{where}: unsupported type {tp}")  # pragma: no cover - schema bug


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert nested sections."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return _convert_union(tp, value, where)
    if isinstance(value, Override):
        if tp is str and value.value is not None and not isinstance(value.value, str):
            return value.text  # digits, true/yes, dates: what was typed, not YAML's reading of it
        return _convert(tp, value.value, where)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = typing.get_args(tp)
        if not any(value == a and type(value) is type(a) for a in allowed):
            raise ConfigError(f"{where}: {shown(value)} is not supported (supported: {sorted(map(str, allowed))})")
        return value
    if tp is type(None):
        if value is not None and value != "":
            raise ConfigError(f"{where}: this option is not supported by crnn (got {shown(value)})")
        return None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {shown(value)}")
        return build(tp, value, where)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        items = value if isinstance(value, list) else [value]  # PaddleOCR allows a scalar here
        return [_convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(items)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {shown(value)}")
        return dict(value)
    return _convert_scalar(tp, value, where)


def build(cls: type[T], data: dict[str, Any], where: str) -> T:
    """An instance of the dataclass ``cls`` from ``data``; an unknown key or a wrong type names its path."""
    if isinstance(cls, type) and issubclass(cls, ComponentConfig):
        data = _component(cls, data, where)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"unknown config key {shown(key)} (known keys here: {', '.join(sorted(names))})")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        sub = f"{where}.{name}" if where else name
        if name == "transforms" and cls is DatasetConfig:
            kwargs[name] = parse_transforms(value, sub)
        elif name == "params" and isinstance(value, dict):
            kwargs[name] = value  # converted against the table entry by _component
        elif _raw(value) is None and typing.get_origin(hints[name]) not in (Union, types.UnionType):
            continue  # an empty YAML value means "default", as in PaddleOCR
        else:
            kwargs[name] = _convert(hints[name], value, sub)
    return cls(**kwargs)
