"""``crnn predict``: recognize word images (files, folders, globs); output TSV, JSON or JSON lines."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from crnn.commands.options import add_decoder_args, positive_int, postprocess
from crnn.data.images import IMAGE_EXTS

if TYPE_CHECKING:
    import numpy as np

    from crnn.decode import Prediction

HELP = "recognize word images (files, folders, globs)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``crnn predict`` options to ``p``."""
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--checkpoint", help="a .pt checkpoint (default: the bundled model)")
    p.add_argument("--model", help="a .pt checkpoint or an exported .onnx model (default: the bundled model, "
                   "as ONNX when onnxruntime is installed)")
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="images per forward pass, grouped by aspect ratio (default %(default)s)")
    p.add_argument("--dynamic-width", action="store_true",
                   help="PaddleOCR's predict_rec variable width: each batch as wide as its widest crop, up to "
                        "H x crnn.data.preprocess.MAX_WH_RATIO, instead of the model's training width (the "
                        "default; the bundled model reads worse this way: docs/variable_width.md)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="inference and decoding threads (default: the available cores that are not busy)")
    p.add_argument("--format", choices=["tsv", "json", "jsonl"], default="tsv",
                   help="tsv: path, text, confidence (default; a tab, newline or backslash in a path or text is "
                        "written as \\t, \\n, \\\\); json/jsonl: also each symbol's confidence and "
                        "x range in the image's pixels")
    add_decoder_args(p)


def expand_inputs(inputs: list[str]) -> tuple[list[str], list[str]]:
    """(image paths, problems): files, folders (their images, sorted) and globs, in the order given.

    A glob that matches nothing and a folder with no image are problems (one line each, naming the input).
    """
    paths: list[str] = []
    problems: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).rglob("*") if p.suffix.lower() in IMAGE_EXTS)
            if not found:
                problems.append(f"no image files ({', '.join(sorted(IMAGE_EXTS))}) in folder {item}")
            paths += found
        elif any(ch in item for ch in "*?["):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                problems.append(f"no file matches {item}")
            paths += matches
        else:
            paths.append(item)
    return paths, problems


def tsv_field(text: str) -> str:
    r"""``text`` safe for one TSV field: a backslash, tab, newline or carriage return becomes ``\\``, ``\t``,
    ``\n`` or ``\r`` (the escapes of PostgreSQL's text format), so a file name with a tab or a newline stays
    one row of three fields; text without them is unchanged."""
    if not any(c in text for c in "\\\t\n\r"):
        return text
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def prediction_dict(pred: Prediction) -> dict[str, object]:
    """A prediction as JSON-ready fields: text, confidence, chars (symbol, confidence, x0, x1)."""
    chars = [{"char": c, "confidence": round(conf, 4), **({"x0": pos[0], "x1": pos[1]} if pos else {})}
             for c, conf, pos in zip(pred.text, pred.char_confidences,
                                     pred.char_positions or [None] * len(pred.text), strict=False)]
    return {"text": pred.text, "confidence": round(pred.confidence, 4), "chars": chars}


def _load_images(paths: list[str], threads: int | None) -> tuple[list[np.ndarray], list[str], int]:
    """(images, their paths, how many failed); each unreadable file is reported on stderr."""
    from concurrent.futures import ThreadPoolExecutor

    from crnn.predict import load_image
    from crnn.threads import default_threads

    def try_load(p: str) -> tuple[np.ndarray | None, ValueError | None]:
        try:
            return load_image(p), None
        except ValueError as e:
            return None, e

    images, good, failed = [], [], 0
    # decoding is a large share of the time (cv2 frees the GIL), and an unreadable file is reported
    # before the seconds that loading torch and the model take
    with ThreadPoolExecutor(threads or default_threads()) as pool:
        for p, (img, err) in zip(paths, pool.map(try_load, paths), strict=True):
            if img is None:
                print(f"error: {err}", file=sys.stderr)
                failed += 1
            else:
                images.append(img)
                good.append(p)
    return images, good, failed


def run(args: argparse.Namespace) -> int:
    """Print one line (or JSON record) per readable image; exit 1 when any input failed."""
    from crnn.limits import MAX_BATCH_SIZE, MAX_THREADS, check_range

    check_range("--threads", args.threads, 1, MAX_THREADS)  # before any thread pool is made
    check_range("--batch-size", args.batch_size, 1, MAX_BATCH_SIZE)
    paths, problems = expand_inputs(args.inputs)
    for problem in problems:  # one line per input that gave no image
        print(f"error: {problem}", file=sys.stderr)
    if not paths:
        return 1
    images, good, failed = _load_images(paths, args.threads)
    failed += len(problems)
    if not images:
        return 1
    from crnn.decoders import build_decoder
    from crnn.predict import Recognizer

    rec = Recognizer.from_checkpoint(args.model or args.checkpoint, batch_size=args.batch_size,
                                     num_threads=args.threads, dynamic_width=args.dynamic_width)
    rec.decoder = build_decoder(postprocess(getattr(rec.decoder, "cfg", None), args), rec.charset)
    records = []
    for p, pred in zip(good, rec.recognize_arrays(images), strict=True):
        if args.format == "tsv":
            print(f"{tsv_field(p)}\t{tsv_field(pred.text)}\t{pred.confidence:.4f}")
        elif args.format == "jsonl":
            print(json.dumps({"path": p, **prediction_dict(pred)}, ensure_ascii=False))
        else:
            records.append({"path": p, **prediction_dict(pred)})
    if args.format == "json":
        print(json.dumps(records, ensure_ascii=False, indent=2))
    return 1 if failed else 0
