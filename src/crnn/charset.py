"""The character set: the only place that knows the vocabulary. Class 0 is the CTC blank."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

DEFAULT_CHARACTERS = "0123456789abcdefghijklmnopqrstuvwxyz"
DICTS_DIR = Path(__file__).parent / "dicts"  # shipped dictionaries: en_36.txt, en_95.txt, en_dict.txt


class Charset:
    """An ordered list of symbols; class ``i + 1`` is ``chars[i]`` and class 0 is the blank.

    Args:
        chars: the symbols, in class order.
        lower: lower-case labels before encoding (PaddleOCR does this for the built-in charset).
    """

    def __init__(self, chars: Sequence[str], lower: bool = False):
        self.chars: list[str] = list(chars)
        self.lower = lower
        # As in PaddleOCR, a repeated symbol encodes to its last class (en_dict.txt + use_space_char
        # has two spaces; keeping both keeps the class count, and so the weights, compatible).
        self._index = {c: i + 1 for i, c in enumerate(self.chars)}

    @classmethod
    def from_config(cls, character_dict_path: str | None, use_space_char: bool = False) -> Charset:
        """PaddleOCR's ``CTCLabelEncode`` rules: no dict → ``0-9a-z`` with lower-casing.

        One addition: a dict with lower-case letters and no upper-case ones (``dicts/en_36.txt``) also
        lower-cases labels, so ``Home`` trains as ``home`` instead of losing its ``H``.
        """
        if not character_dict_path:
            return cls(DEFAULT_CHARACTERS, lower=True)
        from crnn.data.labels import read_text

        text = read_text(character_dict_path, "character_dict_path")
        chars = [line.rstrip("\r\n") for line in text.splitlines()]
        if use_space_char:
            chars.append(" ")
        caseless = any(c.islower() for c in chars) and not any(c.isupper() for c in chars)
        return cls(chars, lower=caseless)

    @property
    def num_classes(self) -> int:
        """Number of model outputs: symbols + blank."""
        return len(self.chars) + 1

    def normalize(self, text: str) -> str:
        """What the model can learn of ``text``: lower-cased if needed, unknown symbols dropped."""
        if self.lower:
            text = text.lower()
        return "".join(c for c in text if c in self._index)

    def encode(self, text: str) -> list[int]:
        """Class indices of ``normalize(text)``."""
        return [self._index[c] for c in self.normalize(text)]

    def decode(self, ids: Sequence[int]) -> str:
        """Symbols of class indices, skipping blanks (no repeat collapsing)."""
        return "".join(self.chars[i - 1] for i in ids if i > 0)

    def to_dict(self) -> dict[str, object]:
        """Serializable form stored in checkpoints and ONNX metadata."""
        return {"chars": self.chars, "lower": self.lower}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Charset:
        """Inverse of ``to_dict``."""
        chars = data["chars"]
        assert isinstance(chars, list)
        return cls([str(c) for c in chars], lower=bool(data.get("lower", False)))

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Charset) and self.chars == other.chars and self.lower == other.lower

    def __repr__(self) -> str:
        return f"Charset({len(self.chars)} symbols, lower={self.lower})"
