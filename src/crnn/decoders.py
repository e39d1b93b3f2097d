"""The decoder: (B, T, C) logits -> one ``Prediction`` per row, chosen by the config's ``PostProcess``.

``DECODERS`` is the registry: ``greedy`` (PaddleOCR's ``CTCLabelDecode``, the default) and ``beam``
(CTC prefix beam search, optionally fused with a character n-gram prior from a word list). Both
take an allowlist / blocklist of symbols and an optional lexicon. Eval, training-time evaluation,
``crnn predict``, both recognizer back ends and the service all decode through ``build_decoder``.
Numpy only: the torch-free ONNX install uses it too.
"""

from __future__ import annotations

import itertools
import math
import typing
from collections.abc import Sequence
from typing import Any

import numpy as np

from crnn.charset import Charset
from crnn.config import ConfigError, PostProcessConfig
from crnn.ctc import align, ctc_log_prob, log_softmax, prefix_beam_search
from crnn.decode import WORD_SCORES, Prediction, greedy_from_probs, softmax, word_score
from crnn.limits import MAX_BEAM_WIDTH, MAX_LEXICON_DISTANCE, check_range
from crnn.registry import Entry, lookup


class Decoder:
    """Greedy decoding with the options every decoder shares: allow/block lists, lexicon, word score.

    Args:
        charset: the model's symbols (class 0 = blank).
        cfg: the ``PostProcess`` section (decoder options are crnn extensions of it).
    """

    def __init__(self, charset: Charset, cfg: PostProcessConfig):
        if cfg.allow is not None and not cfg.allow:  # "" would allow no symbol: every reading would be empty
            raise ConfigError("PostProcess.allow (--allow) is empty: it would allow no symbol; leave it out to "
                              "allow every symbol of the charset")
        if cfg.word_score not in WORD_SCORES:
            raise ConfigError(f"PostProcess.word_score: {cfg.word_score!r} is not one of {', '.join(WORD_SCORES)}")
        if not cfg.temperature > 0:
            raise ConfigError(f"PostProcess.temperature must be > 0, got {cfg.temperature}")
        # every decoder checks the sizes (a flag of the wrong verb must not hang another one later)
        check_range("PostProcess.lexicon_max_distance (--lexicon-max-distance)", cfg.lexicon_max_distance, 0,
                    MAX_LEXICON_DISTANCE, ConfigError)
        check_range("PostProcess.beam_width (--beam-width)", cfg.beam_width, 1, MAX_BEAM_WIDTH, ConfigError)
        check_range("PostProcess.lm_order", cfg.lm_order, 1, 16, ConfigError)  # n-gram tables grow with it
        check_range("PostProcess.lm_weight (--lm-weight)", cfg.lm_weight, -1e3, 1e3, ConfigError)  # finite
        check_range("PostProcess.length_bonus", cfg.length_bonus, -1e3, 1e3, ConfigError)
        check_range("PostProcess.temperature", cfg.temperature, 1e-3, 1e3, ConfigError)
        self.charset, self.cfg = charset, cfg
        self.mask = symbol_mask(charset, cfg.allow, cfg.block)  # (C,) bool, or None: every class allowed
        self.lexicon = Lexicon.from_file(cfg.lexicon, charset, cfg.lexicon_max_distance) if cfg.lexicon else None

    def masked(self, logits: np.ndarray) -> np.ndarray:
        """Logits with the classes outside the allow/block lists at -inf."""
        if self.mask is None:
            return logits
        return np.where(self.mask, logits.astype(np.float32), np.float32(-np.inf))

    def tempered(self, logits: np.ndarray) -> np.ndarray:
        """Logits divided by the temperature: for confidences only. Searches (beam, prior, lexicon) rank
        readings by the model's own scores, so that calibration never changes a reading; the greedy path
        and the best alignment of a label do not depend on the temperature anyway."""
        if self.cfg.temperature == 1.0:
            return logits
        return logits.astype(np.float32) / np.float32(self.cfg.temperature)

    def __call__(self, logits: np.ndarray) -> list[Prediction]:
        """(B, T, C) raw scores -> one ``Prediction`` per row."""
        logits = self.masked(logits)
        tempered = self.tempered(logits)
        preds = greedy_from_probs(softmax(tempered), self.charset, self.cfg.word_score)
        if self.lexicon is None:
            return preds
        logp = log_softmax(logits)  # the lexicon's scores: the model's own
        conf = logp if tempered is logits else log_softmax(tempered)  # the confidences'
        out = []
        for lp, lc, p in zip(logp, conf, preds, strict=True):
            label = self.lexicon.choose(lp, p.text)
            out.append(p if label is None else self.rescore(lc, label))
        return out

    def rescore(self, logp: np.ndarray, label: Sequence[int]) -> Prediction:
        """A ``Prediction`` for a chosen label: per-symbol frames from the best alignment, confidences there.

        ``logp``: (T, C) log-probabilities of the tempered logits (the alignment does not depend on it).
        """
        spans = align(logp, label)
        if not spans:
            return Prediction("", 0.0)
        # a symbol's confidence: the probability at its first frame, as in greedy decoding (for the greedy
        # reading the best alignment is the greedy path, so both give the same numbers)
        conf = [float(np.exp(logp[s, c])) for (s, _), c in zip(spans, label, strict=True)]
        return Prediction(self.charset.decode(label), word_score(conf, self.cfg.word_score), tuple(conf),
                          tuple(spans))


class BeamDecoder(Decoder):
    """CTC prefix beam search of width ``beam_width``, with an optional character n-gram prior (``lm``).

    The final beams (and the greedy reading) are rescored with the exact CTC probability, so the
    answer's CTC probability is never below greedy's when no prior is used.
    """

    def __init__(self, charset: Charset, cfg: PostProcessConfig):
        super().__init__(charset, cfg)
        self.lm = None
        if cfg.lm:
            from crnn.lm import CharNgram

            self.lm = CharNgram.from_file(cfg.lm, charset, cfg.lm_order)
        self.bonus = cfg.length_bonus if self.lm is not None else 0.0  # it offsets the prior's cost per symbol

    def __call__(self, logits: np.ndarray) -> list[Prediction]:
        masked = self.masked(logits)
        logp = log_softmax(masked)  # the search's scores: the model's own
        conf = logp if self.cfg.temperature == 1.0 else log_softmax(self.tempered(masked))  # the confidences'
        greedy = greedy_from_probs(np.exp(conf), self.charset, self.cfg.word_score)
        out = []
        for lp, lc, g in zip(logp, conf, greedy, strict=True):
            label = self.search(lp, g)
            if self.lexicon is not None:
                chosen = self.lexicon.choose(lp, self.charset.decode(label))
                label = label if chosen is None else chosen
            out.append(g if label == self.charset.encode(g.text) else self.rescore(lc, label))
        return out

    def search(self, logp: np.ndarray, greedy: Prediction) -> list[int]:
        """The best label of one row (T, C): beams rescored exactly, fused with the prior if any."""
        cfg = self.cfg
        beams = prefix_beam_search(logp, self.charset.chars, cfg.beam_width, self.lm, cfg.lm_weight, self.bonus)
        labels = [list(p) for p, _ in beams]
        g = self.charset.encode(greedy.text)
        if g not in labels:
            labels.append(g)
        score = ctc_log_prob(logp, labels)
        if self.lm is not None:
            score = score + np.array([self.prior(lab) for lab in labels])
        return labels[int(np.argmax(score))]

    def prior(self, label: Sequence[int]) -> float:
        """lm_weight * log p_lm(label + end of word) + length_bonus * len(label)."""
        total = self.bonus * len(label)
        if self.lm is not None:
            text = self.charset.decode(label)
            lp = sum(self.lm.log_prob(text[:i], text[i]) for i in range(len(text)))
            total += self.cfg.lm_weight * (lp + self.lm.log_prob(text, self.lm.end))
        return total


class Lexicon:
    """Lexicon-constrained decoding: the in-lexicon word with the best CTC probability.

    As in the CRNN paper, candidates are the words within ``max_distance`` edits of the free reading
    (found with rapidfuzz); each is scored by its exact CTC probability. With no candidate the free
    reading is kept (a word outside the lexicon). Words are reduced to what the charset can express.
    """

    def __init__(self, words: Sequence[str], charset: Charset, max_distance: int = 3):
        forms = {charset.normalize(w.strip()) for w in words}
        self.words = sorted(f for f in forms if f)
        if not self.words:
            raise ValueError("the lexicon has no word the charset can express")
        self.charset, self.max_distance = charset, max_distance
        self.labels = {w: charset.encode(w) for w in self.words}

    @classmethod
    def from_file(cls, path: str, charset: Charset, max_distance: int = 3) -> Lexicon:
        """One word per line (UTF-8).

        Raises:
            FileNotFoundError / ValueError: no such file, or no usable word (the message names it).
        """
        from crnn.data.labels import read_text

        text = read_text(path, "lexicon")
        try:
            return cls(text.splitlines(), charset, max_distance)
        except ValueError as e:
            raise ValueError(f"lexicon {path}: {e}") from None

    def candidates(self, text: str) -> list[str]:
        """Lexicon words within ``max_distance`` edits of ``text`` (the charset's form of it)."""
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        hits = process.extract(self.charset.normalize(text), self.words, scorer=Levenshtein.distance,
                               score_cutoff=self.max_distance, limit=None)
        return [w for w, _, _ in hits]

    def choose(self, logp: np.ndarray, free: str) -> list[int] | None:
        """The label of the best-scoring candidate near the free reading ``free`` for one row's (T, C)
        log-probabilities; None when no lexicon word is near it (or none can be aligned): keep ``free``."""
        words = self.candidates(free)
        if not words:
            return None
        labels = [self.labels[w] for w in words]
        scores = ctc_log_prob(logp, labels)
        best = int(np.argmax(scores))
        return labels[best] if np.isfinite(scores[best]) else None


def symbol_mask(charset: Charset, allow: str | None, block: str | None) -> np.ndarray | None:
    """(C,) bool: classes the decoder may output (blank always). None when both lists are empty.

    Raises:
        ConfigError: a listed symbol is not in the charset (the message names it).
    """
    if not allow and not block:
        return None
    known = set(charset.chars)
    for key, chars in (("allow", allow), ("block", block)):
        unknown = sorted({c for c in chars or "" if c not in known})
        if unknown:
            raise ConfigError(f"PostProcess.{key}: {''.join(unknown)!r} not in the model's charset")
    mask = np.ones(charset.num_classes, dtype=bool)
    if allow:
        mask[1:] = [c in allow for c in charset.chars]
    if block:
        mask[1:] &= [c not in block for c in charset.chars]
    return mask


_SHARED_KEYS = ("lexicon", "lexicon_max_distance", "allow", "block", "word_score", "temperature")
# The one table of decoders: name -> class, with the PostProcess keys each reads (the config loader
# warns when a key only another decoder reads is set, e.g. beam_width with greedy).
DECODERS: dict[str, Entry] = {
    "greedy": Entry(Decoder, dict.fromkeys(_SHARED_KEYS, Any)),
    "beam": Entry(BeamDecoder, dict.fromkeys((*_SHARED_KEYS, "beam_width", "lm", "lm_order", "lm_weight",
                                              "length_bonus"), Any)),
}


def build_decoder(cfg: PostProcessConfig | None, charset: Charset) -> Decoder:
    """The decoder a ``PostProcess`` section names (None: greedy, PaddleOCR's).

    Raises:
        ConfigError: unknown decoder or bad option (the message names the key).
        FileNotFoundError: a lexicon or word list file is missing.
    """
    cfg = cfg or PostProcessConfig()
    entry = lookup(DECODERS, cfg.decoder, "PostProcess.decoder", "decoder")
    if cfg.lm and cfg.decoder != "beam":
        raise ConfigError("PostProcess.lm: a word-list prior needs the beam decoder (decoder: beam)")
    return typing.cast(Decoder, entry.load()(charset, cfg))


def frames_to_pixels(frames: Sequence[tuple[int, int]], image_hw: tuple[int, int], input_w: int, num_frames: int,
                     content_w: int) -> tuple[tuple[float, float], ...]:
    """Each symbol's [x0, x1) in the original image, from the CTC frames it was read on.

    CTC reads a symbol on one or a few frames (a "spike"), not over the whole glyph, so a symbol's
    range runs from halfway between the previous symbol's frames and its own to halfway between its
    own and the next one's; the first starts at its first frame and the last ends after its last.
    Frames in the right padding count as the image's last frame.
    The image (h, w) fills the first ``content_w`` columns of the input (``Preprocess.content_width``:
    its resized width when the model pads, ``input_w`` when it stretches), then padding up to
    ``input_w``; frame f covers input columns [f, f + 1) * input_w / num_frames.
    """
    if not frames:
        return ()
    w = image_hw[1]
    scale = (input_w / num_frames) * (w / content_w)  # original px per frame
    # a symbol read on a frame of the right padding (the BiLSTM may emit late) belongs to the image's end
    last = max(1, math.ceil(content_w * num_frames / input_w)) - 1
    frames = [(min(s, last), min(e, last)) for s, e in frames]
    cuts = [(e0 + 1 + s1) / 2 for (_, e0), (s1, _) in itertools.pairwise(frames)]
    left = [float(frames[0][0]), *cuts]
    right = [*cuts, float(frames[-1][1] + 1)]
    clamp = float(w)  # a float even where it clamps (json prints 50.0, as the C++ program and the service)
    return tuple((round(min(a * scale, clamp), 1), round(min(b * scale, clamp), 1))
                 for a, b in zip(left, right, strict=True))
