"""Tests of the synthetic word-image generator (``crnn synth``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest

from crnn.data.lmdb_io import LmdbWriter, find_lmdb_dirs
from crnn.synth import cli
from crnn.synth.corpus import Corpus, load_words
from crnn.synth.fonts import FontInfo, discover_fonts
from crnn.synth.writer import generate, shard_plan


@pytest.fixture(scope="module")
def assets() -> tuple[list[FontInfo], list[str]]:
    """Installed fonts and word list, or skip: they come from scripts/install_fonts.sh."""
    try:
        fonts = discover_fonts()
        words = load_words()
    except FileNotFoundError as e:
        pytest.skip(f"synth assets not installed (run scripts/install_fonts.sh as root): {e}")
    return fonts, words


def _read_all(root: Path) -> dict[str, dict[bytes, bytes]]:
    out = {}
    for d in find_lmdb_dirs(root):
        env = lmdb.open(str(d), readonly=True, lock=False)
        with env.begin() as txn:
            out[d.name] = dict(txn.cursor())
        env.close()
    return out


def _gen(out: Path, assets: tuple[list[FontInfo], list[str]], num: int = 30, seed: int = 3, **kw) -> object:
    fonts, words = assets
    return generate(
        out,
        num,
        shard_size=kw.pop("shard_size", 12),
        seed=seed,
        progress=False,
        fonts=fonts,
        words=words,
        **kw,
    )


def test_shard_plan() -> None:
    assert shard_plan(50, 20) == [20, 20, 10]
    assert shard_plan(40, 20) == [20, 20]
    with pytest.raises(ValueError):
        shard_plan(0, 20)


def test_same_seed_same_bytes(tmp_path: Path, assets) -> None:
    _gen(tmp_path / "a", assets)
    _gen(tmp_path / "b", assets)
    _gen(tmp_path / "c", assets, seed=4)
    a, b, c = (_read_all(tmp_path / x) for x in "abc")
    assert a == b
    assert a["shard_00000"][b"image-000000001"] != c["shard_00000"][b"image-000000001"]


def test_lmdb_layout_and_content(tmp_path: Path, assets) -> None:
    _gen(tmp_path, assets)
    shards = _read_all(tmp_path)
    assert sorted(shards) == ["shard_00000", "shard_00001", "shard_00002"]
    for name, kv in shards.items():
        n = int(kv[b"num-samples"])
        assert n == (6 if name == "shard_00002" else 12)
        for i in range(1, n + 1):
            label = kv[b"label-%09d" % i].decode("utf-8")
            assert label.strip(), "empty label"
            img = cv2.imdecode(np.frombuffer(kv[b"image-%09d" % i], np.uint8), cv2.IMREAD_COLOR)
            assert img is not None and img.ndim == 3
            h, w = img.shape[:2]
            assert 8 <= h <= 120 and 4 <= w <= 30 * h, (h, w, label)
            assert img.std() > 1.0, f"blank image for {label!r}"


def test_resume_skips_complete_and_rewrites_incomplete(tmp_path: Path, assets) -> None:
    _gen(tmp_path, assets)
    before = _read_all(tmp_path)
    # Simulate a crash in shard 1: num-samples says only 7 were written.
    env = lmdb.open(str(tmp_path / "shard_00001"))
    with env.begin(write=True) as txn:
        txn.put(b"num-samples", b"7")
        txn.put(b"label-000000009", b"garbage")
    env.close()
    stats = _gen(tmp_path, assets)
    assert (stats.written, stats.skipped) == (12, 18)  # type: ignore[attr-defined]
    assert _read_all(tmp_path) == before
    again = _gen(tmp_path, assets)
    assert (again.written, again.skipped) == (0, 30)  # type: ignore[attr-defined]


def test_workers_do_not_change_output(tmp_path: Path, assets) -> None:
    _gen(tmp_path / "one", assets, num=20)
    _gen(tmp_path / "two", assets, num=20, workers=2)
    assert _read_all(tmp_path / "one") == _read_all(tmp_path / "two")


def test_other_settings_refused(tmp_path: Path, assets) -> None:
    _gen(tmp_path, assets, num=10)
    with pytest.raises(ValueError, match="other settings"):
        _gen(tmp_path, assets, num=10, seed=9)


def test_cli_run(tmp_path: Path, assets, capsys) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        ["--out", str(tmp_path / "o"), "--num", "12", "--shard-size", "5", "--no-progress"]
    )
    assert cli.run(args) == 0
    assert "images/s" in capsys.readouterr().out
    with LmdbWriter(tmp_path / "o" / "shard_00002") as w:
        assert w.count == 2


def test_missing_word_list_names_install_script(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"install_fonts\.sh"):
        load_words([tmp_path / "nope"])


def test_corpus_mix(assets) -> None:
    corpus = Corpus(assets[1])
    rng = np.random.default_rng(0)
    texts = [corpus.sample(rng) for _ in range(2000)]
    assert all(t and len(t) <= 40 for t in texts)
    assert any(t.isupper() for t in texts) and any(t.islower() for t in texts)
    assert any(t.istitle() for t in texts) and any(t.isdigit() for t in texts)
    assert any(not t.isalnum() for t in texts)  # punctuation / spaces present


def test_other_fonts_refused(tmp_path: Path, assets) -> None:
    fonts, words = assets
    _gen(tmp_path, assets, num=5)
    with pytest.raises(ValueError, match="inputs"):
        _gen(tmp_path, (fonts[:-1], words), num=5)


@pytest.mark.slow
def test_styles_render_and_are_recorded(tmp_path: Path, assets) -> None:
    from crnn.synth.styles import STYLES

    default = _read_all(_gen_dir(tmp_path / "default", assets))
    for name in STYLES:
        if name == "default":
            continue
        got = _read_all(_gen_dir(tmp_path / name, assets, style=name))
        # same seed, same words: only the style's geometry and degradations differ
        assert got["shard_00000"][b"label-000000001"] == default["shard_00000"][b"label-000000001"]
        images = [v for k, v in got["shard_00000"].items() if k.startswith(b"image-")]
        assert len(images) == 12
        for data in images:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            assert img is not None and img.shape[0] >= 4 and img.shape[1] >= 4
        assert got != default, name
    with pytest.raises(ValueError, match="other settings"):
        _gen(tmp_path / "arc", assets, num=12, style="rotate")
    with pytest.raises(ValueError, match="unknown synth style 'curvy'"):
        _gen(tmp_path / "x", assets, num=12, style="curvy")


def _gen_dir(out: Path, assets: tuple[list[FontInfo], list[str]], **kw) -> Path:
    _gen(out, assets, num=12, **kw)
    return out


def test_arc_keeps_the_ink() -> None:
    from crnn.synth.render import _arc

    masks = np.zeros((40, 200, 2), np.uint8)
    masks[15:25, 20:180] = 255  # a bar along the middle line
    rng = np.random.default_rng(0)
    for _ in range(10):
        out = _arc(masks, rng, (60.0, 160.0))
        assert out.dtype == np.uint8 and out.shape[2] == 2
        # the bar is bent, not cut: its area survives the remap within interpolation error
        assert abs(int((out[..., 0] > 127).sum()) - 1600) < 250
        assert out.shape[0] > 40  # an arc is taller than the flat canvas
