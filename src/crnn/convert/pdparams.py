"""Read PaddlePaddle weight files with numpy alone (no ``paddle`` import).

Two formats are supported:

* ``.pdparams`` (``paddle.save(model.state_dict())``): a pickle of ``{state_dict key: ndarray}``,
  plus the bookkeeping entry ``StructuredToParameterName@@``.
* ``.pdiparams`` + ``.pdiparams.info`` (``paddle.jit.save`` / ``export_model.py``): the unique
  tensors concatenated in sorted order of Paddle's internal names; the ``.info`` pickle maps each
  internal name to its state_dict key. When the ``.pdmodel`` program sits beside them, its parameter
  names and shapes are cross-checked against the records (see ``crnn.convert.pdmodel``).
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

STRUCTURED_KEY = "StructuredToParameterName@@"

# The only classes a weight pickle needs; anything else (e.g. os.system) is refused, because
# unpickling an untrusted file can otherwise run arbitrary code.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
}

# Paddle's VarType.Type codes of the tensor element types we accept.
_PADDLE_DTYPES: dict[int, np.dtype[Any]] = {
    2: np.dtype("<i4"), 3: np.dtype("<i8"), 4: np.dtype("<f2"), 5: np.dtype("<f4"), 6: np.dtype("<f8"),
}


class _WeightUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a weight file")
        if module.startswith("numpy.core") and int(np.__version__.split(".")[0]) >= 2:
            module = "numpy._core" + module[len("numpy.core"):]  # numpy 2 renamed the private module
        return super().find_class(module, name)


def _safe_pickle_load(path: Path) -> Any:
    with open(path, "rb") as f:
        try:
            return _WeightUnpickler(f).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as e:
            raise ValueError(f"{path} is not a readable Paddle weight pickle: {e}") from e


def read_pdparams(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """All tensors of a ``.pdparams`` file, keyed by Paddle state_dict key, in file order.

    ``StructuredToParameterName@@`` is dropped; LSTM alias keys are kept (the converter checks them).

    Raises:
        ValueError: not a pickle of a dict of arrays; the message names the bad entry.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Paddle params file {path} not found")
    data = _safe_pickle_load(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a pickled dict of arrays, got {type(data).__name__}")
    out: dict[str, np.ndarray] = {}
    for key, value in data.items():
        if key == STRUCTURED_KEY:
            continue
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{path}: entry {key!r} is a {type(value).__name__}, not a numpy array")
        out[str(key)] = value
    return out


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated protobuf varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def parse_tensor_desc(buf: bytes) -> tuple[int, list[int]]:
    """Paddle's ``TensorDesc`` protobuf: (data type code, dims). Dims may be packed or not."""
    dtype, dims, pos = -1, [], 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            if field == 1:
                dtype = value
            elif field == 2:
                dims.append(value - (1 << 64) if value >= 1 << 63 else value)  # int64 two's complement
        elif wire == 2:
            size, pos = _varint(buf, pos)
            end = pos + size
            while field == 2 and pos < end:  # packed dims
                value, pos = _varint(buf, pos)
                dims.append(value - (1 << 64) if value >= 1 << 63 else value)
            pos = end
        else:
            raise ValueError(f"unexpected protobuf wire type {wire} in a TensorDesc")
    return dtype, dims


def _read_record(f: BinaryIO, where: str) -> np.ndarray:
    head = f.read(12)
    if len(head) != 12:
        raise ValueError(f"{where}: truncated record header")
    _version, lod_levels = struct.unpack("<IQ", head)
    for _ in range(lod_levels):  # LoD offsets are meaningless for weights; skip them
        (size,) = struct.unpack("<Q", f.read(8))
        f.read(size)
    _tensor_version, desc_len = struct.unpack("<Ii", f.read(8))
    dtype_code, dims = parse_tensor_desc(f.read(desc_len))
    if dtype_code not in _PADDLE_DTYPES:
        raise ValueError(f"{where}: unsupported Paddle data type code {dtype_code}")
    dtype = _PADDLE_DTYPES[dtype_code]
    count = int(np.prod(dims)) if dims else 1
    raw = f.read(count * dtype.itemsize)
    if len(raw) != count * dtype.itemsize:
        raise ValueError(f"{where}: truncated data ({len(raw)} of {count * dtype.itemsize} bytes)")
    return np.frombuffer(raw, dtype=dtype).reshape(dims).copy()


def read_pdiparams(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Tensors of an inference ``.pdiparams`` file, keyed by Paddle state_dict key.

    Needs ``<path>.info`` for the keys. If ``<stem>.pdmodel`` exists, its persistable parameters
    must list the same names and shapes.

    Raises:
        ValueError: a truncated or inconsistent file; the message names the tensor.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "inference.pdiparams"
    info_path = path.with_name(path.name + ".info")
    for p in (path, info_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found (an inference model needs .pdiparams and .pdiparams.info)")
    info = _safe_pickle_load(info_path)
    if not isinstance(info, dict):
        raise ValueError(f"{info_path}: expected a pickled dict")
    names = sorted(info)  # paddle.jit.save writes the tensors sorted by internal name
    program = path.with_suffix(".pdmodel")
    if program.is_file():
        from crnn.convert.pdmodel import read_parameter_shapes

        shapes = read_parameter_shapes(program)
        if sorted(shapes) != names:
            extra = sorted(set(shapes) ^ set(names))
            raise ValueError(f"{program} and {info_path} list different parameters: {extra[:10]}")
    out: dict[str, np.ndarray] = {}
    size = path.stat().st_size
    with open(path, "rb") as f:
        for name in names:
            array = _read_record(f, f"{path} tensor {name}")
            if program.is_file() and list(array.shape) != shapes[name]:
                raise ValueError(f"{path}: tensor {name} has shape {list(array.shape)} but {program} "
                                 f"declares {shapes[name]}")
            entry = info[name]
            key = entry.get("structured_name") if isinstance(entry, dict) else None
            if not key:
                raise ValueError(f"{info_path}: no structured_name for {name}")
            out[str(key)] = array
        if f.tell() != size:
            raise ValueError(f"{path}: {size - f.tell()} bytes left after the {len(names)} tensors "
                             f"listed in {info_path}")
    return out


def read_paddle_params(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read ``.pdparams`` or an inference model (``.pdiparams`` file, or a folder holding one)."""
    p = Path(path)
    if p.is_dir() or p.suffix == ".pdiparams":
        return read_pdiparams(p)
    if p.suffix == ".pdmodel":
        return read_pdiparams(p.with_suffix(".pdiparams"))
    if not p.exists() and p.with_name(p.name + ".pdparams").is_file():
        p = p.with_name(p.name + ".pdparams")  # PaddleOCR names checkpoints without the suffix
    return read_pdparams(p)
