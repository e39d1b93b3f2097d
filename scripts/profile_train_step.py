"""Where a training step's time goes: data stages per sample and model stages per batch.

Reads real samples of the config's training set and times, in this process: reading the bytes,
decoding, augmentation (when the config has RecAug), resizing + normalising, collation; then the
forward pass, CTC loss, backward pass and optimizer step of the config's model on such batches, for
each layout asked (eager fp32, bf16 autocast, torch.compile). Run it on a quiet machine (it prints
the CPU flags; the numbers depend on them).

    python scripts/profile_train_step.py -c configs/rec/rec_mv3_none_bilstm_ctc.yml --batch 64 --threads 1 2
    python scripts/profile_train_step.py -c configs/train/crnn_mv3_en_r7.yml --batch 32 --threads 1 --amp --compile
    python scripts/profile_train_step.py --batch 256 --samples 256 --threads 2 --micro 0 128 64 32 --steps 3
    python scripts/profile_train_step.py -c configs/train/crnn_mv3_en_r11.yml --batch 32 --threads 1 --ops 8
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import cpu_flags

from crnn.charset import Charset
from crnn.config import load_config
from crnn.data.augment import rec_aug
from crnn.data.datasets import Item, build_sources
from crnn.data.images import decode_image
from crnn.data.loader import make_collate, split_batch
from crnn.data.preprocess import Preprocess
from crnn.loss import ctc_loss
from crnn.models import build_model
from crnn.optim import build_optimizer


def data_stages(cfg_path: str, n: int, batch: int) -> tuple[dict[str, float], list[Item]]:
    """Milliseconds per sample of each data stage over ``n`` samples, and the items made."""
    cfg = load_config(cfg_path)
    assert cfg.Train is not None
    t = cfg.Train.dataset.transforms
    spec = Preprocess.from_transforms(t)
    sources = [s for s, _ in build_sources(cfg.Train.dataset)]
    rng = np.random.default_rng(0)
    picks = [(s, int(i)) for s in sources for i in rng.choice(len(s), max(1, n // len(sources)), replace=False)]
    times = dict.fromkeys(["read", "decode", "augment", "resize+normalise"], 0.0)
    items = []
    for k, (src, i) in enumerate(picks):
        t0 = time.perf_counter()
        data = src.image_bytes(i)
        t1 = time.perf_counter()
        img = decode_image(data, src.key(i))
        t2 = time.perf_counter()
        if t.rec_aug is not None:
            img = rec_aug(img, t.rec_aug, np.random.default_rng(k))
        t3 = time.perf_counter()
        arr = spec([img])[0]
        t4 = time.perf_counter()
        for name, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            times[name] += dt
        items.append(Item(arr, src.label(i), src.key(i)))
    charset = Charset.from_config(cfg.Global.character_dict_path, cfg.Global.use_space_char)
    collate = make_collate(charset)
    t0 = time.perf_counter()
    for s in range(0, len(items) - batch + 1, batch):
        collate(list(items[s : s + batch]))
    times["collate"] = time.perf_counter() - t0
    return {k: 1000 * v / len(items) for k, v in times.items()}, items


def model_stages(cfg_path: str, items: list[Item], batch: int, threads: int, amp: bool, compiled: bool,
                 steps: int, micro: int | None = None, ops: int = 0) -> dict[str, Any]:
    """Milliseconds per batch of forward, loss, backward and optimizer step (median of ``steps``).

    ``micro``: run the batch as chunks of at most this many samples, as ``Global.micro_batch_size`` does
    (stages summed over the chunks). ``ops`` > 0: then ``steps`` more steps under ``torch.profiler``, and
    ``"ops"`` holds the ``ops`` operators with the most self CPU time, as % of the profiled total.
    """
    torch.set_num_threads(threads)
    cfg = load_config(cfg_path)
    charset = Charset.from_config(cfg.Global.character_dict_path, cfg.Global.use_space_char)
    model = build_model(cfg.Architecture, charset.num_classes).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = build_optimizer(list(model.parameters()), cfg.Optimizer)
    fwd = torch.compile(model) if compiled else model
    chunks = split_batch(make_collate(charset)(items[:batch]), micro or batch)
    stages = ("forward", "loss", "backward", "optimizer")

    def one_step() -> dict[str, float]:
        times = dict.fromkeys(stages, 0.0)
        opt.zero_grad(set_to_none=True)
        for b in chunks:
            images = b.images.contiguous(memory_format=torch.channels_last)
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                logits = fwd(images)
            t1 = time.perf_counter()
            loss = ctc_loss(logits, b.targets, b.target_lengths) * (len(b.texts) / batch)
            t2 = time.perf_counter()
            loss.backward()
            t3 = time.perf_counter()
            for name, dt in zip(("forward", "loss", "backward"), (t1 - t0, t2 - t1, t3 - t2), strict=True):
                times[name] += dt
        t4 = time.perf_counter()
        opt.step()
        times["optimizer"] = time.perf_counter() - t4
        return times

    rows: dict[str, list[float]] = {k: [] for k in stages}
    for step in range(steps + 3):  # three warm-up steps (and compilation) are not counted
        times = one_step()
        if step >= 3:
            for name, dt in times.items():
                rows[name].append(1000 * dt)
    out: dict[str, Any] = {k: float(np.median(v)) for k, v in rows.items()}
    if ops:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                one_step()
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:ops]
        out["ops"] = {e.key: round(100 * e.self_cpu_time_total / total, 1) for e in top}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--config", default="configs/rec/rec_mv3_none_bilstm_ctc.yml")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--samples", type=int, default=512, help="real samples timed through the data stages")
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--micro", type=int, nargs="+", default=[0],
                    help="also time the batch as chunks of these sizes (Global.micro_batch_size); 0: whole batch")
    ap.add_argument("--amp", action="store_true", help="also time bf16 autocast")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile")
    ap.add_argument("--ops", type=int, default=0, metavar="N",
                    help="also profile the fp32 steps and print the N operators with the most self CPU time")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    print(f"cpu: {cpu_flags()}")
    data, items = data_stages(args.config, max(args.samples, args.batch), args.batch)
    data_ms = sum(data.values())
    print("data, ms per sample (one core): " + ", ".join(f"{k} {v:.2f}" for k, v in data.items())
          + f"; total {data_ms:.2f}")
    layouts = [("fp32", False, False)] + [("bf16", True, False)] * args.amp + [("compile", False, True)] * args.compile
    report: dict[str, object] = {"cpu": cpu_flags(), "config": args.config, "batch": args.batch, "data_ms": data}
    for threads, micro in ((t, m) for t in args.threads for m in args.micro):
        for name, amp, compiled in layouts:
            m = model_stages(args.config, items, args.batch, threads, amp, compiled, args.steps, micro or None,
                             ops=args.ops if name == "fp32" else 0)
            label = f"{name}_micro{micro}" if micro else name
            top = m.pop("ops", {})
            step_ms = sum(m.values())
            core_ms = step_ms * threads / args.batch  # core-milliseconds per sample
            print(f"{threads} thread(s) {label}: " + ", ".join(f"{k} {v:.0f}" for k, v in m.items())
                  + f" ms/batch; {args.batch * 1000 / step_ms:.0f} images/s model-only; data is "
                  f"{100 * data_ms / (data_ms + core_ms):.0f}% of the core time per sample")
            if top:
                print("  self CPU time by operator: " + ", ".join(f"{k} {v}%" for k, v in top.items()))
                m["ops"] = top
            report[f"{threads}t_{label}"] = m
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
