"""``crnn synth``: command-line front end of the synthetic word-image generator."""

from __future__ import annotations

import argparse
import logging
import sys

from crnn.commands.options import non_negative_int, positive_int

log = logging.getLogger(__name__)
HELP = "render synthetic word images into LMDB shards (offline)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``crnn synth`` options to ``parser``."""
    parser.add_argument("--out", required=True, help="output directory; shards go to OUT/shard_NNNNN")
    parser.add_argument("--num", type=positive_int, required=True, help="total number of samples")
    parser.add_argument(
        "--shard-size", type=positive_int, default=50_000, help="samples per LMDB shard (default 50000)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="base seed; same seed, same bytes (default 0)")
    parser.add_argument("--workers", type=positive_int, default=1, help="rendering processes (default 1)")
    from crnn.synth.styles import STYLES  # a dataclass table: cheap to import

    parser.add_argument("--style", default="default", choices=list(STYLES),
                        help="how often hard cases are drawn: default, hard (a mix of the failure classes), "
                             "one class for a validation set, scene (photo backgrounds, every font), "
                             "or realwarp (warps of real crops, with --from) (default: default)")
    parser.add_argument("--from", dest="real_labels", metavar="LABELS",
                        help="--style realwarp: label file of the real crops to warp, e.g. configs/data/real_train.tsv")
    parser.add_argument("--real-root", default="../shared/data/train",
                        help="folder the --from paths are relative to (default ../shared/data/train)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Generate the set; returns a process exit code."""
    # imported here: `crnn --help` must not load lmdb/cv2/PIL
    from crnn.limits import MAX_WORKERS, check_range
    from crnn.synth.writer import generate

    try:
        check_range("--workers", args.workers, 1, MAX_WORKERS)  # each is a process
        check_range("--shard-size", args.shard_size, 1, 10_000_000)
        stats = generate(
            args.out,
            args.num,
            shard_size=args.shard_size,
            seed=args.seed,
            workers=max(1, args.workers),
            progress=not getattr(args, "no_progress", False),
            style=args.style,
            real_labels=getattr(args, "real_labels", None),
            real_root=getattr(args, "real_root", None),
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"crnn synth: error: {e}", file=sys.stderr)
        return 2
    msg = (
        f"crnn synth: wrote {stats.written} images ({stats.skipped} already done) to {args.out} in "
        f"{stats.seconds:.1f} s: {stats.images_per_second:.1f} images/s with {args.workers} worker(s)"
    )
    if args.workers <= 1 and stats.cpu_seconds > 0:
        msg += f" ({stats.written / stats.cpu_seconds:.1f} images per CPU-second)"
    print(msg)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m crnn.synth.cli``); ``crnn synth`` is the usual one."""
    parser = argparse.ArgumentParser(prog="crnn synth", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
