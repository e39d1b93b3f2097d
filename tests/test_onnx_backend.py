"""The torch-free ONNX back end: no torch import, clear errors for bad files, metadata parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from crnn.onnx_backend import META_CHARSET, META_IMAGE_SHAPE, onnx_runner, parse_metadata  # noqa: E402

from .conftest import ROOT, run_without_torch  # noqa: E402


@pytest.fixture(scope="module")
def tiny_onnx(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from crnn.export import export_onnx

    from .test_export import make_checkpoint

    out = tmp_path_factory.mktemp("onnx_backend")
    return Path(export_onnx(make_checkpoint(tiny_set, out), out / "tiny.onnx", check=False)["onnx"])


@pytest.mark.slow
def test_recognizing_with_onnx_never_imports_torch(tiny_onnx: Path, tiny_set: Path) -> None:
    # A fresh interpreter whose import system refuses torch: any torch import on this path fails the run.
    run_without_torch(f"""
        from crnn import Recognizer
        from crnn.cli import main
        rec = Recognizer({str(tiny_onnx)!r}, num_threads=1, batch_size=4)
        preds = rec(sorted(__import__("glob").glob({str(tiny_set / "images" / "*.png")!r})))
        assert len(preds) == 24, preds
        assert main(["predict", "--model", {str(tiny_onnx)!r}, "--threads", "1",
                     {str(tiny_set / "images" / "001.png")!r}]) == 0
        assert main(["predict", "--model", {str(tiny_onnx)!r}, "--threads", "1", "--decoder", "beam",
                     "--allow", "abcdefgh", "--format", "jsonl", {str(tiny_set / "images" / "001.png")!r}]) == 0
    """, ROOT)


def test_garbage_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"this is not a protobuf at all" * 10)
    with pytest.raises(ValueError, match=r"garbage\.onnx"):
        onnx_runner(bad)


def test_truncated_file_names_the_file(tiny_onnx: Path, tmp_path: Path) -> None:
    cut = tmp_path / "truncated.onnx"
    data = tiny_onnx.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated\.onnx"):
        onnx_runner(cut)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.onnx"):
        onnx_runner(tmp_path / "nope.onnx")


def test_onnx_without_crnn_metadata(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 3, 32, "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 3, 32, "W"])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "plain", [x], [y])
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ValueError, match=r"plain\.onnx has no crnn metadata"):
        onnx_runner(path)


def test_parse_metadata_rejects_bad_values() -> None:
    good = {"crnn.format_version": "1", META_CHARSET: json.dumps({"chars": list("ab"), "lower": True}),
            META_IMAGE_SHAPE: "[3, 32, 100]", "crnn.img_mode": "BGR"}
    meta = parse_metadata(good, "m.onnx")
    assert meta["charset"].chars == ["a", "b"] and meta["charset"].lower and meta["backend"] == "onnx"
    with pytest.raises(ValueError, match=r"m\.onnx.*image_shape"):
        parse_metadata({**good, META_IMAGE_SHAPE: "[32, 100]"}, "m.onnx")
    with pytest.raises(ValueError, match=r"m\.onnx.*img_mode"):
        parse_metadata({**good, "crnn.img_mode": "HSV"}, "m.onnx")
    with pytest.raises(ValueError, match=r"m\.onnx.*format"):
        parse_metadata({**good, "crnn.format_version": "99"}, "m.onnx")
    with pytest.raises(ValueError, match=r"m\.onnx.*malformed"):
        parse_metadata({**good, META_CHARSET: "{not json"}, "m.onnx")
