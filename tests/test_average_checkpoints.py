"""scripts/average_checkpoints.py: the uniform weight average that scripts/package_model.py then packages."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from crnn import checkpoint
from crnn.charset import Charset
from crnn.config import Config
from crnn.models import build_model

from .conftest import ROOT


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def save_model(path: Path, seed: int, charset: Charset) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    cfg = Config()
    model = build_model(cfg.Architecture, charset.num_classes)
    for m in model.modules():  # distinct BN statistics, so that their average is checked too
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.num_batches_tracked.fill_(seed)
    checkpoint.save(path, {"model": model.state_dict(), "config": cfg.to_dict(), "charset": charset.to_dict(),
                           "step": seed})
    return model.state_dict()


def test_average_is_the_mean_of_float_tensors_and_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    avg = load_script("average_checkpoints")
    charset = Charset.from_config(None)
    a = save_model(tmp_path / "a.pt", 1, charset)
    b = save_model(tmp_path / "b.pt", 2, charset)
    monkeypatch.setattr(sys, "argv", ["average_checkpoints", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"),
                                      "--out", str(tmp_path / "soup.pt")])
    avg.main()
    soup = checkpoint.load(tmp_path / "soup.pt")
    for k, v in a.items():
        if v.is_floating_point():
            torch.testing.assert_close(soup["model"][k], (v + b[k]) / 2)
        else:  # integer buffers come from the first file
            assert torch.equal(soup["model"][k], v)
    assert soup["averaged_from"] == ["a.pt", "b.pt"] and soup["step"] == 1
    # scripts/package_model.py takes it as it takes a training checkpoint, and records where it came from
    load_script("package_model").package(str(tmp_path / "soup.pt"), str(tmp_path / "packaged.pt"))
    packaged = checkpoint.load(tmp_path / "packaged.pt")
    assert packaged["provenance"]["averaged_from"] == ["a.pt", "b.pt"]
    assert packaged["model"]["head.fc.weight"].dtype == torch.float16


def test_average_refuses_another_charset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    avg = load_script("average_checkpoints")
    save_model(tmp_path / "a.pt", 1, Charset.from_config(None))
    (tmp_path / "dict.txt").write_text("".join(f"{c}\n" for c in "0123456789abcdefghijklmnopqrstuvwxyz-"))
    save_model(tmp_path / "b.pt", 2, Charset.from_config(str(tmp_path / "dict.txt")))
    monkeypatch.setattr(sys, "argv", ["average_checkpoints", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"),
                                      "--out", str(tmp_path / "soup.pt")])
    with pytest.raises(SystemExit, match="another charset"):
        avg.main()
    assert not (tmp_path / "soup.pt").exists()
