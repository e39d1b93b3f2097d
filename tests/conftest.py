"""Shared fixtures: tiny word-image datasets drawn with PIL (no network, no ../shared needed)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFont

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tests share 2 cores with other jobs; set before torch loads
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
WORDS = ["cat", "dog", "sun", "tree", "road", "park", "exit", "open", "bank", "stop", "42", "shop"]


def draw_word(text: str, seed: int = 0) -> Image.Image:
    """A dark word on a light background, roughly the shape of a real crop."""
    rng = random.Random(seed)
    font = ImageFont.load_default(size=22)
    w = int(font.getlength(text)) + 12
    img = Image.new("RGB", (w, 32), tuple(rng.randint(200, 255) for _ in range(3)))
    ImageDraw.Draw(img).text((6, 4), text, fill=tuple(rng.randint(0, 60) for _ in range(3)), font=font)
    return img


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SimpleDataSet folder: images/*.png + labels.tsv (24 samples)."""
    root = tmp_path_factory.mktemp("tiny")
    (root / "images").mkdir()
    lines = []
    for i in range(24):
        word = WORDS[i % len(WORDS)]
        draw_word(word, i).save(root / "images" / f"{i:03d}.png")
        lines.append(f"images/{i:03d}.png\t{word.upper() if i % 3 == 0 else word}")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def tiny_config(tiny: Path, out: Path, **global_overrides: object) -> dict:
    """A small mv3 config dict that trains and evaluates on ``tiny``."""
    data = {"name": "SimpleDataSet", "data_dir": str(tiny), "label_file_list": [str(tiny / "labels.tsv")],
            "transforms": [{"DecodeImage": {"img_mode": "BGR"}}, {"CTCLabelEncode": None},
                           {"RecResizeImg": {"image_shape": [3, 32, 100]}}]}
    return {
        "Global": {"save_model_dir": str(out), "epoch_num": 100, "eval_batch_step": [0, 4], "print_batch_step": 1,
                   "num_threads": 1, **global_overrides},
        "Optimizer": {"name": "Adam", "lr": {"learning_rate": 0.001}},
        "Architecture": {"Backbone": {"name": "MobileNetV3", "scale": 0.5, "model_name": "small",
                                      "small_stride": [1, 2, 2, 2]},
                         "Neck": {"name": "SequenceEncoder", "encoder_type": "rnn", "hidden_size": 32},
                         "Head": {"name": "CTCHead"}},
        "Train": {"dataset": data, "loader": {"batch_size_per_card": 8, "shuffle": True, "drop_last": True}},
        "Eval": {"dataset": data, "loader": {"batch_size_per_card": 16}},
    }


def need_shared(*parts: str) -> Path:
    """Path under ../shared, or skip the test with the reason."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not found: this test needs the project's ../shared folder beside the repo")
    return p


CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1000,800"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium driven by selenium; skips, naming the install script, when it is missing."""
    pytest.importorskip("selenium", reason="the browser tests need selenium (dev extra)")
    from selenium import webdriver

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("chromium and chromedriver are not installed: run scripts/install_browser.sh "
                    f"(found chromium={chromium}, chromedriver={driver_path})")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium  # with both paths given, selenium never tries to download a browser
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chrome-profile')}"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


_NO_TORCH = """
import sys, importlib.abc

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch imported on a path that must not need it: " + name)
        return None

sys.meta_path.insert(0, NoTorch())
"""


def run_without_torch(body: str, cwd: Path) -> None:
    """Run ``body`` (Python source) in a fresh interpreter whose import system refuses torch.

    Fails the calling test when the code raises, imports torch, or does not finish.
    """
    import subprocess
    import sys
    import textwrap

    code = _NO_TORCH + textwrap.dedent(body) + '\nassert "torch" not in sys.modules\nprint("OK")\n'
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("OK")


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """Run an ASGI app under uvicorn on a free port of 127.0.0.1 in a background thread; yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not srv.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        srv.should_exit = True
        thread.join(10)
