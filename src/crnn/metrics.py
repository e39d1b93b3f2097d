"""Word accuracy and normalised edit distance, PaddleOCR's ``RecMetric`` and the 36-char protocol."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from rapidfuzz.distance import Levenshtein

_NOT_ALNUM = re.compile(r"[^0-9a-z]")


def filter_36(text: str) -> str:
    """The field's case-insensitive 36-character protocol: lower-case, keep only 0-9a-z."""
    return _NOT_ALNUM.sub("", text.lower())


def make_normalizer(is_filter: bool, ignore_space: bool, charset_normalize: Callable[[str], str] | None
                    ) -> Callable[[str], str]:
    """How predictions and labels are normalised before comparing.

    ``is_filter`` applies the 36-char protocol alone. Without it, text is first reduced to what the
    charset can express (PaddleOCR's eval compares against the encoded label), and spaces are
    dropped when ``ignore_space``.
    """

    def norm(text: str) -> str:
        if is_filter:
            return filter_36(text)
        if charset_normalize is not None:
            text = charset_normalize(text)
        return text.replace(" ", "") if ignore_space else text

    return norm


class RecMetric:
    """Accumulates word accuracy and 1 - mean normalised edit distance over batches."""

    def __init__(self, normalize: Callable[[str], str]):
        self.normalize = normalize
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.correct = 0
        self.count = 0
        self.ned_sum = 0.0

    def update(self, preds: Iterable[str], labels: Iterable[str]) -> list[bool]:
        """Add a batch of predicted and ground-truth strings; returns which ones were right."""
        right = []
        for p, t in zip(preds, labels, strict=True):
            p, t = self.normalize(p), self.normalize(t)
            right.append(p == t)
            self.ned_sum += Levenshtein.normalized_distance(p, t)
        self.correct += sum(right)
        self.count += len(right)
        return right

    def compute(self) -> dict[str, float]:
        """``{"acc", "norm_edit_dis", "count"}``; acc and norm_edit_dis are fractions in [0, 1]."""
        n = max(self.count, 1)
        return {"acc": self.correct / n, "norm_edit_dis": 1.0 - self.ned_sum / n, "count": self.count}
