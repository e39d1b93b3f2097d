"""Fixed width (every crop resized into 3x32x100) against PaddleOCR's variable width (each batch of
ratio-sorted crops as wide as its widest one, ``crnn.data.preprocess.Preprocess.batch``): accuracy and
end-to-end throughput of ``crnn.Recognizer`` on the four benchmark sets.

(a) Word accuracy (36-char protocol, ``crnn.metrics.filter_36``) per set, on all words, on the words
    of 10 or more characters, and by label length.
(b) Throughput: crops per second from the image files (decoding included), ``num_threads`` threads,
    images sorted by aspect ratio into batches of ``--batch-size`` (both modes), on every
    ``--throughput-every``-th crop of each set; the modes alternate over ``--repeats`` runs and the
    median is reported (the machine may be shared).

    python scripts/bench_variable_width.py --data ../shared/data/eval --json docs/bench/variable_width.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image
from train_throughput import cpu_flags, git_head

from crnn import Recognizer
from crnn.metrics import filter_36
from crnn.predict import load_images

# (set folder, label file): the protocol of the committed benchmark numbers (docs/model_card.md)
SETS = (("iiit5k", "labels.tsv"), ("ic13", "labels_1015.tsv"), ("ic15", "labels.tsv"), ("ic03", "labels.tsv"))
LONG = 10  # "long words": at least this many characters after the 36-char filter
LENGTH_BINS = ((1, 3), (4, 6), (7, 9), (10, 99))
RATIO_BINS = ((0.0, 100 / 32), (100 / 32, 5.0), (5.0, 8.0), (8.0, 1e9))  # w/h; up to 100/32 nothing is squeezed


def read_set(root: Path, labels: str) -> list[tuple[Path, str]]:
    """(image path, 36-char label) of every sample whose filtered label is not empty."""
    out = []
    for line in (root / labels).read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            rel, label = line.split("\t", 1)
            if filter_36(label):
                out.append((root / rel, filter_36(label)))
    return out


def accuracy(rows: list[tuple[str, str, float]]) -> dict[str, Any]:
    """{count, acc %} of (label, prediction, w/h) rows."""
    right = sum(label == filter_36(pred) for label, pred, _ in rows)
    return {"count": len(rows), "acc": round(100.0 * right / len(rows), 2) if rows else None}


def ratio(path: Path) -> float:
    """w / h of an image file, from its header."""
    with Image.open(path) as im:
        return im.width / im.height


def measure_accuracy(sets: dict[str, list[tuple[Path, str]]], model: str | None, batch_size: int, threads: int,
                     dynamic: bool) -> dict[str, Any]:
    rec = Recognizer(model, batch_size=batch_size, num_threads=threads, dynamic_width=dynamic)
    res: dict[str, Any] = {"sets": {}}
    every: list[tuple[str, str, float]] = []
    for name, samples in sets.items():
        preds = rec([p for p, _ in samples])
        rows = [(label, pred.text, ratio(p)) for (p, label), pred in zip(samples, preds, strict=True)]
        every += rows
        res["sets"][name] = {"all": accuracy(rows), "long": accuracy([r for r in rows if len(r[0]) >= LONG])}
    res["total"] = {"all": accuracy(every), "long": accuracy([r for r in every if len(r[0]) >= LONG]),
                    **{f"len_{lo}_{hi}": accuracy([r for r in every if lo <= len(r[0]) <= hi])
                       for lo, hi in LENGTH_BINS},
                    **{f"ratio_{lo:.3g}_{hi:.3g}": accuracy([r for r in every if lo < r[2] <= hi])
                       for lo, hi in RATIO_BINS}}
    res["mean_sets"] = {k: round(statistics.mean(s[k]["acc"] for s in res["sets"].values()), 2)
                        for k in ("all", "long")}
    return res


def measure_throughput(paths: list[Path], model: str | None, batch_size: int, threads: int, repeats: int
                       ) -> dict[str, Any]:
    """Median crops/s end to end (read + decode files, preprocess, model, decode), modes alternating."""
    recs = {mode: Recognizer(model, batch_size=batch_size, num_threads=threads, dynamic_width=mode == "variable")
            for mode in ("fixed", "variable")}
    warm = paths[: 4 * batch_size]
    for rec in recs.values():
        rec(warm)
    times: dict[str, list[float]] = {mode: [] for mode in recs}
    for _ in range(repeats):
        for mode, rec in recs.items():
            t0 = time.perf_counter()
            rec(paths)
            times[mode].append(time.perf_counter() - t0)
    # the model alone (images decoded beforehand): where the difference comes from
    images = load_images(paths, threads)
    model_s: dict[str, list[float]] = {mode: [] for mode in recs}
    for _ in range(repeats):
        for mode, rec in recs.items():
            t0 = time.perf_counter()
            rec.recognize_arrays(images)
            model_s[mode].append(time.perf_counter() - t0)
    return {mode: {"crops_per_s": round(len(paths) / statistics.median(times[mode]), 1),
                   "runs_s": [round(t, 3) for t in times[mode]],
                   "decoded_crops_per_s": round(len(paths) / statistics.median(model_s[mode]), 1)}
            for mode in recs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/eval", help="folder of the eval sets (default %(default)s)")
    ap.add_argument("--model", default=None, help="model (default: the bundled one, ONNX when onnxruntime is there)")
    ap.add_argument("--batch-size", type=int, default=32, help="crnn's default (PaddleOCR's rec_batch_num is 6)")
    ap.add_argument("--paddle-batch-size", type=int, default=6,
                    help="also measure variable-width accuracy at this batch size (0: skip)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--throughput-every", type=int, default=4,
                    help="time every N-th crop of each set (default %(default)s; 1: all 6,952)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    print(f"cpu: {cpu_flags()}", flush=True)
    load = os.getloadavg()
    print(f"load average: {load}", flush=True)
    data = Path(args.data)
    sets = {name: read_set(data / name, labels) for name, labels in SETS}
    runs = {"fixed": (args.batch_size, False), "variable": (args.batch_size, True)}
    if args.paddle_batch_size:
        runs[f"variable_b{args.paddle_batch_size}"] = (args.paddle_batch_size, True)
    acc = {}
    for mode, (bs, dynamic) in runs.items():
        acc[mode] = measure_accuracy(sets, args.model, bs, args.threads, dynamic)
        print(f"{mode} (batch {bs}): all {acc[mode]['total']['all']}, >= {LONG} chars {acc[mode]['total']['long']}",
              flush=True)
    print_table(acc, sets)
    report = {"date": time.strftime("%Y-%m-%d"), "commit": git_head(), "cpu": cpu_flags(),
              "load_avg_start": load,
              "command": " ".join(["python", "scripts/" + Path(sys.argv[0]).name, *sys.argv[1:]]),
              "model": args.model or "bundled", "threads": args.threads, "batch_size": args.batch_size,
              "accuracy": acc}
    write(report, args.json)
    paths = [p for samples in sets.values() for p, _ in samples[::args.throughput_every]]
    speed = measure_throughput(paths, args.model, args.batch_size, args.threads, args.repeats)
    print(json.dumps(speed), flush=True)
    report.update(throughput={"crops": len(paths), **speed}, load_avg_after=os.getloadavg())
    write(report, args.json)

    return 0


def print_table(acc: dict[str, Any], sets: dict[str, Any]) -> None:
    print(f"\n| set | words | fixed % | variable % | words >= {LONG} | fixed % | variable % |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in sets:
        f, v = acc["fixed"]["sets"][name], acc["variable"]["sets"][name]
        print(f"| {name} | {f['all']['count']} | {f['all']['acc']} | {v['all']['acc']} | {f['long']['count']} | "
              f"{f['long']['acc']} | {v['long']['acc']} |")
    f, v = acc["fixed"]["total"], acc["variable"]["total"]
    print(f"| total | {f['all']['count']} | {f['all']['acc']} | {v['all']['acc']} | {f['long']['count']} | "
          f"{f['long']['acc']} | {v['long']['acc']} |")
    for k in f:
        if k.startswith(("len_", "ratio_")):
            print(f"{k}: {f[k]['count']} words, fixed {f[k]['acc']}%, variable {v[k]['acc']}%")


def write(report: dict[str, Any], path: str | None) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
