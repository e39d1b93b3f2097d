"""Every entry of every component table: its declared keys match what it takes, and it builds and runs."""

from __future__ import annotations

import inspect
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

import numpy as np
import pytest
import torch

from crnn.charset import Charset
from crnn.config import ArchitectureConfig, BackboneConfig, ConfigError, OptimizerConfig, config_from_dict
from crnn.decoders import DECODERS, build_decoder
from crnn.models import HEADS, NECKS, build_model
from crnn.models.backbones import BACKBONES
from crnn.optim import LR_SCHEDULES, OPTIMIZERS, build_optimizer, lr_factor
from crnn.registry import Entry

from .conftest import ROOT


def _strip_none(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007
    return tp


@pytest.mark.parametrize(("table", "wired"), [(BACKBONES, ()), (NECKS, ("in_channels",)),
                                              (HEADS, ("in_channels", "num_classes"))], ids=["backbones", "necks",
                                                                                           "heads"])
def test_declared_keys_are_the_constructors(table: dict[str, Entry], wired: tuple[str, ...]) -> None:
    # the tables are torch-free declarations: they must not drift from the classes they name
    for name, entry in table.items():
        cls = entry.load()
        hints = typing.get_type_hints(cls.__init__)
        params = [n for n in inspect.signature(cls).parameters if n not in wired]
        assert set(params) == set(entry.keys), name
        for key in params:
            assert _strip_none(hints[key]) == entry.keys[key], f"{name}.{key}"


# Keys for a backbone whose defaults do not fit 32-high images (PaddleOCR's small MobileNetV3 strides
# its height 5 times); every other backbone is built with its defaults.
FOR_HEIGHT_32 = {"MobileNetV3": {"small_stride": [1, 2, 2, 2]}}


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_builds_and_maps_to_25_steps(name: str) -> None:
    torch.manual_seed(0)
    arch = ArchitectureConfig(Backbone=BackboneConfig(name, FOR_HEIGHT_32.get(name, {})))
    model = build_model(arch, num_classes=37).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 100))
    assert logits.shape == (2, 25, 37) and torch.isfinite(logits).all()


@pytest.mark.parametrize("encoder", ["rnn", "fc", "reshape"])
def test_every_neck_and_head_builds(encoder: str) -> None:
    backbone = {"name": "MobileNetV3", **FOR_HEIGHT_32["MobileNetV3"]}
    for neck in NECKS:
        for head, params in ((h, p) for h in HEADS for p in ({}, {"mid_channels": 24})):
            cfg = config_from_dict({"Architecture": {"Backbone": backbone,
                                                     "Neck": {"name": neck, "encoder_type": encoder},
                                                     "Head": {"name": head, **params}}})
            logits = build_model(cfg.Architecture, num_classes=11)(torch.randn(1, 3, 32, 64))
            assert logits.shape == (1, 16, 11)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_builds_and_steps(name: str) -> None:
    w = torch.nn.Parameter(torch.ones(3))
    opt = build_optimizer([w], OptimizerConfig(name=name))
    (w ** 2).sum().backward()
    opt.step()
    assert (w < 1).all()  # every optimizer moves against the gradient


@pytest.mark.parametrize("name", sorted(LR_SCHEDULES))
def test_every_schedule_builds(name: str) -> None:
    cfg = config_from_dict({"Optimizer": {"lr": {"name": name, "warmup_steps": 2, "decay_epochs": [1],
                                                 "values": [0.1, 0.01]}}})
    f = lr_factor(cfg.Optimizer, steps_per_epoch=10, epoch_num=3)
    factors = [f(s) for s in range(30)]
    assert factors[0] == pytest.approx(0.5) and factors[1] == pytest.approx(1.0)  # warm-up, then the schedule
    assert all(np.isfinite(factors)) and all(0 <= x <= 1 for x in factors)


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_every_decoder_decodes(name: str) -> None:
    charset = Charset.from_config(None)
    logits = np.full((1, 6, charset.num_classes), -5.0, np.float32)
    for t, c in enumerate("c-a-t-"):
        logits[0, t, 0 if c == "-" else charset.encode(c)[0]] = 5.0
    decoder = build_decoder(config_from_dict({"PostProcess": {"decoder": name}}).PostProcess, charset)
    assert [p.text for p in decoder(logits)] == ["cat"]


def test_unknown_names_and_keys_are_named() -> None:
    cases = [({"Architecture": {"Neck": {"name": "Transformer"}}}, "Architecture.Neck.name: unknown neck"),
             ({"Architecture": {"Head": {"name": "CTCHead", "hidden": 3}}}, "Architecture.Head.hidden: not an opt"),
             ({"Optimizer": {"name": "Lion"}}, "Optimizer.name: unknown optimizer 'Lion'"),
             ({"Optimizer": {"lr": {"name": "OneCycle"}}}, "Optimizer.lr.name: unknown learning-rate schedule"),
             ({"PostProcess": {"decoder": "attn"}}, "PostProcess.decoder: unknown decoder 'attn'"),
             ({"Eval": {"dataset": {"name": "MixDataSet", "datasets": [{"name": "TextDataSet"}]}}},
              r"Eval.dataset.datasets\[0\].name: unknown dataset 'TextDataSet'")]
    for data, message in cases:
        with pytest.raises(ConfigError, match=message):
            config_from_dict(data)


def test_extending_doc_example_runs() -> None:
    # docs/extending.md's example registers a toy backbone and builds a model from a config naming it
    text = (ROOT / "docs" / "extending.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "docs/extending.md has no python example"
    scope: dict[str, Any] = {}
    try:
        exec(compile("\n".join(blocks), str(Path("docs/extending.md")), "exec"), scope)
        assert "TinyConv" in BACKBONES
        assert scope["model"](torch.zeros(2, 3, 32, 100)).shape == (2, 25, 37)
        with pytest.raises(ConfigError, match="Architecture.Backbone.width: not an option of backbone TinyConv"):
            config_from_dict({"Architecture": {"Backbone": {"name": "TinyConv", "width": 8}}})
    finally:
        BACKBONES.pop("TinyConv", None)


def test_fc_decay_is_the_heads_l2() -> None:
    from crnn.optim import param_groups, regularizer_l2

    cfg = config_from_dict({"Architecture": {"Head": {"fc_decay": 0.5}},
                            "Optimizer": {"name": "Momentum", "regularizer": {"factor": 0.1}}})
    model = build_model(cfg.Architecture, num_classes=5)
    opt = build_optimizer(param_groups(model, 0.5, regularizer_l2(cfg.Optimizer)), cfg.Optimizer)
    rest, head = opt.param_groups
    assert (rest["weight_decay"], head["weight_decay"]) == (0.1, 0.5)
    assert {id(p) for p in head["params"]} == {id(p) for p in model.head.parameters()}
    # equal factors (every config of this repo: both 0) keep one group, so older checkpoints resume
    assert param_groups(model, 0.0, 0.0) == [p for p in model.parameters() if p.requires_grad]


def test_every_dataset_kind_reads_its_samples(tiny_set: Path, tmp_path: Path) -> None:
    from crnn.data.datasets import SOURCES, build_sources
    from crnn.data.lmdb_io import create_lmdb

    create_lmdb(str(tiny_set / "labels.tsv"), str(tiny_set), str(tmp_path / "lmdb"), "\t")
    simple = {"name": "SimpleDataSet", "data_dir": str(tiny_set), "label_file_list": [str(tiny_set / "labels.tsv")]}
    examples = {"SimpleDataSet": simple,
                "LMDBDataSet": {"name": "LMDBDataSet", "data_dir": str(tmp_path / "lmdb")},
                "MixDataSet": {"name": "MixDataSet", "datasets": [simple, simple], "ratio_list": [1.0, 0.5]}}
    assert set(examples) == set(SOURCES), "a dataset kind without an example here"
    for name, data in examples.items():
        cfg = config_from_dict({"Train": {"dataset": data}})
        assert cfg.Train is not None
        pairs = build_sources(cfg.Train.dataset)
        labels = sorted(src.label(i) for src, _ in pairs[:1] for i in range(len(src)))
        assert len(labels) == 24 and "dog" in labels, name
        assert pairs[0][0].image_bytes(0)[:4] == b"\x89PNG", name
        if name == "MixDataSet":
            assert [r for _, r in pairs] == [1.0, 0.5]
