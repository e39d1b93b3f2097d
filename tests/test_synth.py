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
    for name, style in STYLES.items():
        if name == "default" or style.source == "realwarp":  # realwarp: see the realwarp tests
            continue
        # stand-in photos: the tests must not need scripts/install_backgrounds.sh
        kw = {"photos": _photos()} if style.photo_p > 0 else {}
        got = _read_all(_gen_dir(tmp_path / name, assets, style=name, **kw))
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


# --- scenes closer to real ones: photo backgrounds, extra fonts, warps of real crops ----------


def _photos(n: int = 3) -> list[np.ndarray]:
    """Stand-ins for the installed photos: busy, full-range textures (the hardest case for contrast)."""
    rng = np.random.default_rng(11)
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, size=(12, 16, 3)).astype(np.uint8)
        img = cv2.resize(small, (320, 240), interpolation=cv2.INTER_CUBIC)
        out.append(np.clip(img.astype(np.int16) + rng.integers(-40, 40, size=img.shape), 0, 255).astype(np.uint8))
    return out


def test_scene_style_same_seed_same_bytes(tmp_path: Path, assets) -> None:
    photos = _photos()
    _gen(tmp_path / "a", assets, num=12, style="scene", photos=photos)
    _gen(tmp_path / "b", assets, num=12, style="scene", photos=photos)
    _gen(tmp_path / "c", assets, num=12, style="scene", photos=photos, seed=4)
    a, b, c = (_read_all(tmp_path / x) for x in "abc")
    assert a == b
    assert a["shard_00000"][b"image-000000001"] != c["shard_00000"][b"image-000000001"]
    for i in range(1, 13):
        img = cv2.imdecode(np.frombuffer(a["shard_00000"][b"image-%09d" % i], np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and 8 <= img.shape[0] <= 120 and 4 <= img.shape[1] <= 30 * img.shape[0]
    # other photos are other inputs: resuming into the set with them is refused
    with pytest.raises(ValueError, match="inputs"):
        _gen(tmp_path / "a", assets, num=12, style="scene", photos=_photos(2))


def test_missing_backgrounds_name_install_script(tmp_path: Path) -> None:
    from crnn.synth.backgrounds import load_backgrounds

    with pytest.raises(FileNotFoundError, match=r"install_backgrounds\.sh"):
        load_backgrounds(tmp_path / "nope")
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(FileNotFoundError, match=r"bad\.jpg"):
        load_backgrounds(tmp_path)


def test_missing_extra_fonts_name_install_script(tmp_path: Path, assets, monkeypatch) -> None:
    from crnn.synth import fonts

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(fonts, "EXTRA_FONT_ROOTS", (str(tmp_path / "none"),))
    with pytest.raises(FileNotFoundError, match=r"install_more_fonts\.sh"):
        fonts.fonts_for_style("all")
    assert len(fonts.fonts_for_style("base")) == len(assets[0])


def test_photo_text_stays_legible() -> None:
    from PIL import Image, ImageDraw

    from crnn.synth.backgrounds import contrast_text_color, photo_background, text_contrast
    from crnn.synth.fonts import discover_fonts

    try:
        font_path = discover_fonts()[0].path
    except FileNotFoundError:
        pytest.skip("no fonts installed (scripts/install_fonts.sh)")
    from crnn.synth.render import load_font

    canvas = Image.new("L", (220, 70), 0)
    ImageDraw.Draw(canvas).text((10, 50), "Legible", font=load_font(font_path, 40), fill=255, anchor="ls")
    fill = np.asarray(canvas).astype(np.float32) / 255.0
    photos = _photos()
    got = []
    for seed in range(60):
        rng = np.random.default_rng(seed)
        bg = photo_background(70, 220, photos, rng)
        assert bg.shape == (70, 220, 3) and bg.dtype == np.float32
        bg, fg, _ = contrast_text_color(bg, fill, rng)
        img = bg + (fg - bg) * fill[..., None]
        got.append(text_contrast(img, fill))
    # the margin is >= 0.15 against the 5th/95th percentile under the text; the ring around the
    # letters is another set of pixels, so allow a little less, and expect most to be far above
    assert min(got) > 0.08, sorted(got)[:5]
    assert np.median(got) > 0.3


def _real_root(tmp_path: Path, assets) -> Path:
    """A tiny stand-in for ../shared/data/train: six word crops, a near-duplicate list, a val split."""
    from PIL import Image, ImageDraw

    from crnn.synth.render import load_font

    root = tmp_path / "train"
    (root / "set").mkdir(parents=True)
    font = load_font(assets[0][0].path, 30)
    labels = ["Cafe", "SALE", "open24", "exit", "Hotel", "!!"]
    for i, word in enumerate(labels):
        img = Image.new("RGB", (30 * len(word) + 20, 44), (40 * i, 200, 120))
        ImageDraw.Draw(img).text((10, 34), word, font=font, fill=(20, 20, 20), anchor="ls")
        img.save(root / "set" / f"{i}.png")
    conf = tmp_path / "configs"
    conf.mkdir()
    (conf / "real_train.tsv").write_text("".join(f"set/{i}.png\t{w}\n" for i, w in enumerate(labels)))
    (conf / "real_val.tsv").write_text("set/3.png\texit\n")
    (root / "near_test_duplicates.tsv").write_text(
        "train_image\ttrain_label\ttest_set\ttest_image\ttest_label\tdistance\n"
        "train/set/1.png\tSALE\tx\teval/x/1.png\tSALE\t0.1\n"
    )
    return root


def test_realwarp_excludes_val_and_near_duplicates(tmp_path: Path, assets) -> None:
    from crnn.synth.realwarp import load_real_crops

    root = _real_root(tmp_path, assets)
    crops = load_real_crops(tmp_path / "configs" / "real_train.tsv", root)
    # SALE: near-test duplicate; exit: validation; "!!": nothing left after the 36-symbol filter
    assert [(rel, label) for rel, _, label in crops] == [("set/0.png", "Cafe"), ("set/2.png", "open24"),
                                                         ("set/4.png", "Hotel")]
    (root / "near_test_duplicates.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="near_test_duplicates.tsv"):
        load_real_crops(tmp_path / "configs" / "real_train.tsv", root)


def test_realwarp_set_deterministic_keeps_labels(tmp_path: Path, assets) -> None:
    root = _real_root(tmp_path, assets)
    labels = tmp_path / "configs" / "real_train.tsv"
    kw = {"num": 24, "style": "realwarp", "real_labels": labels, "real_root": root}
    _gen(tmp_path / "a", assets, **kw)
    _gen(tmp_path / "b", assets, **kw)
    a, b = _read_all(tmp_path / "a"), _read_all(tmp_path / "b")
    assert a == b
    for kv in a.values():
        for i in range(1, int(kv[b"num-samples"]) + 1):
            assert kv[b"label-%09d" % i].decode() in {"Cafe", "open24", "Hotel"}
            img = cv2.imdecode(np.frombuffer(kv[b"image-%09d" % i], np.uint8), cv2.IMREAD_COLOR)
            assert img is not None and 4 <= img.shape[0] <= 160 and img.shape[1] >= 4
    with pytest.raises(ValueError, match="--from"):
        _gen(tmp_path / "c", assets, num=4, style="realwarp")
    with pytest.raises(ValueError, match="--from"):
        _gen(tmp_path / "d", assets, num=4, real_labels=labels, real_root=root)


@pytest.mark.parametrize("kind", ["arc", "perspective", "rotate", "tps"])
def test_real_warps_keep_the_whole_word(kind: str) -> None:
    from crnn.synth import realwarp
    from crnn.synth.render import _arc

    img = np.full((40, 160, 3), 200, np.uint8)
    img[12:28, 10:150] = 30  # the "word": it must survive whole, neither cut nor duplicated
    warp = {"arc": lambda x, r: _arc(x, r, realwarp.ARC_SPAN, min_radius=0.7), "perspective": realwarp.warp_perspective,
            "rotate": realwarp.warp_rotate, "tps": realwarp.warp_tps}[kind]
    rng = np.random.default_rng(0)
    for _ in range(8):
        out = warp(realwarp._with_alpha(img), rng)
        assert out.shape[2] == 4 and min(out.shape[:2]) >= 4
        flat = realwarp._flatten(out, realwarp._backdrop(img))
        dark = int((flat.mean(axis=2) < 115).sum())
        # area changes under perspective (one end shrinks) but ink is neither lost nor cloned
        assert 0.35 * 16 * 140 < dark < 1.6 * 16 * 140, (kind, dark)
        # the whole crop is still there: its coverage (alpha) keeps most of its area
        assert 0.35 * 40 * 160 < int((out[..., 3] > 127).sum()) < 1.6 * 40 * 160


def test_tps_identity() -> None:
    from crnn.synth.realwarp import tps_map

    pts = np.array([[0, 0], [50, 0], [100, 0], [0, 30], [50, 30], [100, 30]], np.float64)
    mx, my = tps_map(pts, pts, 101, 31)
    xs, ys = np.meshgrid(np.arange(101), np.arange(31))
    assert np.abs(mx - xs).max() < 1e-3 and np.abs(my - ys).max() < 1e-3


def test_cli_realwarp_needs_from(tmp_path: Path, capsys) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "o"), "--num", "4", "--style", "realwarp", "--no-progress"])
    assert cli.run(args) == 2
    assert "--from" in capsys.readouterr().err
