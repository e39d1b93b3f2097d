"""Calibration: ECE, rejection curve, temperature fitting stored in the checkpoint and the ONNX metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crnn import DEFAULT_MODEL, Recognizer, checkpoint
from crnn.calibration import fit_temperature, rejection, reliability, word_nll
from crnn.cli import main
from crnn.onnx_backend import META_TEMPERATURE, parse_metadata


def test_ece_and_rejection_by_hand() -> None:
    rel = reliability([0.95, 0.95, 0.05, 0.05], [True, False, False, False])
    assert rel["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    assert [b["count"] for b in rel["bins"]] == [2, 2]
    rej = rejection([0.9, 0.8, 0.2, 0.1], [True, True, False, True], fractions=(0.0, 0.5))
    assert rej == {"0%": 0.75, "50%": 1.0}


def test_fit_temperature_finds_the_calibrating_one() -> None:
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.2, 1.0, size=4000)
    right = (rng.random(4000) < true_p).astype(float)

    def score(t: float) -> tuple[np.ndarray, np.ndarray]:
        return true_p ** (1.0 / (2.0 * t)), right  # over-confident by a power of 2 at t = 1: t = 0.5 undoes it

    t, losses = fit_temperature(score)
    assert t == pytest.approx(0.5, abs=0.051)
    assert word_nll(*score(t)) < word_nll(*score(1.0))
    assert set(losses) >= {"0.5", "1", "3"}


def test_calibrate_stores_the_temperature_everywhere(tiny_set: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "calibrated.pt"
    assert main(["calibrate", "--checkpoint", DEFAULT_MODEL, "--out", str(out), "--sets", str(tiny_set)]) == 0
    t = float(capsys.readouterr().out.split()[1])
    state = checkpoint.load(out)
    assert state["config"]["PostProcess"]["temperature"] == t
    rec = Recognizer(out)
    assert rec.decoder.cfg.temperature == t
    assert [p.text for p in rec([str(tiny_set / "images" / "001.png")])] == \
        [p.text for p in Recognizer()([str(tiny_set / "images" / "001.png")])]  # the reading never changes
    report = tmp_path / "report"
    assert main(["eval", "--checkpoint", str(out), "--sets", str(tiny_set), "--calibration", str(report)]) == 0
    cal = json.loads((report / "calibration.json").read_text())
    assert cal["temperature"] == t and set(cal["sets"]["total"]["reject"]) >= {"0%", "10%"}
    assert (report / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_onnx_metadata_carries_the_temperature() -> None:
    good = {"crnn.format_version": "1", "crnn.charset": json.dumps({"chars": list("ab"), "lower": False}),
            "crnn.image_shape": "[3, 32, 100]", "crnn.img_mode": "BGR"}
    assert parse_metadata(good, "m.onnx")["postprocess"] is None
    assert parse_metadata({**good, META_TEMPERATURE: "1.35"}, "m.onnx")["postprocess"].temperature == 1.35
    with pytest.raises(ValueError, match="temperature"):
        parse_metadata({**good, META_TEMPERATURE: "hot"}, "m.onnx")
