"""The weight average and how training evaluates it: on its own module, never by swapping weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from crnn.config import config_from_dict
from crnn.ema import EMA

from .conftest import tiny_config


def test_ema_module_is_a_separate_average() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = EMA(model, decay=0.5)
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[1].num_batches_tracked.fill_(7)
    before = ema.module[0].weight.clone()
    ema.update(model)  # decay min(0.5, 2/11) = 2/11
    torch.testing.assert_close(ema.module[0].weight, before + (1 - 2 / 11) * (1.0 - before))
    assert ema.module[1].num_batches_tracked.item() == 7  # integer buffers are copied, not averaged
    assert ema.state_dict().keys() == model.state_dict().keys()
    assert model[0].weight.eq(1.0).all()  # the training model is untouched


def test_training_evaluates_the_average_without_touching_the_model(tiny_set: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from crnn import train as train_module
    from crnn.distributed import DistInfo

    cfg = config_from_dict(tiny_config(tiny_set, tmp_path, ema_decay=0.9, max_steps=1))
    trainer = train_module.Trainer(cfg, DistInfo())
    assert trainer.ema is not None
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(1.0)  # the raw weights now differ from the average
    raw = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    seen: dict[str, Any] = {}

    def fake_evaluate_sets(model: torch.nn.Module, *args: Any, **kwargs: Any) -> dict[str, Any]:
        seen["model"] = model
        seen["weights"] = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        return {"total": {"acc": 0.5, "norm_edit_dis": 0.5, "count": 1, "skipped": 0}, "sets": {},
                "mean": {"acc": 0.5, "norm_edit_dis": 0.5}}

    monkeypatch.setattr(train_module, "evaluate_sets", fake_evaluate_sets)
    monkeypatch.setattr(trainer, "save", lambda name: None)
    trainer.evaluate()
    assert seen["model"] is trainer.ema.module
    for k, v in raw.items():  # neither during nor after evaluation were the training weights replaced
        assert torch.equal(seen["weights"][k], v), k
        assert torch.equal(trainer.model.state_dict()[k], v), k
