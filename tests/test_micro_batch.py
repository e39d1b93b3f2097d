"""Training throughput features: micro-batches (gradient accumulation) and ``crnn train --nproc auto``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from crnn.charset import Charset
from crnn.config import ConfigError, config_from_dict
from crnn.data import loader as loader_mod
from crnn.data.datasets import Item
from crnn.data.loader import Batch, make_collate, split_batch
from crnn.distributed import DistInfo, Launch, plan_launch
from crnn.train import Trainer

from .conftest import tiny_config


def _batch(texts: list[str], skipped: int = 0) -> Batch:
    cs = Charset.from_config(None)
    items = [Item(torch.full((3, 32, 100), float(i)).numpy(), t, f"k{i}") for i, t in enumerate(texts)]
    return make_collate(cs)([*items, *[None] * skipped])


def test_split_batch_keeps_samples_and_labels_together():
    texts = ["a", "bb", "ccc", "dddd", "e", "ff", "ggg"]
    b = _batch(texts, skipped=2)
    chunks = split_batch(b, 3)
    assert [len(c.texts) for c in chunks] == [3, 2, 2]  # near-equal: no chunk of one sample for BatchNorm
    cs = Charset.from_config(None)
    for c in chunks:
        ids = c.targets.tolist()
        labels, start = [], 0
        for n in c.target_lengths.tolist():
            labels.append("".join(cs.chars[i - 1] for i in ids[start:start + n]))
            start += n
        assert labels == c.texts and start == len(ids)
        assert [int(x) for x in c.images[:, 0, 0, 0]] == [int(k[1:]) for k in c.keys]
    assert [t for c in chunks for t in c.texts] == texts
    assert [c.skipped for c in chunks] == [2, 0, 0]
    assert split_batch(b, 7) == [b] and split_batch(b, 64) == [b]


def _trainer(tiny_set: Path, tmp_path: Path, *overrides: str) -> Trainer:
    data = tiny_config(tiny_set, tmp_path, eval_batch_step=[0, 0], channels_last=False)
    data["Eval"] = None
    return Trainer(config_from_dict(data, list(overrides)), DistInfo())


@pytest.mark.parametrize("focal", [False, True])
def test_micro_batched_gradients_equal_full_batch(tiny_set: Path, tmp_path: Path, focal: bool):
    """With BatchNorm in eval mode (its only batch dependence), chunks of 3 + 3 + 2 accumulate the
    gradient of the 8-sample mean loss, and the returned loss and logits are the full batch's."""
    trainer = _trainer(tiny_set, tmp_path, f"Loss.use_focal_loss={focal}")
    trainer.model.eval()
    batch = next(iter(trainer.loader))
    assert len(batch.texts) == 8
    results = []
    for micro in (None, 3):
        trainer.cfg.Global.micro_batch_size = micro
        trainer.optimizer.zero_grad(set_to_none=True)
        logits, loss = trainer._forward_backward(batch, torch.bfloat16)
        grads = {k: p.grad.clone() for k, p in trainer.model.named_parameters() if p.grad is not None}
        results.append((logits, loss, grads))
    (full_logits, full_loss, full), (micro_logits, micro_loss, micro) = results
    assert full.keys() == micro.keys() and len(full) > 50
    torch.testing.assert_close(micro_loss, full_loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(micro_logits, full_logits, rtol=1e-6, atol=1e-6)
    for k in full:
        torch.testing.assert_close(micro[k], full[k], rtol=1e-5, atol=1e-7, msg=k)


def test_micro_batched_steps_learn_as_whole_batches(tiny_set: Path, tmp_path: Path):
    """In training mode (BatchNorm on chunk statistics) micro-batched steps lower the loss as whole-batch
    steps do, from the same weights on the same batch."""
    curves = []
    for micro in ("null", "4"):
        torch.manual_seed(0)
        trainer = _trainer(tiny_set, tmp_path / micro, f"Global.micro_batch_size={micro}")
        batch = next(iter(trainer.loader))
        losses = []
        for _ in range(8):
            trainer.train_step(batch, torch.bfloat16)
            losses.append(float(trainer.loss))
        assert losses == sorted(losses, reverse=True) and losses[-1] < 0.9 * losses[0], losses
        curves.append(losses)
    whole, micro_curve = curves
    assert micro_curve[0] == pytest.approx(whole[0], rel=0.01)  # same start: only BatchNorm's statistics differ
    assert micro_curve[-1] == pytest.approx(whole[-1], rel=0.01), curves  # measured: 56.5 vs 56.6


def test_micro_batch_size_must_be_positive(tiny_set: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="Global.micro_batch_size"):
        config_from_dict(tiny_config(tiny_set, tmp_path), ["Global.micro_batch_size=0"])


def test_nproc_auto_splits_the_batch_over_single_thread_ranks(monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture):
    import crnn.distributed as dist_mod

    monkeypatch.setattr(dist_mod, "available_cores", lambda: 2)
    assert plan_launch("auto", False, 256) == Launch(2, ("Train.loader.batch_size_per_card=128",
                                                         "Global.num_threads=1"), {"OMP_NUM_THREADS": "1"})
    with caplog.at_level(logging.WARNING, logger="crnn.distributed"):
        assert plan_launch("auto", False, 255).overrides[0] == "Train.loader.batch_size_per_card=127"
    assert "255 does not split evenly over 2 ranks" in caplog.text
    assert plan_launch("auto", False, 1) == Launch(1)  # never a rank without samples
    # a number keeps PaddleOCR's meaning: that many processes, each with batch_size_per_card
    assert plan_launch("3", False, 256) == Launch(3)
    monkeypatch.setattr(dist_mod, "available_cores", lambda: 1)
    assert plan_launch("auto", False, 256) == Launch(1)
    for bad in ("0", "two", "-1"):
        with pytest.raises(ValueError, match="--nproc"):
            plan_launch(bad, False, 256)
    cmd = Launch(2, ("Global.num_threads=1",)).torchrun("c.yml", ["Global.max_steps=5"])
    assert cmd[cmd.index("--nproc_per_node") + 1] == "2" and "--standalone" in cmd
    assert cmd[cmd.index("-o"):] == ["-o", "Global.max_steps=5", "Global.num_threads=1"]  # auto's values win


def test_loader_workers_share_the_cores_between_ranks(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(loader_mod, "available_cores", lambda: 4)
    loader_mod.usable_workers.cache_clear()
    try:
        assert loader_mod.usable_workers(8) == 4
        assert loader_mod.usable_workers(8, ranks=2) == 2
        assert loader_mod.usable_workers(8, ranks=8) == 1  # at least one worker per rank
        assert loader_mod.usable_workers(1, ranks=2) == 1
    finally:
        loader_mod.usable_workers.cache_clear()
