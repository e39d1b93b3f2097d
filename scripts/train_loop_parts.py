"""Where a rank's training-loop time goes, at a base commit and now, side by side in one run.

Runs the real ``crnn train`` loop (through ``crnn.train.train``, as ``crnn train --nproc N`` does)
for ``--steps`` steps with timers around the two things a step waits for: the next batch from the
loader (``data_wait``: what the loader workers did not hide) and ``Trainer.train_step`` (forward,
loss, backward, gradient exchange, optimizer, EMA). ``rest`` is everything else in the loop
(running metrics, logging, the stop check). Milliseconds per step, after the first 5 steps, per rank;
contenders run in turns (base, now, base, now, ...) so that a change in machine load hits both.
The base commit is checked out into a temporary ``git worktree``; only crnn's code differs.
Two figures of ``train_step`` depend little on other processes' load: ``step_cpu`` (the rank's CPU time
in it, all its threads) and ``faults`` (minor page faults in it: pages the kernel had to map and zero
again, e.g. when malloc gave a buffer back to the OS and the next step allocates it anew).
``--now-env NAME=VAR=VALUE[,VAR=VALUE]`` adds a contender of the current tree with environment variables
set (e.g. ``nomalloc=CRNN_MALLOC_TUNE=0``).

    python scripts/train_loop_parts.py --config configs/train/crnn_mv3_en_r7.yml --nproc 2 --steps 45 \\
        -o Train.loader.batch_size_per_card=32 Global.pretrained_model=null \\
        --json docs/bench/train_loop_parts_recipe.json
    python scripts/train_loop_parts.py --config configs/rec/rec_mv3_none_bilstm_ctc.yml --nproc 1 --steps 20 \\
        -o Train.loader.batch_size_per_card=64 --now-env nomalloc=CRNN_MALLOC_TUNE=0
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import EVAL_OVERRIDE, ROOT, base_worktree, cpu_flags, git_head, run_quiet

WARMUP = 5  # steps left out of the figures: start-up, first allocations
PARTS = ("total", "data_wait", "train_step", "rest", "step_cpu", "faults")


def rank_run(config: str, overrides: list[str], steps: int, out: Path) -> None:
    """One rank (under torchrun): train ``steps`` steps with timers; write ``out/parts_rank{R}.json``."""
    import crnn.train as T
    from crnn.config import load_config

    t: dict[str, Any] = {"data": 0.0, "step": 0.0, "cpu": 0.0, "faults": 0, "n": 0, "t0": 0.0, "t1": 0.0}
    train_step, init = T.Trainer.train_step, T.Trainer.__init__

    def timed_step(self: Any, batch: Any, amp: Any) -> Any:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        cpu, start = time.process_time(), time.perf_counter()
        logits = train_step(self, batch, amp)
        t["step"] += time.perf_counter() - start
        t["cpu"] += time.process_time() - cpu
        t["faults"] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        t["n"] += 1
        if t["n"] == WARMUP:  # the clock starts after this step
            t.update(data=0.0, step=0.0, cpu=0.0, faults=0, t0=time.perf_counter())
        t["t1"] = time.perf_counter()
        return logits

    def timed_init(self: Any, cfg: Any, info: Any) -> None:
        init(self, cfg, info)
        loader = self.loader

        class TimedLoader:
            def __len__(self) -> int:
                return len(loader)

            def __iter__(self) -> Any:
                it = iter(loader)
                while True:
                    start = time.perf_counter()
                    try:
                        batch = next(it)
                    except StopIteration:
                        return
                    t["data"] += time.perf_counter() - start
                    yield batch

        self.loader = TimedLoader()

    T.Trainer.train_step, T.Trainer.__init__ = timed_step, timed_init  # type: ignore[method-assign,assignment]
    cfg = load_config(config, [*overrides, f"Global.max_steps={steps}", "Global.print_batch_step=1000",
                               f"Global.save_model_dir={out}", "Global.eval_batch_step=[0, 0]", EVAL_OVERRIDE])
    T.train(cfg)
    n = t["n"] - WARMUP
    total = t["t1"] - t["t0"]
    parts = {"total": total, "data_wait": t["data"], "train_step": t["step"],
             "rest": total - t["data"] - t["step"]}
    rank = os.environ.get("RANK", "0")
    row = {k: 1000 * v / n for k, v in parts.items()} | {"step_cpu": 1000 * t["cpu"] / n, "faults": t["faults"] / n}
    (out / f"parts_rank{rank}.json").write_text(json.dumps(row))


def run(src: Path, args: argparse.Namespace, out: Path, env_extra: dict[str, str]) -> list[dict[str, float]]:
    """One contender's run; returns each rank's ms per step by part."""
    out.mkdir(parents=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(args.nproc),
           __file__, "--rank-run", str(out), "--config", args.config, "--steps", str(args.steps),
           "-o", *args.override]
    env = {**os.environ, "PYTHONPATH": str(src), **env_extra}
    run_quiet(cmd, env)
    return [json.loads(p.read_text()) for p in sorted(out.glob("parts_rank*.json"))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/train/crnn_mv3_en_r7.yml")
    ap.add_argument("-o", "--override", nargs="*", default=[], help="-o overrides for both contenders")
    ap.add_argument("--base", default="8999c23", help="the commit to compare with")
    ap.add_argument("--steps", type=int, default=45, help=f"optimizer steps per run (the first {WARMUP} not timed)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--nproc", type=int, default=2, help="ranks, as crnn train --nproc")
    ap.add_argument("--now-env", action="append", default=[], metavar="NAME=VAR=VALUE[,VAR=VALUE]",
                    help="a contender of the current tree with these environment variables (repeatable)")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--rank-run", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rank_run:
        rank_run(args.config, args.override, args.steps, Path(args.rank_run))
        return

    envs: dict[str, dict[str, str]] = {"base": {}, "now": {}}
    for spec in args.now_env:
        name, _, assigns = spec.partition("=")
        envs[name] = dict(a.split("=", 1) for a in assigns.split(",") if a)
    results: dict[str, list[list[dict[str, float]]]] = {name: [] for name in envs}
    with (tempfile.TemporaryDirectory(prefix="crnn-loop-parts-") as tmp,
          base_worktree(args.base, Path(tmp) / "base") as base_tree):
        for r in range(args.repeats):
            for name, env_extra in envs.items():
                src = base_tree / "src" if name == "base" else ROOT / "src"
                ranks = run(src, args, Path(tmp) / f"{name}{r}", env_extra)
                results[name].append(ranks)
                print(f"run {r} {name}: " + "; ".join(
                    f"rank {i} " + " ".join(f"{k} {v:.1f}" for k, v in rk.items()) for i, rk in enumerate(ranks)),
                      flush=True)
    # per contender and part: the median over runs and ranks
    table = {name: {part: statistics.median(rk[part] for ranks in runs for rk in ranks)
                    for part in PARTS} for name, runs in results.items()}
    report = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_flags(), "load_avg": os.getloadavg(),
              "config": args.config, "overrides": args.override, "nproc": args.nproc, "steps": args.steps,
              "repeats": args.repeats, "base_commit": args.base, "now_commit": git_head(), "envs": envs,
              "runs": results,
              "median_ms_per_step": table, "speedup_total": table["base"]["total"] / table["now"]["total"]}
    print(f"cpu: {report['cpu']}")
    print(f"{args.config} {' '.join(args.override)} ({args.nproc} ranks, {args.steps} steps x {args.repeats})")
    print("| contender | ms per step | data wait | train_step | rest | train_step CPU ms | page faults per step |\n"
          "|---|---:|---:|---:|---:|---:|---:|")
    for name, row in table.items():
        print(f"| {name} | {row['total']:.1f} | {row['data_wait']:.1f} | {row['train_step']:.1f} | {row['rest']:.1f} "
              f"| {row['step_cpu']:.1f} | {row['faults']:.0f} |")
    print(f"now / base speed: {report['speedup_total']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
