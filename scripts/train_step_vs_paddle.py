"""crnn's training step vs PaddleOCR's own, on the same real batches, threads and config.

Prepares the batches once from real crops of the config's training set with crnn's preprocessing
and charset (blank 0, as PaddleOCR's CTC labels), saves them to a temporary .npz, then times, in
turns (crnn, PaddleOCR, crnn, PaddleOCR, ...):

- crnn: the model-only step of ``scripts/profile_train_step.py`` (forward, CTC loss, backward,
  optimizer step; fp32, channels_last), whole batch or as micro-batches (``Global.micro_batch_size``);
- PaddleOCR: ``scripts/paddle_train_step.py`` in the Paddle venv, PaddleOCR's own model classes,
  CTCLoss and ``build_optimizer`` from a PaddleOCR source tree (always the whole batch: PaddleOCR
  has no micro-batches).

Both take the median of ``--steps`` steps after 3 warm-up steps. Setup: docs/training_throughput.md.

    python scripts/train_step_vs_paddle.py --batch 256 64 --threads 2 --micro 0 64 --steps 8 --repeats 2 \\
        --json docs/bench/train_step_vs_paddle.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_train_step import data_stages, model_stages
from train_throughput import cpu_flags, git_head

from crnn.charset import Charset
from crnn.config import load_config
from crnn.data.datasets import Item
from crnn.models import build_model

ROOT = Path(__file__).resolve().parent.parent
MAX_TEXT_LENGTH = 25  # PaddleOCR's CTCLabelEncode drops longer labels


def save_batch(items: list[Item], charset: Charset, path: Path) -> None:
    """images (B,3,H,W) float32, labels (B,25) int64 padded with 0, lengths (B,) int64, as an .npz."""
    ids = [charset.encode(it.label) for it in items]
    labels = np.zeros((len(items), MAX_TEXT_LENGTH), dtype=np.int64)
    for row, seq in zip(labels, ids, strict=True):
        row[: len(seq)] = seq
    np.savez(path, images=np.stack([it.image for it in items]).astype(np.float32), labels=labels,
             lengths=np.array([len(s) for s in ids], dtype=np.int64))


def run_paddle(args: argparse.Namespace, batch_file: Path, num_classes: int) -> dict[str, Any]:
    """One run of scripts/paddle_train_step.py in the Paddle venv; its JSON result."""
    cmd = [str(Path(args.paddle_venv) / "bin" / "python"), str(ROOT / "scripts" / "paddle_train_step.py"),
           "--paddleocr-src", args.paddleocr_src, "--batches", str(batch_file), "--config", args.config,
           "--num-classes", str(num_classes), "--threads", str(args.threads), "--steps", str(args.steps)]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--config", default="configs/rec/rec_mv3_none_bilstm_ctc.yml")
    ap.add_argument("--batch", type=int, nargs="+", default=[256, 64], help="batch sizes (the seed config: 256)")
    ap.add_argument("--threads", type=int, default=2, help="math threads of both sides")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per run (after 3 warm-up steps)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per side, interleaved")
    ap.add_argument("--micro", type=int, nargs="+", default=[0],
                    help="crnn's Global.micro_batch_size values to time (0: whole batch)")
    ap.add_argument("--paddle-venv", default=str(ROOT / ".paddle-venv"))
    ap.add_argument("--paddleocr-src", default=str(ROOT.parent / "paddleocr_src"),
                    help="PaddleOCR source tree (git clone -b release/2.8)")
    ap.add_argument("--json", help="write the results here too")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config)
    charset = Charset.from_config(cfg.Global.character_dict_path, cfg.Global.use_space_char)
    params = sum(p.numel() for p in build_model(cfg.Architecture, charset.num_classes).parameters())
    _, items = data_stages(args.config, max(args.batch) + 16, max(args.batch))
    items = [it for it in items if 0 < len(charset.encode(it.label)) <= MAX_TEXT_LENGTH]
    if len(items) < max(args.batch):
        raise SystemExit(f"train_step_vs_paddle: only {len(items)} usable samples for batch {max(args.batch)}")
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="crnn-vs-paddle-") as tmp:
        for b in args.batch:
            batch_file = Path(tmp) / f"batch{b}.npz"
            save_batch(items[:b], charset, batch_file)
            for r in range(args.repeats):
                for micro in args.micro:
                    stages = model_stages(args.config, items[:b], b, args.threads, False, False, args.steps,
                                          micro or None)
                    row = rows.setdefault(f"b{b}_crnn_micro{micro}", {"batch": b, "side": "crnn", "micro": micro,
                                                                      "step_ms": []})
                    row["step_ms"].append(sum(stages.values()))
                    print(f"run {r} batch {b} crnn micro {micro or 'off'}: {row['step_ms'][-1]:.0f} ms/step",
                          flush=True)
                pd = run_paddle(args, batch_file, charset.num_classes)
                row = rows.setdefault(f"b{b}_paddle", {"batch": b, "side": "paddle", "micro": 0, "step_ms": [],
                                                       "runs": []})
                row["step_ms"].append(pd["step_ms"])
                row["runs"].append(pd)
                print(f"run {r} batch {b} PaddleOCR: {pd['step_ms']:.0f} ms/step (paddle {pd['paddle']}, "
                      f"{pd['params']:,} params, loss {pd['loss_first']:.2f} -> {pd['loss_last']:.2f})", flush=True)
    report(args, rows, params)


def report(args: argparse.Namespace, rows: dict[str, dict[str, Any]], params: int) -> None:
    """Print the table (medians, ratio crnn / PaddleOCR in images/s) and write ``--json``."""
    for row in rows.values():
        row["median_ms"] = statistics.median(row["step_ms"])
        row["img_s"] = row["batch"] * 1000 / row["median_ms"]
    paddle_params = next(r["runs"][0]["params"] for r in rows.values() if r["side"] == "paddle")
    print(f"cpu: {cpu_flags()}")
    print(f"{args.config}: {args.threads} thread(s), {args.steps} steps x {args.repeats} runs, interleaved; "
          f"parameters crnn {params:,}, PaddleOCR {paddle_params:,}")
    print("| batch | crnn micro-batch | crnn images/s | PaddleOCR images/s | ratio crnn/PaddleOCR |")
    print("|---:|---:|---:|---:|---:|")
    for row in (r for r in rows.values() if r["side"] == "crnn"):
        pd = rows[f"b{row['batch']}_paddle"]
        row["ratio_over_paddle"] = row["img_s"] / pd["img_s"]
        print(f"| {row['batch']} | {row['micro'] or 'off'} | {row['img_s']:.1f} | {pd['img_s']:.1f} "
              f"| {row['ratio_over_paddle']:.2f}x |")
    if args.json:
        out = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_flags(), "load_avg": os.getloadavg(),
               "commit": git_head(), "config": args.config, "threads": args.threads, "steps": args.steps,
               "repeats": args.repeats, "params": {"crnn": params, "paddleocr": paddle_params}, "rows": rows}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
