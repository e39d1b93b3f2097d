"""CTC arithmetic on one image's frame log-probabilities (numpy only): scores, alignments, beam search.

All functions take ``logp`` (T, C): natural-log class probabilities of T frames, class 0 = blank.
A label is a sequence of class ids 1..C-1 (no blanks).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np

NEG_INF = -np.inf


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis, in float64 (beam scores add up many small terms)."""
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _extended(labels: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blank-interleaved labels (N, S) padded with blanks, their lengths (N,), and the skip mask (N, S)."""
    s_max = 2 * max((len(lab) for lab in labels), default=0) + 1
    ext = np.zeros((len(labels), s_max), dtype=np.int64)
    for n, lab in enumerate(labels):
        ext[n, 1 : 2 * len(lab) : 2] = lab
    lengths = np.array([2 * len(lab) + 1 for lab in labels], dtype=np.int64)
    skip = np.zeros_like(ext, dtype=bool)  # s may be reached from s-2: a symbol differing from the one before
    skip[:, 2:] = (ext[:, 2:] != 0) & (ext[:, 2:] != ext[:, :-2])
    return ext, lengths, skip


def ctc_log_prob(logp: np.ndarray, labels: Sequence[Sequence[int]]) -> np.ndarray:
    """log p(label | frames) summed over all CTC alignments, for N labels at once: (N,).

    The forward algorithm, vectorised over labels and label positions; the loop runs over the T frames.
    It works with probabilities rescaled at every frame (Rabiner's scaling: no underflow, no
    log-sum-exp). A label that needs more frames than there are gets -inf.
    """
    if not labels:
        return np.zeros(0)
    ext, lengths, skip = _extended(labels)
    n, s = ext.shape
    emit = np.exp(logp)[:, ext]  # (T, N, S): probability of each extended symbol at each frame
    alpha = np.zeros((n, s + 2))  # two leading zero columns stand for positions -2 and -1
    alpha[:, 2] = emit[0, :, 0]
    if s > 1:
        alpha[:, 3] = emit[0, :, 1]
    log_scale = np.zeros(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(1, logp.shape[0]):
            total = alpha.sum(axis=1, keepdims=True)
            alpha /= np.where(total > 0, total, 1.0)
            log_scale += np.log(total[:, 0])
            cur = alpha[:, 2:] + alpha[:, 1:-1] + np.where(skip, alpha[:, :-2], 0.0)
            alpha[:, 2:] = cur * emit[t]
        rows = np.arange(n)
        end = alpha[rows, lengths + 1] + np.where(lengths > 1, alpha[rows, lengths], 0.0)
        return np.log(end) + log_scale


def align(logp: np.ndarray, label: Sequence[int]) -> list[tuple[int, int]]:
    """Best (Viterbi) alignment of ``label``: the first and last frame of each symbol, inclusive.

    Returns one (start, end) per symbol; empty for an empty label or one longer than the frames allow.
    """
    if not label:
        return []
    ext, lengths, skip = _extended([label])
    ext, skip, s = ext[0], skip[0], int(lengths[0])
    t_len = logp.shape[0]
    score = np.full(s, NEG_INF)
    score[0] = logp[0, ext[0]]
    score[1] = logp[0, ext[1]]
    back = np.zeros((t_len, s), dtype=np.int8)  # 0: stay, 1: from s-1, 2: from s-2
    for t in range(1, t_len):
        cand = np.stack([score, np.concatenate([[NEG_INF], score[:-1]]),
                         np.where(skip, np.concatenate([[NEG_INF, NEG_INF], score[:-2]]), NEG_INF)])
        back[t] = cand.argmax(axis=0)
        score = cand.max(axis=0) + logp[t, ext]
    pos = s - 1 if score[s - 1] >= score[s - 2] else s - 2
    if not np.isfinite(score[pos]):
        return []
    path = np.empty(t_len, dtype=np.int64)
    for t in range(t_len - 1, -1, -1):
        path[t] = pos
        pos -= int(back[t, pos])
    spans: list[tuple[int, int]] = []
    for k in range(len(label)):
        frames = np.flatnonzero(path == 2 * k + 1)
        spans.append((int(frames[0]), int(frames[-1])))
    return spans


class LanguageModel:
    """What the beam search asks of a prior: log p(next symbol | text so far), with ``end`` for end of word."""

    end: str = "\x03"

    def log_prob(self, context: str, symbol: str) -> float:  # pragma: no cover - interface
        raise NotImplementedError


def prefix_beam_search(logp: np.ndarray, chars: Sequence[str], beam_width: int,
                       lm: LanguageModel | None = None, lm_weight: float = 0.0, length_bonus: float = 0.0,
                       prune: float = 1e-3) -> list[tuple[tuple[int, ...], float]]:
    """CTC prefix beam search; returns up to ``beam_width`` (label, score) pairs, best first.

    A prefix's score is log p_ctc(prefix) + lm_weight * log p_lm(prefix) + length_bonus * len(prefix)
    (shallow fusion); the LM's end-of-word probability is added at the end. p_ctc is summed over the
    alignments that survived the beam, a lower bound of the exact value (``ctc_log_prob``).

    Args:
        logp: (T, C) log-probabilities.
        chars: symbol of class i + 1 (the charset), used to query ``lm``.
        prune: at each frame, only symbols with probability >= prune (and at most ``beam_width``) extend.
    """
    probs = np.exp(logp)
    log_prune = math.log(prune)
    # prefix -> [p_blank, p_nonblank] in the probability domain (T <= a few hundred frames keeps it in range)
    beams: dict[tuple[int, ...], list[float]] = {(): [1.0, 0.0]}
    lm_score: dict[tuple[int, ...], float] = {(): 0.0}

    def prior(prefix: tuple[int, ...]) -> float:
        """lm_weight * log p_lm(prefix) + length_bonus * len(prefix), memoised (the parent always is)."""
        if prefix not in lm_score:
            parent = prefix[:-1]
            extra = 0.0 if lm is None else lm_weight * lm.log_prob(_text(parent, chars), chars[prefix[-1] - 1])
            lm_score[prefix] = prior(parent) + extra + length_bonus
        return lm_score[prefix]

    for t in range(logp.shape[0]):
        row = logp[t]
        cand = np.flatnonzero(row[1:] >= log_prune) + 1
        p_blank = float(probs[t, 0])
        if cand.size == 0:  # only the blank is likely: every prefix ends in a blank, the ranking stays
            beams = {prefix: [(pb + pnb) * p_blank, 0.0] for prefix, (pb, pnb) in beams.items()}
            continue
        if cand.size > beam_width:
            cand = cand[np.argsort(row[cand])[::-1][:beam_width]]
        nxt: dict[tuple[int, ...], list[float]] = {}
        for prefix, (pb, pnb) in beams.items():
            _add(nxt, prefix, (pb + pnb) * p_blank, 0.0)
            last = prefix[-1] if prefix else None
            for c in cand.tolist():
                pc = float(probs[t, c])
                if c == last:
                    _add(nxt, prefix, 0.0, pnb * pc)  # the same symbol continues
                    _add(nxt, (*prefix, c), 0.0, pb * pc)  # a blank separated it: a new symbol
                else:
                    _add(nxt, (*prefix, c), 0.0, (pb + pnb) * pc)
        if len(nxt) > beam_width:
            for prefix in nxt:
                prior(prefix)
            nxt = dict(heapq.nlargest(beam_width, nxt.items(),
                                      key=lambda kv: math.log(kv[1][0] + kv[1][1] + 1e-300) + lm_score[kv[0]]))
        z = max(pb + pnb for pb, pnb in nxt.values())
        if 0 < z < 1e-30:  # rescale (the ranking does not change) so that long inputs never underflow
            nxt = {prefix: [pb / z, pnb / z] for prefix, (pb, pnb) in nxt.items()}
        beams = nxt

    def final(prefix: tuple[int, ...]) -> float:
        pb, pnb = beams[prefix]
        s = math.log(pb + pnb) if pb + pnb > 0 else -math.inf
        s += prior(prefix)
        if lm is not None:
            s += lm_weight * lm.log_prob(_text(prefix, chars), lm.end)
        return s

    ranked = sorted(beams, key=final, reverse=True)
    return [(p, final(p)) for p in ranked]


def _add(cells: dict[tuple[int, ...], list[float]], prefix: tuple[int, ...], b: float, nb: float) -> None:
    cell = cells.get(prefix)
    if cell is None:
        cells[prefix] = [b, nb]
    else:
        cell[0] += b
        cell[1] += nb


def _text(prefix: tuple[int, ...], chars: Sequence[str]) -> str:
    return "".join(chars[i - 1] for i in prefix)


