"""``crnn distill``: compute a teacher's frames for a config's training data, and report what it reads."""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from crnn.commands.options import add_config_args, positive_int

log = logging.getLogger("crnn")
HELP = "compute the teacher's targets for a config with a Distill section (before crnn train)"
DESCRIPTION = ("Runs the Distill.teacher ONNX model once over every training source that Distill.apply_to "
               "selects and stores its frames in Distill.targets_dir (docs/distillation.md). Prints, per source, "
               "the teacher's reading accuracy and the share of samples whose label it finds unlikely (its CTC "
               "NLL above each threshold): crops illegible by construction. --sets adds folders or LMDB trees "
               "to that report (e.g. one synthetic set per style).")
THRESHOLDS = (5.0, 10.0, 20.0)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``crnn distill`` options to ``p``."""
    add_config_args(p)
    p.add_argument("--sets", nargs="+", default=[], metavar="DIR[:LABELS]",
                   help="more sets to report on (their targets are stored too)")
    p.add_argument("--sets-only", action="store_true", help="report on --sets alone, not the training sources")
    p.add_argument("--label-file", default="labels.tsv", help="label file name inside each --sets folder")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="ONNX Runtime threads (default: every usable core)")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON")


def _progress(name: str, total: int) -> Callable[[int], None]:
    """A progress callback that logs at most every 30 s."""
    last = [time.perf_counter()]

    def progress(n: int) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            log.info("%s: %d of %d", name, n, total)

    return progress


def run(args: argparse.Namespace) -> int:
    """Compute the targets and print the report; returns the exit code."""
    from crnn.charset import Charset
    from crnn.config import TransformsConfig, load_config
    from crnn.data.datasets import build_sources
    from crnn.data.preprocess import Preprocess
    from crnn.data.sets import sets_dataset
    from crnn.distill.targets import prepare, selected
    from crnn.distill.teacher import load_teacher
    from crnn.limits import MAX_THREADS, check_range
    from crnn.models import build_model
    from crnn.threads import available_cores
    from crnn.train import output_frames

    cfg = load_config(args.config, args.override)
    if cfg.Distill is None or cfg.Train is None:
        raise ValueError(f"{args.config}: crnn distill needs a config with Train and Distill sections")
    check_range("--threads", args.threads, 1, MAX_THREADS)
    d = cfg.Distill
    charset = Charset.from_config(cfg.Global.character_dict_path, cfg.Global.use_space_char)
    spec = Preprocess.from_transforms(cfg.Train.dataset.transforms)
    frames = output_frames(build_model(cfg.Architecture, charset.num_classes), spec)
    teacher = load_teacher(d.teacher, args.threads or available_cores())
    sources = [] if args.sets_only else build_sources(cfg.Train.dataset)
    todo = [] if args.sets_only else [
        src for (src, _), use in zip(sources, selected(cfg.Train.dataset, d, len(sources)), strict=True) if use]
    if args.sets:
        todo += [src for src, _ in build_sources(sets_dataset(args.sets, args.label_file, TransformsConfig()))]
    log.info("teacher %s (sha256 %s...), %d frames of %d classes, %d sources", teacher.path.name,
             teacher.sha256[:12], frames, charset.num_classes, len(todo))
    rows: list[dict[str, Any]] = []
    for src in todo:
        t0 = time.perf_counter()
        targets = prepare(src, teacher, spec, frames, charset, d.targets_dir, d.batch_size,
                          _progress(src.name, len(src)))
        nll = targets.nll
        labelled = [i for i in range(len(src)) if charset.normalize(src.label(i))]
        illegible = {f"nll>{t:g}": round(100.0 * sum(1 for i in labelled if not nll[i] <= t) / max(1, len(labelled)), 2)
                     for t in THRESHOLDS}
        row = {"source": src.name, "samples": len(src), "teacher_acc": targets.info["teacher_acc"],
               "illegible": illegible, "seconds": round(time.perf_counter() - t0, 1)}
        if d.max_teacher_nll is not None:
            row["dropped"] = sum(1 for i in labelled if not nll[i] <= d.max_teacher_nll)
        rows.append(row)
        ill = "  ".join(f"{k} {v:5.2f}%" for k, v in illegible.items())
        print(f"{src.name}\t{len(src)} samples\tteacher reads {row['teacher_acc']:.2f}%\t{ill}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"teacher": teacher.path.name, "teacher_sha256": teacher.sha256, "frames": frames,
                       "config": args.config, "overrides": args.override, "sources": rows}, f, indent=2)
            f.write("\n")
    return 0
