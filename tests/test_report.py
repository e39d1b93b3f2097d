"""``crnn eval --report DIR``: the HTML error report, its parts, and the page in a real browser."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crnn import DEFAULT_MODEL
from crnn.cli import main
from crnn.evaluate import Record
from crnn.metrics import filter_36
from crnn.report import by_bucket, confusions


def test_confusions_and_buckets() -> None:
    recs = [Record("a", "hello", "hcllo", 0.9, False), Record("b", "cat", "ca", 0.5, False),
            Record("c", "dog", "dog", 0.99, True), Record("d", "help", "hclp", 0.4, False)]
    assert confusions(recs, filter_36) == [("e→c", 2), ("t→∅", 1)]
    assert by_bucket([3, 3, 5, 12], [True, False, True, True], [(1, 2), (3, 3), (4, 5), (11, 99)]) == [
        ((3, 3), 2, 0.5), ((4, 5), 1, 1.0), ((11, 99), 1, 1.0)]


@pytest.fixture(scope="module")
def report(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An eval report of the bundled model on the tiny set, with three labels made wrong (one with markup)."""
    root = tmp_path_factory.mktemp("report_set")
    shutil.copytree(tiny_set / "images", root / "images")
    lines = (tiny_set / "labels.tsv").read_text(encoding="utf-8").splitlines()
    bad = {0: "<b>zzz</b>", 1: "qqqq", 2: "xyzzy"}
    lines = [f"{ln.split(chr(9))[0]}\t{bad[i]}" if i in bad else ln for i, ln in enumerate(lines)]
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = root / "report"
    assert main(["eval", "--checkpoint", DEFAULT_MODEL, "--sets", str(root), "--report", str(out),
                 "-o", "Global.num_threads=1"]) == 0
    return out / "index.html"


def test_report_page_content(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert "&lt;b&gt;zzz&lt;/b&gt;" in page and "<b>zzz</b>" not in page  # data is escaped
    assert "Accuracy by word length" in page and "Accuracy by aspect ratio" in page
    assert "Most frequent confusions" in page and page.count("data:image/jpeg;base64,") >= 3
    assert (report.parent / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_report_opens_in_a_browser(report: Path, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(report.as_uri())
    assert browser.title.startswith("crnn eval")
    crops = browser.find_elements(By.CSS_SELECTOR, "img.crop")
    assert len(crops) >= 3 and all(browser.execute_script("return arguments[0].naturalWidth", im) > 0 for im in crops)
    plot = browser.find_element(By.CSS_SELECTOR, "img[alt='reliability diagram']")
    assert browser.execute_script("return arguments[0].naturalWidth", plot) > 0
    assert "<b>zzz</b>" in browser.find_element(By.TAG_NAME, "body").text  # shown as text, not markup
    browser.save_screenshot(str(report.parent / "page.png"))
