"""Measure DDP scaling on this machine: training images/s with 1 and with 2 processes, one after the other.

Runs ``crnn train`` on the real training crops (mv3 config, fixed per-process batch) for a fixed number
of steps per process count and reads the throughput the trainer logged (``metrics.jsonl``; the first
logging window, which includes start-up, is dropped). Prints a JSON summary.

    python scripts/ddp_scaling.py [--steps 40] [--batch 32] [--out docs/bench/ddp_scaling.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(nproc: int, steps: int, batch: int, threads: int, out: Path) -> float:
    """Train ``steps`` steps with ``nproc`` processes; returns the logged global images/s."""
    overrides = [f"Global.max_steps={steps}", f"Global.save_model_dir={out}", "Global.print_batch_step=5",
                 "Global.eval_batch_step=[0,0]", f"Global.num_threads={threads}", "Train.loader.num_workers=1",
                 f"Train.loader.batch_size_per_card={batch}", "Eval=null"]
    cmd = [sys.executable, "-m", "crnn", "train", "--nproc", str(nproc), "-c",
           str(ROOT / "configs/rec/rec_mv3_none_bilstm_ctc.yml"), "-o", *overrides]
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": str(threads)},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["img_s"] for r in rows if r["kind"] == "train"][1:]
    return sum(rates) / len(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32, help="per process")
    ap.add_argument("--out", default=None, help="write the JSON here too")
    args = ap.parse_args()
    result: dict[str, object] = {"cores": os.cpu_count(), "batch_per_process": args.batch, "steps": args.steps}
    with tempfile.TemporaryDirectory() as tmp:
        for nproc, threads in [(1, 1), (1, 2), (2, 1)]:
            key = f"{nproc}proc_x_{threads}thread"
            result[key] = round(run(nproc, args.steps, args.batch, threads, Path(tmp) / key), 1)
            print(key, result[key], "img/s", flush=True)
    result["speedup_2proc_vs_1proc1thread"] = round(result["2proc_x_1thread"] / result["1proc_x_1thread"], 2)  # type: ignore[operator]
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
