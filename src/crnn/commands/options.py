"""Options several verbs share: the config (-c/-o), the decoder flags, and the number types that check flags.

The number types (``positive_int``, ``finite_float``, ...) are argparse ``type=`` functions: a value out
of range is refused while parsing, before torch or a model loads, with a message that names the flag
and the limit (``crnn.cli`` prints it as one ``error:`` line).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable

from crnn.config import PostProcessConfig

DECODER_FLAGS = ("decoder", "beam_width", "lexicon", "lexicon_max_distance", "lm", "lm_weight", "allow", "block",
                 "word_score")


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low`` (the message names the limit; argparse adds the flag)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text}")
        return value

    parse.__name__ = f"integer >= {low}"  # argparse names the type in some messages
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def finite_float(text: str) -> float:
    """An argparse type: a finite number (``float()`` also accepts nan and inf, which no flag means)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (sizes, timeouts)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def add_config_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    """``-c CONFIG`` and ``-o KEY=VALUE ...``."""
    p.add_argument("-c", "--config", required=required, help="YAML config (PaddleOCR layout)")
    p.add_argument("-o", "--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config values, e.g. -o Global.max_steps=100 Train.loader.num_workers=2")


def add_decoder_args(p: argparse.ArgumentParser) -> None:
    """Flags that override the ``PostProcess`` decoder options (see ``crnn.decoders``)."""
    g = p.add_argument_group("decoding (override the config's PostProcess section)")
    g.add_argument("--decoder", choices=["greedy", "beam"], help="greedy (default, PaddleOCR's) or CTC beam search")
    g.add_argument("--beam-width", type=int, help="beam width (default 10)")
    g.add_argument("--lexicon", metavar="FILE", help="word list: answer the in-lexicon word with the best CTC score")
    g.add_argument("--lexicon-max-distance", type=int, help="lexicon candidates within this many edits (default 3)")
    g.add_argument("--lm", metavar="FILE", help="word list for a character n-gram prior (beam decoder)")
    g.add_argument("--lm-weight", type=finite_float, help="weight of the prior in the beam score (default 0.2)")
    g.add_argument("--allow", metavar="CHARS", help="only these symbols may be read, e.g. 0123456789")
    g.add_argument("--block", metavar="CHARS", help="these symbols are never read")
    g.add_argument("--word-score", choices=["mean", "min", "product"],
                   help="word confidence from the symbols' ones (default mean, as PaddleOCR)")


def postprocess(base: PostProcessConfig | None, args: argparse.Namespace) -> PostProcessConfig:
    """``base`` with the decoding flags that were given (values taken verbatim, no YAML typing)."""
    given = {k: getattr(args, k) for k in DECODER_FLAGS if getattr(args, k, None) is not None}
    if given.get("lm") and "decoder" not in given:
        given["decoder"] = "beam"  # a prior only acts in the beam search
    return dataclasses.replace(base or PostProcessConfig(), **given)
