"""Bad inputs, round two: what users pass to the Python API and the CLI, and results that used to be silent.

Each case asserts the exit code (or exception) and that the one ``error:`` line names the flag, file or
limit at fault (``one_error``), or that the refusal says why. Companion of test_bad_inputs.py and
test_bad_inputs_serve.py; the kinds are listed in docs/reliability.md ("Round two: the API and CLI").
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from crnn import Prediction, Recognizer, checkpoint
from crnn.charset import Charset
from crnn.cli import main
from crnn.config import ConfigError, PostProcessConfig
from crnn.decoders import build_decoder
from crnn.predict import DEFAULT_MODEL, DEFAULT_ONNX_MODEL
from tests.conftest import ROOT, draw_word, served
from tests.test_bad_inputs import error_line as one_line
from tests.test_export import make_checkpoint

if importlib.util.find_spec("onnxruntime") is not None:  # test_cpp skips its whole module without it
    from tests.test_cpp import cpp_bin, onnx_model, run_cpp  # noqa: F401  (fixtures)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ckpt(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tiny_set, tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def rec(ckpt: Path) -> Recognizer:
    return Recognizer(ckpt, num_threads=1)


@pytest.fixture()
def word(tmp_path: Path) -> Path:
    path = tmp_path / "word.png"
    draw_word("open", 1).save(path)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``crnn argv``; a usage error's SystemExit is turned into its code."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------- numbers on the command line

@pytest.mark.parametrize(("argv", "names"), [
    (["predict", "x.png", "--batch-size", "0"], ["--batch-size", ">= 1", "0"]),
    (["predict", "x.png", "--batch-size", "-3"], ["--batch-size", ">= 1", "-3"]),
    (["predict", "x.png", "--threads", "-3"], ["--threads", ">= 1", "-3"]),
    (["predict", "x.png", "--lm-weight", "nan"], ["--lm-weight", "finite", "nan"]),
    (["predict", "x.png", "--lm-weight", "inf"], ["--lm-weight", "finite", "inf"]),
    (["eval", "--threads", "0"], ["--threads", ">= 1"]),
    (["export", "--checkpoint", "c.pt", "--out", "o.onnx", "--calib-count", "0"], ["--calib-count", ">= 1", "0"]),
    (["export", "--checkpoint", "c.pt", "--out", "o.onnx", "--calib-count", "-5"], ["--calib-count", ">= 1"]),
    (["synth", "--out", "o", "--num", "1", "--seed", "-1"], ["--seed", ">= 0", "-1"]),
    (["serve", "--max-request-mb", "nan"], ["--max-request-mb", "finite", "nan"]),
    (["serve", "--timeout", "nan"], ["--timeout", "finite", "nan"]),
    (["serve", "--timeout", "0"], ["timeout_s > 0"]),
    (["serve", "--host", "999.1.1.1"], ["--host", "999.1.1.1", "not an IP address"]),
    (["bench", "--batch-size", "0"], ["--batch-size", ">= 1"]),
])
def test_flag_out_of_range_is_one_line_naming_it(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                 names: list[str]) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    one_line(err, *names)


def test_a_usage_error_is_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "predict")
    assert code == 2
    line = one_line(err, "crnn predict", "inputs", "--help")
    assert "usage:" not in line


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import crnn

    code, out, err = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"crnn {crnn.__version__}", err


# ---------------------------------------------------------------- decoding options that meant nothing

def test_lm_of_random_bytes_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, word: Path,
                                       ckpt: Path) -> None:
    lm = tmp_path / "random.bin"
    lm.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    code, out, err = run_cli(capsys, "predict", word, "--model", ckpt, "--threads", "1", "--lm", lm)
    assert code == 2 and out == ""
    one_line(err, "--lm", "random.bin", "not a text file")


def test_lm_not_utf8_is_refused(tmp_path: Path) -> None:
    lm = tmp_path / "latin1.txt"
    lm.write_bytes("caf\xe9\nna\xefve\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"--lm word list .*latin1.txt is not UTF-8 text"):
        build_decoder(PostProcessConfig(decoder="beam", lm=str(lm)), Charset.from_config(None))


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), float("-inf")])
def test_lm_weight_not_finite_is_refused_in_the_api(tmp_path: Path, weight: float) -> None:
    lm = tmp_path / "words.txt"
    lm.write_text("open\nshop\n", encoding="utf-8")
    with pytest.raises(ConfigError,
                       match=r"PostProcess.lm_weight \(--lm-weight\) must be between -1000.0 and 1000, got"):
        build_decoder(PostProcessConfig(decoder="beam", lm=str(lm), lm_weight=weight), Charset.from_config(None))


def test_empty_allow_is_refused(capsys: pytest.CaptureFixture[str], word: Path, ckpt: Path) -> None:
    code, out, err = run_cli(capsys, "predict", word, "--model", ckpt, "--threads", "1", "--allow", "")
    assert code == 2 and out == ""
    one_line(err, "--allow", "empty")


def test_dictionary_not_utf8_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "dict_latin1.txt"
    bad.write_bytes("a\nb\n\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"character_dict_path .*dict_latin1.txt is not UTF-8 text"):
        Charset.from_config(str(bad))


def test_lexicon_binary_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "lexicon.bin"
    bad.write_bytes(b"open\x00\x01\x02")
    with pytest.raises(ValueError, match=r"lexicon .*lexicon.bin is not a text file"):
        build_decoder(PostProcessConfig(lexicon=str(bad)), Charset.from_config(None))


# ---------------------------------------------------------------- crnn predict

def test_tsv_escapes_tab_and_newline_in_file_names(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   ckpt: Path) -> None:
    names = ["tab\there.png", "new\nline.png", "back\\slash.png", "plain.png"]
    for i, name in enumerate(names):
        draw_word("open", i).save(tmp_path / name, "PNG")
    code, out, err = run_cli(capsys, "predict", *(tmp_path / n for n in names), "--model", ckpt, "--threads", "1")
    assert code == 0, err
    rows = out.splitlines()
    assert len(rows) == len(names) and all(len(r.split("\t")) == 3 for r in rows), out
    assert [r.split("\t")[0] for r in rows] == [str(tmp_path / n).replace("\\", "\\\\").replace("\t", "\\t")
                                                .replace("\n", "\\n") for n in names]


def test_glob_that_matches_nothing_is_one_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "predict", str(tmp_path / "nomatch" / "*.png"))
    assert code == 1 and out == ""
    one_line(err, "no file matches", "nomatch")


def test_folder_without_images_is_one_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "predict", tmp_path)
    assert code == 1
    one_line(err, "no image files", str(tmp_path))


def test_one_thread_is_singular(ckpt: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="crnn.predict"):
        Recognizer(ckpt, num_threads=1)
    assert "1 thread" in caplog.text and "1 threads" not in caplog.text


# ---------------------------------------------------------------- an ONNX model where a checkpoint goes

@pytest.fixture()
def onnx_file(tmp_path: Path) -> Path:
    if not Path(DEFAULT_ONNX_MODEL).is_file():
        pytest.skip("the bundled ONNX model is not in this install")
    return Path(DEFAULT_ONNX_MODEL)


@pytest.mark.parametrize("argv", [
    ["export", "--checkpoint", "{onnx}", "--out", "{tmp}/x.onnx"],
    ["calibrate", "--checkpoint", "{onnx}", "--out", "{tmp}/x.pt"],
    ["bench", "--checkpoint", "{onnx}", "--data", "{tmp}"],
])
def test_onnx_given_to_checkpoint_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path, onnx_file: Path,
                                          argv: list[str]) -> None:
    code, _, err = run_cli(capsys, *(a.format(onnx=onnx_file, tmp=tmp_path) for a in argv))
    assert code == 2
    line = one_line(err, "--checkpoint", onnx_file.name, "is an ONNX model", ".pt checkpoint")
    assert "Python objects" not in line


def test_onnx_without_suffix_is_recognised_by_its_bytes(tmp_path: Path, onnx_file: Path) -> None:
    plain = tmp_path / "model"
    shutil.copy(onnx_file, plain)
    assert checkpoint.is_onnx(plain) and not checkpoint.is_onnx(DEFAULT_MODEL)
    with pytest.raises(ValueError, match="is an ONNX model, not a .pt checkpoint"):
        checkpoint.load(plain)


# ---------------------------------------------------------------- runs that used to write or fit nothing

def test_lmdb_create_from_an_empty_label_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("lmdb")
    (tmp_path / "labels.tsv").write_text("\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "lmdb", "create", "--label-file", tmp_path / "labels.tsv", "--data-dir", tmp_path,
                        "--out", tmp_path / "db")
    assert code == 2 and "wrote" not in out
    one_line(err, "labels.tsv", "no samples")
    assert not (tmp_path / "db").exists()


def test_lmdb_create_with_a_missing_data_dir(capsys: pytest.CaptureFixture[str], tiny_set: Path,
                                             tmp_path: Path) -> None:
    pytest.importorskip("lmdb")
    code, _, err = run_cli(capsys, "lmdb", "create", "--label-file", tiny_set / "labels.tsv",
                      "--data-dir", tmp_path / "nowhere", "--out", tmp_path / "db")
    assert code == 2
    one_line(err, "--data-dir", "nowhere", "no such folder")
    assert not (tmp_path / "db").exists()


def test_lmdb_create_with_no_readable_image(capsys: pytest.CaptureFixture[str], tiny_set: Path,
                                            tmp_path: Path) -> None:
    pytest.importorskip("lmdb")
    code, _, err = run_cli(capsys, "lmdb", "create", "--label-file", tiny_set / "labels.tsv",
                      "--data-dir", tmp_path, "--out", tmp_path / "db")
    assert code == 2
    one_line(err, "none of the 24 images", "--data-dir", "nothing written")
    assert not (tmp_path / "db").exists()


def test_lmdb_negative_num_samples(tmp_path: Path) -> None:
    lmdb = pytest.importorskip("lmdb")
    from crnn.data.datasets import DataError, LmdbSource

    env = lmdb.open(str(tmp_path / "db"), map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"num-samples", b"-5")
    env.close()
    with pytest.raises(DataError, match=r"num-samples is -5; it must be a count >= 0"):
        LmdbSource(tmp_path / "db")


def test_calibrate_on_zero_samples(capsys: pytest.CaptureFixture[str], ckpt: Path, tmp_path: Path) -> None:
    empty = tmp_path / "val"
    empty.mkdir()
    (empty / "labels.tsv").write_text("", encoding="utf-8")
    code, out, err = run_cli(capsys, "calibrate", "--checkpoint", ckpt, "--out", tmp_path / "cal.pt", "--sets", empty)
    assert code == 2 and "fitted" not in out
    one_line(err, "no samples to calibrate on", "val")
    assert not (tmp_path / "cal.pt").exists()


def test_eval_sets_with_a_checkpoint_whose_config_has_no_eval(capsys: pytest.CaptureFixture[str], ckpt: Path,
                                                              tiny_set: Path, tmp_path: Path) -> None:
    state = checkpoint.load(ckpt)
    state["config"]["Eval"] = None
    no_eval = checkpoint.save(tmp_path / "no_eval", state)
    code, out, err = run_cli(capsys, "eval", "--checkpoint", no_eval, "--sets", tiny_set, "--threads", "1")
    assert code == 0, err
    assert "tiny" in out  # the set's row: --sets was used, not asked for again
    code, _, err = run_cli(capsys, "eval", "--checkpoint", no_eval, "--threads", "1")
    assert code == 2
    one_line(err, "no eval sets", "--sets")


# ---------------------------------------------------------------- the Python API: what a new user passes

def test_one_path_gives_one_prediction(rec: Recognizer, word: Path) -> None:
    one = rec(str(word))
    assert isinstance(one, Prediction)
    assert rec(word) == one and rec(word.read_bytes()) == one and rec(Image.open(word)) == one
    assert rec([str(word)]) == [one]


def test_one_array_gives_one_prediction(rec: Recognizer, word: Path) -> None:
    rgb = np.asarray(Image.open(word).convert("RGB"))
    one = rec(rgb)
    assert isinstance(one, Prediction) and one == rec(str(word))
    grey = np.asarray(Image.open(word).convert("L"))
    assert isinstance(rec(grey), Prediction) and rec(grey) == rec(grey[:, :, None])
    batch = rec(np.stack([rgb, rgb, rgb]))  # N x H x W x C: a batch
    assert isinstance(batch, list) and [p.text for p in batch] == [one.text] * 3
    assert [p.text for p in rec(x for x in [rgb, str(word)])] == [one.text] * 2  # any iterable is a batch


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"model": ""}, "model path is empty"),
    ({"model": "", "batch_size": 0}, "model path is empty"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ({"num_threads": -3}, "num_threads must be an integer >= 1, got -3"),
])
def test_recognizer_bad_arguments(ckpt: Path, kwargs: dict[str, object], match: str) -> None:
    kwargs = {"model": ckpt, **kwargs}
    with pytest.raises(ValueError, match=match):
        Recognizer(**kwargs)  # type: ignore[arg-type]


def test_recognizer_none_is_the_bundled_model() -> None:
    """``None`` is documented as the bundled model (the CLI passes it when no --model is given)."""
    if not Path(DEFAULT_MODEL).is_file():
        pytest.skip("the bundled model is not in this install")
    assert Path(Recognizer(None, num_threads=1).path).stem == Path(DEFAULT_MODEL).stem


def test_closed_pil_image(rec: Recognizer, word: Path) -> None:
    im = Image.open(word)
    im.close()
    with pytest.raises(ValueError, match=r"^image: the PIL image cannot be read .*closed"):
        rec(im)
    with pytest.raises(ValueError, match=r"^image 1: the PIL image cannot be read"):
        rec([str(word), im])


@pytest.mark.parametrize(("value", "match"), [
    (None, "image: unsupported image type NoneType"),
    ([None], "image 0: unsupported image type NoneType"),
    (5, "image: unsupported image type int"),
    ("", "image: the path is empty"),
    (np.zeros((2, 32, 100, 3), np.float32), "image 0: image arrays must be uint8"),
    (np.zeros((32, 100, 5), np.uint8), "image: unsupported image array shape"),
])
def test_unsupported_inputs_are_named(rec: Recognizer, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rec(value)  # type: ignore[call-overload]


# ---------------------------------------------------------------- a verb without its extra

BLOCK = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # `import name` now raises ModuleNotFoundError, as when it is not installed
from crnn.cli import main
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize(("blocked", "argv", "extra"), [
    (["fastapi", "uvicorn"], ["serve"], "serve"),
    (["torch"], ["eval", "--sets", "{tiny}"], "torch"),
    (["torch"], ["export", "--checkpoint", "{model}", "--out", "{tmp}/x.onnx"], "torch"),
    (["torch", "onnxruntime"], ["predict", "{word}"], "torch"),
])
def test_missing_extra_names_it(tmp_path: Path, tiny_set: Path, word: Path, blocked: list[str], argv: list[str],
                                extra: str) -> None:
    if not Path(DEFAULT_MODEL).is_file():
        pytest.skip("the bundled model is not in this install")
    argv = [a.format(tiny=tiny_set, model=DEFAULT_MODEL, tmp=tmp_path, word=word) for a in argv]
    code = textwrap.dedent(BLOCK.format(blocked=blocked, argv=argv))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"pip install 'crnn[{extra}]'" in lines[0], r.stderr
    assert f"crnn {argv[0]} needs" in lines[0]


# ---------------------------------------------------------------- the C++ program

def test_cpp_directory_as_image(request: pytest.FixtureRequest, tmp_path: Path, word: Path) -> None:
    """A folder among the images: one line naming it as a folder; the other images are still read."""
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("the C++ tests need onnxruntime")
    cpp_bin, onnx_model = request.getfixturevalue("cpp_bin"), request.getfixturevalue("onnx_model")
    r = run_cpp(cpp_bin, onnx_model, tmp_path, word)
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert errors == [f"crnn_infer: error: {tmp_path} is a directory, not an image file (give its image files)"]
    assert len(r.stdout.splitlines()) == 1 and r.stdout.startswith(str(word))


# ---------------------------------------------------------------- the README's numbers

def test_readme_finetune_table_shows_the_bundled_model_now() -> None:
    result = json.loads((ROOT / "docs" / "bench" / "bundled_eval.json").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    starts = ("| IIIT5K (3000, `labels_charbound", "| IC13 (1015)", "| IC15 (2077", "| IC03 (860)")
    rows = {line.split("|")[1].strip().split(" ")[0]: line for line in readme.splitlines() if line.startswith(starts)}
    for key, name in (("iiit5k", "IIIT5K"), ("ic13/labels_1015", "IC13"), ("ic15", "IC15"), ("ic03", "IC03")):
        want = f"{100 * result['sets'][key]['acc']:.2f}"
        assert rows[name].rstrip(" |").endswith(want), (name, want, rows[name])


# ---------------------------------------------------------------- the service

def _serve_imports() -> None:
    pytest.importorskip("fastapi", reason="crnn serve needs the serve extra: pip install -e '.[serve]'")


@pytest.mark.parametrize("field", ["timeout_s", "max_wait_ms"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_serve_settings_refuse_nan_and_inf(field: str, value: float) -> None:
    _serve_imports()
    from crnn.serve import ServeSettings

    with pytest.raises(ValueError, match="need finite max_wait_ms >= 0 and timeout_s > 0"):
        ServeSettings(**{field: value})


def test_metrics_count_host_and_cross_origin_refusals(rec: Recognizer) -> None:
    _serve_imports()
    from fastapi.testclient import TestClient

    from crnn.serve import ServeSettings, create_app

    with TestClient(create_app(rec, ServeSettings(max_wait_ms=2)), base_url="http://127.0.0.1:8000") as c:
        assert c.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
        assert c.get("/healthz", headers={"Origin": "http://evil.example"}).status_code == 403
        assert c.get("/healthz", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        text = c.get("/metrics").text
    assert 'crnn_http_errors_total{code="host_not_allowed",path="/healthz"} 1.0' in text, text
    assert 'crnn_http_errors_total{code="cross_origin",path="/healthz"} 2.0' in text, text


def test_web_page_keeps_order_and_names_skipped_files() -> None:
    """Without a browser: the page appends rows (in the order chosen) and reports files it does not send."""
    page = (ROOT / "src" / "crnn" / "serve" / "static" / "index.html").read_text(encoding="utf-8")
    assert "results.appendChild(row)" in page and "results.prepend(" not in page
    assert "not images" in page and "skipped.join" in page


def test_web_page_in_a_browser(tmp_path: Path, rec: Recognizer, request: pytest.FixtureRequest) -> None:
    """In headless Chromium (skipped when it is not installed): two images in order, a text file named."""
    _serve_imports()
    browser = request.getfixturevalue("browser")  # conftest's: skips, naming scripts/install_browser.sh
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from crnn.serve import ServeSettings, create_app

    paths = [tmp_path / "a_first.png", tmp_path / "b_second.png", tmp_path / "notes.txt"]
    draw_word("shop", 1).save(paths[0])
    draw_word("open", 2).save(paths[1])
    paths[2].write_text("not an image", encoding="utf-8")
    with served(create_app(rec, ServeSettings())) as url:
        browser.get(url)
        browser.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in paths))
        WebDriverWait(browser, 20).until(lambda d: "Done" in d.find_element(By.ID, "status").text)
        rows = browser.find_elements(By.CSS_SELECTOR, "#results tr.result")
        assert len(rows) == 2 and "a_first.png" in rows[0].text and "b_second.png" in rows[1].text
        status = browser.find_element(By.ID, "status")
        assert "notes.txt" in status.text and "not images" in status.text
