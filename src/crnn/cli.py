"""``crnn <verb>``: argument parsing and dispatch only; each verb's work lives in its module."""

from __future__ import annotations

import argparse
import glob
import logging
import os
import subprocess
import sys
from pathlib import Path

from crnn.config import ConfigError, DatasetConfig
from crnn.data.images import IMAGE_EXTS

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


def _eval_set_members(sets: list[str], label_file: str) -> list[DatasetConfig]:
    """``--sets DIR[:LABELS]`` as dataset sections, each checked to hold a label file or an LMDB."""
    members = []
    for spec in sets:
        d, _, label = spec.partition(":")
        labels = Path(d) / (label or label_file)
        if not Path(d).is_dir():
            raise FileNotFoundError(f"--sets {d}: no such folder")
        if labels.is_file():
            members.append(DatasetConfig(name="SimpleDataSet", data_dir=d, label_file_list=[str(labels)]))
        elif any(Path(d).rglob("data.mdb")):
            members.append(DatasetConfig(name="LMDBDataSet", data_dir=d))
        else:
            raise FileNotFoundError(f"--sets {d}: no label file {labels} and no LMDB (data.mdb) in it; "
                                    "name the label file as DIR:LABELS or with --label-file")
    return members


def _cmd_eval(args: argparse.Namespace) -> int:
    # everything a user can get wrong is checked before torch and the model load (seconds)
    from crnn import checkpoint
    from crnn.config import config_from_dict, load_config
    from crnn.predict import DEFAULT_MODEL

    members = _eval_set_members(args.sets, args.label_file) if args.sets else None
    overrides = list(args.override)
    if args.checkpoint:
        overrides.append(f"Global.checkpoints={args.checkpoint}")
    cfg = load_config(args.config, overrides) if args.config else None
    if cfg is not None:
        ckpt = cfg.Global.checkpoints
    else:  # --checkpoint or -o Global.checkpoints=PATH; the last one given wins, as in a config
        ckpt = next((v.split("=", 1)[1] for v in reversed(overrides) if v.startswith("Global.checkpoints=")), None)
    ckpt = ckpt or DEFAULT_MODEL
    if ckpt == DEFAULT_MODEL:
        log.info("evaluating the bundled model %s", DEFAULT_MODEL)
    ckpt = str(checkpoint.resolve(ckpt))

    from crnn.evaluate import Miss, evaluate_sets, format_table, write_json, write_misses
    from crnn.torch_backend import load_model

    if cfg is None:  # the checkpoint's own config
        cfg = config_from_dict(checkpoint.load(ckpt)["config"], [*overrides, f"Global.checkpoints={ckpt}"])
    if cfg.Global.num_threads:
        import torch

        torch.set_num_threads(cfg.Global.num_threads)
    model, charset, _ = load_model(ckpt)
    if cfg.Eval is None:
        raise ConfigError("no Eval section: give -c CONFIG with one, or --sets DIR ...")
    dataset_cfg = cfg.Eval.dataset
    if members:
        dataset_cfg = DatasetConfig(name="MixDataSet", datasets=members, transforms=dataset_cfg.transforms)
    misses: dict[str, list[Miss]] | None = {} if args.errors else None
    result = evaluate_sets(model, cfg, charset, dataset_cfg, cfg.Eval.loader, is_filter=args.filter,
                           misses=misses)
    result["checkpoint"] = ckpt
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
    if misses is not None:
        write_misses(misses, args.errors)
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
    from crnn.predict import Recognizer, load_image

    paths = expand_inputs(args.inputs)
    if not paths:
        print(f"error: no image files ({', '.join(sorted(IMAGE_EXTS))}) in {' '.join(args.inputs)}", file=sys.stderr)
        return 1
    images, good, failed = [], [], 0
    for p in paths:
        try:
            images.append(load_image(p))
            good.append(p)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
    if not images:  # nothing to recognise: say so without waiting for torch and the model to load
        return 1
    rec = Recognizer.from_checkpoint(args.model or args.checkpoint, batch_size=args.batch_size,
                                     num_threads=args.threads)
    for p, pred in zip(good, rec.recognize_arrays(images), strict=True):
        print(f"{p}\t{pred.text}\t{pred.confidence:.4f}")
    return 1 if failed or not paths else 0


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

    run(ServeSettings(model=args.model, host=args.host, port=args.port, workers=args.workers, threads=args.threads,
                      max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_images=args.max_images,
                      max_request_bytes=int(args.max_request_mb * 1024 * 1024), timeout_s=args.timeout,
                      allowed_hosts=tuple(args.allowed_host), allow_cross_origin=args.allow_cross_origin))
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
        "eval", help="word accuracy of a checkpoint on one or more sets",
        description="Word accuracy (and normalised edit distance) of a checkpoint, per set and on average. "
                    "Needs a model and eval sets. Model: --checkpoint PATH, or -o Global.checkpoints=PATH, "
                    "default the bundled model. Sets: --sets DIR ... (folders with a label file, or LMDB "
                    "trees), else the Eval section of -c CONFIG or of the checkpoint's own config (the bundled "
                    "model's: its validation split, configs/data/real_val.tsv; run from the project root).")
    _add_config_args(p, required=False)
    p.add_argument("--checkpoint",
                   help="checkpoint to evaluate (same as -o Global.checkpoints=PATH; default: the bundled model)")
    p.add_argument("--sets", nargs="+", metavar="DIR[:LABELS]",
                   help="eval sets: folders with a label file (default name: --label-file) or LMDB trees")
    p.add_argument("--label-file", default="labels.tsv",
                   help="label file name inside each --sets folder (default %(default)s)")
    p.add_argument("--filter", action=argparse.BooleanOptionalAction, default=True,
                   help="36-char protocol: lower-case and keep 0-9a-z before comparing (default on)")
    p.add_argument("--json", help="also write the result table as JSON here")
    p.add_argument("--errors", metavar="TSV",
                   help="also write every misrecognised image (set, image, label, prediction, confidence) here")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("predict", help="recognize word images (files, folders, globs)")
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--checkpoint", help="a .pt checkpoint (default: the bundled model)")
    p.add_argument("--model", help="a .pt checkpoint or an exported .onnx model")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: all cores)")
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
    p.add_argument("--threads", type=int, default=None, help="inference threads per worker (default: all cores)")
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
