"""``crnn lmdb create``: an LMDB dataset from a label file."""

from __future__ import annotations

import argparse
import sys

HELP = "LMDB datasets"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``crnn lmdb`` sub-verbs to ``p``."""
    lsub = p.add_subparsers(dest="lmdb_command", required=True)
    q = lsub.add_parser("create", help="build an LMDB from a label file")
    q.add_argument("--label-file", required=True, help="relative/path<DELIMITER>label lines, one per image")
    q.add_argument("--data-dir", required=True, help="folder the label file's paths are relative to")
    q.add_argument("--out", required=True, help="a new folder for the LMDB (data.mdb, lock.mdb)")
    q.add_argument("--delimiter", default="\t", help="between path and label (default: TAB)")
    q.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the LMDB; report the lines skipped."""
    from crnn.data.lmdb_io import create_lmdb

    written, bad = create_lmdb(args.label_file, args.data_dir, args.out, args.delimiter)
    for line in bad:
        print(f"skipped: {line}", file=sys.stderr)
    print(f"wrote {written} samples to {args.out}; skipped {len(bad)}")
    return 0
