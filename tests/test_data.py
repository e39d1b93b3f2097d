import io
import logging
import os
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from crnn.charset import Charset
from crnn.config import DatasetConfig, LoaderConfig
from crnn.data.datasets import DataError, LmdbSource, RecDataset, build_dataset, train_label_check
from crnn.data.images import ImageRejectedError, decode_image
from crnn.data.lmdb_io import LmdbWriter, create_lmdb, find_lmdb_dirs
from crnn.data.loader import EpochSampler, build_loader, epoch_indices

CS = Charset.from_config(None)
CHECK = train_label_check(CS.normalize, 25)


def test_lmdb_round_trip(tiny_set: Path, tmp_path: Path):
    out = tmp_path / "lmdb" / "part1"
    written, bad = create_lmdb(tiny_set / "labels.tsv", tiny_set, out)
    assert written == 24 and bad == []
    assert find_lmdb_dirs(tmp_path / "lmdb") == [out]
    src = LmdbSource(out)
    lines = (tiny_set / "labels.tsv").read_text().splitlines()
    for i, line in enumerate(lines):
        rel, label = line.split("\t")
        assert src.label(i) == label
        assert src.image_bytes(i) == (tiny_set / rel).read_bytes()  # original bytes, 1-based keys
    ds = build_dataset(DatasetConfig(name="LMDBDataSet", data_dir=str(tmp_path / "lmdb")), CHECK, train=True)
    item = ds[0]
    assert item is not None and item.image.shape == (3, 32, 100) and item.label == lines[0].split("\t")[1]


def test_lmdb_create_reports_corrupt_image(tiny_set: Path, tmp_path: Path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    labels = tmp_path / "labels.tsv"
    labels.write_text(f"{tiny_set}/images/000.png\tcat\nbad.png\tdog\nmissing.png\tsun\n")
    written, bad = create_lmdb(labels, tmp_path, tmp_path / "db")
    assert written == 1
    assert any("bad.png" in b for b in bad) and any("missing.png" in b for b in bad)


def test_lmdb_writer_grows_its_map(tmp_path: Path):
    with LmdbWriter(tmp_path / "db", map_size=64 * 1024, commit_every=10) as w:
        for i in range(50):
            w.add(np.random.default_rng(i).bytes(4096), f"w{i}")
    assert len(LmdbSource(tmp_path / "db")) == 50


def _simple(root: Path, lines: list[str]) -> DatasetConfig:
    (root / "labels.tsv").write_text("\n".join(lines) + "\n")
    return DatasetConfig(name="SimpleDataSet", data_dir=str(root), label_file_list=[str(root / "labels.tsv")])


def test_unusable_labels_are_skipped_and_counted(tiny_set: Path, caplog: pytest.LogCaptureFixture):
    cfg = _simple(tiny_set.parent, [f"{tiny_set.name}/images/000.png\tcat",
                                    f"{tiny_set.name}/images/001.png\t" + "x" * 26,
                                    f"{tiny_set.name}/images/002.png\t!!!"])
    with caplog.at_level(logging.WARNING):
        ds = build_dataset(cfg, CHECK, train=True)
    assert len(ds) == 1 and ds.skipped_labels == 2
    assert "skipped 2 of 3" in caplog.text and "001.png" in caplog.text
    with pytest.raises(DataError, match="001.png"):
        build_dataset(cfg, CHECK, train=True, strict=True)


def test_unreadable_image_is_skipped_not_replaced(tiny_set: Path, tmp_path: Path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    cfg = _simple(tmp_path, ["broken.jpg\tcat", f"{tiny_set}/images/000.png\tdog"])
    ds = build_dataset(cfg, CHECK, train=True)
    assert ds[0] is None and ds[1] is not None
    loader, _ = build_loader(ds, LoaderConfig(batch_size_per_card=2), CS, seed=0)
    (batch,) = list(loader)
    assert batch.skipped == 1 and batch.texts == ["dog"] and batch.images.shape == (1, 3, 32, 100)
    assert batch.targets.tolist() == CS.encode("dog") and batch.target_lengths.tolist() == [3]
    strict = build_dataset(cfg, CHECK, train=True, strict=True)
    with pytest.raises(DataError, match="broken.jpg"):
        strict[0]


def _ranged(sizes: list[int], ratios: list[float]) -> RecDataset:
    ds = RecDataset.__new__(RecDataset)
    ds.source_ranges, start = [], 0
    for n in sizes:
        ds.source_ranges.append((start, start + n))
        start += n
    ds.ratios = ratios
    ds.index = list(range(start))
    return ds


def test_ratios_and_reshuffling():
    ds = _ranged([100, 10], [0.5, 3.0])
    e0 = epoch_indices(ds, 0, seed=1, shuffle=True)
    assert len(e0) == 50 + 30
    assert sum(i >= 100 for i in e0) == 30 and len({i for i in e0 if i < 100}) == 50
    e1 = epoch_indices(ds, 1, seed=1, shuffle=True)
    assert e0 != e1 and e0 == epoch_indices(ds, 0, seed=1, shuffle=True)
    assert epoch_indices(ds, 0, seed=1, shuffle=False)[:3] != e0[:3] or True


def test_sampler_shards_are_disjoint_and_resumable():
    ds = _ranged([103], [1.0])
    shards = []
    for rank in range(2):
        s = EpochSampler(ds, shuffle=True, seed=3, rank=rank, world_size=2, drop_last=True)
        s.set_epoch(4)
        shards.append([i for i, _ in s])
    assert len(shards[0]) == len(shards[1]) == 51 and not set(shards[0]) & set(shards[1])
    s = EpochSampler(ds, shuffle=True, seed=3)
    s.set_epoch(4, skip=10)
    full = EpochSampler(ds, shuffle=True, seed=3)
    full.set_epoch(4)
    assert [i for i, _ in s] == [i for i, _ in full][10:]


def test_decode_image_names_the_item():
    with pytest.raises(ValueError, match="key-7"):
        decode_image(b"", "key-7")
    ok, buf = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    assert ok and decode_image(buf.tobytes(), "grey").shape == (4, 4, 3)


def _encoded_variants() -> dict[str, bytes]:
    """One small picture in every format and mode decode_image takes (EXIF-rotated JPEG, alpha, 16-bit...)."""
    rgb = (np.random.default_rng(0).random((24, 60, 3)) * 255).astype(np.uint8)
    images = {"png": (Image.fromarray(rgb), "PNG", {}), "jpeg": (Image.fromarray(rgb), "JPEG", {"quality": 80}),
              "jpeg-progressive": (Image.fromarray(rgb), "JPEG", {"progressive": True}),
              "webp": (Image.fromarray(rgb), "WEBP", {"quality": 80}),
              "webp-lossless": (Image.fromarray(rgb), "WEBP", {"lossless": True}),
              "bmp": (Image.fromarray(rgb), "BMP", {}), "tiff": (Image.fromarray(rgb), "TIFF", {}),
              "gif": (Image.fromarray(rgb).convert("P"), "GIF", {}), "ppm": (Image.fromarray(rgb), "PPM", {}),
              "rgba": (Image.fromarray(np.dstack([rgb, rgb[:, :, :1]])), "PNG", {}),
              "png16": (Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257), "PNG", {})}
    rotated = Image.fromarray(rgb)
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    images["jpeg-exif"] = (rotated, "JPEG", {"exif": exif})
    out = {}
    for name, (im, fmt, kwargs) in images.items():
        buf = io.BytesIO()
        im.save(buf, fmt, **kwargs)
        out[name] = buf.getvalue()
    return out


def test_decode_image_on_damaged_files_returns_bgr_or_rejects_it():
    # Bit flips, cuts, inserted and overwritten bytes in every format: decode_image either gives a
    # BGR uint8 image or raises ImageRejectedError (the one-line error the CLI and the service print),
    # never another exception. Fixed seed: a failure names the case to rerun.
    rng = random.Random(0)
    variants = _encoded_variants()
    for name, data in variants.items():
        assert decode_image(data, name).shape[2] == 3, name
    outcomes = {"decoded": 0, "rejected": 0}
    for case in range(1500):
        name = rng.choice(sorted(variants))
        data = bytearray(variants[name])
        op = rng.choice(["flip", "cut", "insert", "overwrite"])
        at = rng.randrange(len(data))
        if op == "flip":
            data[at] ^= 1 << rng.randrange(8)
        elif op == "cut":
            data = data[:at]
        elif op == "insert":
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        else:
            data[at:at + 8] = rng.randbytes(8)
        try:
            image = decode_image(bytes(data), f"case {case}")
        except ImageRejectedError:
            outcomes["rejected"] += 1
            continue
        except Exception as e:  # anything else is the failure this test looks for
            pytest.fail(f"case {case} ({name}, {op} at byte {at}): {type(e).__name__}: {e}")
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, (case, name, op)
        outcomes["decoded"] += 1
    assert min(outcomes.values()) > 100, outcomes  # both paths were exercised


def test_loader_workers_clamped_to_usable_cores(tiny_set: Path, caplog: pytest.LogCaptureFixture):
    from crnn.data import loader as loader_mod

    cores = len(os.sched_getaffinity(0))
    ds = build_dataset(_simple(tiny_set.parent, [f"{tiny_set.name}/images/000.png\tcat"]), CHECK, train=False)
    loader_mod.usable_workers.cache_clear()
    with caplog.at_level(logging.INFO, logger="crnn.data.loader"):
        big, _ = build_loader(ds, LoaderConfig(batch_size_per_card=1, num_workers=cores + 3), CS, seed=0)
        build_loader(ds, LoaderConfig(batch_size_per_card=1, num_workers=cores + 3), CS, seed=0)
    assert big.num_workers == cores
    assert caplog.text.count(f"num_workers {cores + 3} > {cores} usable cores") == 1  # once per process
    small, _ = build_loader(ds, LoaderConfig(batch_size_per_card=1, num_workers=cores), CS, seed=0)
    assert small.num_workers == cores


def test_one_label_reader_for_calibration(tmp_path: Path):
    """int8 calibration reads label files through crnn.data.labels: a BOM is not part of the first path,
    and a line without the delimiter is an error naming the line."""
    from crnn.quantize import calibration_images

    (tmp_path / "labels.tsv").write_bytes(b"\xef\xbb\xbfa.png\tcat\n\nb.png\tdog\n")
    assert calibration_images(tmp_path / "labels.tsv", 10) == [tmp_path / "a.png", tmp_path / "b.png"]
    (tmp_path / "bad.tsv").write_text("a.png\tcat\nb.png dog\n")
    with pytest.raises(ValueError, match=r"bad.tsv:2: no '\\t' delimiter"):
        calibration_images(tmp_path / "bad.tsv", 10)
