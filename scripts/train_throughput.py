"""Training throughput, side by side in one run: crnn at a base commit vs crnn now, in one or more layouts.

Each contender runs the real ``crnn train`` for a number of steps from the same config, in turns
(A B C A B C ...) so that a change in machine load hits all; images/s is read from each run's
``metrics.jsonl`` (the first logged interval, which holds start-up and warm-up, is dropped). The
base commit is checked out into a temporary ``git worktree`` and run with ``PYTHONPATH`` pointing at
its ``src``: the same Python environment, only crnn's code differs. ``--now NAME=ARGS`` adds a
contender of the current tree with extra ``crnn train`` arguments (``-o`` overrides, ``--nproc``);
leading ``VAR=VALUE`` words of ARGS are environment variables of that contender (``--now
"nokernels=CRNN_TRAIN_KERNELS=0"``). Without ``--now`` the current tree runs as the base does.

    python scripts/train_throughput.py --config configs/rec/rec_mv3_none_bilstm_ctc.yml \\
        --base 8999c23 --steps 16 --repeats 2 --json docs/bench/train_throughput_seed.json \\
        --now "micro64=-o Global.micro_batch_size=64" \\
        --now "auto+micro64=--nproc auto -o Global.micro_batch_size=64"
    python scripts/train_throughput.py --config configs/train/crnn_mv3_en_r7.yml --nproc 2 \\
        -o Train.loader.batch_size_per_card=32

PaddleOCR's own training step is compared by ``scripts/train_step_vs_paddle.py`` (model-only steps
on the same batches; it needs a PaddleOCR source tree, see docs/training_throughput.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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


def run_crnn(src: Path, config: str, args: list[str], steps: int, out: Path, env_extra: dict[str, str]) -> float:
    """Run ``crnn train`` from ``src`` for ``steps`` steps; returns median images/s after warm-up.

    ``args``: extra ``crnn train`` arguments; every ``-o`` group is joined after the run's own overrides.
    """
    env = {**os.environ, "PYTHONPATH": str(src), **env_extra}
    every = max(1, steps // 8)
    cmd = [sys.executable, "-m", "crnn", "train", "-c", config, *args, "-o",
           f"Global.max_steps={steps}", f"Global.print_batch_step={every}", f"Global.save_model_dir={out}",
           "Global.eval_batch_step=[0, 0]", EVAL_OVERRIDE]
    run_quiet(cmd, env)
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines() if ln]
    ips = [r["img_s"] for r in rows if r.get("kind") == "train"][1:]
    if not ips:
        raise SystemExit(f"train_throughput: {out} logged no interval after warm-up; use more --steps")
    return statistics.median(ips)


def contenders(args: argparse.Namespace, base_src: Path) -> dict[str, tuple[Path, list[str], dict[str, str]]]:
    """name -> (src folder, crnn train arguments, extra environment) for the base and every ``--now`` layout."""
    common = ["--nproc", str(args.nproc), *(["-o", *args.override] if args.override else [])]
    out = {"base": (base_src, common, {})}
    for spec in args.now or ["now="]:
        name, _, extra = spec.partition("=")
        words = shlex.split(extra)
        env: dict[str, str] = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        out[name] = (ROOT / "src", [*common, *words], env)
    return out


def run_quiet(cmd: list[str], env: dict[str, str]) -> None:
    """Run ``cmd`` from the project root, output hidden; on failure exit with the end of its stderr."""
    res = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if res.returncode:
        tail = "\n".join(res.stderr.strip().splitlines()[-40:])
        raise SystemExit(f"{Path(sys.argv[0]).name}: {' '.join(cmd[:6])} ... failed ({res.returncode}):\n{tail}")


@contextlib.contextmanager
def base_worktree(commit: str, path: Path) -> Iterator[Path]:
    """``commit`` checked out at ``path`` (a detached ``git worktree``) for the block; removed after it."""
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), commit], cwd=ROOT, check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/rec/rec_mv3_none_bilstm_ctc.yml")
    ap.add_argument("-o", "--override", nargs="*", default=[], help="extra -o overrides for every contender")
    ap.add_argument("--base", default="8999c23", help="the commit to compare with")
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per run")
    ap.add_argument("--repeats", type=int, default=2, help="runs per contender, interleaved")
    ap.add_argument("--nproc", type=int, default=1, help="crnn train --nproc of every contender")
    ap.add_argument("--now", action="append", metavar="NAME=ARGS",
                    help="a contender of the current tree with extra crnn train arguments (repeatable)")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="crnn-throughput-") as tmp:
        base_tree = Path(tmp) / "base"
        runs = contenders(args, base_tree / "src")
        results: dict[str, list[float]] = {name: [] for name in runs}
        with base_worktree(args.base, base_tree):
            for r in range(args.repeats):
                for name, (src, extra, env) in runs.items():
                    ips = run_crnn(src, args.config, extra, args.steps, Path(tmp) / f"{name}{r}", env)
                    results[name].append(ips)
                    print(f"run {r} {name}: {ips:.1f} images/s", flush=True)
    base = statistics.median(results["base"])
    report = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_flags(), "load_avg": os.getloadavg(),
              "config": args.config, "overrides": args.override, "steps": args.steps, "repeats": args.repeats,
              "base_commit": args.base, "now_commit": git_head(),
              "contenders": {name: {"args": extra, "env": env, "img_s": results[name],
                                    "median": statistics.median(results[name]),
                                    "ratio_over_base": statistics.median(results[name]) / base}
                             for name, (_, extra, env) in runs.items()}}
    print(f"cpu: {report['cpu']}")
    print(f"{args.config} {' '.join(args.override)} ({args.steps} steps x {args.repeats}, interleaved)")
    for name, row in report["contenders"].items():  # type: ignore[attr-defined]
        words = [f"{k}={v}" for k, v in row["env"].items()] + row["args"]
        print(f"{name:>16}: {row['median']:.1f} images/s ({row['ratio_over_base']:.2f}x)  {' '.join(words)}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def git_head() -> str:
    """The current tree's commit (with ``+dirty`` when it has uncommitted changes)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout
    return head.strip() + ("+dirty" if dirty.strip() else "")


if __name__ == "__main__":
    main()
