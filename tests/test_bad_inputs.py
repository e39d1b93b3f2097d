"""Bad inputs across the CLI, the Python API and training: each gets a one-line error naming it.

Every case asserts the exit code (or exception), that exactly one ``error:`` line is printed and no
traceback, and that the message names the file, key or limit at fault. The service and the C++
program have their own module (test_bad_inputs_serve.py). The kinds are counted in docs/reliability.md.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from crnn import Recognizer, checkpoint
from crnn.cli import main
from crnn.data.images import MAX_PIXELS, array_to_bgr, decode_image
from crnn.predict import DEFAULT_MODEL, load_image
from tests.conftest import ROOT, draw_word, tiny_config
from tests.test_export import make_checkpoint
from tests.test_serve import png_header

torch.set_num_threads(1)


class Payload:
    """Unpickling this runs code: it writes ``marker`` (what a hostile model file would do)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"open({self.marker!r}, 'w').write('payload ran')",)


def one_error(capsys: pytest.CaptureFixture[str], *names: object) -> str:
    """The single ``error:`` line printed to stderr; asserts no traceback and that it names ``names``."""
    return error_line(capsys.readouterr().err, *names)


def error_line(err: str, *names: object) -> str:
    """The single ``error:`` line of ``err``; asserts no traceback and that it names each of ``names``."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    for name in names:
        assert str(name).lower() in lines[0].lower(), (name, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def good_ckpt(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tiny_set, tmp_path_factory.mktemp("good"))


@pytest.fixture()
def hostile(good_ckpt: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(malicious checkpoint, marker file its payload would create): a working model plus a payload."""
    marker = tmp_path / "PAYLOAD_RAN"
    state = torch.load(good_ckpt, weights_only=True)
    state["provenance"] = {"note": Payload(marker)}
    bad = tmp_path / "hostile.pt"
    torch.save(state, bad)
    return bad, marker


# ---------------------------------------------------------------- model files

def test_the_payload_is_real(hostile: tuple[Path, Path]) -> None:
    """Guard against a test that cannot fail: unpickling the file the unsafe way does run the payload."""
    bad, marker = hostile
    torch.load(bad, weights_only=False)
    assert marker.is_file()


def test_hostile_model_refused_by_recognizer(hostile: tuple[Path, Path]) -> None:
    bad, marker = hostile
    with pytest.raises(ValueError, match="refused") as e:
        Recognizer(bad)
    assert str(bad) in str(e.value) and "(exec)" in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize("verb", ["predict --checkpoint", "predict --model", "eval", "export", "serve",
                                  pytest.param("pretrained", marks=pytest.mark.slow), "resume"])
def test_hostile_model_refused_by_every_cli_entry_point(verb: str, hostile: tuple[Path, Path], tiny_set: Path,
                                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad, marker = hostile
    img = tiny_set / "images" / "000.png"
    if verb.startswith("predict"):
        argv = ["predict", verb.split()[1], str(bad), str(img)]
    elif verb == "eval":
        argv = ["eval", "--checkpoint", str(bad), "--sets", str(tiny_set)]
    elif verb == "export":
        argv = ["export", "--checkpoint", str(bad), "--out", str(tmp_path / "m.onnx")]
    elif verb == "serve":
        argv = ["serve", "--model", str(bad), "--port", "0"]
    else:
        key = "pretrained_model" if verb == "pretrained" else "checkpoints"
        cfg = tmp_path / "c.yml"
        cfg.write_text(yaml.safe_dump(tiny_config(tiny_set, tmp_path / "out", max_steps=1, **{key: str(bad)})))
        argv = ["train", "-c", str(cfg)]
    assert main(argv) == 2
    one_error(capsys, bad, "refused")
    assert not marker.exists(), f"the payload ran through {verb}"


def test_bundled_model_and_old_numpy_rng_checkpoints_still_load(tmp_path: Path) -> None:
    # the bundled .pt through the safe loader (Recognizer() itself now runs its ONNX form)
    assert Recognizer(DEFAULT_MODEL, num_threads=1).backend == "torch"
    old = {"model": {}, "config": {}, "charset": {}, "rng": {"numpy": np.random.get_state()}}
    torch.save(old, tmp_path / "old.pt")  # the RNG layout of checkpoints before this version
    assert checkpoint.load(tmp_path / "old.pt")["rng"]["numpy"][0] == "MT19937"


def test_corrupt_model_file(tmp_path: Path, tiny_set: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip" * 10)
    assert main(["predict", "--checkpoint", str(bad), str(tiny_set / "images" / "000.png")]) == 2
    one_error(capsys, bad, "not a readable crnn checkpoint")


def test_checkpoint_that_does_not_fit(good_ckpt: Path, tmp_path: Path, tiny_set: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    state = checkpoint.load(good_ckpt)
    state["charset"] = {"chars": list("abc"), "lower": True}  # 4 classes; the weights have 37
    bad = checkpoint.save(tmp_path / "misfit.pt", state)
    assert main(["predict", "--checkpoint", str(bad), str(tiny_set / "images" / "000.png")]) == 2
    one_error(capsys, bad, "does not fit", "shapes differ")


def test_missing_model(tmp_path: Path, tiny_set: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(tmp_path / "nope.pt"), str(tiny_set / "images" / "000.png")]) == 2
    one_error(capsys, tmp_path / "nope.pt", "not found")


# ---------------------------------------------------------------- configs

@pytest.mark.parametrize("kind,text,expect", [
    ("malformed", "Global: {epoch_num: [1, 2\n", "malformed YAML at line"),
    ("empty", "# nothing here\n", "is empty"),
    ("not-utf8", "Global:\n  seed: 1\n\xff\xfe", "not a text"),
    ("top-level list", "- a\n- b\n", "top level must be a mapping"),
    ("unknown key", "Global:\n  epoch_nmu: 3\n", "Global.epoch_nmu"),
    ("negative max_steps", "Global:\n  max_steps: -5\n", "Global.max_steps: must be > 0"),
    ("zero batch", "Train:\n  dataset: {name: SimpleDataSet}\n  loader: {batch_size_per_card: 0}\n",
     "Train.loader.batch_size_per_card: must be > 0"),
    ("negative eval step", "Global:\n  eval_batch_step: [0, -1]\n", "Global.eval_batch_step[1]"),
    ("bad image_shape", "Eval:\n  dataset:\n    transforms:\n      - RecResizeImg: {image_shape: [3, 0, 100]}\n",
     "image_shape"),
])
def test_bad_config(kind: str, text: str, expect: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / f"{kind.replace(' ', '_')}.yml"
    cfg.write_bytes(text.encode("latin-1") if kind == "not-utf8" else text.encode())
    assert main(["train", "-c", str(cfg)]) == 2
    one_error(capsys, cfg.name, expect)


def test_bad_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ROOT / "configs" / "rec" / "rec_mv3_none_bilstm_ctc.yml"
    assert main(["train", "-c", str(cfg), "-o", "Global.max_steps=-1"]) == 2
    one_error(capsys, "Global.max_steps")


# ---------------------------------------------------------------- images

def _predict(capsys: pytest.CaptureFixture[str], good_ckpt: Path, *paths: Path | str) -> tuple[int, str]:
    rc = main(["predict", "--checkpoint", str(good_ckpt), "--threads", "1", *map(str, paths)])
    return rc, one_error(capsys, *paths)


def test_image_bomb_refused_from_its_header(good_ckpt: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    for side in (5000, 30000, 50000):  # below and above Pillow's own bomb guard
        bomb = tmp_path / f"bomb{side}.png"
        bomb.write_bytes(png_header(side, side))
        rc, line = _predict(capsys, good_ckpt, bomb)
        assert rc == 1 and f"limit is {MAX_PIXELS} pixels" in line, line
        t0 = time.perf_counter()
        with pytest.raises(ValueError, match="limit is"):
            load_image(bomb)
        assert time.perf_counter() - t0 < 1.0  # refused from the header, not after decoding


@pytest.mark.parametrize("kind", ["truncated JPEG", "truncated PNG", "empty file", "not an image", "missing file"])
def test_unreadable_image(kind: str, good_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    word = draw_word("shop", 3)
    path = tmp_path / ("word.jpg" if "JPEG" in kind else "word.png")
    buf = io.BytesIO()
    word.save(buf, "JPEG" if "JPEG" in kind else "PNG")
    data = {"truncated JPEG": buf.getvalue()[: len(buf.getvalue()) * 2 // 3],
            "truncated PNG": buf.getvalue()[: len(buf.getvalue()) * 2 // 3],
            "empty file": b"", "not an image": b"hello, world\n" * 20}.get(kind)
    if data is not None:
        path.write_bytes(data)
    rc, line = _predict(capsys, good_ckpt, path)
    assert rc == 1
    assert {"truncated JPEG": "truncated", "truncated PNG": "truncated or corrupt", "empty file": "empty",
            "not an image": "not an image", "missing file": "cannot read"}[kind] in line


def test_folder_without_images(good_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    assert main(["predict", "--checkpoint", str(good_ckpt), str(tmp_path)]) == 1
    one_error(capsys, tmp_path, "no image files")


def test_one_alpha_policy_everywhere(tmp_path: Path) -> None:
    """Black text on a transparent background: file, PIL image and RGBA array all give black on white."""
    alpha = 255 - np.asarray(draw_word("hello", 1).convert("L"))  # dark text -> opaque
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., 3] = np.where(alpha > 128, 255, 0)  # transparent pixels are (0, 0, 0, 0)
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(path)
    from_file = load_image(path)
    assert np.array_equal(from_file, decode_image(path.read_bytes(), "x"))  # the service's decoder is this one
    assert np.array_equal(from_file, load_image(Image.fromarray(rgba, "RGBA")))
    assert np.array_equal(from_file, array_to_bgr(rgba))
    assert (from_file[rgba[..., 3] == 0] == 255).all() and (from_file[rgba[..., 3] == 255] == 0).all()


@pytest.mark.parametrize("kind", ["too large", "float", "5 channels", "wrong type"])
def test_bad_arrays_for_the_api(kind: str) -> None:
    arr = {"too large": np.zeros((3000, 3000, 3), np.uint8), "float": np.zeros((32, 100, 3), np.float32),
           "5 channels": np.zeros((32, 100, 5), np.uint8), "wrong type": [[0, 1]]}[kind]
    with pytest.raises(ValueError, match={"too large": "limit is", "float": "uint8", "5 channels": "shape",
                                          "wrong type": "unsupported image type"}[kind]):
        load_image(arr)  # type: ignore[arg-type]


# ---------------------------------------------------------------- label files, LMDB, evaluation

def _words(root: Path, n: int = 3) -> list[str]:
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        draw_word("open", i).save(root / "images" / f"{i}.png")
        lines.append(f"images/{i}.png\topen")
    return lines


def test_label_file_with_bom_keeps_its_first_sample(tmp_path: Path) -> None:
    from crnn.data.datasets import SimpleSource

    lines = _words(tmp_path)
    (tmp_path / "labels.tsv").write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode())
    src = SimpleSource(str(tmp_path), str(tmp_path / "labels.tsv"))
    assert len(src) == 3 and src.items[0][0] == "images/0.png"
    assert len(src.image_bytes(0)) > 0


def test_label_file_not_utf8(tmp_path: Path, good_ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "labels.tsv").write_bytes(b"images/0.png\tcaf\xe9\n")
    assert main(["eval", "--checkpoint", str(good_ckpt), "--sets", str(tmp_path)]) == 2
    one_error(capsys, tmp_path / "labels.tsv", "not UTF-8")


def test_label_line_without_delimiter(tmp_path: Path, good_ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "labels.tsv").write_text("images/0.png open\n")
    assert main(["eval", "--checkpoint", str(good_ckpt), "--sets", str(tmp_path)]) == 2
    one_error(capsys, f"{tmp_path / 'labels.tsv'}:1", "delimiter")


@pytest.mark.parametrize("kind", ["no lines", "no usable label"])
def test_empty_eval_set(kind: str, tmp_path: Path, good_ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _words(tmp_path)
    (tmp_path / "labels.tsv").write_text("" if kind == "no lines" else "images/0.png\t!!!\n")
    assert main(["eval", "--checkpoint", str(good_ckpt), "--sets", str(tmp_path)]) == 2
    one_error(capsys, tmp_path / "labels.tsv", "no usable sample")


def test_sets_dir_without_labels(tmp_path: Path, good_ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _words(tmp_path)
    (tmp_path / "gt.txt").write_text("images/0.png\topen\n")
    assert main(["eval", "--checkpoint", str(good_ckpt), "--sets", str(tmp_path)]) == 2
    one_error(capsys, tmp_path / "labels.tsv", "no LMDB")


@pytest.fixture()
def small_lmdb(tmp_path: Path) -> Path:
    from crnn.data.lmdb_io import create_lmdb

    src = tmp_path / "src"
    (src / "labels.tsv").parent.mkdir()
    (src / "labels.tsv").write_text("\n".join(_words(src, 40)) + "\n")
    create_lmdb(src / "labels.tsv", src, tmp_path / "db")
    return tmp_path / "db"


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_corrupt_lmdb(kind: str, small_lmdb: Path, good_ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = small_lmdb / "data.mdb"
    if kind == "garbage":
        data.write_bytes(os.urandom(64 * 1024))
    else:
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    assert main(["eval", "--checkpoint", str(good_ckpt), "--sets", str(small_lmdb)]) == 2
    one_error(capsys, small_lmdb, "truncated" if kind == "truncated" else "corrupt")


@pytest.mark.parametrize("kind", ["existing LMDB", "onto a file"])
def test_lmdb_create_refuses_to_overwrite(kind: str, small_lmdb: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = small_lmdb if kind == "existing LMDB" else tmp_path / "a_file"
    if kind == "onto a file":
        out.write_text("precious")
    before = (out / "data.mdb").read_bytes() if out.is_dir() else out.read_bytes()
    assert main(["lmdb", "create", "--label-file", str(tmp_path / "src" / "labels.tsv"),
                 "--data-dir", str(tmp_path / "src"), "--out", str(out)]) == 2
    one_error(capsys, out, "choose a new directory")
    assert before == ((out / "data.mdb").read_bytes() if out.is_dir() else out.read_bytes())


def test_labels_outside_the_charset_are_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from crnn.charset import Charset
    from crnn.config import DatasetConfig
    from crnn.data.datasets import build_dataset, train_label_check

    lines = _words(tmp_path)
    lines[1] = "images/1.png\tcafé!"
    (tmp_path / "labels.tsv").write_text("\n".join(lines) + "\n")
    cs = Charset.from_config(None)
    cfg = DatasetConfig(data_dir=str(tmp_path), label_file_list=[str(tmp_path / "labels.tsv")])
    ds = build_dataset(cfg, train_label_check(cs.normalize, 25), train=True, normalize=cs.normalize)
    assert len(ds) == 3 and ds.stripped_labels == 1
    assert "1 of 3 labels have characters outside the charset" in caplog.text and "café!" in caplog.text


# ---------------------------------------------------------------- training: disk, interrupts, leftovers

def _tiny_yaml(tiny_set: Path, out: Path, **g: object) -> Path:
    cfg = tiny_config(tiny_set, out, **g)
    cfg["Eval"] = None
    path = out.parent / f"{out.name}.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_disk_full_while_saving(tiny_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)  # checkpoint.save imports torch when it runs
    assert main(["train", "-c", str(_tiny_yaml(tiny_set, tmp_path / "run", max_steps=1))]) == 2
    one_error(capsys, tmp_path / "run" / "latest.pt", "no space left")
    assert not list((tmp_path / "run").glob("*.tmp")) and not list((tmp_path / "run").glob(".*.tmp"))


def test_empty_eval_set_stops_training_before_it_starts(tiny_set: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.tsv"
    empty.write_text("images/000.png\t???\n")  # nothing left after the 36-char normalisation
    cfg = tiny_config(tiny_set, tmp_path / "run", max_steps=2)
    cfg["Eval"]["dataset"] = {**cfg["Eval"]["dataset"], "label_file_list": [str(empty)]}
    (tmp_path / "c.yml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "-c", str(tmp_path / "c.yml")]) == 2
    one_error(capsys, empty, "no usable sample")
    assert not (tmp_path / "run" / "latest.pt").exists()


@pytest.mark.slow
def test_latest_every_n_steps_orphans_and_metrics_on_resume(tiny_set: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from crnn.config import config_from_dict
    from crnn.train import Trainer, train

    saved: list[tuple[str, int]] = []
    real_save = Trainer.save
    monkeypatch.setattr(Trainer, "save", lambda self, name: (saved.append((name, self.progress.step)),
                                                             real_save(self, name))[1])
    out = tmp_path / "run"
    cfg = yaml.safe_load(_tiny_yaml(tiny_set, out, max_steps=4, save_latest_step=2).read_text())
    cfg["Train"]["loader"]["batch_size_per_card"] = 4
    train(config_from_dict(cfg))
    assert ("latest", 2) in saved  # between evaluations, not only at the end
    orphan = out / ".latest.pt.abc123.tmp"
    orphan.write_bytes(b"half a checkpoint")
    with open(out / "metrics.jsonl", "a") as f:  # rows a killed run wrote after its last checkpoint
        f.write(json.dumps({"kind": "train", "step": 7, "loss": 1.0}) + "\n" + '{"kind": "tra')
    resume = config_from_dict(cfg, [f"Global.checkpoints={out / 'latest.pt'}", "Global.max_steps=5"])
    train(resume)
    assert not orphan.exists()
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and 7 not in steps and steps[-1] == 5


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_training_saves_latest(sig: signal.Signals, tiny_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = _tiny_yaml(tiny_set, out, max_steps=100000, save_latest_step=0, print_batch_step=1)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "crnn", "train", "-c", str(cfg)], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out / "metrics.jsonl").is_file():
            time.sleep(0.2)
        assert (out / "metrics.jsonl").is_file(), "training did not start"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and f"stopped by {sig.name}" in err
    state = checkpoint.load(out / "latest.pt")
    assert state["step"] >= 1
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in rows) == state["step"]  # saved after the last step it logged
