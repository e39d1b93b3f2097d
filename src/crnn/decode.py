"""Greedy CTC decoding (numpy only, shared by the torch and ONNX back ends)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from crnn.charset import Charset


class Prediction(NamedTuple):
    """A recognised word: ``text`` and its ``confidence`` (mean max-probability of kept steps)."""

    text: str
    confidence: float


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, computed stably in float32."""
    z = logits.astype(np.float32) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def greedy_decode(logits: np.ndarray, charset: Charset) -> list[Prediction]:
    """PaddleOCR's ``CTCLabelDecode``: argmax per step, merge repeats, drop blanks.

    Args:
        logits: (B, T, C) raw scores (softmax is applied here).
        charset: maps class ids 1..C-1 to symbols.

    Returns:
        one ``Prediction`` per batch row; confidence 0 when nothing is kept.
    """
    probs = softmax(logits)
    ids = probs.argmax(axis=-1)  # (B, T)
    best = probs.max(axis=-1)  # (B, T)
    out = []
    for row_ids, row_p in zip(ids, best, strict=True):
        keep = np.ones(len(row_ids), dtype=bool)
        keep[1:] = row_ids[1:] != row_ids[:-1]  # merge repeats
        keep &= row_ids != 0  # drop blanks
        kept = row_ids[keep]
        text = charset.decode(kept.tolist())
        conf = float(row_p[keep].mean()) if kept.size else 0.0
        out.append(Prediction(text, conf))
    return out
