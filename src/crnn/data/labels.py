"""The one label-file reader of crnn: ``relative/path<TAB>label`` lines (PaddleOCR's SimpleDataSet layout).

Training, evaluation, ``crnn lmdb create``, int8 calibration and the scripts all read label files here,
so a byte-order mark, a non-UTF-8 file or a line without the delimiter is handled once, the same way.
Torch- and lmdb-free: the base (ONNX) install can import it.
"""

from __future__ import annotations

import os
from pathlib import Path


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """A UTF-8 text file's contents (a byte-order mark dropped), for the word lists and dictionaries users name.

    ``what`` says what the file is for (e.g. ``"--lm word list"``) so that a message names both.

    Raises:
        FileNotFoundError: no such file.
        ValueError: binary data (a NUL byte) or not UTF-8; the message names ``what``, the file and the byte.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {p} not found")
    data = p.read_bytes()
    nul = data.find(b"\0")
    if nul >= 0:  # UTF-8 text never holds one; a model, an image or an archive almost always does
        raise ValueError(f"{what} {p} is not a text file (a NUL byte at byte {nul}); it must be UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} {p} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_label_file(path: str | os.PathLike[str], delimiter: str = "\t") -> list[tuple[str, str]]:
    """Read ``relative/path<delimiter>label`` lines (split on the first delimiter only); blank lines are skipped.

    Raises:
        OSError: the file cannot be opened.
        ValueError: not UTF-8 text, or a non-empty line has no delimiter; the message names the file and line.
    """
    pairs: list[tuple[str, str]] = []
    # utf-8-sig: a byte-order mark (Windows editors add one) is not part of the first image's path
    with open(path, encoding="utf-8-sig") as f:
        try:
            lines = f.readlines()
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    for lineno, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if delimiter not in line:
            raise ValueError(f"{path}:{lineno}: no {delimiter!r} delimiter in line {line!r}")
        rel, label = line.split(delimiter, 1)
        pairs.append((rel, label))
    return pairs
