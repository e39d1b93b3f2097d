"""DDP with torchrun on CPU (gloo): equivalence with one process, disjoint shards, kill and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from crnn import checkpoint
from crnn.charset import Charset
from crnn.config import config_from_dict
from crnn.data.datasets import build_dataset, train_label_check
from crnn.data.loader import EpochSampler, make_collate, split_batch
from crnn.loss import ctc_loss
from crnn.models import build_model
from crnn.optim import build_optimizer
from crnn.threads import available_cores

from .conftest import tiny_config

pytestmark = pytest.mark.slow


def _torchrun(nproc: int, cfg_path: Path, *overrides: str, wait: bool = True) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
           "--master_port", str(29500 + os.getpid() % 1000), "-m", "crnn", "train", "-c", str(cfg_path)]
    if overrides:
        cmd += ["-o", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    if wait:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out.decode()[-3000:]
    return proc


def _config(tiny: Path, out: Path, **g: object) -> dict:
    cfg = tiny_config(tiny, out, channels_last=False, **g)
    cfg["Train"]["loader"].update(batch_size_per_card=4, shuffle=True, drop_last=True)
    cfg["Eval"] = None
    return cfg


@pytest.mark.parametrize("micro", [None, 2])
def test_two_ranks_match_one_process_and_see_disjoint_samples(tiny_set: Path, tmp_path: Path, micro: int | None):
    steps = 3
    data = _config(tiny_set, tmp_path / "ddp", max_steps=steps, eval_batch_step=[0, 0], micro_batch_size=micro)
    # Small SGD steps, as they are linear in the gradient: Adam turns the rounding noise of gradients that
    # are 0 in exact arithmetic (a BatchNorm bias feeding another BatchNorm: ~1e-8 here) into full-size
    # steps whose sign depends on the order of summation, which differs between the ranks and the
    # reference; and BatchNorm over chunks of 2 amplifies such differences within a few large steps.
    data["Optimizer"] = {"name": "SGD", "lr": {"learning_rate": 0.005}}
    cfg_path = tmp_path / "ddp.yml"
    cfg_path.write_text(yaml.safe_dump(data))
    _torchrun(2, cfg_path)
    ddp = checkpoint.load(tmp_path / "ddp" / "latest")
    assert ddp["step"] == steps and ddp["world_size"] == 2

    # Reference in one process: the same two per-rank batches each step, gradients averaged —
    # DDP's definition. BatchNorm normalises each rank's batch separately on CPU (SyncBatchNorm is
    # GPU-only in PyTorch), so the reference does the same. With micro-batches each rank runs its 4
    # samples as 2 + 2, each chunk's mean loss weighted by its share, gradients exchanged once.
    # The reference adds the gradients in DDP's order (each rank's own sum, then g0 / 2 + g1 / 2 as the
    # allreduce does), not as one running sum: BatchNorm over chunks of 2 makes these few steps chaotic
    # (a tiny change of the weights grows by orders of magnitude within two steps), so a difference in the
    # order of summation at step 1 (~1e-8) was enough to fail on one CPU kind (AMD Zen 4) and pass on
    # another. In DDP's order the two runs do the same arithmetic (bitwise equal on Zen 4); the tolerance
    # only covers a collective that sums differently.
    cfg = config_from_dict(data)
    assert cfg.Train is not None
    torch.manual_seed(cfg.Global.seed)
    cs = Charset.from_config(None)
    model = build_model(cfg.Architecture, cs.num_classes)
    opt = build_optimizer(list(model.parameters()), cfg.Optimizer)
    ds = build_dataset(cfg.Train.dataset, train_label_check(cs.normalize, 25), train=True, seed=cfg.Global.seed)
    shards = []
    for rank in range(2):
        s = EpochSampler(ds, True, cfg.Global.seed, rank, 2, drop_last=True)
        s.set_epoch(0)
        shards.append([i for i, _ in s])
    assert not set(shards[0]) & set(shards[1])  # the ranks saw disjoint samples
    collate = make_collate(cs)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    for step in range(steps):
        per_rank = []
        for rank in range(2):
            opt.zero_grad(set_to_none=True)
            idx = shards[rank][step * 4:(step + 1) * 4]
            batch = collate([ds[(i, 0)] for i in idx])
            for chunk in split_batch(batch, micro or 4):
                share = len(chunk.texts) / len(batch.texts)
                (ctc_loss(model(chunk.images), chunk.targets, chunk.target_lengths) * share).backward()
            per_rank.append([p.grad for p in model.parameters()])
        for p, g0, g1 in zip(model.parameters(), *per_rank, strict=True):
            p.grad = g0 / 2 + g1 / 2
        opt.step()
    ref = model.state_dict()
    # the steps moved the weights far beyond the tolerance, so agreement below says something
    assert max((ref[k] - start[k]).abs().max().item() for k in ref if "running" not in k) > 1e-3
    for k, v in ddp["model"].items():
        if "running" not in k and "num_batches" not in k:  # buffers: DDP keeps rank 0's
            torch.testing.assert_close(v, ref[k], rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.skipif(available_cores() < 2, reason="--nproc auto needs 2 cores to start 2 ranks")
def test_nproc_auto_keeps_the_global_batch(tiny_set: Path, tmp_path: Path):
    data = _config(tiny_set, tmp_path / "auto", max_steps=2, eval_batch_step=[0, 0])
    data["Train"]["loader"]["batch_size_per_card"] = 8
    cfg_path = tmp_path / "auto.yml"
    cfg_path.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-m", "crnn", "train", "--nproc", "auto", "-c", str(cfg_path)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    n = min(available_cores(), 8)
    state = checkpoint.load(tmp_path / "auto" / "latest")
    # n ranks of 8 // n samples: the config's 8 per step in all, as one process would take
    assert state["world_size"] == n and state["epoch_samples"] == 2 * (8 // n) * n
    assert f"{n} single-thread ranks of {8 // n} samples" in out.stderr


def test_kill_and_resume_with_another_world_size(tiny_set: Path, tmp_path: Path):
    data = _config(tiny_set, tmp_path / "run", max_steps=400, eval_batch_step=[0, 2])
    data["Eval"] = tiny_config(tiny_set, tmp_path)["Eval"]  # eval every 2 steps writes latest
    cfg_path = tmp_path / "run.yml"
    cfg_path.write_text(yaml.safe_dump(data))
    proc = _torchrun(2, cfg_path, wait=False)
    latest = tmp_path / "run" / "latest.pt"
    deadline = time.time() + 240
    while time.time() < deadline and not (latest.is_file() and checkpoint.load(latest)["step"] >= 4):
        time.sleep(1)
    # SIGKILL the launcher and its workers mid-training (workers may sit in their own sessions)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run(["pkill", "-9", "-f", str(cfg_path)], check=False)
    while subprocess.run(["pgrep", "-f", str(cfg_path)], capture_output=True).returncode == 0:
        time.sleep(0.2)
    killed_at = checkpoint.load(latest)["step"]
    assert 4 <= killed_at < 400
    # resume in one process, a few steps further
    _torchrun(1, cfg_path, f"Global.checkpoints={latest}", f"Global.max_steps={killed_at + 3}")
    state = checkpoint.load(latest)
    assert state["step"] == killed_at + 3 and state["world_size"] == 1


def test_sigterm_stops_every_rank_after_its_step_and_saves(tiny_set: Path, tmp_path: Path):
    """`crnn train --nproc 2` with loader workers, stopped by SIGTERM (a scheduler's stop, or Ctrl-C's
    path): torchrun signals each rank's whole process group, workers included; the ranks must still agree on
    a step, save latest.pt at it and exit 143 (a worker killed by the signal used to crash the rank)."""
    out = tmp_path / "run"
    data = _config(tiny_set, out, max_steps=100000, save_latest_step=0, print_batch_step=1)
    data["Train"]["loader"]["num_workers"] = 1
    cfg_path = tmp_path / "run.yml"
    cfg_path.write_text(yaml.safe_dump(data))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "crnn", "train", "--nproc", "2", "-c", str(cfg_path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        metrics = out / "metrics.jsonl"
        deadline = time.time() + 240
        while time.time() < deadline and not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 3):
            time.sleep(0.5)
        assert metrics.is_file(), "training did not start"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-9", "-f", str(cfg_path)], check=False)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "killed by signal" not in err, err[-3000:]
    state = checkpoint.load(out / "latest.pt")
    rows = [r for r in map(yaml.safe_load, metrics.read_text().splitlines()) if r.get("kind") == "train"]
    assert state["step"] >= 3 and max(r["step"] for r in rows) == state["step"]
