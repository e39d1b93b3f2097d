"""The web page at ``/`` in a real headless Chromium (selenium): upload a word image, read the result.

Skipped, with the reason, when chromium / chromedriver are not installed (``scripts/install_browser.sh``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="crnn serve needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("selenium", reason="the browser test needs selenium (dev extra)")
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from crnn.predict import Recognizer
from crnn.serve import ServeSettings, create_app
from tests.conftest import draw_word, served
from tests.test_serve import model_path  # noqa: F401  (the tiny-checkpoint fixture)


@pytest.fixture(scope="module")
def server(model_path: Path) -> Iterator[tuple[str, Recognizer]]:  # noqa: F811
    """The app under uvicorn on 127.0.0.1 in a background thread; yields (base URL, recognizer)."""
    rec = Recognizer.from_checkpoint(model_path, num_threads=1)
    with served(create_app(rec, ServeSettings())) as url:
        yield url, rec


def test_page_recognises_an_uploaded_image(server: tuple[str, Recognizer], browser: webdriver.Chrome,
                                           tmp_path: Path) -> None:
    url, rec = server
    path = tmp_path / "word.png"
    draw_word("shop", 3).save(path)
    want = rec([str(path)])[0]

    browser.get(url)
    assert "crnn" in browser.title
    browser.find_element(By.ID, "files").send_keys(str(path))
    row = WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results tr.result"))[0]
    text = row.find_element(By.CSS_SELECTOR, ".text").get_attribute("data-text")
    conf = row.find_element(By.CSS_SELECTOR, ".confidence").text
    assert text == want.text
    assert conf == f"{100 * want.confidence:.1f}%"
    assert "word.png" in row.text
    assert "Done: 1 image(s)." in browser.find_element(By.ID, "status").text
    browser.save_screenshot(str(tmp_path / "page.png"))  # kept in pytest's tmp dir to look at


def test_page_shows_which_file_is_bad(server: tuple[str, Recognizer], browser: webdriver.Chrome,
                                      tmp_path: Path) -> None:
    url, _ = server
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    browser.get(url)
    browser.find_element(By.ID, "files").send_keys(str(bad))
    status = WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.ID, "status") if "Error" in d.find_element(By.ID, "status").text else None)
    assert "422" in status.text and "broken.png" in status.text
    assert "error" in (status.get_attribute("class") or "")
