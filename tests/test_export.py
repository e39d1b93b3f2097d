"""ONNX export: parity with PyTorch (random inputs, tiny crops, real crops), metadata, int8, CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from crnn import checkpoint  # noqa: E402
from crnn.charset import Charset  # noqa: E402
from crnn.config import config_from_dict  # noqa: E402
from crnn.data.preprocess import Preprocess  # noqa: E402
from crnn.models import build_model  # noqa: E402

from .conftest import need_shared, tiny_config  # noqa: E402

torch.set_num_threads(1)


def make_checkpoint(tiny: Path, out: Path) -> Path:
    """A randomly initialised mv3 checkpoint (parity does not need trained weights)."""
    torch.manual_seed(0)
    cfg = config_from_dict(tiny_config(tiny, out))
    charset = Charset.from_config(None)
    model = build_model(cfg.Architecture, charset.num_classes)
    # Non-trivial BN statistics, so that folding BN into the convolutions is exercised.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return checkpoint.save(out / "tiny", {"model": model.state_dict(), "config": cfg.to_dict(),
                                          "charset": charset.to_dict()})


@pytest.fixture(scope="module")
def exported(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    from crnn.export import export_onnx

    out = tmp_path_factory.mktemp("export")
    ckpt = make_checkpoint(tiny_set, out)
    res = export_onnx(ckpt, out / "tiny.onnx")
    return ckpt, Path(res["onnx"]), res


def test_export_verifies_dynamic_batch_and_width(exported: tuple[Path, Path, dict]) -> None:
    from crnn.export import ATOL, verify
    from crnn.torch_backend import load_model

    ckpt, onnx_path, res = exported
    assert res["max_abs_diff"] is not None and res["max_abs_diff"] < ATOL
    model, _, _ = load_model(ckpt)
    # batch sizes and widths the export itself did not check
    assert verify(onnx_path, model, [3, 32, 100], batches=(2, 5), widths=(64, 200)) < ATOL


def test_verify_catches_a_wrong_model(exported: tuple[Path, Path, dict]) -> None:
    from crnn.export import verify
    from crnn.torch_backend import load_model

    ckpt, onnx_path, _ = exported
    model, _, _ = load_model(ckpt)
    with torch.no_grad():
        model.head.fc.bias += 0.01
    with pytest.raises(RuntimeError, match="Δlogit"):
        verify(onnx_path, model, [3, 32, 100], batches=(1,), widths=(100,))


def test_metadata_round_trip(exported: tuple[Path, Path, dict]) -> None:
    from crnn.export import read_metadata
    from crnn.onnx_backend import onnx_runner, parse_metadata

    ckpt, onnx_path, _ = exported
    props = read_metadata(onnx_path)
    meta = parse_metadata(props, str(onnx_path))
    state = checkpoint.load(ckpt)
    assert meta["charset"] == Charset.from_dict(state["charset"])
    assert meta["preprocess"] == Preprocess()  # the tiny config's Eval transforms: [3, 32, 100], BGR, padded
    assert json.loads(props["crnn.preprocess"]) == Preprocess().to_dict()  # the whole spec, for other runtimes
    assert json.loads(props["crnn.image_shape"]) == [3, 32, 100] and props["crnn.img_mode"] == "BGR"  # older readers
    run, meta2 = onnx_runner(onnx_path, num_threads=1)
    assert meta2["charset"] == meta["charset"]
    assert run(np.zeros((2, 3, 32, 48), np.float32)).shape == (2, 12, 37)


def _same_predictions(a: list, b: list, atol: float = 1e-4) -> None:
    assert [p.text for p in a] == [p.text for p in b]
    assert np.allclose([p.confidence for p in a], [p.confidence for p in b], atol=atol)


@pytest.mark.parametrize("dynamic_width", [False, True])
def test_recognizer_parity_on_tiny_crops(exported: tuple[Path, Path, dict], tiny_set: Path,
                                         dynamic_width: bool) -> None:
    from crnn import Recognizer

    ckpt, onnx_path, _ = exported
    images = sorted((tiny_set / "images").glob("*.png"))
    kw = {"num_threads": 1, "batch_size": 5, "dynamic_width": dynamic_width}
    _same_predictions(Recognizer(ckpt, **kw)(images), Recognizer(onnx_path, **kw)(images))


def test_recognizer_parity_on_real_crops(exported: tuple[Path, Path, dict]) -> None:
    from crnn import Recognizer

    root = need_shared("data", "eval", "iiit5k")
    lines = (root / "labels.tsv").read_text(encoding="utf-8").splitlines()[:12]
    images = [root / ln.split("\t", 1)[0] for ln in lines]
    ckpt, onnx_path, _ = exported
    _same_predictions(Recognizer(ckpt, num_threads=1)(images), Recognizer(onnx_path, num_threads=1)(images))


def test_batch_widths(exported: tuple[Path, Path, dict], caplog: pytest.LogCaptureFixture) -> None:
    from crnn import Recognizer

    _, onnx_path, _ = exported
    narrow, wide, huge = (np.zeros((32, w, 3), np.uint8) for w in (40, 150, 2000))
    assert not Recognizer(onnx_path, num_threads=1).dynamic_width  # the default: the training width
    rec = Recognizer(onnx_path, num_threads=1, dynamic_width=True)
    assert rec.preprocess([narrow]).shape[3] == 100  # never below the training width
    assert rec.preprocess([narrow, wide]).shape[3] == 150  # the widest image's int(H * w / h)
    assert rec.preprocess([huge]).shape[3] == 800  # capped at H * MAX_WH_RATIO
    with caplog.at_level("WARNING", logger="crnn.predict"):
        rec.recognize_arrays([narrow, huge])
    assert "1 of 2 images are wider than MAX_WH_RATIO = 25 (w/h): squeezed to 800 px" in caplog.text
    assert Recognizer(onnx_path, num_threads=1, dynamic_width=False).preprocess([wide]).shape[3] == 100


def test_int8_dynamic_and_static(exported: tuple[Path, Path, dict], tiny_set: Path) -> None:
    from crnn import Recognizer
    from crnn.quantize import quantize

    _, onnx_path, _ = exported
    images = sorted((tiny_set / "images").glob("*.png"))
    for mode in ("dynamic", "static"):
        q = quantize(onnx_path, onnx_path.with_name(f"tiny.{mode}.onnx"), mode, calib=str(tiny_set / "labels.tsv"),
                     count=8)
        assert os.path.getsize(q) < os.path.getsize(onnx_path)
        preds = Recognizer(q, num_threads=1)(images)  # metadata survived quantization
        assert len(preds) == len(images)
    with pytest.raises(ValueError, match="calib"):
        quantize(onnx_path, onnx_path.with_name("x.onnx"), "static")


def test_cli_export_and_predict(exported: tuple[Path, Path, dict], tiny_set: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from crnn.cli import main

    ckpt, _, _ = exported
    out = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    assert "verified" in capsys.readouterr().out
    assert main(["predict", "--model", str(out), "--threads", "1", str(tiny_set / "images" / "000.png")]) == 0
    assert "000.png" in capsys.readouterr().out


def test_count_macs_matches_hand_count() -> None:
    from crnn import build_model_from_config
    from crnn.bench import count_macs

    from .conftest import ROOT

    model = build_model_from_config(str(ROOT / "configs" / "rec" / "rec_mv3_none_bilstm_ctc.yml")).eval()
    macs = count_macs(model, [3, 32, 100])
    # T = 25 steps; BiLSTM hidden 96 on 480 backbone channels, then on 192; head 192 -> 37
    assert macs["lstm"] == 2 * 25 * 4 * 96 * ((480 + 96) + (192 + 96))
    assert macs["linear"] == 25 * 192 * 37
    assert macs["total"] == macs["conv"] + macs["lstm"] + macs["linear"] and macs["conv"] > 10**7
