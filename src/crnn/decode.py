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


def _greedy(logits: np.ndarray, charset: Charset) -> list[tuple[str, np.ndarray]]:
    """(text, max-probabilities of the kept steps) per row: argmax, merge repeats, drop blanks."""
    probs = softmax(logits)
    ids = probs.argmax(axis=-1)  # (B, T)
    best = probs.max(axis=-1)  # (B, T)
    out = []
    for row_ids, row_p in zip(ids, best, strict=True):
        keep = np.ones(len(row_ids), dtype=bool)
        keep[1:] = row_ids[1:] != row_ids[:-1]  # merge repeats
        keep &= row_ids != 0  # drop blanks
        out.append((charset.decode(row_ids[keep].tolist()), row_p[keep]))
    return out


def greedy_decode(logits: np.ndarray, charset: Charset) -> list[Prediction]:
    """PaddleOCR's ``CTCLabelDecode``: argmax per step, merge repeats, drop blanks.

    Args:
        logits: (B, T, C) raw scores (softmax is applied here).
        charset: maps class ids 1..C-1 to symbols.

    Returns:
        one ``Prediction`` per batch row; confidence 0 when nothing is kept.
    """
    return [Prediction(text, float(p.mean()) if p.size else 0.0) for text, p in _greedy(logits, charset)]


class CharPrediction(NamedTuple):
    """A ``Prediction`` plus the probability of each recognised symbol (one per kept CTC step)."""

    text: str
    confidence: float
    char_confidences: list[float]


def greedy_decode_chars(logits: np.ndarray, charset: Charset) -> list[CharPrediction]:
    """``greedy_decode`` that also returns per-symbol probabilities.

    Text and confidence are exactly those of ``greedy_decode``; ``char_confidences[i]`` is the
    max-probability of the CTC step that produced the i-th symbol (the first step of its run).

    Args:
        logits: (B, T, C) raw scores.
        charset: maps class ids 1..C-1 to symbols.
    """
    return [CharPrediction(text, float(p.mean()) if p.size else 0.0, [float(v) for v in p])
            for text, p in _greedy(logits, charset)]
