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
from crnn.data.loader import EpochSampler, make_collate
from crnn.loss import ctc_loss
from crnn.models import build_model
from crnn.optim import build_optimizer

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


def test_two_ranks_match_one_process_and_see_disjoint_samples(tiny_set: Path, tmp_path: Path):
    steps = 3
    data = _config(tiny_set, tmp_path / "ddp", max_steps=steps, eval_batch_step=[0, 0])
    cfg_path = tmp_path / "ddp.yml"
    cfg_path.write_text(yaml.safe_dump(data))
    _torchrun(2, cfg_path)
    ddp = checkpoint.load(tmp_path / "ddp" / "latest")
    assert ddp["step"] == steps and ddp["world_size"] == 2

    # Reference in one process: the same two per-rank batches each step, gradients averaged —
    # DDP's definition. BatchNorm normalises each rank's batch separately on CPU (SyncBatchNorm is
    # GPU-only in PyTorch), so the reference does the same.
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
    for step in range(steps):
        opt.zero_grad()
        for rank in range(2):
            idx = shards[rank][step * 4:(step + 1) * 4]
            batch = collate([ds[(i, 0)] for i in idx])
            (ctc_loss(model(batch.images), batch.targets, batch.target_lengths) / 2).backward()
        opt.step()
    ref = model.state_dict()
    for k, v in ddp["model"].items():
        if "running" not in k and "num_batches" not in k:  # buffers: DDP keeps rank 0's
            torch.testing.assert_close(v, ref[k], rtol=1e-4, atol=1e-5, msg=k)


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
