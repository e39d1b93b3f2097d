"""Bad inputs for ``crnn serve``: hostile hosts and origins, memory bombs, overload, bad settings.

Companion of test_bad_inputs.py (CLI, API, training); the C++ program's cases are in test_cpp.py.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="crnn serve needs the serve extra: pip install -e '.[serve]'")
from fastapi.testclient import TestClient

from crnn.cli import main
from crnn.predict import Recognizer
from crnn.serve import ServeSettings, create_app
from tests.conftest import draw_word
from tests.test_bad_inputs import one_error
from tests.test_serve import files, model_path, png_header, rec  # noqa: F401  (fixtures)

SETTINGS = ServeSettings(max_wait_ms=2, max_request_pixels=4_000_000, max_inflight_pixels=8_000_000)


@pytest.fixture(scope="module")
def client(rec: Recognizer):  # noqa: F811
    with TestClient(create_app(rec, SETTINGS), base_url="http://127.0.0.1:8000") as c:
        yield c


def word_png() -> bytes:
    buf = io.BytesIO()
    draw_word("open", 2).save(buf, "PNG")
    return buf.getvalue()


def assert_refused(r, status: int, code: str, *names: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and "\n" not in body["detail"], body
    for name in names:
        assert name in body["detail"], (name, body)


@pytest.mark.parametrize("host", ["evil.example", "rebind.attacker.test:8000", "10.0.0.1"])
def test_foreign_host_header(client: TestClient, host: str) -> None:
    r = client.post("/v1/recognize", files=files(word_png()), headers={"Host": host})
    assert_refused(r, 400, "host_not_allowed", host)


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Origin": "http://127.0.0.1:9999"}, {"Sec-Fetch-Site": "cross-site"}])
def test_cross_origin_browser_request(client: TestClient, headers: dict[str, str]) -> None:
    r = client.post("/v1/recognize", files=files(word_png()), headers=headers)
    assert_refused(r, 403, "cross_origin", "--allow-cross-origin")


def test_same_origin_and_flags_are_accepted(client: TestClient, rec: Recognizer) -> None:  # noqa: F811
    r = client.post("/v1/recognize", files=files(word_png()), headers={"Origin": "http://127.0.0.1:8000"})
    assert r.status_code == 200, r.text  # the page the service serves itself
    open_settings = ServeSettings(max_wait_ms=2, allowed_hosts=("*",), allow_cross_origin=True)
    with TestClient(create_app(rec, open_settings), base_url="http://ocr.internal") as c:
        r = c.post("/v1/recognize", files=files(word_png()), headers={"Origin": "http://other.example"})
        assert r.status_code == 200, r.text


def test_many_large_images_in_one_request(client: TestClient) -> None:
    """The audit's request: 64 blank 2828x2828 PNGs; refused from the headers, nothing decoded."""
    r = client.post("/v1/recognize", files=files(*[png_header(1999, 1999)] * 64))
    assert_refused(r, 413, "too_many_images" if SETTINGS.max_images < 64 else "request_too_large",
                   str(SETTINGS.max_request_pixels))


@pytest.mark.parametrize("side", [2828, 30000, 50000])
def test_one_image_over_the_pixel_limit(client: TestClient, side: int) -> None:
    r = client.post("/v1/recognize", files=files(word_png(), png_header(side, side)))
    assert_refused(r, 413, "image_too_large", "files[1]", str(SETTINGS.max_pixels))


def test_truncated_jpeg_refused_as_in_the_cli(client: TestClient) -> None:
    buf = io.BytesIO()
    draw_word("stop", 1).save(buf, "JPEG")
    r = client.post("/v1/recognize", files=files(buf.getvalue()[:-300]))
    assert_refused(r, 422, "corrupt_image", "truncated")


def test_overload_is_refused_and_reported_by_readyz(client: TestClient) -> None:
    assert client.get("/readyz").json()["overloaded"] is False
    budget = client.app.state.pixel_budget  # type: ignore[attr-defined]
    budget.reserve(budget.limit)  # as if other requests held every pixel the budget allows
    try:
        r = client.post("/v1/recognize", files=files(word_png()))
        assert_refused(r, 503, "overloaded", str(budget.limit))
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["overloaded"] is True
    finally:
        budget.release(budget.limit)
        budget.refused_at = -1e9
    assert client.get("/readyz").status_code == 200


def test_transparent_image_reads_the_same_in_service_and_library(client: TestClient,
                                                                 rec: Recognizer) -> None:  # noqa: F811
    alpha = 255 - np.asarray(draw_word("hello", 1).convert("L"))
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., 3] = np.where(alpha > 128, 255, 0)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    r = client.post("/v1/recognize", files=files(buf.getvalue()))
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["text"] == rec([Image.fromarray(rgba, "RGBA")])[0].text


@pytest.mark.parametrize("args,expect", [
    (["--port", "70000"], "port must be 0..65535"), (["--port", "-1"], "port must be 0..65535"),
    (["--max-images", "0"], "max_images must be >= 1"), (["--threads", "0"], "threads must be >= 1"),
    (["--timeout", "0"], "timeout_s > 0"),
])
def test_bad_serve_settings(args: list[str], expect: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", *args]) == 2
    one_error(capsys, expect)
