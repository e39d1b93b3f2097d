"""``crnn export``: a checkpoint to ONNX (verified against PyTorch), optionally with an int8 copy."""

from __future__ import annotations

import argparse
from pathlib import Path

from crnn.commands.options import positive_int

HELP = "export a checkpoint to ONNX (verified against PyTorch), optionally int8"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``crnn export`` options to ``p``."""
    p.add_argument("--checkpoint", required=True, help="a .pt checkpoint")
    p.add_argument("--out", required=True, help="the .onnx file to write (int8 copy: <stem>.int8.onnx)")
    p.add_argument("--int8", nargs="?", const="auto", choices=["auto", "dynamic", "static"],
                   help="also write an int8 model: static (needs --calib) or dynamic; bare --int8 picks static "
                        "when --calib is given")
    p.add_argument("--calib", help="TRAINING images for static int8: a folder or a label file")
    p.add_argument("--calib-count", type=positive_int, default=256, help="calibration images (default 256)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch verification")


def run(args: argparse.Namespace) -> int:
    """Export; print what was written and the verified difference."""
    from crnn.checkpoint import require_checkpoint
    from crnn.limits import MAX_BENCH_IMAGES, check_range

    # a wrong path fails now, not after torch loads
    require_checkpoint(args.checkpoint, "--checkpoint", "this one is exported already; export the checkpoint "
                       "it came from")
    check_range("--calib-count", args.calib_count, 1, MAX_BENCH_IMAGES)
    if args.calib and not Path(args.calib).exists():
        raise FileNotFoundError(f"--calib {args.calib} not found")
    from crnn.export import export_onnx

    int8 = args.int8 if args.int8 != "auto" else ("static" if args.calib else "dynamic")
    res = export_onnx(args.checkpoint, args.out, check=not args.no_check, int8=int8, calib=args.calib,
                      calib_count=args.calib_count)
    diff = "" if res["max_abs_diff"] is None else f" (verified: max |dlogit| vs PyTorch {res['max_abs_diff']:.1e})"
    print(f"wrote {res['onnx']}{diff}")
    if res["int8"]:
        print(f"wrote {res['int8']} ({int8} int8)")
    return 0
