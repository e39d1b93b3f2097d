"""``crnn <verb>``: a dispatch table; each verb's module (``crnn.commands.*``) owns its options and ``run``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import NoReturn

import crnn
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


# A module a verb imports -> the extra (pyproject.toml) that installs it. The base install runs
# ``.onnx`` models only with onnxruntime, so a missing torch also names the onnx extra.
EXTRAS: dict[str, str] = {
    "torch": "torch", "lmdb": "torch", "matplotlib": "torch", "ninja": "torch",
    "onnxruntime": "onnx", "onnx": "export",
    "fastapi": "serve", "uvicorn": "serve", "multipart": "serve", "python_multipart": "serve",
    "prometheus_client": "serve", "starlette": "serve",
}


def missing_extra(e: ModuleNotFoundError, verb: str) -> str | None:
    """One line naming the extra that installs ``e``'s module, or None for a module no extra provides."""
    top = (e.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    line = f"crnn {verb} needs the {top} package, which the {extra} extra installs: pip install 'crnn[{extra}]'"
    if top == "torch" and verb in ("predict", "serve"):  # these two also run .onnx models, with onnxruntime only
        line += " (or pip install 'crnn[onnx]': it runs the bundled model and exported .onnx models without torch)"
    return line


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``error:`` line, like every other user mistake."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: <prog>: <message>`` and exit 2 (argparse's code), without the usage block."""
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``crnn`` argument parser with one subcommand per verb."""
    parser = Parser(prog="crnn", description="CRNN scene-text recognition")
    parser.add_argument("--version", action="version", version=f"crnn {crnn.__version__}")
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
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # a usage error (2), --help or --version (0): argparse has printed it
        return e.code if isinstance(e.code, int) else 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(args.func(args))
    except (ConfigError, OSError, ValueError) as e:  # a user's mistake or the machine's state: one line
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # an optional dependency this verb needs is not installed
        line = missing_extra(e, args.command)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
