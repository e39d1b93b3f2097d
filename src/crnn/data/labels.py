"""The one label-file reader of crnn: ``relative/path<TAB>label`` lines (PaddleOCR's SimpleDataSet layout).

Training, evaluation, ``crnn lmdb create``, int8 calibration and the scripts all read label files here,
so a byte-order mark, a non-UTF-8 file or a line without the delimiter is handled once, the same way.
Torch- and lmdb-free: the base (ONNX) install can import it.
"""

from __future__ import annotations

import os


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
