"""``crnn <verb>``: a dispatch table; each verb's module (``crnn.commands.*``) owns its options and ``run``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from crnn.config import ConfigError

# verb -> its module: ``add_arguments(parser)``, ``run(args)``, ``HELP`` and optionally ``DESCRIPTION``.
# The modules import only argparse-level code, so building the parser loads no torch.
VERBS: dict[str, str] = {
    "train": "crnn.commands.train",
    "eval": "crnn.commands.eval",
    "calibrate": "crnn.commands.calibrate",
    "predict": "crnn.commands.predict",
    "convert": "crnn.commands.convert",
    "serve": "crnn.commands.serve",
    "export": "crnn.commands.export",
    "bench": "crnn.commands.bench",
    "synth": "crnn.synth.cli",
    "distill": "crnn.commands.distill",
    "lmdb": "crnn.commands.lmdb",
}


def build_parser() -> argparse.ArgumentParser:
    """The ``crnn`` argument parser with one subcommand per verb."""
    parser = argparse.ArgumentParser(prog="crnn", description="CRNN scene-text recognition")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for verb, module_name in VERBS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(verb, help=module.HELP, description=getattr(module, "DESCRIPTION", None))
        module.add_arguments(p)
        if p.get_default("func") is None:  # verbs with sub-verbs (convert, lmdb) set their own
            p.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``crnn`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(args.func(args))
    except (ConfigError, OSError, ValueError) as e:  # a user's mistake or the machine's state: one line
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
