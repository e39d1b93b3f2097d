"""One preprocessing spec: what training, evaluation, ``Recognizer`` (torch and ONNX) and the ONNX
metadata agree on, most of all ``padding: false`` (stretch to W instead of keeping the aspect ratio)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from crnn.config import config_from_dict
from crnn.data.preprocess import Preprocess
from crnn.data.transforms import resize_norm, to_model_order
from crnn.onnx_backend import parse_metadata, preprocess_metadata

from .conftest import tiny_config


def no_padding_config(tiny: Path, out: Path) -> dict:
    """``tiny_config`` whose Train and Eval ``RecResizeImg`` stretch every image to W (padding: false)."""
    data = tiny_config(tiny, out)
    for split in ("Train", "Eval"):
        ds = data[split]["dataset"] = copy.deepcopy(data[split]["dataset"])
        ds["transforms"] = [{"RecResizeImg": {**op["RecResizeImg"], "padding": False}} if "RecResizeImg" in op
                            else op for op in ds["transforms"]]
    return data


def make_checkpoint(config: dict, out: Path) -> Path:
    """A randomly initialised tiny mv3 checkpoint of ``config`` (what it feeds the model is what counts)."""
    torch = pytest.importorskip("torch")
    from crnn import checkpoint
    from crnn.charset import Charset
    from crnn.models import build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = config_from_dict(config)
    charset = Charset.from_config(None)
    model = build_model(cfg.Architecture, charset.num_classes)
    return checkpoint.save(out / "tiny", {"model": model.state_dict(), "config": cfg.to_dict(),
                                          "charset": charset.to_dict()})


@pytest.fixture(scope="module")
def stretched(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, exported .onnx) of a tiny model trained (configured) with padding: false."""
    pytest.importorskip("onnxruntime")
    from crnn.export import export_onnx

    out = tmp_path_factory.mktemp("nopad")
    ckpt = make_checkpoint(no_padding_config(tiny_set, out), out)
    return ckpt, Path(export_onnx(ckpt, out / "tiny.onnx", check=False)["onnx"])


def recognizer_inputs(model: Path, images: list[Path]) -> dict[str, np.ndarray]:
    """The (C, H, W) tensor ``Recognizer`` feeds its model for each image, by file name."""
    from crnn import Recognizer

    rec = Recognizer(model, num_threads=1)
    fed: list[np.ndarray] = []
    run = rec.run
    rec.run = lambda x: (fed.append(x.copy()), run(x))[1]  # type: ignore[method-assign]
    for p in images:
        rec([p])
    return {p.name: x[0] for p, x in zip(images, fed, strict=True)}


def eval_inputs(ckpt: Path) -> dict[str, np.ndarray]:
    """The (C, H, W) tensor ``crnn eval`` of the checkpoint feeds its model for each image, by file name."""
    from crnn.evaluate import eval_datasets, load_eval_model

    cfg = load_eval_model(str(ckpt), None, [], 1)[0]
    ((_, ds),) = eval_datasets(cfg.Eval.dataset, lambda s: s, True)
    return {Path(item.key).name: item.image for item in (ds[i] for i in range(len(ds)))}


def padding_columns(x: np.ndarray) -> int:
    """Trailing input columns that are all exactly 0 (zero right padding after normalisation)."""
    nonzero = np.flatnonzero(np.abs(x).max(axis=(0, 1)))
    return x.shape[-1] - (int(nonzero[-1]) + 1 if len(nonzero) else 0)


def test_recognizer_feeds_what_evaluation_feeds_without_padding(stretched: tuple[Path, Path], tiny_set: Path) -> None:
    """Before the spec, evaluation stretched these images to W while Recognizer padded them (0 vs ~60 zero columns)."""
    ckpt, onnx_path = stretched
    want = eval_inputs(ckpt)
    images = sorted((tiny_set / "images").glob("*.png"))[:6]
    assert all(padding_columns(want[p.name]) == 0 for p in images)  # stretched: the image fills W
    for model in (ckpt, onnx_path):
        got = recognizer_inputs(model, images)
        for p in images:
            assert got[p.name].shape == want[p.name].shape == (3, 32, 100)
            assert np.array_equal(got[p.name], want[p.name]), (
                f"{model.name}, {p.name}: Recognizer input has {padding_columns(got[p.name])} padding columns, "
                f"evaluation's {padding_columns(want[p.name])}")


def test_evaluation_takes_the_preprocessing_from_the_model_not_the_config(
        stretched: tuple[Path, Path], tiny_set: Path, tmp_path: Path) -> None:
    """`crnn eval --model M -c C`: C's sets with M's preprocessing (here C pads, M stretches), .pt and .onnx alike."""
    import yaml

    from crnn.evaluate import evaluate_sets, load_eval_model

    ckpt, onnx_path = stretched
    want = eval_inputs(ckpt)
    padded_cfg = tmp_path / "padded.yml"
    padded_cfg.write_text(yaml.safe_dump(tiny_config(tiny_set, tmp_path)), encoding="utf-8")
    fed: list[np.ndarray] = []

    def capture(x: np.ndarray) -> np.ndarray:  # the evaluated model: records its input, reads nothing
        fed.extend(x)
        return np.zeros((len(x), 25, 37), np.float32)

    for model in (ckpt, onnx_path):
        cfg, _, charset, _, spec = load_eval_model(str(model), str(padded_cfg), [], 1)
        assert spec == Preprocess(padding=False) and cfg.Eval.dataset.transforms.padding
        fed.clear()
        texts: dict[str, dict[str, str]] = {}
        evaluate_sets(capture, cfg, charset, cfg.Eval.dataset, cfg.Eval.loader, False, texts=texts, preprocess=spec)
        keys = [Path(k).name for k in next(iter(texts.values()))]
        assert len(fed) == len(keys) == 24
        for key, x in zip(keys, fed, strict=True):
            assert np.array_equal(x, want[key]), f"{model.name}, {key}: {padding_columns(x)} padding columns"


def test_training_dataset_uses_the_same_spec(tiny_set: Path, tmp_path: Path) -> None:
    from crnn.data.datasets import build_dataset

    cfg = config_from_dict(no_padding_config(tiny_set, tmp_path))
    ds = build_dataset(cfg.Train.dataset, lambda s: None, train=True)
    assert ds.preprocess == Preprocess.from_config(cfg) == Preprocess(padding=False)
    item = ds[0]
    assert item is not None and padding_columns(item.image) == 0


def test_dynamic_width_is_refused_for_a_model_that_stretches(stretched: tuple[Path, Path]) -> None:
    from crnn import Recognizer

    for model in stretched:
        with pytest.raises(ValueError, match=f"dynamic_width.*{model.name} stretches"):
            Recognizer(model, num_threads=1, dynamic_width=True)


def test_the_service_feeds_the_model_by_the_spec(stretched: tuple[Path, Path], tiny_set: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from crnn import Recognizer
    from crnn.serve import ServeSettings, create_app

    ckpt, _ = stretched
    rec = Recognizer(ckpt, num_threads=1)
    fed: list[np.ndarray] = []
    run = rec.run
    rec.run = lambda x: (fed.append(x.copy()), run(x))[1]  # type: ignore[method-assign]
    image = tiny_set / "images" / "000.png"
    with TestClient(create_app(rec, ServeSettings(max_wait_ms=1)), base_url="http://127.0.0.1") as client:
        r = client.post("/v1/recognize", files=[("files", ("a.png", image.read_bytes(), "image/png"))])
    assert r.status_code == 200, r.text
    assert fed[0].shape == (1, 3, 32, 100)  # the warm-up pass, at the model's input size
    assert np.array_equal(fed[-1][0], eval_inputs(ckpt)[image.name])


# ---------------------------------------------------------------- the spec itself

SPECS = [Preprocess(), Preprocess(padding=False), Preprocess((1, 48, 320), "RGB", True),
         Preprocess((3, 32, 100), "RGB", False, scale=1.0, mean=127.5, std=127.5)]


@pytest.mark.parametrize("spec", SPECS)
def test_spec_round_trips_through_json(spec: Preprocess) -> None:
    assert Preprocess.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize(("change", "message"), [
    ({"padding": "false"}, r"^m\.onnx: crnn\.preprocess\.padding: must be true or false, got 'false'$"),
    ({"image_shape": [3, 32]}, r"crnn\.preprocess\.image_shape: expected \[C, H, W\]"),
    ({"image_shape": [2, 32, 100]}, r"crnn\.preprocess\.image_shape"),
    ({"image_shape": [3, 32.0, 100]}, r"crnn\.preprocess\.image_shape"),
    ({"img_mode": "HSV"}, r"crnn\.preprocess\.img_mode: must be BGR or RGB, got 'HSV'"),
    ({"scale": 0}, r"crnn\.preprocess\.scale: must be a positive number, got 0"),
    ({"std": -0.5}, r"crnn\.preprocess\.std: must be a positive number"),
    ({"mean": float("nan")}, r"crnn\.preprocess\.mean: must be a finite number"),
    ({"mean": True}, r"crnn\.preprocess\.mean"),
    ({"pad": "right"}, r"crnn\.preprocess: unknown key\(s\) \['pad'\]"),
])
def test_from_dict_names_the_bad_field_in_one_line(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as e:
        Preprocess.from_dict({**Preprocess().to_dict(), **change}, "m.onnx: crnn.preprocess")
    assert "\n" not in str(e.value)


def test_from_dict_refuses_missing_keys_and_non_mappings() -> None:
    d = Preprocess().to_dict()
    del d["padding"]
    with pytest.raises(ValueError, match=r"^preprocess: missing key\(s\) \['padding'\]$"):
        Preprocess.from_dict(d)
    with pytest.raises(ValueError, match="preprocess: expected a mapping"):
        Preprocess.from_dict([3, 32, 100])
    with pytest.raises(ValueError, match=r"preprocess\.image_shape"):
        Preprocess(image_shape=(3, 0, 100))


def test_from_config_is_the_eval_transforms_else_train_else_defaults(tiny_set: Path, tmp_path: Path) -> None:
    data = no_padding_config(tiny_set, tmp_path)
    assert Preprocess.from_config(config_from_dict(data)) == Preprocess(padding=False)
    data["Eval"]["dataset"]["transforms"] = [{"RecResizeImg": {"image_shape": [3, 48, 160]}},
                                             {"DecodeImage": {"img_mode": "RGB"}}]
    assert Preprocess.from_config(config_from_dict(data)) == Preprocess((3, 48, 160), "RGB", True)
    del data["Eval"]
    assert Preprocess.from_config(config_from_dict(data)) == Preprocess(padding=False)  # Train's
    del data["Train"]
    assert Preprocess.from_config(config_from_dict(data)) == Preprocess()


@pytest.mark.parametrize("spec", SPECS[:3])
def test_spec_tensors_equal_paddleocr_resize_norm_bit_for_bit(spec: Preprocess) -> None:
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(32, 53), (20, 300), (64, 40), (1, 1)]]
    want = np.stack([resize_norm(to_model_order(im, spec.img_mode), spec.image_shape, spec.padding) for im in images])
    got = spec(images)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert spec.padding or all(padding_columns(x) == 0 for x in got)


def test_normalisation_follows_scale_mean_std() -> None:
    img = np.array([[[0, 127, 255]]], np.uint8).repeat(4, axis=1)  # one row, B=0 G=127 R=255
    got = Preprocess((3, 1, 4), "BGR", False, scale=1.0, mean=127.5, std=127.5)([img])[0, :, 0, 0]
    np.testing.assert_allclose(got, [-1.0, -0.5 / 127.5, 1.0], rtol=1e-6)
    assert Preprocess((3, 1, 4), "RGB", False)([img])[0, 0, 0, 0] == 1.0  # RGB: channel 0 is red


# ---------------------------------------------------------------- ONNX metadata

CHARSET = json.dumps({"chars": list("ab"), "lower": False})


@pytest.mark.parametrize("spec", SPECS)
def test_metadata_round_trip(spec: Preprocess) -> None:
    props = {"crnn.format_version": "1", "crnn.charset": CHARSET, **preprocess_metadata(spec)}
    assert parse_metadata(props, "m.onnx")["preprocess"] == spec
    # older readers (crnn before the spec, deploy/cpp builds before it) still find shape and channel order
    assert json.loads(props["crnn.image_shape"]) == list(spec.image_shape) and props["crnn.img_mode"] == spec.img_mode


def test_metadata_from_before_the_spec_means_padding() -> None:
    old = {"crnn.format_version": "1", "crnn.charset": CHARSET, "crnn.image_shape": "[3, 48, 320]",
           "crnn.img_mode": "RGB"}
    assert parse_metadata(old, "m.onnx")["preprocess"] == Preprocess((3, 48, 320), "RGB", True)
    # what `crnn export` wrote as crnn.preprocess before: a description, without padding
    described = json.dumps({"resize": "cv2.INTER_LINEAR ...", "scale": 1 / 255, "mean": 0.5, "std": 0.5,
                            "pad": "right", "pad_value": 0.0, "layout": "NCHW", "output": "logits (B, T, K)"})
    assert parse_metadata({**old, "crnn.preprocess": described}, "m.onnx")["preprocess"].padding
    with pytest.raises(ValueError, match=r"m\.onnx: crnn\.image_shape: expected \[C, H, W\]"):
        parse_metadata({**old, "crnn.image_shape": "[3, 0, 320]"}, "m.onnx")


def test_the_bundled_onnx_model_reads_as_padded() -> None:
    pytest.importorskip("onnx")
    from crnn.export import read_metadata
    from crnn.predict import DEFAULT_ONNX_MODEL

    assert parse_metadata(read_metadata(DEFAULT_ONNX_MODEL), DEFAULT_ONNX_MODEL)["preprocess"] == Preprocess()


def test_metadata_errors_name_the_file_and_key() -> None:
    props = {"crnn.format_version": "1", "crnn.charset": CHARSET, **preprocess_metadata(Preprocess(padding=False))}
    with pytest.raises(ValueError, match=r"m\.onnx: malformed crnn metadata \(crnn\.preprocess\)"):
        parse_metadata({**props, "crnn.preprocess": "{not json"}, "m.onnx")
    with pytest.raises(ValueError, match=r"m\.onnx: crnn\.preprocess\.padding"):
        parse_metadata({**props, "crnn.preprocess": props["crnn.preprocess"].replace("false", "0")}, "m.onnx")
    with pytest.raises(ValueError, match=r"m\.onnx: crnn\.preprocess says \[3, 32, 100\] BGR but .* \[3, 48, 100\]"):
        parse_metadata({**props, "crnn.image_shape": "[3, 48, 100]"}, "m.onnx")
    with pytest.raises(ValueError, match=r"m\.onnx: crnn\.preprocess: expected a mapping"):
        parse_metadata({**props, "crnn.preprocess": "[]"}, "m.onnx")
