"""``crnn serve``: API behaviour, bad inputs, limits, micro-batching, metrics, OpenAPI, fuzzing, shutdown."""

from __future__ import annotations

import asyncio
import base64
import copy
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="crnn serve needs the serve extra: pip install -e '.[serve]'")
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crnn.charset import Charset
from crnn.decode import greedy_decode, greedy_decode_chars
from crnn.predict import Recognizer
from crnn.serve import ServeSettings, create_app
from crnn.serve.batcher import MicroBatcher, OverloadedError
from crnn.serve.schemas import ErrorResponse, RecognizeResponse
from tests.conftest import draw_word, tiny_config

LIMITS = ServeSettings(max_images=8, max_request_bytes=2_000_000, max_pixels=1_000_000, max_side=4000, max_wait_ms=2)


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def png_header(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h pixels (with almost no pixel data)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def files(*blobs: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (f"img{i}.png", b, "image/png")) for i, b in enumerate(blobs)]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny checkpoint (API tests need a real model, not a good one)."""
    torch = pytest.importorskip("torch")
    from crnn import checkpoint
    from crnn.config import config_from_dict
    from crnn.models import build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("serve")
    cfg = config_from_dict(tiny_config(root, root / "out"))
    charset = Charset.from_config(None)
    model = build_model(cfg.Architecture, charset.num_classes)
    return checkpoint.save(root / "tiny.pt", {"model": model.state_dict(), "config": cfg.to_dict(),
                                              "charset": charset.to_dict()})


@pytest.fixture(scope="module")
def rec(model_path: Path) -> Recognizer:
    return Recognizer.from_checkpoint(model_path, num_threads=1)


@pytest.fixture(scope="module")
def client(rec: Recognizer):
    with TestClient(create_app(rec, LIMITS), base_url="http://127.0.0.1") as c:
        yield c


def fake_recognizer(rec: Recognizer, run=None) -> Recognizer:
    """The tiny recognizer with another back end function (to make inference fail or stall)."""
    fake = copy.copy(rec)
    fake.run = run or rec.run
    return fake


def assert_error(r, status: int, code: str, item: int | None = None) -> None:
    assert r.status_code == status, r.text
    err = ErrorResponse.model_validate(r.json())
    assert err.code == code, err
    assert err.item == item, err
    assert err.detail


def test_multipart_results_in_order_match_library(client: TestClient, rec: Recognizer) -> None:
    imgs = [draw_word(w, i) for i, w in enumerate(["cat", "tree", "42", "shop", "exit"])]
    r = client.post("/v1/recognize", files=files(*(encode(im) for im in imgs)))
    assert r.status_code == 200, r.text
    got = RecognizeResponse.model_validate(r.json()).results
    want = rec([np.asarray(im) for im in imgs])
    assert [g.text for g in got] == [w.text for w in want]
    assert [g.confidence for g in got] == pytest.approx([w.confidence for w in want], abs=1e-6)
    assert all(g.char_confidences is None for g in got) and "char_confidences" not in r.json()["results"][0]


def test_json_base64_and_data_url_equal_multipart(client: TestClient) -> None:
    blobs = [encode(draw_word("park", 1)), encode(draw_word("road", 2).convert("RGB"), "JPEG")]
    multi = client.post("/v1/recognize", files=files(*blobs)).json()
    b64 = [base64.b64encode(b).decode() for b in blobs]
    assert client.post("/v1/recognize", json={"images": b64}).json() == multi
    urls = ["data:image/png;base64," + b64[0], "data:image/jpeg;base64," + b64[1]]
    assert client.post("/v1/recognize", json={"images": urls}).json() == multi


def test_char_confidences(client: TestClient) -> None:
    blobs = [encode(draw_word(w, i)) for i, w in enumerate(["stop", "a", "exit", "cat", "42", "shop"])]
    plain = client.post("/v1/recognize", files=files(*blobs)).json()["results"]
    r = client.post("/v1/recognize?char_confidences=true", files=files(*blobs))
    assert [(x["text"], x["confidence"]) for x in r.json()["results"]] == [(x["text"], x["confidence"]) for x in plain]
    for res in r.json()["results"]:
        assert len(res["char_confidences"]) == len(res["text"])
        if res["text"]:
            assert np.mean(res["char_confidences"]) == pytest.approx(res["confidence"], abs=1e-5)


def test_char_positions_match_the_library(client: TestClient, rec: Recognizer) -> None:
    imgs = [draw_word(w, i) for i, w in enumerate(["exit", "shop"])]
    r = client.post("/v1/recognize?char_positions=true", files=files(*(encode(im) for im in imgs)))
    assert r.status_code == 200, r.text
    want = rec([np.asarray(im) for im in imgs])
    for res, w, im in zip(r.json()["results"], want, imgs, strict=True):
        assert "char_confidences" not in res
        assert res["char_positions"] == [list(x) for x in w.char_positions]
        assert len(res["char_positions"]) == len(res["text"])
        xs = [x for pos in res["char_positions"] for x in pos]
        assert xs == sorted(xs) and xs[0] >= 0 and xs[-1] <= im.width and xs[-1] > xs[-2]


def test_serve_settings_choose_the_decoder() -> None:
    from crnn.serve.server import load_recognizer

    digits = load_recognizer(ServeSettings(postprocess={"allow": "0123456789"}))
    assert set(digits([draw_word("shop 42", 0)])[0].text) <= set("0123456789")
    with pytest.raises(ValueError, match="no_such_key"):
        load_recognizer(ServeSettings(postprocess={"no_such_key": 1}))


def test_greedy_decode_chars_agrees_with_greedy_decode() -> None:
    charset = Charset.from_config(None)
    logits = np.random.default_rng(0).normal(size=(6, 25, charset.num_classes)).astype(np.float32) * 3
    for plain, detailed in zip(greedy_decode(logits, charset), greedy_decode_chars(logits, charset), strict=True):
        assert (detailed.text, detailed.confidence) == (plain.text, plain.confidence)
        assert len(detailed.char_confidences) == len(plain.text)


def _variants() -> list[tuple[str, bytes]]:
    """(name, encoded) for unusual image kinds whose pixels equal the RGB word's (so results must too)."""
    word = draw_word("exit", 5).convert("L").convert("RGB")  # grey, so every kind can hold it exactly
    grey = np.asarray(word.convert("L"))
    bgr16 = (np.asarray(word)[:, :, ::-1].astype(np.uint16) * 257)
    import cv2

    rgba = word.convert("RGBA")
    return [("grey", encode(word.convert("L"))), ("rgba", encode(rgba)),
            ("palette", encode(word.convert("P", palette=Image.Palette.ADAPTIVE, colors=256))),
            ("grey16", encode(Image.fromarray(grey.astype(np.uint16) * 257))),
            ("rgb16", cv2.imencode(".png", bgr16)[1].tobytes()), ("grey-alpha", encode(word.convert("LA"))),
            ("tiff-float", encode(Image.fromarray(grey.astype(np.float32), "F"), "TIFF")),
            ("bmp", encode(word, "BMP")), ("webp-lossless", _webp(word))]


def _webp(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "WEBP", lossless=True)
    return buf.getvalue()


@pytest.mark.parametrize(("name", "blob"), _variants(), ids=[n for n, _ in _variants()])
def test_image_kinds_work_and_equal_8bit_rgb(client: TestClient, name: str, blob: bytes) -> None:
    ref = encode(draw_word("exit", 5).convert("L").convert("RGB"))
    r = client.post("/v1/recognize", files=files(ref, blob))
    assert r.status_code == 200, r.text
    a, b = r.json()["results"]
    assert a == b, name


def test_decoding_matches_opencv_on_eval_crops() -> None:
    """The one decoder (Pillow) gives OpenCV's pixels (what PaddleOCR trains on) on real crops."""
    import random

    import cv2

    from crnn.data.images import decode_image, pil_to_bgr
    from tests.conftest import need_shared

    paths = sorted(p for p in need_shared("data", "eval").rglob("*") if p.suffix.lower() in {".jpg", ".png", ".webp"})
    for p in random.Random(0).sample(paths, 100):
        data = p.read_bytes()
        ours = decode_image(data, p.name, 10**8, 10**5)
        assert np.array_equal(ours, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)), p
        # decode_image takes OpenCV for plain JPEG / WebP: Pillow's own decoding must give the same pixels
        assert np.array_equal(ours, pil_to_bgr(Image.open(io.BytesIO(data)))), p


def test_transparency_composited_on_white(client: TestClient) -> None:
    """Dark text on a transparent background whose clear pixels are black (0, 0, 0, 0), as cut-out crops
    often store it, reads exactly as the same word on white; dropping alpha would read black on black."""
    word = np.asarray(draw_word("open", 7))
    alpha = np.where(np.asarray(Image.fromarray(word).convert("L")) < 128, 255, 0).astype(np.uint8)  # text only
    text = alpha[..., None] > 0
    pixels = np.dstack([word * text, alpha]).astype(np.uint8)
    on_white = np.where(text, word, 255).astype(np.uint8)
    on_black = (word * text).astype(np.uint8)

    from crnn.data.images import decode_image

    assert np.array_equal(decode_image(encode(Image.fromarray(pixels, "RGBA")), "cut.png"), on_white[..., ::-1])

    def read(*images: np.ndarray) -> list[tuple[str, float]]:
        r = client.post("/v1/recognize", files=files(*(encode(Image.fromarray(im)) for im in images)))
        assert r.status_code == 200, r.text
        return [(x["text"], x["confidence"]) for x in r.json()["results"]]

    transparent, white, black = read(pixels, on_white, on_black)
    assert transparent == white
    assert black != white  # the (untrained) test model tells the two backgrounds apart, so this test can fail


GOOD = encode(draw_word("bank", 9))
# noisy, so most of the file is entropy-coded data and a cut lands after the headers
JPEG = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 200, 3), dtype=np.uint8)), "JPEG")
BAD_REQUESTS = {
    "empty-multipart": (dict(content=b"", headers={"content-type": "multipart/form-data; boundary=x"}), 400,
                        "empty_body", None),
    "empty-json": (dict(content=b"", headers={"content-type": "application/json"}), 400, "empty_body", None),
    "no-content-type": (dict(content=GOOD), 415, "unsupported_media_type", None),
    "raw-image-type": (dict(content=GOOD, headers={"content-type": "image/png"}), 415, "unsupported_media_type", None),
    "non-image-bytes": (dict(files=files(GOOD, b"this is not an image")), 422, "not_an_image", 1),
    "truncated-png": (dict(files=files(GOOD, GOOD[: len(GOOD) // 2])), 422, "corrupt_image", 1),
    "truncated-jpeg": (dict(files=files(JPEG[: len(JPEG) * 2 // 3])), 422, "corrupt_image", 0),
    "zero-byte-file": (dict(files=files(b"")), 422, "empty_image", 0),
    "zero-size-png": (dict(files=files(png_header(0, 32))), 422, "not_an_image", 0),
    "huge-header": (dict(files=files(GOOD, png_header(60000, 60000))), 413, "image_too_large", 1),
    "too-many-pixels": (dict(files=files(encode(Image.new("L", (2000, 600))))), 413, "image_too_large", 0),
    "too-long-side": (dict(files=files(encode(Image.new("L", (4001, 1))))), 413, "image_too_large", 0),
    "too-many-images": (dict(files=files(*[GOOD] * 9)), 413, "too_many_images", None),
    "body-too-large": (dict(files=files(b"\0" * 2_100_000)), 413, "body_too_large", None),
    "no-files-field": (dict(files=[("file", ("a.png", GOOD, "image/png"))]), 400, "no_images", None),
    "text-field": (dict(data={"files": "hello"}, files=[("other", ("a.png", GOOD, "image/png"))]), 422,
                   "not_a_file", 0),
    "garbage-multipart": (dict(content=b"--y\r\ngarbage", headers={"content-type": "multipart/form-data; boundary=y"}),
                          400, "no_images", None),
    "multipart-no-boundary": (dict(content=b"--y\r\n", headers={"content-type": "multipart/form-data"}), 400,
                              "bad_multipart", None),
    "part-without-disposition": (dict(content=b"--y\r\nX: 1\r\n\r\nhi\r\n--y--\r\n",
                                      headers={"content-type": "multipart/form-data; boundary=y"}), 400,
                                 "bad_multipart", None),
    "bad-json": (dict(content=b'{"images": [', headers={"content-type": "application/json"}), 400,
                 "invalid_json", None),
    "json-not-utf8": (dict(content=b"\xff\xfe", headers={"content-type": "application/json"}), 400,
                      "invalid_json", None),
    "json-wrong-key": (dict(json={"imgs": ["aGk="]}), 422, "invalid_request", None),
    "json-empty-list": (dict(json={"images": []}), 422, "invalid_request", None),
    "json-not-strings": (dict(json={"images": [1, 2]}), 422, "invalid_request", None),
    "json-list": (dict(json=["aGk="]), 422, "invalid_request", None),
    "json-too-many": (dict(json={"images": ["aGk="] * 9}), 413, "too_many_images", None),
    "bad-base64": (dict(json={"images": [base64.b64encode(GOOD).decode(), "not base64!"]}), 422, "bad_base64", 1),
    "base64-non-ascii": (dict(json={"images": ["ü"]}), 422, "bad_base64", 0),
    "data-uri-without-comma": (dict(json={"images": ["data:"]}), 422, "bad_base64", 0),
    "data-uri-header-only": (dict(json={"images": ["data:image/png;base64"]}), 422, "bad_base64", 0),
    "base64-not-image": (dict(json={"images": [base64.b64encode(b"plain text").decode()]}), 422, "not_an_image", 0),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_clear_errors(client: TestClient, case: str) -> None:
    kwargs, status, code, item = BAD_REQUESTS[case]
    assert_error(client.post("/v1/recognize", **kwargs), status, code, item)
    assert client.post("/v1/recognize", files=files(GOOD)).status_code == 200  # still serving


def test_bad_query_parameter(client: TestClient) -> None:
    assert_error(client.post("/v1/recognize?char_confidences=maybe", files=files(GOOD)), 422, "invalid_parameter")


def test_health_ready_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    client.post("/v1/recognize", files=files(GOOD, GOOD))
    client.post("/v1/recognize", files=files(b"junk"))
    client.get("/no/such/path")
    text = client.get("/metrics").text
    assert 'crnn_http_requests_total{path="/v1/recognize",status="200"}' in text
    assert 'crnn_http_errors_total{code="not_an_image",path="/v1/recognize"}' in text
    assert 'crnn_http_requests_total{path="other",status="404"}' in text
    assert "crnn_http_request_duration_seconds_bucket" in text and "crnn_batch_size_bucket" in text
    assert "crnn_images_total" in text and "crnn_queue_images" in text


def test_openapi_describes_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/recognize"]["post"]
    assert set(op["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {p["name"] for p in op["parameters"]} == {"char_confidences", "char_positions"}
    assert {"200", "400", "408", "413", "415", "422", "500", "503", "504"} <= set(op["responses"])
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RecognizeResponse")
    assert op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert {"/healthz", "/readyz", "/metrics"} <= set(spec["paths"]) and "/" not in spec["paths"]
    page = client.get("/")
    assert page.status_code == 200 and 'id="files"' in page.text


def test_not_ready_before_startup(rec: Recognizer) -> None:
    c = TestClient(create_app(rec, LIMITS),
                   base_url="http://127.0.0.1")  # no `with`: the lifespan (model warm-up, batcher) never ran
    assert c.get("/readyz").status_code == 503
    assert_error(c.post("/v1/recognize", files=files(GOOD)), 503, "not_ready")


def test_inference_failure_and_timeout_do_not_kill_the_service(rec: Recognizer) -> None:
    mode = {"fail": False, "sleep": 0.0}

    def run(batch: np.ndarray) -> np.ndarray:
        if mode["fail"]:
            raise RuntimeError("boom")
        time.sleep(mode["sleep"])
        return rec.run(batch)

    with TestClient(create_app(fake_recognizer(rec, run), ServeSettings(timeout_s=0.2)),
                    base_url="http://127.0.0.1") as c:
        mode["fail"] = True
        assert_error(c.post("/v1/recognize", files=files(GOOD)), 500, "inference_failed")
        mode.update(fail=False, sleep=0.6)
        assert_error(c.post("/v1/recognize", files=files(GOOD)), 504, "timeout")
        mode["sleep"] = 0.0
        time.sleep(0.6)  # the stalled batch still holds the inference thread until its sleep ends
        assert c.post("/v1/recognize", files=files(GOOD)).status_code == 200
        assert c.get("/readyz").status_code == 200


def _batch_sizes(max_batch: int, n_requests: int) -> tuple[list[int], list[list[int]]]:
    sizes: list[int] = []

    def infer(images: list[np.ndarray], chars: list[bool]) -> list:
        sizes.append(len(images))
        time.sleep(0.02)  # a forward pass takes time, so requests pile up meanwhile
        return [int(im[0, 0, 0]) for im in images]

    async def main() -> list[list[int]]:
        b = MicroBatcher(infer, max_batch=max_batch, max_wait_s=0.005, max_queue=100)  # type: ignore[arg-type]
        b.start()
        reqs = [b.submit([np.full((2, 2, 3), i, np.uint8), np.full((2, 2, 3), 100 + i, np.uint8)])
                for i in range(n_requests)]
        out = await asyncio.gather(*reqs)
        with pytest.raises(OverloadedError):
            await b.submit([np.zeros((1, 1, 3), np.uint8)] * 101)
        await b.stop()
        with pytest.raises(OverloadedError):
            await b.submit([np.zeros((1, 1, 3), np.uint8)])
        return out  # type: ignore[return-value]

    return sizes, asyncio.run(main())


def test_batcher_groups_concurrent_requests_and_keeps_order() -> None:
    sizes, out = _batch_sizes(max_batch=8, n_requests=20)
    assert out == [[i, 100 + i] for i in range(20)]
    assert sum(sizes) == 40 and max(sizes) == 8 and len(sizes) <= 8
    sizes, out = _batch_sizes(max_batch=1, n_requests=5)
    assert sizes == [1] * 10 and out == [[i, 100 + i] for i in range(5)]


# --- property-based fuzzing: whatever arrives, the answer is never a 5xx -------------------------------------
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=20))
JSONISH = st.recursive(SCALARS,
                       lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                       max_leaves=12)
CONTENT_TYPES = st.sampled_from(["application/json", "multipart/form-data; boundary=b", "multipart/form-data",
                                 "text/plain", "image/png", "", "application/json; charset=latin-1"])


@st.composite
def requests(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["raw", "json", "json-images", "multipart", "image"]))
    junk = "?char_confidences=" + quote(draw(st.text(max_size=5)))
    query = draw(st.sampled_from(["", "?char_confidences=true", junk]))
    if kind == "raw":
        return dict(url=query, content=draw(st.binary(max_size=300)), headers={"content-type": draw(CONTENT_TYPES)})
    if kind == "json":
        return dict(url=query, json=draw(JSONISH))
    if kind == "json-images":
        items = draw(st.lists(st.text(max_size=40) | st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode()),
                              max_size=10))
        return dict(url=query, json={"images": items})
    if kind == "multipart":
        parts = draw(st.lists(st.tuples(st.sampled_from(["files", "file", "x"]), st.binary(max_size=200)), max_size=10))
        return dict(url=query, files=[(k, ("f.png", v, "image/png")) for k, v in parts])
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 200))
    arr = draw(st.sampled_from([np.uint8, np.uint16]))
    pixels = np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, np.iinfo(arr).max, (h, w), dtype=arr)
    img = Image.fromarray(pixels)
    mode = draw(st.sampled_from(["same", "RGB", "RGBA", "P", "1", "LA", "CMYK"]))
    img = img if mode == "same" or arr is np.uint16 else img.convert(mode)
    fmt = draw(st.sampled_from(["TIFF"] + (["PNG"] if img.mode != "CMYK" else [])
                               + (["JPEG"] if img.mode in ("L", "RGB", "CMYK") else [])))
    blob = encode(img, fmt)
    cut = draw(st.sampled_from([len(blob), len(blob) // 2, 20]))
    return dict(url=query, files=files(blob[:cut]), expect_ok=cut == len(blob) and "maybe" not in query)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt TIFFs it is fed
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(req=requests())
def test_fuzz_never_5xx(client: TestClient, req: dict) -> None:
    expect_ok = req.pop("expect_ok", False)
    url = req.pop("url")
    r = client.post("/v1/recognize" + url, **req)
    assert r.status_code < 500, r.text
    body = r.json()
    if r.status_code == 200:
        assert len(RecognizeResponse.model_validate(body).results) >= 1
    else:
        ErrorResponse.model_validate(body)
        assert not (expect_ok and "char_confidences=" not in url), r.text


# --- the real command: live uvicorn on 127.0.0.1, graceful shutdown ------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_cli_serve_graceful_shutdown(model_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # A long batch wait keeps the request in flight while SIGTERM arrives.
    proc = subprocess.Popen([sys.executable, "-m", "crnn", "serve", "--model", str(model_path), "--port", str(port),
                             "--threads", "1", "--max-wait-ms", "1500", "--timeout", "3"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if urllib.request.urlopen(base + "/readyz", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("server did not become ready")
        # A client that stops sending mid-body gets 408 after --timeout, and does not block others.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"POST /v1/recognize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{\"images\": [")
            assert urllib.request.urlopen(base + "/healthz", timeout=2).status == 200
            assert slow.recv(4096).startswith(b"HTTP/1.1 408")
        result: dict = {}

        def post() -> None:
            body = json.dumps({"images": [base64.b64encode(GOOD).decode()]}).encode()
            req = urllib.request.Request(base + "/v1/recognize", body, {"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=20) as r:
                result.update(status=r.status, body=json.load(r))

        t = threading.Thread(target=post)
        t.start()
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        t.join(20)
        assert result.get("status") == 200 and len(result["body"]["results"]) == 1
        assert proc.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its clean shutdown
    finally:
        if proc.poll() is None:
            proc.kill()
        log = proc.communicate()[0]
    assert "crnn serve stopped" in log and "Finished server process" in log, log


def test_cli_serve_missing_model_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from crnn.cli import main
    from crnn.predict import DEFAULT_MODEL

    assert main(["serve", "--model", str(tmp_path / "nope.pt")]) == 2
    assert "nope.pt not found" in capsys.readouterr().err
    if not Path(DEFAULT_MODEL).is_file():
        assert main(["serve"]) == 2
        assert "bundled model" in capsys.readouterr().err
