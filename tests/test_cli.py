"""The ``crnn`` command line: help texts, defaults, and user mistakes refused before torch loads."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import crnn
from crnn.cli import build_parser, main
from crnn.predict import default_model
from tests.conftest import ROOT


def _options_without_help(parser: argparse.ArgumentParser, name: str = "crnn") -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb, sub in action.choices.items():
                missing += _options_without_help(sub, f"{name} {verb}")
        elif not action.help and action.dest != "help":
            missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_has_help() -> None:
    assert _options_without_help(build_parser()) == []


def test_help_shows_defaults_and_what_eval_needs(capsys: pytest.CaptureFixture[str]) -> None:
    for verb in ("serve", "eval"):
        assert main([verb, "--help"]) == 0  # main returns argparse's exit code
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "(default 127.0.0.1: this machine only" in out and "TCP port (default 8000)" in out
    assert "default the bundled model" in out and "--sets DIR" in out and "Eval section" in out


def _run_without_torch(argv: list[str]) -> tuple[int, str, bool]:
    """(exit code, stderr, whether torch was imported) of ``crnn ARGV`` in a fresh interpreter."""
    code = ("import json, sys\nfrom crnn.cli import main\nrc = main(sys.argv[1:])\n"
            "print(json.dumps([rc, 'torch' in sys.modules]))")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    rc, imported = json.loads(r.stdout.strip().splitlines()[-1])
    return rc, r.stderr, imported


@pytest.mark.parametrize(("argv", "names"), [
    (["eval", "--sets", "/nonexistent"], ["/nonexistent", "no such folder"]),
    (["eval", "--checkpoint", "/nonexistent.pt"], ["/nonexistent.pt", "not found"]),
    (["eval", "-c", "/nonexistent.yml"], ["/nonexistent.yml", "not found"]),
    (["predict", "/nonexistent.png"], ["/nonexistent.png"]),
    (["calibrate", "--checkpoint", "/nonexistent.pt", "--out", "x.pt"], ["/nonexistent.pt", "not found"]),
    (["export", "--checkpoint", "/nonexistent.pt", "--out", "x.onnx"], ["/nonexistent.pt", "not found"]),
    (["convert", "paddle", "-c", "/nonexistent.yml", "--params", "p", "--out", "o"], ["/nonexistent.yml"]),
    (["convert", "paddle", "-c", "configs/rec/rec_mv3_none_bilstm_ctc.yml", "--params", "/nonexistent", "--out", "o"],
     ["/nonexistent", "not found"]),
    (["bench", "--data", "/nonexistent"], ["/nonexistent", "no such folder"]),
])
def test_mistakes_refused_before_torch_loads(argv: list[str], names: list[str]) -> None:
    rc, err, imported = _run_without_torch(argv)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc != 0 and len(lines) == 1 and "Traceback" not in err, err
    assert all(n in lines[0] for n in names), lines[0]
    assert not imported, f"torch was imported before refusing {argv}"


def test_sets_folder_without_labels_or_lmdb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--sets", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no label file" in err and str(tmp_path / "labels.tsv") in err


@pytest.mark.skipif(not Path(crnn.DEFAULT_MODEL).is_file(), reason="no bundled model in this install")
def test_eval_without_checkpoint_uses_the_bundled_model(tiny_set: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "eval.json"
    with caplog.at_level("INFO", logger="crnn"):
        assert main(["eval", "--sets", str(tiny_set), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    # the bundled model in its fastest available form (the ONNX file when onnxruntime is installed)
    assert Path(result["checkpoint"]) == Path(default_model())
    assert result["total"]["count"] == 24
    assert result["total"]["acc"] > 0.5  # the bundled model reads most of the tiny set's printed words
    assert f"evaluating {default_model()}" in caplog.text
