"""Options several verbs share: the config (-c/-o) and the decoder flags."""

from __future__ import annotations

import argparse
import dataclasses

from crnn.config import PostProcessConfig

DECODER_FLAGS = ("decoder", "beam_width", "lexicon", "lexicon_max_distance", "lm", "lm_weight", "allow", "block",
                 "word_score")


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
    g.add_argument("--lm-weight", type=float, help="weight of the prior in the beam score (default 0.3)")
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
