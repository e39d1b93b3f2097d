"""``crnn calibrate``: fit the confidence temperature on a validation set."""

from __future__ import annotations

import argparse

HELP = "fit the confidence temperature on a validation set"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``crnn calibrate`` options to ``p``."""
    p.add_argument("--checkpoint", required=True, help="checkpoint to calibrate")
    p.add_argument("--out", required=True, help="checkpoint to write (the same weights + PostProcess.temperature)")
    p.add_argument("--sets", nargs="+", metavar="DIR[:LABELS]",
                   help="validation sets (default: the checkpoint config's Eval dataset); never a benchmark")
    p.add_argument("--label-file", default="labels.tsv", help="label file name inside each --sets folder")
    p.add_argument("--filter", action=argparse.BooleanOptionalAction, default=True,
                   help="36-char protocol when deciding which readings are right (default on)")


def run(args: argparse.Namespace) -> int:
    """Fit, write the calibrated checkpoint, print ECE before and after."""
    from crnn.checkpoint import require_checkpoint
    from crnn.config import TransformsConfig
    from crnn.data.sets import sets_dataset

    # a wrong path fails now, not after torch loads
    require_checkpoint(args.checkpoint, "--checkpoint", "calibrate the checkpoint the ONNX model was exported from, "
                       "then export the calibrated one")
    sets = sets_dataset(args.sets, args.label_file, TransformsConfig()) if args.sets else None
    from crnn.calibration import calibrate

    res = calibrate(args.checkpoint, args.out, sets, is_filter=args.filter)
    b, a = res["before"], res["after"]
    print(f"temperature {res['temperature']:g} fitted on {res['count']} images: "
          f"ECE {100 * b['ece']:.2f}% -> {100 * a['ece']:.2f}%; wrote {args.out}")
    return 0
