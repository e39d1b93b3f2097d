"""The inference fast path: batch preprocessing equals the reference, thread defaults, graph rewrites."""

from __future__ import annotations

import numpy as np
import pytest

from crnn.data.transforms import resize_norm, resize_norm_batch, to_model_order
from crnn.threads import available_cores, default_threads


@pytest.mark.parametrize("mode", ["BGR", "RGB"])
@pytest.mark.parametrize("shape", [(3, 32, 100), (1, 32, 100), (3, 48, 320)])
def test_batch_preprocessing_is_bit_identical_to_resize_norm(mode: str, shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(0)
    sizes = [(32, 53), (25, 70), (50, 114), (39, 130), (21, 281), (1, 1), (400, 30), (7, 900)]
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    want = np.stack([resize_norm(to_model_order(im, mode), shape) for im in images])
    got = resize_norm_batch(images, shape, mode)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))  # bit for bit, padding included


def test_batch_preprocessing_rejects_empty_images() -> None:
    with pytest.raises(ValueError, match="cannot be resized"):
        resize_norm_batch([np.zeros((0, 5, 3), np.uint8)], (3, 32, 100))


def test_default_threads_stay_within_the_available_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    cores = available_cores()
    assert 1 <= default_threads() <= cores
    monkeypatch.setattr("os.getloadavg", lambda: (0.2, 0.0, 0.0))
    assert default_threads() == cores  # idle machine: every available core
    monkeypatch.setattr("os.getloadavg", lambda: (cores + 3.0, 0.0, 0.0))
    assert default_threads() == 1  # saturated: one thread, never oversubscribe


def test_graph_rewrites_keep_the_logits(tiny_set, tmp_path) -> None:
    pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from crnn.export import export_onnx

    from .test_export import make_checkpoint

    ckpt = make_checkpoint(tiny_set, tmp_path)
    res = export_onnx(ckpt, tmp_path / "m.onnx", fp16_weights=True)  # verify() compares with PyTorch
    assert res["max_abs_diff"] < 1e-3
    ops = {n.op_type for n in onnx.load(res["onnx"]).graph.node}
    assert "ReduceMean" not in ops and "HardSigmoid" in ops and "GlobalAveragePool" in ops
    ort.InferenceSession(res["onnx"], providers=["CPUExecutionProvider"])


def test_eval_measures_every_form_of_a_model_by_the_same_command(tiny_set, tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import json

    from crnn.cli import main
    from crnn.export import export_onnx

    from .test_export import make_checkpoint

    ckpt = make_checkpoint(tiny_set, tmp_path)
    onnx_path = export_onnx(ckpt, tmp_path / "m.onnx", int8="dynamic")
    results = {}
    for name, args in {"pt": ["--checkpoint", str(ckpt)], "onnx": ["--model", onnx_path["onnx"]],
                       "int8": ["--model", onnx_path["int8"]]}.items():
        out = tmp_path / f"{name}.json"
        assert main(["eval", *args, "--sets", str(tiny_set), "--threads", "1", "--json", str(out)]) == 0
        results[name] = json.loads(out.read_text())
    assert results["onnx"]["checkpoint"].endswith("m.onnx")
    for name in ("onnx", "int8"):
        assert results[name]["total"]["count"] == results["pt"]["total"]["count"] == 24
    # fp32 ONNX and PyTorch compute the same logits (1e-5): the same table
    assert results["onnx"]["total"]["norm_edit_dis"] == pytest.approx(results["pt"]["total"]["norm_edit_dis"], abs=0.02)
    assert "mean (sets)" in capsys.readouterr().out
