"""Greedy CTC decoding and what a prediction carries (numpy only, shared by the torch and ONNX back ends).

The other decoders (beam search, lexicon, allowlist, n-gram prior) live in ``crnn.decoders``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from crnn.charset import Charset

WORD_SCORES = ("mean", "min", "product")


class Prediction(NamedTuple):
    """A recognised word.

    Attributes:
        text: the word.
        confidence: the word score of ``char_confidences`` (default: their mean, as PaddleOCR; 0 if empty).
        char_confidences: probability of each symbol of ``text`` (at the CTC frame that emitted it).
        char_frames: for each symbol, the first and last CTC frame it was read on (inclusive).
        char_positions: for each symbol, its start and end x in the input image's pixels (filled in by
            ``Recognizer``, which knows how the image was resized and padded; empty otherwise).
    """

    text: str
    confidence: float
    char_confidences: tuple[float, ...] = ()
    char_frames: tuple[tuple[int, int], ...] = ()
    char_positions: tuple[tuple[float, float], ...] = ()


CharPrediction = Prediction  # the name the service used before Prediction carried per-symbol fields


def word_score(char_confidences: Sequence[float] | np.ndarray, how: str = "mean") -> float:
    """One confidence for a word: ``mean`` (PaddleOCR), ``min`` or ``product`` of its symbols' ones; 0 if empty."""
    p = np.asarray(char_confidences, dtype=np.float64)
    if p.size == 0:
        return 0.0
    if how == "mean":
        return float(p.mean())
    if how == "min":
        return float(p.min())
    if how == "product":
        return float(np.prod(p))
    raise ValueError(f"word score {how!r} is not one of {', '.join(WORD_SCORES)}")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, computed stably in float32."""
    z = logits.astype(np.float32) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def greedy_from_probs(probs: np.ndarray, charset: Charset, how: str = "mean") -> list[Prediction]:
    """Greedy decoding of (B, T, C) probabilities: argmax per step, merge repeats, drop blanks.

    A symbol's confidence is the probability of the first step of its run (PaddleOCR's choice);
    its frames are the whole run.
    """
    ids = probs.argmax(axis=-1)  # (B, T)
    best = np.take_along_axis(probs, ids[..., None], axis=-1)[..., 0]  # (B, T)
    t_len = ids.shape[1]
    out = []
    for row_ids, row_p in zip(ids, best, strict=True):
        starts = np.flatnonzero(np.r_[True, row_ids[1:] != row_ids[:-1]])  # first step of each run
        ends = np.r_[starts[1:] - 1, t_len - 1]
        keep = row_ids[starts] != 0  # drop blank runs
        starts, ends = starts[keep], ends[keep]
        conf = row_p[starts]
        out.append(Prediction(charset.decode(row_ids[starts].tolist()), word_score(conf, how),
                              tuple(conf.tolist()), tuple(zip(starts.tolist(), ends.tolist(), strict=True))))
    return out


def greedy_decode(logits: np.ndarray, charset: Charset) -> list[Prediction]:
    """PaddleOCR's ``CTCLabelDecode``: argmax per step, merge repeats, drop blanks.

    Args:
        logits: (B, T, C) raw scores (softmax is applied here).
        charset: maps class ids 1..C-1 to symbols.

    Returns:
        one ``Prediction`` per batch row (mean word score); confidence 0 when nothing is kept.
    """
    return greedy_from_probs(softmax(logits), charset)


def greedy_decode_chars(logits: np.ndarray, charset: Charset) -> list[Prediction]:
    """Same as ``greedy_decode`` (kept for callers written when only it returned per-symbol scores)."""
    return greedy_decode(logits, charset)
