"""``crnn convert paddle``: PaddleOCR CRNN weights (.pdparams or inference model) -> a crnn checkpoint."""

from __future__ import annotations

import argparse

from crnn.commands.options import add_config_args

HELP = "convert weights from other frameworks"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``crnn convert`` sub-verbs to ``p``."""
    csub = p.add_subparsers(dest="convert_command", required=True)
    q = csub.add_parser("paddle", help="PaddleOCR CRNN weights (.pdparams or inference model) -> checkpoint")
    add_config_args(q)
    q.add_argument("--params", required=True,
                   help="PaddleOCR .pdparams (suffix optional), .pdiparams or inference-model folder")
    q.add_argument("--out", required=True, help="checkpoint to write (.pt is appended if missing)")
    q.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Convert; print the checkpoint written."""
    from pathlib import Path

    if not Path(args.config).is_file():  # fails now, not after torch loads
        raise FileNotFoundError(f"config file {args.config} not found")
    if not (Path(args.params).exists() or Path(f"{args.params}.pdparams").is_file()):
        raise FileNotFoundError(f"--params {args.params} not found (nor {args.params}.pdparams)")
    from crnn.convert.paddle import convert_paddle

    path = convert_paddle(args.config, args.params, args.out, args.override)
    print(f"wrote {path}")
    return 0
