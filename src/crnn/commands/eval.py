"""``crnn eval``: word accuracy of any deployable form of a model on one or more sets."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crnn.commands.options import add_config_args, add_decoder_args, positive_int, postprocess

if TYPE_CHECKING:
    from crnn.config import Config
    from crnn.evaluate import Record

HELP = "evaluate a model (.pt or .onnx, fp32 or int8) on one or more sets"
DESCRIPTION = ("Word accuracy (and normalised edit distance) of a model, per set and on average. "
               "Needs a model and eval sets. Model: --model PATH (.pt or .onnx) or --checkpoint PATH, "
               "default the bundled model (as ONNX when onnxruntime is installed). Sets: --sets DIR ... "
               "(folders with a label file, or LMDB trees), else the Eval section of -c CONFIG or of the "
               "model's own config (the bundled model's: its validation split, configs/data/real_val.tsv; "
               "run from the project root).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``crnn eval`` options to ``p``."""
    add_config_args(p, required=False)
    p.add_argument("--model", help="model to evaluate: a .pt checkpoint or an exported .onnx model, on its own back "
                   "end (default: --checkpoint, else the bundled model)")
    p.add_argument("--checkpoint", help="checkpoint to evaluate (same as -o Global.checkpoints=PATH)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="inference threads (default: Global.num_threads, else the available cores that are not busy)")
    p.add_argument("--sets", nargs="+", metavar="DIR[:LABELS]",
                   help="eval sets: folders with a label file (default name: --label-file) or LMDB trees")
    p.add_argument("--label-file", default="labels.tsv",
                   help="label file name inside each --sets folder (default %(default)s)")
    p.add_argument("--filter", action=argparse.BooleanOptionalAction, default=True,
                   help="36-char protocol: lower-case and keep 0-9a-z before comparing (default on)")
    p.add_argument("--dynamic-width", action="store_true",
                   help="PaddleOCR's variable width, as crnn predict by default: crops sorted by aspect ratio, each "
                        "batch as wide as its widest crop (default: every crop resized into the fixed 3x32x100, "
                        "the protocol of the published numbers); see docs/variable_width.md")
    p.add_argument("--json", help="also write the result table as JSON here")
    p.add_argument("--errors", metavar="TSV",
                   help="also write every misrecognised image (set, image, label, prediction, confidence) here")
    p.add_argument("--calibration", metavar="DIR",
                   help="also write a calibration report (ECE, rejection curve, reliability.png) here")
    p.add_argument("--report", metavar="DIR", help="also write an HTML error report (DIR/index.html)")
    add_decoder_args(p)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the table; write the reports asked for."""
    from crnn.config import TransformsConfig
    from crnn.data.sets import sets_dataset
    from crnn.limits import MAX_THREADS, check_range

    check_range("--threads", args.threads, 1, MAX_THREADS)

    # everything a user can get wrong on the command line is checked before torch and the model load
    sets = sets_dataset(args.sets, args.label_file, TransformsConfig()) if args.sets else None
    for path in (args.model, args.checkpoint, args.config):
        if path and not (Path(path).is_file() or Path(f"{path}.pt").is_file()):
            raise FileNotFoundError(f"{path} not found")
    from crnn.decoders import build_decoder
    from crnn.evaluate import Miss, eval_split, evaluate_sets, format_table, load_eval_model, write_json, write_misses

    cfg, model, charset, path, spec = load_eval_model(args.model or args.checkpoint, args.config,
                                                      list(args.override), args.threads)
    dataset_cfg, loader_cfg = eval_split(cfg, sets)
    cfg.PostProcess = postprocess(cfg.PostProcess, args)
    decoder = build_decoder(cfg.PostProcess, charset)
    misses: dict[str, list[Miss]] | None = {} if args.errors else None
    records: dict[str, tuple[list[Record], Any]] | None = {} if args.calibration or args.report else None
    result = evaluate_sets(model, cfg, charset, dataset_cfg, loader_cfg, is_filter=args.filter,
                           misses=misses, decoder=decoder, records=records, preprocess=spec,
                           dynamic_width=args.dynamic_width)
    result["decoder"] = dataclasses.asdict(cfg.PostProcess)
    result["checkpoint"] = path
    result["width"] = "variable" if args.dynamic_width else "fixed"
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
    if misses is not None:
        write_misses(misses, args.errors)
    if records is not None and args.calibration:
        _write_calibration(records, cfg.PostProcess.temperature, args.calibration)
    if records is not None and args.report:
        _write_report(records, cfg, charset.normalize, args)
    return 0


def _write_calibration(records: dict[str, tuple[list[Record], Any]], temperature: float, out: str) -> None:
    from crnn.calibration import format_calibration, rejection, reliability, write_report

    every = [r for recs, _ in records.values() for r in recs]
    cal: dict[str, Any] = {"temperature": temperature, "sets": {}}
    for name, recs in [*((k, v[0]) for k, v in records.items()), ("total", every)]:
        conf, right = [r.confidence for r in recs], [r.right for r in recs]
        cal["sets"][name] = {**reliability(conf, right), "reject": rejection(conf, right)}
    write_report(cal, out)
    print(format_calibration(cal))
    print(f"wrote {out}/calibration.json and reliability.png")


def _write_report(records: dict[str, tuple[list[Record], Any]], cfg: Config, charset_normalize: Any,
                  args: argparse.Namespace) -> None:
    from crnn.metrics import make_normalizer
    from crnn.report import write_report

    normalize = make_normalizer(args.filter, cfg.Metric.ignore_space, charset_normalize)
    page = write_report(records, normalize, args.report, f"crnn eval: {Path(str(cfg.Global.checkpoints)).name}")
    print(f"wrote {page}")
