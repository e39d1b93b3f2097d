"""``crnn <verb>``: argument parsing and dispatch only; each verb's work lives in its module."""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crnn.config import ConfigError, PostProcessConfig
from crnn.data.images import IMAGE_EXTS

if TYPE_CHECKING:
    import numpy as np

    from crnn.decode import Prediction

log = logging.getLogger("crnn")


def _add_config_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("-c", "--config", required=required, help="YAML config (PaddleOCR layout)")
    p.add_argument("-o", "--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config values, e.g. -o Global.max_steps=100 Train.loader.num_workers=2")


def _wait_forwarding_signals(proc: subprocess.Popen[bytes]) -> int:
    """Wait for torchrun; SIGTERM is passed on and Ctrl-C (which the ranks get too) only waits, so every
    rank can finish its step and rank 0 save latest.pt (``subprocess.call`` would kill torchrun instead)."""
    import signal

    got: list[int] = []

    def forward(signum: int, frame: object) -> None:
        got.append(signum)
        proc.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                rc = proc.wait()
                break
            except KeyboardInterrupt:
                got.append(signal.SIGINT)
                log.info("waiting for the ranks to save latest.pt and stop")
    finally:
        signal.signal(signal.SIGTERM, previous)
    if got:  # torchrun reports the signal as its own failure; the ranks have saved latest.pt
        print(f"crnn train: stopped by {signal.Signals(got[0]).name}", file=sys.stderr)
        return 128 + got[0]
    return rc


def _add_decoder_args(p: argparse.ArgumentParser) -> None:
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


def _postprocess(base: PostProcessConfig | None, args: argparse.Namespace) -> PostProcessConfig:
    """``base`` with the decoding flags that were given (values taken verbatim, no YAML typing)."""
    keys = ("decoder", "beam_width", "lexicon", "lexicon_max_distance", "lm", "lm_weight", "allow", "block",
            "word_score")
    given = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if given.get("lm") and "decoder" not in given:
        given["decoder"] = "beam"  # a prior only acts in the beam search
    return dataclasses.replace(base or PostProcessConfig(), **given)


def _cmd_train(args: argparse.Namespace) -> int:
    from crnn.config import load_config

    cfg = load_config(args.config, args.override)  # fail on a bad config before starting processes
    if args.nproc > 1:
        # a thin wrapper around torchrun: the same command, one process per rank
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(args.nproc),
               "-m", "crnn", "train", "-c", args.config, *(["-o", *args.override] if args.override else [])]
        log.info("running %s", " ".join(cmd))
        return _wait_forwarding_signals(subprocess.Popen(cmd))
    from crnn.train import TrainingStoppedError, train

    try:
        train(cfg)
    except TrainingStoppedError as e:
        print(f"crnn train: {e}", file=sys.stderr)
        return e.exit_code
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from crnn.config import TransformsConfig
    from crnn.data.sets import sets_dataset

    sets = sets_dataset(args.sets, args.label_file, TransformsConfig()) if args.sets else None
    from crnn.calibration import calibrate

    res = calibrate(args.checkpoint, args.out, sets, is_filter=args.filter)
    b, a = res["before"], res["after"]
    print(f"temperature {res['temperature']:g} fitted on {res['count']} images: "
          f"ECE {100 * b['ece']:.2f}% -> {100 * a['ece']:.2f}%; wrote {args.out}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from crnn.config import TransformsConfig
    from crnn.data.sets import sets_dataset

    # everything a user can get wrong on the command line is checked before torch and the model load
    sets = sets_dataset(args.sets, args.label_file, TransformsConfig()) if args.sets else None
    for path in (args.model, args.checkpoint, args.config):
        if path and not (Path(path).is_file() or Path(f"{path}.pt").is_file()):
            raise FileNotFoundError(f"{path} not found")
    from crnn.evaluate import Miss, Record, evaluate_sets, format_table, load_eval_model, write_json, write_misses

    cfg, model, charset, path, spec = load_eval_model(args.model or args.checkpoint, args.config,
                                                      list(args.override), args.threads)
    if cfg.Eval is None:
        raise ConfigError("no Eval section: give -c CONFIG with one, or --sets DIR ...")
    dataset_cfg = dataclasses.replace(sets, transforms=cfg.Eval.dataset.transforms) if sets else cfg.Eval.dataset
    from crnn.decoders import build_decoder

    cfg.PostProcess = _postprocess(cfg.PostProcess, args)
    decoder = build_decoder(cfg.PostProcess, charset)
    misses: dict[str, list[Miss]] | None = {} if args.errors else None
    records: dict[str, tuple[list[Record], Any]] | None = {} if args.calibration or args.report else None
    result = evaluate_sets(model, cfg, charset, dataset_cfg, cfg.Eval.loader, is_filter=args.filter,
                           misses=misses, decoder=decoder, records=records, preprocess=spec)
    result["decoder"] = dataclasses.asdict(cfg.PostProcess)
    result["checkpoint"] = path
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
    if misses is not None:
        write_misses(misses, args.errors)
    if records is not None and args.calibration:
        from crnn.calibration import format_calibration, rejection, reliability, write_report

        every = [r for recs, _ in records.values() for r in recs]
        cal: dict[str, Any] = {"temperature": cfg.PostProcess.temperature, "sets": {}}
        for name, recs in [*((k, v[0]) for k, v in records.items()), ("total", every)]:
            conf, right = [r.confidence for r in recs], [r.right for r in recs]
            cal["sets"][name] = {**reliability(conf, right), "reject": rejection(conf, right)}
        write_report(cal, args.calibration)
        print(format_calibration(cal))
        print(f"wrote {args.calibration}/calibration.json and reliability.png")
    if records is not None and args.report:
        from crnn.metrics import make_normalizer
        from crnn.report import write_report as write_html

        normalize = make_normalizer(args.filter, cfg.Metric.ignore_space, charset.normalize)
        page = write_html(records, normalize, args.report, f"crnn eval: {Path(str(cfg.Global.checkpoints)).name}")
        print(f"wrote {page}")
    return 0


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files, folders (their images, sorted) and globs, in the order given."""
    paths: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            paths += sorted(str(p) for p in Path(item).rglob("*") if p.suffix.lower() in IMAGE_EXTS)
        elif any(ch in item for ch in "*?["):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                print(f"error: no file matches {item}", file=sys.stderr)
            paths += matches
        else:
            paths.append(item)
    return paths


def _cmd_predict(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from crnn.decoders import build_decoder
    from crnn.predict import Recognizer, load_image
    from crnn.threads import default_threads

    paths = expand_inputs(args.inputs)
    if not paths:
        print(f"error: no image files ({', '.join(sorted(IMAGE_EXTS))}) in {' '.join(args.inputs)}", file=sys.stderr)
        return 1

    def try_load(p: str) -> tuple[np.ndarray | None, ValueError | None]:
        try:
            return load_image(p), None
        except ValueError as e:
            return None, e

    images, good, failed = [], [], 0
    # decoding is a large share of the time (cv2 frees the GIL), and an unreadable file is reported
    # before the seconds that loading torch and the model take
    with ThreadPoolExecutor(args.threads or default_threads()) as pool:
        for p, (img, err) in zip(paths, pool.map(try_load, paths), strict=True):
            if img is None:
                print(f"error: {err}", file=sys.stderr)
                failed += 1
            else:
                images.append(img)
                good.append(p)
    if not images:
        return 1
    rec = Recognizer.from_checkpoint(args.model or args.checkpoint, batch_size=args.batch_size,
                                     num_threads=args.threads)
    rec.decoder = build_decoder(_postprocess(getattr(rec.decoder, "cfg", None), args), rec.charset)
    records = []
    for p, pred in zip(good, rec.recognize_arrays(images), strict=True):
        if args.format == "tsv":
            print(f"{p}\t{pred.text}\t{pred.confidence:.4f}")
        elif args.format == "jsonl":
            print(json.dumps({"path": p, **prediction_dict(pred)}, ensure_ascii=False))
        else:
            records.append({"path": p, **prediction_dict(pred)})
    if args.format == "json":
        print(json.dumps(records, ensure_ascii=False, indent=2))
    return 1 if failed or not paths else 0


def prediction_dict(pred: Prediction) -> dict[str, object]:
    """A prediction as JSON-ready fields: text, confidence, chars (symbol, confidence, x0, x1)."""
    chars = [{"char": c, "confidence": round(conf, 4), **({"x0": pos[0], "x1": pos[1]} if pos else {})}
             for c, conf, pos in zip(pred.text, pred.char_confidences,
                                     pred.char_positions or [None] * len(pred.text), strict=False)]
    return {"text": pred.text, "confidence": round(pred.confidence, 4), "chars": chars}


def _cmd_lmdb_create(args: argparse.Namespace) -> int:
    from crnn.data.lmdb_io import create_lmdb

    written, bad = create_lmdb(args.label_file, args.data_dir, args.out, args.delimiter)
    for line in bad:
        print(f"skipped: {line}", file=sys.stderr)
    print(f"wrote {written} samples to {args.out}; skipped {len(bad)}")
    return 0


def _cmd_convert_paddle(args: argparse.Namespace) -> int:
    from crnn.convert.paddle import convert_paddle

    path = convert_paddle(args.config, args.params, args.out, args.override)
    print(f"wrote {path}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from crnn.serve.server import run
    from crnn.serve.settings import ServeSettings

    pp = {k: v for k, v in dataclasses.asdict(_postprocess(None, args)).items()
          if v != getattr(PostProcessConfig(), k)}  # only what the flags changed
    run(ServeSettings(model=args.model, host=args.host, port=args.port, workers=args.workers, threads=args.threads,
                      max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_images=args.max_images,
                      max_request_bytes=int(args.max_request_mb * 1024 * 1024), timeout_s=args.timeout,
                      allowed_hosts=tuple(args.allowed_host), allow_cross_origin=args.allow_cross_origin,
                      postprocess=pp))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from crnn.export import export_onnx

    int8 = args.int8 if args.int8 != "auto" else ("static" if args.calib else "dynamic")
    res = export_onnx(args.checkpoint, args.out, check=not args.no_check, int8=int8, calib=args.calib,
                      calib_count=args.calib_count)
    diff = "" if res["max_abs_diff"] is None else f" (verified: max |dlogit| vs PyTorch {res['max_abs_diff']:.1e})"
    print(f"wrote {res['onnx']}{diff}")
    if res["int8"]:
        print(f"wrote {res['int8']} ({int8} int8)")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from crnn.bench import main_bench

    return main_bench(args)


def _cmd_synth(args: argparse.Namespace) -> int:
    from crnn.synth.cli import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    """The ``crnn`` argument parser with one subcommand per verb."""
    parser = argparse.ArgumentParser(prog="crnn", description="CRNN scene-text recognition")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from a YAML config")
    _add_config_args(p)
    p.add_argument("--nproc", type=int, default=1,
                   help="processes on this machine (DDP via torchrun; batch_size_per_card is per process)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "eval", help="evaluate a model (.pt or .onnx, fp32 or int8) on one or more sets",
        description="Word accuracy (and normalised edit distance) of a model, per set and on average. "
                    "Needs a model and eval sets. Model: --model PATH (.pt or .onnx) or --checkpoint PATH, "
                    "default the bundled model (as ONNX when onnxruntime is installed). Sets: --sets DIR ... "
                    "(folders with a label file, or LMDB trees), else the Eval section of -c CONFIG or of the "
                    "model's own config (the bundled model's: its validation split, configs/data/real_val.tsv; "
                    "run from the project root).")
    _add_config_args(p, required=False)
    p.add_argument("--model", help="model to evaluate: a .pt checkpoint or an exported .onnx model, on its own back "
                   "end (default: --checkpoint, else the bundled model)")
    p.add_argument("--checkpoint", help="checkpoint to evaluate (same as -o Global.checkpoints=PATH)")
    p.add_argument("--threads", type=int, default=None,
                   help="inference threads (default: Global.num_threads, else the available cores that are not busy)")
    p.add_argument("--sets", nargs="+", metavar="DIR[:LABELS]",
                   help="eval sets: folders with a label file (default name: --label-file) or LMDB trees")
    p.add_argument("--label-file", default="labels.tsv",
                   help="label file name inside each --sets folder (default %(default)s)")
    p.add_argument("--filter", action=argparse.BooleanOptionalAction, default=True,
                   help="36-char protocol: lower-case and keep 0-9a-z before comparing (default on)")
    p.add_argument("--json", help="also write the result table as JSON here")
    p.add_argument("--errors", metavar="TSV",
                   help="also write every misrecognised image (set, image, label, prediction, confidence) here")
    p.add_argument("--calibration", metavar="DIR",
                   help="also write a calibration report (ECE, rejection curve, reliability.png) here")
    p.add_argument("--report", metavar="DIR", help="also write an HTML error report (DIR/index.html)")
    _add_decoder_args(p)
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("calibrate", help="fit the confidence temperature on a validation set")
    p.add_argument("--checkpoint", required=True, help="checkpoint to calibrate")
    p.add_argument("--out", required=True, help="checkpoint to write (the same weights + PostProcess.temperature)")
    p.add_argument("--sets", nargs="+", metavar="DIR[:LABELS]",
                   help="validation sets (default: the checkpoint config's Eval dataset); never a benchmark")
    p.add_argument("--label-file", default="labels.tsv", help="label file name inside each --sets folder")
    p.add_argument("--filter", action=argparse.BooleanOptionalAction, default=True,
                   help="36-char protocol when deciding which readings are right (default on)")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("predict", help="recognize word images (files, folders, globs)")
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--checkpoint", help="a .pt checkpoint (default: the bundled model)")
    p.add_argument("--model", help="a .pt checkpoint or an exported .onnx model (default: the bundled model, "
                   "as ONNX when onnxruntime is installed)")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default %(default)s)")
    p.add_argument("--threads", type=int, default=None,
                   help="inference and decoding threads (default: the available cores that are not busy)")
    p.add_argument("--format", choices=["tsv", "json", "jsonl"], default="tsv",
                   help="tsv: path, text, confidence (default); json/jsonl: also each symbol's confidence and "
                        "x range in the image's pixels")
    _add_decoder_args(p)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("convert", help="convert weights from other frameworks")
    csub = p.add_subparsers(dest="convert_command", required=True)
    q = csub.add_parser("paddle", help="PaddleOCR CRNN weights (.pdparams or inference model) -> checkpoint")
    _add_config_args(q)
    q.add_argument("--params", required=True,
                   help="PaddleOCR .pdparams (suffix optional), .pdiparams or inference-model folder")
    q.add_argument("--out", required=True, help="checkpoint to write (.pt is appended if missing)")
    q.set_defaults(func=_cmd_convert_paddle)

    p = sub.add_parser("serve", help="HTTP recognition service with dynamic batching (needs the serve extra)")
    p.add_argument("--model", help="a .pt checkpoint or an exported .onnx model (default: the bundled model)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default %(default)s: this machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default %(default)s)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes, each with its own model copy (default %(default)s)")
    p.add_argument("--threads", type=int, default=None,
                   help="inference threads per worker (default: the available cores that are not busy)")
    p.add_argument("--max-batch", type=int, default=32, help="images per forward pass (default %(default)s)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="how long a batch waits to fill up (default %(default)s)")
    p.add_argument("--max-images", type=int, default=64, help="images per request (default %(default)s)")
    p.add_argument("--max-request-mb", type=float, default=16.0, help="request body size limit (default %(default)s)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds a request may wait for its results (default %(default)s)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a name clients reach the service by (Host header); repeat for more; '*' allows any "
                        "(default: localhost, 127.0.0.1, ::1 and --host)")
    p.add_argument("--allow-cross-origin", action="store_true",
                   help="accept requests that web pages of other origins send from a browser (refused by default)")
    _add_decoder_args(p)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("export", help="export a checkpoint to ONNX (verified against PyTorch), optionally int8")
    p.add_argument("--checkpoint", required=True, help="a .pt checkpoint")
    p.add_argument("--out", required=True, help="the .onnx file to write (int8 copy: <stem>.int8.onnx)")
    p.add_argument("--int8", nargs="?", const="auto", choices=["auto", "dynamic", "static"],
                   help="also write an int8 model: static (needs --calib) or dynamic; bare --int8 picks static "
                        "when --calib is given")
    p.add_argument("--calib", help="TRAINING images for static int8: a folder or a label file")
    p.add_argument("--calib-count", type=int, default=256, help="calibration images (default 256)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch verification")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("bench", help="inference speed: PyTorch eager vs ONNX fp32 vs ONNX int8")
    p.add_argument("--checkpoint", help="a .pt checkpoint (default: the bundled model); exported to ONNX fp32 and "
                   "int8 in a temporary folder unless --onnx / --onnx-int8 are given")
    p.add_argument("--onnx", help="an exported fp32 .onnx model")
    p.add_argument("--onnx-int8", help="an exported int8 .onnx model")
    p.add_argument("--data", default="../shared/data/eval", help="folder of word crops (searched recursively)")
    p.add_argument("--limit", type=int, default=2000, help="images to use (default 2000)")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: all cores)")
    p.add_argument("--batch-size", type=int, default=32, help="batched run size (default 32)")
    p.add_argument("--backends", nargs="+", default=["torch", "onnx", "onnx-int8"],
                   choices=["torch", "onnx", "onnx-int8"], help="what to time (default: all three)")
    p.add_argument("--json", help="also write the results here")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("synth", help="render synthetic word images into LMDB shards (offline)")
    from crnn.synth.cli import add_arguments as add_synth_arguments  # argparse only; cheap to import

    add_synth_arguments(p)
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("lmdb", help="LMDB datasets")
    lsub = p.add_subparsers(dest="lmdb_command", required=True)
    q = lsub.add_parser("create", help="build an LMDB from a label file")
    q.add_argument("--label-file", required=True, help="relative/path<DELIMITER>label lines, one per image")
    q.add_argument("--data-dir", required=True, help="folder the label file's paths are relative to")
    q.add_argument("--out", required=True, help="a new folder for the LMDB (data.mdb, lock.mdb)")
    q.add_argument("--delimiter", default="\t", help="between path and label (default: TAB)")
    q.set_defaults(func=_cmd_lmdb_create)
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
