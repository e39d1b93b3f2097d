"""Text to render: dictionary words plus numbers, codes and punctuation, in mixed case.

Scene text is mostly short single words, often capitalised or in capitals, with prices,
numbers, phone numbers and codes in between. Labels keep case and punctuation; charsets that
do not need them filter them out at training time.
"""

from __future__ import annotations

import os
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

WORD_LIST_PATHS: tuple[str, ...] = (
    "/usr/share/dict/words",
    "/usr/share/dict/american-english",
    "/usr/share/dict/british-english",
)
MAX_WORD_LEN = 16  # CRNN at width 100 has 25 time steps: longer words are unreadable anyway
# Relative frequency of word lengths 1..16, roughly the shape of the real benchmark labels
# (most words are 3-8 characters; the dictionary alone would be skewed towards 8-10).
LENGTH_WEIGHTS = np.array([3, 9, 14, 15, 14, 12, 10, 7, 4, 2.5, 1.5, 0.8, 0.5, 0.3, 0.2, 0.1])
PUNCT_AFTER = (".", ",", "!", "?", ":", ";", "'s", "s'", ")", "'", '"', "%", "-")
PUNCT_BEFORE = ("(", "'", '"', "#", "$", "@", "-", "&")
PUNCT_WRAP = (("(", ")"), ('"', '"'), ("'", "'"), ("[", "]"))


def load_words(paths: Sequence[str | os.PathLike[str]] = WORD_LIST_PATHS, min_words: int = 1000) -> list[str]:
    """Clean ASCII words from the first existing word list (one word a line), sorted and unique.

    Possessive forms (``word's``) are dropped: the generator adds ``'s`` itself at a set rate. The
    decoders' word-list prior (``crnn.lm``) keeps the same words (``clean_words``) of a file it reads strictly.

    Raises:
        FileNotFoundError: none of ``paths`` exists, or the list has fewer than ``min_words`` usable
            words; the message names ``scripts/install_fonts.sh``.
    """
    for p in paths:
        path = Path(p)
        if path.is_file():
            break
    else:
        raise FileNotFoundError(
            f"no word list found (looked for {', '.join(str(p) for p in paths)}); "
            "install one with scripts/install_fonts.sh (Debian package wamerican), as root"
        )
    words = clean_words(path.read_text(encoding="utf-8", errors="ignore").splitlines())
    if len(words) < min_words:
        raise FileNotFoundError(
            f"word list {path} has only {len(words)} usable words; run scripts/install_fonts.sh"
        )
    return words


def clean_words(lines: Iterable[str]) -> list[str]:
    """The usable words of ``lines``, sorted and unique: ASCII letters, digits and ``-``, at most
    ``MAX_WORD_LEN`` long, no possessive ``'s`` form."""
    allowed = set(string.ascii_letters + string.digits + "-")
    words = set()
    for line in lines:
        w = line.strip()
        if w and len(w) <= MAX_WORD_LEN and not w.endswith("'s") and set(w) <= allowed:
            words.add(w)
    return sorted(words)


class Corpus:
    """Samples label strings from a word list with a seeded ``numpy.random.Generator``."""

    def __init__(self, words: Sequence[str]):
        by_len: dict[int, list[str]] = {}
        for w in words:
            by_len.setdefault(len(w), []).append(w)
        self.by_len = {n: sorted(ws) for n, ws in by_len.items() if 1 <= n <= MAX_WORD_LEN}
        lengths = sorted(self.by_len)
        weights = np.array([LENGTH_WEIGHTS[n - 1] for n in lengths])
        self.lengths = np.array(lengths)
        self.length_cdf = np.cumsum(weights / weights.sum())

    def word(self, rng: np.random.Generator) -> str:
        """A dictionary word with a realistic length."""
        k = min(int(np.searchsorted(self.length_cdf, rng.random())), len(self.lengths) - 1)
        n = int(self.lengths[k])
        ws = self.by_len[n]
        return ws[int(rng.integers(len(ws)))]

    @staticmethod
    def recase(w: str, rng: np.random.Generator) -> str:
        """Keep, lower, Title or UPPER case: signs are often in capitals, IIIT5K is mixed."""
        r = rng.random()
        if r < 0.30:
            return w
        if r < 0.55:
            return w.lower()
        if r < 0.70:
            return w[:1].upper() + w[1:].lower()
        return w.upper()

    @staticmethod
    def number(rng: np.random.Generator) -> str:
        """Numbers as they appear on signs: plain, prices, phone numbers, times, percentages."""
        r = rng.random()
        digits = "".join(str(d) for d in rng.integers(0, 10, size=int(rng.integers(1, 8))))
        if r < 0.45:
            return digits
        if r < 0.60:
            return f"{'$' if rng.random() < 0.6 else ''}{int(digits) % 1000}.{int(rng.integers(100)):02d}"
        if r < 0.72:
            return f"{int(rng.integers(100, 1000))}-{int(rng.integers(1000, 10000))}"
        if r < 0.82:
            return f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"
        if r < 0.90:
            return f"{int(rng.integers(1, 100))}%"
        return f"{int(rng.integers(1900, 2030))}"

    @staticmethod
    def random_string(rng: np.random.Generator) -> str:
        """Codes such as ``A4``, ``B12X``, ``rx7``: letters and digits with no dictionary prior."""
        n = int(rng.integers(1, 9))
        pool = (
            string.ascii_uppercase + string.digits
            if rng.random() < 0.6
            else string.ascii_letters + string.digits
        )
        return "".join(pool[int(i)] for i in rng.integers(0, len(pool), size=n))

    def punctuate(self, w: str, rng: np.random.Generator) -> str:
        """Attach punctuation the way it appears in cropped scene words (``word.``, ``(word)``)."""
        r = rng.random()
        if r < 0.55:
            return w + PUNCT_AFTER[int(rng.integers(len(PUNCT_AFTER)))]
        if r < 0.70:
            return PUNCT_BEFORE[int(rng.integers(len(PUNCT_BEFORE)))] + w
        if r < 0.82:
            a, b = PUNCT_WRAP[int(rng.integers(len(PUNCT_WRAP)))]
            return a + w + b
        other = self.recase(self.word(rng), rng) if rng.random() < 0.7 else self.number(rng)
        return w + ("-" if rng.random() < 0.6 else "/") + other

    def sample(self, rng: np.random.Generator) -> str:
        """One label: ~72% words, 12% numbers, 8% codes, some with punctuation or two words."""
        r = rng.random()
        if r < 0.72:
            text = self.recase(self.word(rng), rng)
        elif r < 0.84:
            text = self.number(rng)
        elif r < 0.92:
            text = self.random_string(rng)
        elif r < 0.98:
            text = self.recase(self.word(rng), rng) + str(int(rng.integers(0, 100)))
        else:  # short two-word phrases appear in IC15 labels
            a, b = self.word(rng), self.word(rng)
            text = self.recase(a[:5], rng) + " " + self.recase(b[:5], rng)
        if rng.random() < 0.10:
            text = self.punctuate(text, rng)
        return text
