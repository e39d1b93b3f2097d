"""End to end on a tiny PIL-drawn set: train -> resume equivalence -> eval -> predict."""

import json
from pathlib import Path

import pytest
import torch

from crnn import Recognizer, checkpoint
from crnn.cli import main
from crnn.config import config_from_dict
from crnn.train import train

from .conftest import draw_word, tiny_config


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(path)["model"]


@pytest.mark.slow
def test_resume_continues_exactly(tiny_set: Path, tmp_path: Path):
    # 6 steps straight vs 3 steps, then resume for 3 more (mid-epoch: 24 samples / batch 8 = 3 per epoch
    # would end the epoch, so use batch 4 -> 6 batches per epoch).
    base = tiny_config(tiny_set, tmp_path / "a", max_steps=6, eval_batch_step=[0, 0])
    base["Train"]["loader"]["batch_size_per_card"] = 4
    base["Eval"] = None
    train(config_from_dict(base))
    half = tiny_config(tiny_set, tmp_path / "b", max_steps=3, eval_batch_step=[0, 0])
    half["Train"]["loader"]["batch_size_per_card"] = 4
    half["Eval"] = None
    train(config_from_dict(half))
    state = checkpoint.load(tmp_path / "b" / "latest")
    assert state["step"] == 3 and state["epoch_samples"] == 12 and state["charset"]["chars"][0] == "0"
    train(config_from_dict(half, ["Global.max_steps=6", f"Global.checkpoints={tmp_path / 'b' / 'latest'}"]))
    a, b = _weights(tmp_path / "a" / "latest.pt"), _weights(tmp_path / "b" / "latest.pt")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)


@pytest.mark.slow
def test_warm_restart_averages_from_pretrained_weights(tiny_set: Path, tmp_path: Path):
    # The EMA must start from the loaded weights, not from the random init they replace.
    from crnn.distributed import DistInfo
    from crnn.train import Trainer

    first = tiny_config(tiny_set, tmp_path / "a", max_steps=2, eval_batch_step=[0, 0])
    first["Eval"] = None
    train(config_from_dict(first))
    pretrained = _weights(tmp_path / "a" / "latest.pt")
    overrides = [f"Global.pretrained_model={tmp_path / 'a' / 'latest.pt'}",
                 f"Global.save_model_dir={tmp_path / 'b'}", "Global.ema_decay=0.999"]
    cfg = config_from_dict(first, overrides)
    trainer = Trainer(cfg, DistInfo())
    assert trainer.ema is not None
    for k, v in pretrained.items():
        avg = trainer.ema.state_dict()[k]
        torch.testing.assert_close(avg, v.to(avg.dtype), msg=k)

    # A recipe that names its starting weights by content refuses other bytes at the same path.
    digest = checkpoint.file_sha256(tmp_path / "a" / "latest.pt")
    Trainer(config_from_dict(first, [*overrides, f"Global.pretrained_sha256={digest}"]), DistInfo())
    with pytest.raises(ValueError, match="is not Global.pretrained_sha256 " + "f" * 12):
        Trainer(config_from_dict(first, [*overrides, "Global.pretrained_sha256=" + "f" * 64]), DistInfo())


def test_checkpoint_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    checkpoint.save(tmp_path / "ck", {"model": {"w": torch.ones(2)}, "config": {}, "charset": {}})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        checkpoint.save(tmp_path / "ck", {"model": {"w": torch.zeros(2)}, "config": {}, "charset": {}})
    assert torch.equal(checkpoint.load(tmp_path / "ck")["model"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temp file left behind


@pytest.mark.slow
def test_train_eval_predict_cli(tiny_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    import yaml

    out = tmp_path / "run"
    cfg_path = tmp_path / "tiny.yml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(tiny_set, out, max_steps=8)))
    assert main(["train", "-c", str(cfg_path), "-o", "Global.print_batch_step=2"]) == 0
    for name in ("latest.pt", "best_accuracy.pt", "metrics.jsonl", "train_curves.png"):
        assert (out / name).is_file(), name

    json_path, errors_path = tmp_path / "eval.json", tmp_path / "errors.tsv"
    assert main(["eval", "-c", str(cfg_path), "--checkpoint", str(out / "best_accuracy"),
                 "--json", str(json_path), "--errors", str(errors_path)]) == 0
    table = capsys.readouterr().out
    assert "mean (sets)" in table and "total" in table and json_path.is_file()
    total = json.loads(json_path.read_text())["total"]
    header, *rows = errors_path.read_text().splitlines()
    assert header.split("\t") == ["set", "image", "label", "prediction", "confidence"]
    assert len(rows) == round(total["count"] * (1 - total["acc"]))
    assert all(len(r.split("\t")) == 5 and r.split("\t")[2] != r.split("\t")[3] for r in rows)
    assert main(["eval", "--checkpoint", str(out / "latest.pt"), "--sets", str(tiny_set), str(tiny_set)]) == 0
    assert capsys.readouterr().out.count(tiny_set.name) == 2

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["predict", "--checkpoint", str(out / "latest.pt"), str(tiny_set / "images"), str(bad)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 24 and all(len(line.split("\t")) == 3 for line in lines)
    assert "bad.png" in captured.err

    rec = Recognizer.from_checkpoint(out / "latest.pt")
    img = draw_word("road")
    import numpy as np

    preds = rec([img, np.asarray(img), tiny_set / "images" / "000.png"])
    assert len(preds) == 3 and preds[0] == preds[1]
    assert all(0.0 <= p.confidence <= 1.0 for p in preds)


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["train", "-c", str(tmp_path / "missing.yml")]) == 2
    assert "missing.yml" in capsys.readouterr().err
    cfg = tmp_path / "c.yml"
    cfg.write_text("Global:\n  epoch_nmu: 3\n")
    assert main(["train", "-c", str(cfg)]) == 2
    assert "Global.epoch_nmu" in capsys.readouterr().err


def test_ema_warms_up_then_averages():
    from crnn.ema import EMA

    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.999)
    torch.nn.init.ones_(model.weight)
    ema.update(model)  # first update: decay min(0.999, 2/11), so the average moves most of the way
    assert ema.module.weight.item() == pytest.approx(1 - 2 / 11)
    for _ in range(20_000):
        ema.update(model)
    assert ema.module.weight.item() == pytest.approx(1.0, abs=1e-6)
