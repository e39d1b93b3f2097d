"""deploy/cpp: the C++ recognizer builds and prints exactly what the Python ONNX recognizer decodes,
with the fields and layouts of ``crnn predict --format``.

Needs the toolchain, OpenCV, nlohmann-json and ONNX Runtime that ``scripts/install_cpp_deps.sh``
installs (skipped with the reason otherwise), and ../shared for the eval crops. The build goes to a
temporary folder; nothing is cached in the repo. About 1-2 minutes, most of it the C++ build.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, need_shared

pytest.importorskip("onnxruntime")
CPP = ROOT / "deploy" / "cpp"
ORT_ROOT = Path(os.environ.get("CRNN_ORT_ROOT", "/opt/crnn/onnxruntime"))
NEEDED_FILES = {
    "ONNX Runtime headers": ORT_ROOT / "include" / "onnxruntime_cxx_api.h",
    "ONNX Runtime library": ORT_ROOT / "lib" / "libonnxruntime.so",
    "OpenCV headers (libopencv-dev)": Path("/usr/include/opencv4/opencv2/imgcodecs.hpp"),
    "nlohmann-json3-dev": Path("/usr/include/nlohmann/json.hpp"),
}
MIN_AGREEMENT = 0.999
BUNDLED_ONNX = ROOT / "src" / "crnn" / "assets" / "crnn_mv3_en.onnx"
# Both programs print confidences rounded to 4 decimals. The C++ softmax repeats numpy's float32 operations
# and summation order, but numpy's SIMD exp and glibc's expf differ by an ulp now and then: measured on
# 300 IIIT5K crops, 97% of the raw symbol confidences are bit-identical and the rest <= 1.2e-7 apart, so a
# value next to a rounding boundary can print one unit of the 4th decimal apart (on all 3,000 IIIT5K crops:
# 1 word confidence of 3,000, no symbol one). Positions come from integer frames and sizes through the
# same double arithmetic: they must be equal.
CONF_TOL = 1e-4 + 1e-9


def _need_toolchain() -> None:
    missing = [tool for tool in ("cmake", "g++") if shutil.which(tool) is None]
    missing += [f"{what} ({path})" for what, path in NEEDED_FILES.items() if not path.exists()]
    if missing:
        pytest.skip(f"C++ build dependencies missing: {', '.join(missing)}; run scripts/install_cpp_deps.sh as root")


@pytest.fixture(scope="module")
def cpp_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Configure and build deploy/cpp in a temporary folder; the path of the crnn_infer program."""
    _need_toolchain()
    build = tmp_path_factory.mktemp("cpp_build")
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    for cmd in ([*nice, "cmake", "-S", str(CPP), "-B", str(build), f"-DONNXRUNTIME_ROOT={ORT_ROOT}"],
                [*nice, "cmake", "--build", str(build), "-j", "2"]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return build / "crnn_infer"


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported model: the bundled one if this install has it, else PaddleOCR's mv3 fixture weights.

    The fixture weights are not trained, so their logits have small margins between classes: a harder
    parity test than a trained model, whose argmax is rarely close.
    """
    from crnn.export import export_onnx
    from crnn.predict import DEFAULT_MODEL

    tmp = tmp_path_factory.mktemp("cpp_model")
    ckpt = Path(DEFAULT_MODEL)
    if not ckpt.exists():
        from crnn.convert.paddle import convert_paddle

        ckpt = convert_paddle(ROOT / "configs" / "rec" / "rec_mv3_none_bilstm_ctc.yml",
                              need_shared("paddle", "mv3.pdparams"), tmp / "mv3.pt")
    out = tmp / "model.onnx"
    export_onnx(ckpt, out, check=False)  # export's own PyTorch check is tested in its own tests
    return out


def run_cpp(binary: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), "--threads", "1", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def parse(stdout: str) -> dict[str, tuple[str, float]]:
    rows = [line.split("\t") for line in stdout.splitlines()]
    assert all(len(r) == 3 for r in rows), f"malformed output: {stdout[:500]}"
    return {path: (text, float(conf)) for path, text, conf in rows}


@pytest.mark.slow
def test_cpp_matches_python_on_ic03(cpp_bin: Path, onnx_model: Path, tmp_path: Path) -> None:
    from crnn import Recognizer

    root = need_shared("data", "eval", "ic03")
    paths = [str(root / line.split("\t", 1)[0])
             for line in (root / "labels.tsv").read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(paths) == 860
    listing = tmp_path / "images.txt"
    listing.write_text("\n".join(paths) + "\n", encoding="utf-8")
    r = run_cpp(cpp_bin, "--list", listing, onnx_model)
    assert r.returncode == 0, r.stderr
    got = parse(r.stdout)
    assert list(got) == paths  # one line per image, in input order

    want = Recognizer.from_checkpoint(onnx_model, num_threads=1)(paths)
    same = sum(got[p][0] == w.text for p, w in zip(paths, want, strict=True))
    diffs = [(p, got[p][0], w.text) for p, w in zip(paths, want, strict=True) if got[p][0] != w.text]
    assert same / len(paths) >= MIN_AGREEMENT, f"{len(diffs)} of {len(paths)} differ, e.g. {diffs[:5]}"
    assert len({w.text for w in want}) > 10, "degenerate model: the parity check would prove little"
    worst = max(abs(got[p][1] - w.confidence) for p, w in zip(paths, want, strict=True) if got[p][0] == w.text)
    assert worst <= 1e-3, f"confidence differs by {worst}"


def test_cpp_bad_inputs_fail_clearly_and_others_still_run(cpp_bin: Path, onnx_model: Path, tmp_path: Path) -> None:
    from crnn import Recognizer

    root = need_shared("data", "eval", "ic03", "images")
    good = [root / "0000.jpg", root / "0001.jpg"]
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not an image")
    missing = tmp_path / "missing.png"

    r = run_cpp(cpp_bin, onnx_model, good[0], empty, garbage, missing, good[1])
    assert r.returncode == 1
    for bad in (empty, garbage, missing):
        assert str(bad) in r.stderr, r.stderr
    assert "0 bytes" in r.stderr
    got = parse(r.stdout)
    assert list(got) == [str(p) for p in good]
    want = Recognizer.from_checkpoint(onnx_model, num_threads=1)(good)
    assert [got[str(p)][0] for p in good] == [w.text for w in want]


# ---------------------------------------------------------------- what a prediction carries: crnn predict's fields

@pytest.fixture(scope="module")
def iiit5k_sample() -> list[str]:
    """12 IIIT5K test crops evenly spaced in labels.tsv: short words (narrower than the model's input,
    so right padding and positions clamped at the image's end occur) and long ones (squashed to W)."""
    from PIL import Image

    from crnn.data.transforms import resized_width

    root = need_shared("data", "eval", "iiit5k")
    names = [line.split("\t", 1)[0] for line in (root / "labels.tsv").read_text(encoding="utf-8").splitlines()
             if line.strip()]
    paths = [str(root / n) for n in names[:: len(names) // 12][:12]]
    widths = set()
    for p in paths:
        with Image.open(p) as im:
            widths.add(resized_width(im.height, im.width, 32, 100) < 100)
    assert widths == {True, False}, "the sample should hold both padded and squashed images"
    return paths


def python_predict(capsys: pytest.CaptureFixture[str], model: Path, *args: str) -> str:
    """What `crnn predict --model MODEL --threads 1 ARGS` prints (in this process)."""
    from crnn.cli import main

    capsys.readouterr()
    assert main(["predict", "--model", str(model), "--threads", "1", *args]) == 0
    return capsys.readouterr().out


def assert_same_records(got: list[dict], want: list[dict]) -> None:
    """C++ and Python JSON records: same keys in the same order, same text and symbols, same positions,
    confidences within CONF_TOL."""
    assert [g["path"] for g in got] == [w["path"] for w in want]
    for g, w in zip(got, want, strict=True):
        assert list(g) == list(w) == ["path", "text", "confidence", "chars"]
        assert g["text"] == w["text"], g["path"]
        assert abs(g["confidence"] - w["confidence"]) <= CONF_TOL, (g["path"], g["confidence"], w["confidence"])
        assert len(g["chars"]) == len(w["chars"]) == len(w["text"]), g["path"]
        for gc, wc in zip(g["chars"], w["chars"], strict=True):
            assert list(gc) == list(wc) == ["char", "confidence", "x0", "x1"]
            assert gc["char"] == wc["char"]
            assert abs(gc["confidence"] - wc["confidence"]) <= CONF_TOL, (g["path"], gc, wc)
            assert (gc["x0"], gc["x1"]) == (wc["x0"], wc["x1"]), (g["path"], gc, wc)
            assert all(type(gc[k]) is float for k in ("confidence", "x0", "x1")), gc


@pytest.mark.parametrize("word_score", ["mean", "min", "product"])
def test_cpp_json_equals_crnn_predict_json(word_score: str, cpp_bin: Path, iiit5k_sample: list[str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    r = run_cpp(cpp_bin, "--format", "json", "--word-score", word_score, BUNDLED_ONNX, *iiit5k_sample)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    want = json.loads(python_predict(capsys, BUNDLED_ONNX, "--format", "json", "--word-score", word_score,
                                     *iiit5k_sample))
    assert_same_records(got, want)
    assert len({g["text"] for g in got}) > 8, "degenerate sample"
    # the word score is the named one: rounding is monotonic, so min is exact; the others within rounding
    score = {"mean": lambda c: sum(c) / len(c), "min": min, "product": math.prod}[word_score]
    tol = {"mean": 1e-4, "min": 0.0, "product": 1e-3}[word_score]
    for g in got:
        assert abs(g["confidence"] - score([c["confidence"] for c in g["chars"]])) <= tol + 1e-9, g


def test_cpp_formats_are_crnn_predicts(cpp_bin: Path, iiit5k_sample: list[str], tmp_path: Path) -> None:
    """tsv (default), jsonl and json are laid out byte for byte as crnn predict prints the same values."""
    odd = tmp_path / 'mot "é" \\ 1.webp'  # a path JSON must escape, and a non-ASCII one it must not
    odd.write_bytes(Path(iiit5k_sample[0]).read_bytes())
    images = [*iiit5k_sample[:4], str(odd)]
    r = run_cpp(cpp_bin, "--format", "json", BUNDLED_ONNX, *images)
    assert r.returncode == 0, r.stderr
    records = json.loads(r.stdout)
    assert r.stdout == json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    assert records[-1]["path"] == str(odd) and records[-1]["text"] == records[0]["text"]
    r = run_cpp(cpp_bin, "--format", "jsonl", BUNDLED_ONNX, *images)
    assert r.stdout.splitlines() == [json.dumps(rec, ensure_ascii=False) for rec in records]
    for args in ([], ["--format", "tsv"]):
        r = run_cpp(cpp_bin, *args, BUNDLED_ONNX, *images)
        assert r.stdout.splitlines() == [f"{rec['path']}\t{rec['text']}\t{rec['confidence']:.4f}" for rec in records]


def test_cpp_uses_the_models_temperature(cpp_bin: Path, iiit5k_sample: list[str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """crnn.temperature in the metadata (crnn calibrate + export) changes confidences as in Python."""
    onnx = pytest.importorskip("onnx")

    def with_temperature(value: str) -> Path:
        model = onnx.load(str(BUNDLED_ONNX))
        for prop in model.metadata_props:
            if prop.key == "crnn.temperature":
                prop.value = value
        out = tmp_path / f"t{value}.onnx"
        onnx.save(model, str(out))
        return out

    hot = with_temperature("2.5")
    r = run_cpp(cpp_bin, "--format", "json", hot, *iiit5k_sample)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert_same_records(got, json.loads(python_predict(capsys, hot, "--format", "json", *iiit5k_sample)))
    plain = json.loads(run_cpp(cpp_bin, "--format", "json", BUNDLED_ONNX, *iiit5k_sample).stdout)
    assert [g["text"] for g in got] == [p["text"] for p in plain]  # a temperature never changes the argmax
    assert sum(g["confidence"] for g in got) < sum(p["confidence"] for p in plain) - 0.1  # but flattens
    bad = with_temperature("-1")
    r = run_cpp(cpp_bin, bad, iiit5k_sample[0])
    assert r.returncode == 2 and f"{bad}: crnn.temperature must be a positive number" in r.stderr, r.stderr


def test_cpp_bad_model_or_usage(cpp_bin: Path, onnx_model: Path, tmp_path: Path) -> None:
    image = need_shared("data", "eval", "ic03", "images", "0000.jpg")
    r = run_cpp(cpp_bin, tmp_path / "nope.onnx", image)
    assert r.returncode == 2 and "nope.onnx not found" in r.stderr, r.stderr
    not_onnx = tmp_path / "fake.onnx"
    not_onnx.write_bytes(b"not a model")
    r = run_cpp(cpp_bin, not_onnx, image)
    assert r.returncode == 2 and "fake.onnx is not a loadable ONNX model" in r.stderr, r.stderr
    r = run_cpp(cpp_bin, onnx_model)
    assert r.returncode == 2 and "no IMAGE given" in r.stderr, r.stderr
    r = run_cpp(cpp_bin, "--format", "csv", onnx_model, image)
    assert r.returncode == 2 and "--format: format 'csv' is not one of tsv, json, jsonl" in r.stderr, r.stderr
    r = run_cpp(cpp_bin, "--word-score", "max", onnx_model, image)
    assert r.returncode == 2 and "--word-score: word score 'max' is not one of mean, min, product" in r.stderr


# ---------------------------------------------------------------- bad inputs: the rules of crnn.data.images

@pytest.mark.parametrize("kind", ["truncated JPEG", "pixel bomb", "transparent"])
def test_cpp_bad_images_follow_the_python_rules(kind: str, cpp_bin: Path, onnx_model: Path, tmp_path: Path) -> None:
    """The same file gets the same answer as in Python: refused with one line naming it, or the same text."""
    import io

    import numpy as np
    from PIL import Image

    from crnn.predict import Recognizer
    from tests.conftest import draw_word
    from tests.test_serve import png_header

    path = tmp_path / ("x.jpg" if "JPEG" in kind else "x.png")
    if kind == "truncated JPEG":
        buf = io.BytesIO()
        draw_word("stop", 1).save(buf, "JPEG")
        path.write_bytes(buf.getvalue()[:-300])
    elif kind == "pixel bomb":
        path.write_bytes(png_header(30000, 30000))
    else:  # black text on a transparent background whose pixels are (0, 0, 0, 0)
        alpha = 255 - np.asarray(draw_word("hello", 1).convert("L"))
        rgba = np.zeros((*alpha.shape, 4), np.uint8)
        rgba[..., 3] = np.where(alpha > 128, 255, 0)
        Image.fromarray(rgba, "RGBA").save(path)
    r = run_cpp(cpp_bin, onnx_model, path)
    if kind == "transparent":
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\t")[1] == Recognizer(onnx_model, num_threads=1)([path])[0].text
        return
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and str(path) in lines[0], r.stderr
    assert ("truncated" if "JPEG" in kind else "the limit is 4000000 pixels") in lines[0]
    with pytest.raises(ValueError, match="truncated" if "JPEG" in kind else "limit is 4000000"):
        Recognizer(onnx_model, num_threads=1)([path])


# ---------------------------------------------------------------- the preprocessing spec (crnn.preprocess)

@pytest.fixture(scope="module")
def stretched_model(tmp_path_factory: pytest.TempPathFactory, onnx_model: Path) -> Path:
    """``onnx_model``'s weights exported again from a checkpoint whose config says ``padding: false``."""
    from crnn import checkpoint
    from crnn.export import export_onnx
    from crnn.predict import DEFAULT_MODEL

    tmp = tmp_path_factory.mktemp("cpp_stretched")
    converted = onnx_model.with_name("mv3.pt")  # what the onnx_model fixture exports when there is no bundled model
    state = checkpoint.load(converted if converted.exists() else DEFAULT_MODEL)
    for split in ("Train", "Eval"):
        if state["config"].get(split):
            state["config"][split]["dataset"]["transforms"]["padding"] = False
    out = tmp / "stretched.onnx"
    export_onnx(checkpoint.save(tmp / "stretched.pt", state), out, check=False)
    return out


def _word_images(tmp_path: Path) -> list[Path]:
    """Crops from 1 to ~12 characters: most are narrower than W/H, so padding and stretching differ."""
    from tests.conftest import WORDS, draw_word

    paths = []
    for i, word in enumerate([*WORDS, "a", "hi", "international", "x1"]):
        paths.append(tmp_path / f"w{i:02d}.png")
        draw_word(word, i).save(paths[-1])
    return paths


def test_cpp_stretches_when_the_model_says_padding_false(cpp_bin: Path, onnx_model: Path, stretched_model: Path,
                                                         tmp_path: Path) -> None:
    from crnn import Recognizer

    paths = _word_images(tmp_path)
    r = run_cpp(cpp_bin, stretched_model, *paths)
    assert r.returncode == 0, r.stderr
    got = parse(r.stdout)
    want = Recognizer(stretched_model, num_threads=1)(paths)
    padded = Recognizer(onnx_model, num_threads=1)(paths)  # the same weights fed padded images
    assert Recognizer(stretched_model, num_threads=1).spec.padding is False
    # crnn_infer prints 4 decimals: 1e-4 tells the two apart wherever padding moves the confidence by 1e-3
    differ = [i for i, (w, p) in enumerate(zip(want, padded, strict=True))
              if w.text != p.text or abs(w.confidence - p.confidence) > 1e-3]
    assert len(differ) >= len(paths) // 4, "padding and stretching agree: this test would prove little"
    for p, w in zip(paths, want, strict=True):
        assert got[str(p)][0] == w.text and abs(got[str(p)][1] - w.confidence) <= 1e-4, (p.name, got[str(p)], w)


def test_cpp_reads_models_exported_before_the_spec_as_padded(cpp_bin: Path, tmp_path: Path) -> None:
    import onnx

    from crnn import Recognizer
    from crnn.export import write_metadata
    from crnn.predict import DEFAULT_ONNX_MODEL

    if not Path(DEFAULT_ONNX_MODEL).is_file():
        pytest.skip("no bundled ONNX model in this install")
    # the bundled file with the metadata of an export made before the spec (round 8's, for one): a
    # description of the resize in crnn.preprocess, no padding or normalisation keys
    m = onnx.load(str(DEFAULT_ONNX_MODEL))
    write_metadata(m, {"crnn.preprocess": '{"resize": "cv2.INTER_LINEAR to height H, width min(W, ceil(H*w/h))"}'})
    old = tmp_path / "pre_spec.onnx"
    onnx.save(m, str(old))
    paths = _word_images(tmp_path)
    r = run_cpp(cpp_bin, old, *paths)
    assert r.returncode == 0, r.stderr
    got = parse(r.stdout)
    want = Recognizer(DEFAULT_ONNX_MODEL, num_threads=1)(paths)
    assert [got[str(p)][0] for p in paths] == [w.text for w in want]


def test_cpp_refuses_a_bad_spec_and_dynamic_width_without_padding(cpp_bin: Path, stretched_model: Path,
                                                                  tmp_path: Path) -> None:
    import json

    import onnx

    from crnn.export import write_metadata

    image = _word_images(tmp_path)[0]
    r = run_cpp(cpp_bin, "--dynamic-width", stretched_model, image)
    assert r.returncode == 2 and "dynamic_width needs a model that pads" in r.stderr, r.stderr
    m = onnx.load(str(stretched_model))
    spec = json.loads({p.key: p.value for p in m.metadata_props}["crnn.preprocess"])
    for change, message in [({"padding": "no"}, "crnn.preprocess.padding: must be true or false"),
                            ({"std": 0}, "crnn.preprocess.std: must be a positive number"),
                            ({"image_shape": [3, 48, 100]}, "crnn.preprocess says [3,48,100]")]:
        write_metadata(m, {"crnn.preprocess": json.dumps({**spec, **change})})
        bad = tmp_path / "bad.onnx"
        onnx.save(m, str(bad))
        r = run_cpp(cpp_bin, bad, image)
        assert r.returncode == 2 and f"{bad}: {message}" in r.stderr, r.stderr
