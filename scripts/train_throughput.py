"""Training throughput, side by side in one run: crnn at a base commit vs crnn now (vs PaddleOCR).

Each contender runs the real ``crnn train`` for a number of steps from the same config, in turns
(A B A B ...) so that a change in machine load hits both; images/s is read from each run's
``metrics.jsonl`` (the first logged interval, which holds start-up and warm-up, is dropped). The
base commit is checked out into a temporary ``git worktree`` and run with ``PYTHONPATH`` pointing at
its ``src``: the same Python environment, only crnn's code differs.

    python scripts/train_throughput.py --config configs/rec/rec_mv3_none_bilstm_ctc.yml \\
        --base 8999c23 --steps 40 --repeats 2 --json docs/bench/train_throughput.json
    python scripts/train_throughput.py --config configs/train/crnn_mv3_en_r7.yml --nproc 2 \\
        -o Train.loader.batch_size_per_card=32

PaddleOCR's own training step is not compared here: its training code (``ppocr.modeling``,
``ppocr.losses``, ``tools/train.py``) is not in any ``paddleocr`` wheel on PyPI (2.0.6, 2.6.1.3 and
2.8.1 hold the inference code only), and this machine reaches no other source of it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The eval set of the throughput runs: small, so the one evaluation at the end costs seconds.
EVAL_OVERRIDE = ("Eval.dataset.datasets=[{name: SimpleDataSet, data_dir: ../shared/data/train, "
                 "label_file_list: [configs/data/real_val.tsv]}]")


def cpu_flags() -> str:
    """The SIMD flags that decide CPU speed (AVX2, AVX-512, AMX...), and the model name."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    keep = sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
    return f"{model}; {os.cpu_count()} logical CPUs; {' '.join(keep)}"


def run_crnn(src: Path, config: str, overrides: list[str], steps: int, nproc: int, out: Path) -> float:
    """Run ``crnn train`` from ``src`` for ``steps`` steps; returns median images/s after warm-up."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    every = max(1, steps // 8)
    cmd = [sys.executable, "-m", "crnn", "train", "-c", config, "--nproc", str(nproc), "-o",
           f"Global.max_steps={steps}", f"Global.print_batch_step={every}", f"Global.save_model_dir={out}",
           "Global.eval_batch_step=[0, 0]", EVAL_OVERRIDE, *overrides]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines() if ln]
    ips = [r["img_s"] for r in rows if r.get("kind") == "train"][1:]
    if not ips:
        raise SystemExit(f"train_throughput: {out} logged no interval after warm-up; use more --steps")
    return statistics.median(ips)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/rec/rec_mv3_none_bilstm_ctc.yml")
    ap.add_argument("-o", "--override", nargs="*", default=[], help="extra -o overrides for both contenders")
    ap.add_argument("--base", default="8999c23", help="the commit to compare with")
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per run")
    ap.add_argument("--repeats", type=int, default=2, help="runs per contender, interleaved")
    ap.add_argument("--nproc", type=int, default=1)
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()

    results: dict[str, list[float]] = {"base": [], "now": []}
    with tempfile.TemporaryDirectory(prefix="crnn-throughput-") as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base_tree), args.base], cwd=ROOT, check=True)
        try:
            for r in range(args.repeats):
                for name, src in (("base", base_tree / "src"), ("now", ROOT / "src")):
                    ips = run_crnn(src, args.config, args.override, args.steps, args.nproc,
                                   Path(tmp) / f"{name}{r}")
                    results[name].append(ips)
                    print(f"run {r} {name}: {ips:.1f} images/s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False)
    base, now = statistics.median(results["base"]), statistics.median(results["now"])
    report = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_flags(), "config": args.config,
              "overrides": args.override, "nproc": args.nproc, "steps": args.steps, "base_commit": args.base,
              "base_img_s": results["base"], "now_img_s": results["now"], "ratio_now_over_base": now / base}
    print(f"cpu: {report['cpu']}")
    print(f"{args.config} {' '.join(args.override)} (nproc {args.nproc}, {args.steps} steps x {args.repeats})")
    print(f"crnn {args.base}: {base:.1f} images/s | crnn now: {now:.1f} images/s | ratio {now / base:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
