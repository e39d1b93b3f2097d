"""Just enough of Paddle's ``ProgramDesc`` protobuf (``.pdmodel``) to list the parameters.

No protobuf library is needed: the wire format is walked by hand, reading only
``ProgramDesc.blocks(1) -> BlockDesc.vars(3) -> VarDesc{name(1), type(2), persistable(3)}`` and
``VarType{type(1), lod_tensor(3) -> LoDTensorDesc.tensor(1) -> TensorDesc}`` (field numbers from
Paddle's ``framework.proto``). The operators are not interpreted: the converter maps weights onto
this project's own modules, so the program is only used to cross-check names and shapes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from crnn.convert.pdparams import _varint, parse_tensor_desc

_LOD_TENSOR = 7  # VarType.Type.LOD_TENSOR; feed/fetch holders have other types


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of one message: ints for varints, bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield field, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield field, buf[pos:pos + size]
            pos += size
        elif wire == 5:
            yield field, buf[pos:pos + 4]
            pos += 4
        elif wire == 1:
            yield field, buf[pos:pos + 8]
            pos += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _var(buf: bytes) -> tuple[str, bool, int, list[int] | None]:
    """VarDesc -> (name, persistable, var type, dims of a LoD tensor or None)."""
    name, persistable, var_type, dims = "", False, -1, None
    for field, value in _fields(buf):
        if field == 1 and isinstance(value, bytes):
            name = value.decode("utf-8")
        elif field == 3 and isinstance(value, int):
            persistable = bool(value)
        elif field == 2 and isinstance(value, bytes):
            for tf, tv in _fields(value):
                if tf == 1 and isinstance(tv, int):
                    var_type = tv
                elif tf == 3 and isinstance(tv, bytes):
                    for lf, lv in _fields(tv):
                        if lf == 1 and isinstance(lv, bytes):
                            dims = parse_tensor_desc(lv)[1]
    return name, persistable, var_type, dims


def read_parameter_shapes(path: str | os.PathLike[str]) -> dict[str, list[int]]:
    """Persistable LoD-tensor variables of a ``.pdmodel`` (the weights), name -> dims.

    Raises:
        ValueError: the file is not a Paddle program.
    """
    path = Path(path)
    buf = path.read_bytes()
    out: dict[str, list[int]] = {}
    try:
        for field, block in _fields(buf):
            if field != 1 or not isinstance(block, bytes):
                continue
            for bf, var in _fields(block):
                if bf != 3 or not isinstance(var, bytes):
                    continue
                name, persistable, var_type, dims = _var(var)
                if persistable and var_type == _LOD_TENSOR and dims is not None:
                    out[name] = dims
    except (ValueError, IndexError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a readable Paddle program: {e}") from e
    if not out:
        raise ValueError(f"{path}: no parameters found; is this a Paddle .pdmodel?")
    return out
