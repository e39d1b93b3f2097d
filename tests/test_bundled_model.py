"""The bundled model: loads with no arguments, reads the README's example, and has not regressed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import crnn
from crnn.metrics import RecMetric, make_normalizer

from .conftest import ROOT, need_shared, run_without_torch

pytestmark = pytest.mark.skipif(not Path(crnn.DEFAULT_MODEL).is_file(), reason="no bundled model in this install")


def test_default_recognizer_reads_the_readme_example():
    (pred,) = crnn.Recognizer(num_threads=1)([ROOT / "docs" / "img" / "example_word.png"])
    assert pred.text == "welcome" and pred.confidence > 0.5


def test_accuracy_on_iiit5k_has_not_regressed():
    root = need_shared("data", "eval", "iiit5k")
    lines = (root / "labels.tsv").read_text(encoding="utf-8").splitlines()[::10]  # 300 crops
    paths, labels = zip(*(line.split("\t", 1) for line in lines), strict=True)
    # the model card's protocol (crnn eval's): the fixed 3x32x100, not predict's variable width
    # (docs/variable_width.md: 71.1% on all 3000 that way)
    preds = crnn.Recognizer(num_threads=1, dynamic_width=False)([root / p for p in paths])
    metric = RecMetric(make_normalizer(True, True, None))
    metric.update([p.text for p in preds], labels)
    # docs/model_card.md: 75.1% on all 3000 (75.0% on this subset, round 5); the margin is two
    # standard errors of a 300-crop sample, so a model that lost ~5 points fails here
    assert metric.compute()["acc"] > 0.70


def test_shipped_onnx_was_exported_from_the_shipped_checkpoint():
    # scripts/package_model.py writes both files; a .pt replaced without re-running it fails here.
    onnx = pytest.importorskip("onnx")
    import hashlib

    from crnn.onnx_backend import META_SOURCE_SHA256
    from crnn.predict import DEFAULT_ONNX_MODEL

    assert Path(DEFAULT_ONNX_MODEL).is_file(), "bundled ONNX model missing: run scripts/package_model.py"
    meta = {p.key: p.value for p in onnx.load(DEFAULT_ONNX_MODEL, load_external_data=False).metadata_props}
    pt_sha = hashlib.sha256(Path(crnn.DEFAULT_MODEL).read_bytes()).hexdigest()
    assert meta.get(META_SOURCE_SHA256) == pt_sha, (
        f"{DEFAULT_ONNX_MODEL} was exported from another checkpoint: run "
        "python scripts/package_model.py --onnx-only src/crnn/assets/crnn_mv3_en.pt src/crnn/assets/crnn_mv3_en.pt")
    assert Path(DEFAULT_ONNX_MODEL).stat().st_size < 1.2 * Path(crnn.DEFAULT_MODEL).stat().st_size  # fp16 weights


def test_default_recognizer_runs_the_onnx_form_with_the_same_strings():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    root = need_shared("data", "eval", "ic15")
    lines = (root / "labels.tsv").read_text(encoding="utf-8").splitlines()[::7]  # ~300 crops
    paths = [root / line.split("\t", 1)[0] for line in lines]
    fast = crnn.Recognizer(num_threads=1)
    assert fast.backend == "onnx"
    ref = crnn.Recognizer(crnn.DEFAULT_MODEL, num_threads=1)
    assert ref.backend == "torch"
    same = sum(a.text == b.text for a, b in zip(fast(paths), ref(paths), strict=True))
    assert same >= len(paths) - 1  # docs/deploy.md: 100% on all 6,952 eval images


def test_default_path_needs_no_torch():
    # The torch-free install (pip install 'crnn[onnx]') gets the fast default: a fresh interpreter
    # that refuses to import torch runs Recognizer() and `crnn predict` without --model.
    pytest.importorskip("onnxruntime")
    word = ROOT / "docs" / "img" / "example_word.png"
    run_without_torch(f"""
        import crnn
        from crnn.cli import main
        rec = crnn.Recognizer(num_threads=1)
        assert rec.backend == "onnx", rec.backend
        assert rec([{str(word)!r}])[0].text == "welcome"
        assert main(["predict", "--threads", "1", {str(word)!r}]) == 0
    """, ROOT)


@pytest.mark.slow
def test_model_card_numbers_come_from_the_bundled_model(tmp_path: Path) -> None:
    # The model card's command, on the four visible sets, must give the committed
    # docs/bench/bundled_eval.json: the README and model card quote it, and issue 14 asks for a mean >= 75.
    eval_dir = need_shared("data", "eval")
    sets = [str(eval_dir / "iiit5k"), f"{eval_dir / 'ic13'}:labels_1015.tsv", str(eval_dir / "ic15"),
            str(eval_dir / "ic03")]
    out = tmp_path / "eval.json"
    subprocess.run([sys.executable, "-m", "crnn", "eval", "--checkpoint", crnn.DEFAULT_MODEL, "--sets", *sets,
                    "--json", str(out)], cwd=ROOT, check=True, capture_output=True)
    got, doc = json.loads(out.read_text()), json.loads((ROOT / "docs" / "bench" / "bundled_eval.json").read_text())
    for name, row in doc["sets"].items():
        # one or two images may flip on another CPU's float rounding; more means the docs are stale
        assert abs(got["sets"][name]["acc"] - row["acc"]) <= 2.5 / row["count"], name
        assert got["sets"][name]["count"] == row["count"] and got["sets"][name]["skipped"] == 0
    assert got["mean"]["acc"] >= 0.75
