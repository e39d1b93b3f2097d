"""``crnn bench``: inference speed of PyTorch eager, ONNX fp32 and ONNX int8 on word crops."""

from __future__ import annotations

import argparse
from pathlib import Path

from crnn.commands.options import positive_int

HELP = "inference speed: PyTorch eager vs ONNX fp32 vs ONNX int8"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``crnn bench`` options to ``p``."""
    p.add_argument("--checkpoint", help="a .pt checkpoint (default: the bundled model); exported to ONNX fp32 and "
                   "int8 in a temporary folder unless --onnx / --onnx-int8 are given")
    p.add_argument("--onnx", help="an exported fp32 .onnx model")
    p.add_argument("--onnx-int8", help="an exported int8 .onnx model")
    p.add_argument("--data", default="../shared/data/eval", help="folder of word crops (searched recursively)")
    p.add_argument("--limit", type=positive_int, default=2000, help="images to use (default 2000)")
    p.add_argument("--threads", type=positive_int, default=None, help="inference threads (default: all cores)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="batched run size (default 32)")
    p.add_argument("--backends", nargs="+", default=["torch", "onnx", "onnx-int8"],
                   choices=["torch", "onnx", "onnx-int8"], help="what to time (default: all three)")
    p.add_argument("--json", help="also write the results here")


def run(args: argparse.Namespace) -> int:
    """Time each back end; print and optionally write the results."""
    from crnn.limits import MAX_BATCH_SIZE, MAX_BENCH_IMAGES, MAX_THREADS, check_range

    check_range("--limit", args.limit, 1, MAX_BENCH_IMAGES)
    check_range("--batch-size", args.batch_size, 1, MAX_BATCH_SIZE)
    check_range("--threads", args.threads, 1, MAX_THREADS)
    if args.checkpoint:
        from crnn.checkpoint import require_checkpoint

        require_checkpoint(args.checkpoint, "--checkpoint", "give an fp32 .onnx model to --onnx, an int8 one to "
                           "--onnx-int8")
    for path in (args.onnx, args.onnx_int8):
        if path and not Path(path).is_file():
            raise FileNotFoundError(f"{path} not found")
    if not Path(args.data).is_dir():
        raise FileNotFoundError(f"--data {args.data}: no such folder")
    from crnn.bench import main_bench

    return main_bench(args)
