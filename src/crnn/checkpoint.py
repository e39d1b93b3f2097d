"""Checkpoints: weights + config + charset (+ training state), written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1
SUFFIX = ".pt"


def resolve(path: str | os.PathLike[str]) -> Path:
    """Accept a path with or without the ``.pt`` suffix (PaddleOCR names checkpoints without one)."""
    p = Path(path)
    if p.is_file():
        return p
    if p.with_name(p.name + SUFFIX).is_file():
        return p.with_name(p.name + SUFFIX)
    raise FileNotFoundError(f"checkpoint {path} not found (also tried {p.name}{SUFFIX})")


def save(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` via a temporary file and an atomic rename.

    A crash mid-write leaves the previous checkpoint intact.
    """
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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by ``save`` (or the bundled model).

    Raises:
        ValueError: the file is not a crnn checkpoint; the message names it.
    """
    p = resolve(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a corrupt file
        raise ValueError(f"{p} is not a readable crnn checkpoint: {e}") from e
    if not isinstance(state, dict) or "model" not in state or "config" not in state or "charset" not in state:
        raise ValueError(f"{p} is not a crnn checkpoint (needs model, config and charset entries)")
    return state
