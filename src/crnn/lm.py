"""A character n-gram prior built from a word list, for shallow fusion in the CTC beam search.

Interpolated Witten-Bell smoothing: every symbol of the charset (and the end of word) keeps a
non-zero probability, so the prior can nudge the beam towards word-like strings but never forbid
a reading. Words are reduced to what the charset can express first (lower-cased for ``0-9a-z``).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable

from crnn.charset import Charset
from crnn.ctc import LanguageModel

START = "\x02"


class CharNgram(LanguageModel):
    """log p(symbol | previous order-1 symbols) from word counts.

    Args:
        words: training words (already in the charset's form, or normalised here by ``charset``).
        charset: the recogniser's symbols: the vocabulary the probabilities are spread over.
        order: n of the n-gram (context of n - 1 symbols, padded with a start marker).
    """

    def __init__(self, words: Iterable[str], charset: Charset, order: int = 4):
        if order < 1:
            raise ValueError(f"n-gram order must be >= 1, got {order}")
        self.order = order
        self.vocab_size = len(set(charset.chars)) + 1  # + end of word
        # counts[context][symbol] for every context length 0..order-1
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        n_words = 0
        for w in words:
            w = charset.normalize(w)
            if not w:
                continue
            n_words += 1
            padded = START * (order - 1) + w + self.end
            for i in range(order - 1, len(padded)):
                for k in range(order):  # context lengths 0..order-1
                    self.counts[padded[i - k : i]][padded[i]] += 1
        if n_words == 0:
            raise ValueError("the word list has no word the charset can express")
        self.n_words = n_words
        self.totals = {ctx: sum(c.values()) for ctx, c in self.counts.items()}
        self._cache: dict[tuple[str, str], float] = {}

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], charset: Charset, order: int = 4) -> CharNgram:
        """Build from a word list file (one word a line), read as ``crnn synth`` reads its word list.

        Raises:
            FileNotFoundError: no such file.
            ValueError: not a UTF-8 text file, or no usable word in it (the message names it).
        """
        from crnn.data.labels import read_text
        from crnn.synth.corpus import clean_words

        words = clean_words(read_text(path, "--lm word list").splitlines())
        if not words:
            raise ValueError(f"--lm word list {path} has no usable word (ASCII letters, digits and '-', one a line)")
        try:
            return cls(words, charset, order)
        except ValueError as e:
            raise ValueError(f"--lm word list {path}: {e}") from None

    def log_prob(self, context: str, symbol: str) -> float:
        """Natural-log probability of ``symbol`` (or ``self.end``) after ``context``."""
        ctx = (START * (self.order - 1) + context)[len(context) :] if self.order > 1 else ""
        key = (ctx, symbol)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = math.log(self._prob(ctx, symbol))
        return hit

    def _prob(self, ctx: str, symbol: str) -> float:
        p = 1.0 / self.vocab_size
        for k in range(0, len(ctx) + 1):  # from the empty context up to the full one
            c = ctx[len(ctx) - k :]
            seen = self.counts.get(c)
            if not seen:
                break
            total, types = self.totals[c], len(seen)
            p = (seen.get(symbol, 0) + types * p) / (total + types)
        return p
