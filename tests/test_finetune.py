"""Fine-tuning to another alphabet: head rows kept / mapped / re-initialised, backbone freezing, shipped dicts."""

from __future__ import annotations

import logging
import string
from pathlib import Path

import pytest
import torch

from crnn import checkpoint
from crnn.charset import DICTS_DIR, Charset
from crnn.config import config_from_dict
from crnn.finetune import transfer_weights
from crnn.models import build_model
from crnn.train import train

from .conftest import tiny_config

OLD = Charset.from_config(None)  # 0-9a-z, lower-cased


def _arch(tiny: Path, tmp: Path):
    return config_from_dict(tiny_config(tiny, tmp)).Architecture


def test_transfer_keeps_shared_rows_and_reinitialises_new_ones(tiny_set: Path, tmp_path: Path) -> None:
    arch = _arch(tiny_set, tmp_path)
    torch.manual_seed(0)
    old_model = build_model(arch, OLD.num_classes)
    new = Charset([*"ab!", "X", "0"])
    torch.manual_seed(1)
    new_model = build_model(arch, new.num_classes)
    fresh = {k: v.clone() for k, v in new_model.state_dict().items()}
    report = transfer_weights(new_model, old_model.state_dict(), OLD, new, case_init=True)
    got, old = new_model.state_dict(), old_model.state_dict()
    w, ow, fw = got["head.fc.weight"], old["head.fc.weight"], fresh["head.fc.weight"]
    assert w.shape[0] == 6
    for new_cls, old_cls in [(0, 0), (1, OLD.encode("a")[0]), (2, OLD.encode("b")[0]), (4, OLD.encode("x")[0]),
                             (5, OLD.encode("0")[0])]:
        torch.testing.assert_close(w[new_cls], ow[old_cls])
        torch.testing.assert_close(got["head.fc.bias"][new_cls], old["head.fc.bias"][old_cls])
    torch.testing.assert_close(w[3], fw[3])  # "!" is new: the fresh initialisation stays
    assert report.mapped == ["<blank>", "a", "b", "0"] and report.case_mapped == ["X"] and report.reinit == ["!"]
    for k in old:
        if not k.startswith("head.fc."):
            torch.testing.assert_close(got[k], old[k], msg=k)
    assert len(report.kept) == len(old) - 2


def test_transfer_without_case_init_and_architecture_mismatch(tiny_set: Path, tmp_path: Path) -> None:
    arch = _arch(tiny_set, tmp_path)
    new = Charset(["X", "a"])
    report = transfer_weights(build_model(arch, 3), build_model(arch, OLD.num_classes).state_dict(), OLD, new)
    assert report.reinit == ["X"] and report.case_mapped == []
    arch.Neck.params["hidden_size"] = 16
    with pytest.raises(ValueError, match="neck"):
        transfer_weights(build_model(arch, 3), build_model(_arch(tiny_set, tmp_path), 37).state_dict(), OLD, new)


def test_finetune_to_95_symbols_with_frozen_backbone(tiny_set: Path, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    first = tiny_config(tiny_set, tmp_path / "a", max_steps=1, eval_batch_step=[0, 0])
    first["Eval"] = None
    train(config_from_dict(first))
    pre = checkpoint.load(tmp_path / "a" / "latest")["model"]
    second = tiny_config(tiny_set, tmp_path / "b", max_steps=2, eval_batch_step=[0, 0],
                         pretrained_model=str(tmp_path / "a" / "latest.pt"),
                         character_dict_path=str(DICTS_DIR / "en_95.txt"), freeze_backbone_steps=2)
    second["Eval"] = None
    with caplog.at_level(logging.INFO, logger="crnn.train"):
        train(config_from_dict(second))
    assert "37 mapped, 0 case-mapped" in caplog.text and "59 re-initialised" in caplog.text
    after = checkpoint.load(tmp_path / "b" / "latest")
    assert len(after["charset"]["chars"]) == 95 and after["model"]["head.fc.weight"].shape[0] == 96
    frozen = [k for k in pre if k.startswith("backbone.") and pre[k].is_floating_point() and "running" not in k]
    assert frozen
    for k in frozen:  # weights untouched for the first 2 steps (BN running statistics still adapt)
        torch.testing.assert_close(after["model"][k], pre[k], msg=k)
    assert not torch.equal(after["model"]["neck.encoder.lstm.weight_ih_l0"], pre["neck.encoder.lstm.weight_ih_l0"])


def test_shipped_dicts() -> None:
    c36 = Charset.from_config(str(DICTS_DIR / "en_36.txt"))
    assert c36 == Charset.from_config(None)  # same symbols, and lower-cases labels like the built-in set
    c95 = Charset.from_config(str(DICTS_DIR / "en_95.txt"))
    assert sorted(c95.chars) == sorted(string.printable[:95]) and not c95.lower
    assert c95.normalize("Hi, there!") == "Hi, there!"
    paddle = Charset.from_config(str(DICTS_DIR / "en_dict.txt"), use_space_char=True)
    assert paddle.num_classes == 97 and paddle.chars[:11] == [*"0123456789", ":"] and paddle.chars[-2:] == [" ", " "]
