"""Checkpoints: weights + config + charset (+ training state), written atomically, read without pickle code.

A model file is treated as hostile: ``load`` uses ``torch.load(weights_only=True)``, which only
rebuilds tensors and plain data (dict, list, tuple, str, numbers, None). The only extra types
allowed are the numpy array pieces that checkpoints written before numpy RNG state was stored as
a tensor hold; a file that needs anything else (a class, a function such as ``os.system``) is
refused before any of it runs.
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used, so a path can be checked before torch loads (seconds)
    import torch

FORMAT_VERSION = 1
SUFFIX = ".pt"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _numpy_globals() -> list[Any]:
    """numpy's array-rebuilding functions and types: what an old checkpoint's ``np.random.get_state()`` needs."""
    multiarray = getattr(np, "_core", None) or np.core  # numpy 2 moved np.core to np._core
    found = [multiarray.multiarray._reconstruct, np.ndarray, np.dtype]
    found += [type(np.dtype(t)) for t in (np.uint32, np.int64, np.float64)]
    return found


SAFE_GLOBALS = _numpy_globals()


def resolve(path: str | os.PathLike[str]) -> Path:
    """Accept a path with or without the ``.pt`` suffix (PaddleOCR names checkpoints without one)."""
    p = Path(path)
    if p.is_file():
        return p
    if p.with_name(p.name + SUFFIX).is_file():
        return p.with_name(p.name + SUFFIX)
    raise FileNotFoundError(f"checkpoint {path} not found (also tried {p.name}{SUFFIX})")


def is_onnx(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an ONNX model: its name ends in ``.onnx``, or its bytes start as an ONNX protobuf
    does (field 1, ``ir_version``, a small varint) where a checkpoint starts with a zip's ``PK`` or a pickle's 0x80."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        return True
    try:
        with open(p, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x08 and head[1] < 0x80


def require_checkpoint(path: str | os.PathLike[str], flag: str, onnx_hint: str) -> Path:
    """``resolve(path)`` for a flag that takes only a ``.pt`` checkpoint; an ONNX model is refused by name.

    ``onnx_hint`` says where an ONNX model goes instead (e.g. "give it to --onnx").

    Raises:
        FileNotFoundError: no such checkpoint.
        ValueError: ``path`` is an ONNX model; the message names ``flag`` and the hint.
    """
    p = resolve(path)
    if is_onnx(p):
        raise ValueError(f"{flag} {path} is an ONNX model; {flag} takes a .pt checkpoint ({onnx_hint})")
    return p


def save(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` via a temporary file and an atomic rename.

    A crash mid-write leaves the previous checkpoint intact.

    Raises:
        OSError: the write failed; a full disk says "no space left on device" and names the file.
    """
    import torch

    path = Path(path)
    if path.suffix != SUFFIX:
        path = path.with_name(path.name + SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format_version": FORMAT_VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if _disk_full(e, path.parent):
            raise OSError(errno.ENOSPC, f"cannot save checkpoint {path}: no space left on device") from e
        if isinstance(e, RuntimeError):  # torch's zip writer: "[enforce fail at inline_container.cc:...]"
            raise OSError(f"cannot save checkpoint {path}: {_first_line(e)}") from e
        raise
    return path


def _disk_full(e: BaseException, folder: Path) -> bool:
    """Whether a failed write was a full disk.

    torch's zip writer turns the ``OSError(ENOSPC)`` of a write into ``RuntimeError: [enforce fail at
    inline_container.cc:672] . unexpected pos ...``, keeping the OSError only as the exception's
    context (or losing it, when it writes through its own stream): so the chain is searched, and
    for a bare writer error the free space is looked at.
    """
    seen: BaseException | None = e
    for _ in range(8):
        if seen is None:
            break
        if (isinstance(seen, OSError) and seen.errno == errno.ENOSPC) or "No space left" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    if isinstance(e, RuntimeError) and "inline_container" in str(e):
        try:
            st = os.statvfs(folder)
        except OSError:
            return False
        return st.f_bavail * st.f_frsize < 1 << 20  # under 1 MiB left
    return False


def remove_orphans(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files ``save`` left behind when a process was killed mid-write; returns them."""
    folder = Path(folder)
    gone = sorted(folder.glob(f".*{SUFFIX}.*.tmp")) if folder.is_dir() else []
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by ``save`` (or the bundled model) without running code from it.

    Raises:
        ValueError: the file is not a crnn checkpoint, or needs Python objects beyond tensors and
            plain data (refused, nothing in it has run); a one-line message names it.
    """
    import torch

    p = resolve(path)
    if is_onnx(p):  # torch.load would call it "Python objects", which says nothing useful
        raise ValueError(f"{p} is an ONNX model, not a .pt checkpoint; an ONNX model runs with crnn predict, eval "
                         "or serve --model, or crnn.Recognizer")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            state = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = f" ({found.group(1)})" if found else ""
        raise ValueError(f"{p} refused: it holds Python objects{what} beyond the tensors and plain data of a "
                         "crnn checkpoint; crnn never runs code from a model file") from e
    except Exception as e:  # torch raises many types for a corrupt file
        raise ValueError(f"{p} is not a readable crnn checkpoint: {_first_line(e)}") from e
    if not isinstance(state, dict) or "model" not in state or "config" not in state or "charset" not in state:
        raise ValueError(f"{p} is not a crnn checkpoint (needs model, config and charset entries)")
    for key in ("model", "train_model"):
        if isinstance(state.get(key), dict):
            check_finite(state[key], p)
    return state


def stored_config(state: dict[str, Any], name: str | os.PathLike[str], overrides: list[str] | None = None) -> Any:
    """The ``Config`` a checkpoint stores (with ``-o`` overrides); its errors name the checkpoint.

    Raises:
        ConfigError: ``<file>: its stored config: <what is wrong>`` (an unknown key, a bound, an alias bomb).
    """
    from crnn.config import ConfigError, config_from_dict

    try:
        return config_from_dict(state["config"], overrides)
    except ConfigError as e:
        raise ConfigError(f"{name}: its stored config: {e}") from None


def check_finite(weights: dict[str, Any], name: str | os.PathLike[str]) -> None:
    """Refuse weights holding NaN or infinity, naming the first such tensor.

    Such a model predicts "" for every image, and its export "verified" (NaN differences pass a
    tolerance test); a training run that diverged is the usual source.

    Raises:
        ValueError: the checkpoint and the tensor.
    """
    found = first_non_finite(weights)
    if found is not None:
        raise ValueError(f"{name} refused: tensor {found[0]} holds {found[1]} non-finite values (NaN or inf); the "
                         "run that wrote it diverged (train from an earlier checkpoint)")


def first_non_finite(weights: dict[str, Any]) -> tuple[str, int] | None:
    """(name, count of NaN and inf values) of the first floating-point tensor that has any, else None."""
    import torch

    for key, value in weights.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return key, int((~torch.isfinite(value)).sum())
    return None


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], name: str | os.PathLike[str],
                 strict: bool = True) -> None:
    """``model.load_state_dict(weights)`` with a one-line error naming the checkpoint when it does not fit.

    Raises:
        ValueError: missing or unexpected keys or a shape mismatch (e.g. a charset of another size).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    wrong = [f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in weights and tuple(weights[k].shape) != tuple(v.shape)]
    if wrong or (strict and (missing or unexpected)) or (not strict and unexpected):
        parts = [f"{len(wrong)} shapes differ, e.g. {wrong[0]}" if wrong else "",
                 f"missing {missing[:3]}" if missing else "", f"unexpected {unexpected[:3]}" if unexpected else ""]
        raise ValueError(f"checkpoint {name} does not fit this model (another architecture or charset?): "
                         + "; ".join(x for x in parts if x))
    model.load_state_dict(weights, strict=strict)
