"""Generate synthetic word crops into LMDB shards (``OUT/shard_00000``, ...).

Deterministic: sample ``i`` of shard ``s`` is rendered from ``SeedSequence([seed, s, i])``,
and samples are written in index order whatever the number of worker processes.
Resumable: a shard whose ``num-samples`` equals its target is skipped; any other existing
shard is deleted and rewritten from scratch (its samples would be identical anyway).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lmdb
import numpy as np
from tqdm import tqdm

from crnn.data.lmdb_io import LmdbWriter
from crnn.synth import effects
from crnn.synth.backgrounds import load_backgrounds
from crnn.synth.corpus import Corpus, load_words
from crnn.synth.fonts import FontInfo, fonts_for_style
from crnn.synth.realwarp import RealWarper, load_real_crops
from crnn.synth.render import Renderer, sample_rng
from crnn.synth.styles import get_style

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2  # bump when the renderer changes so old and new sets are not mixed
META_FILE = "synth.json"
CHUNK = 200  # samples per worker task: large enough to amortise IPC, small for a smooth bar


@dataclass
class SynthStats:
    """What a :func:`generate` call did."""

    written: int
    skipped: int
    seconds: float
    cpu_seconds: float  # CPU time of this process (the whole cost only when workers == 1)

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def shard_plan(num: int, shard_size: int) -> list[int]:
    """Target sample count of each shard (the last one may be smaller)."""
    if num <= 0 or shard_size <= 0:
        raise ValueError("num and shard_size must be positive")
    return [min(shard_size, num - start) for start in range(0, num, shard_size)]


def shard_dir(out: Path, shard: int) -> Path:
    return out / f"shard_{shard:05d}"


def shard_count(path: Path) -> int:
    """``num-samples`` of an existing LMDB, 0 if there is none or it cannot be read."""
    if not (path / "data.mdb").is_file():
        return 0
    try:
        env = lmdb.open(str(path), readonly=True, lock=False, subdir=True)
    except lmdb.Error:
        return 0
    try:
        with env.begin() as txn:
            raw = txn.get(b"num-samples")
        return int(raw) if raw is not None else 0
    finally:
        env.close()


# --- rendering, in the main process or in pool workers -------------------------------------
_renderer: Renderer | RealWarper | None = None
RealCrops = list[tuple[str, bytes, str]]


def _init_worker(
    fonts: list[FontInfo],
    words: list[str],
    style: str = "default",
    photos: list[np.ndarray] | None = None,
    crops: RealCrops | None = None,
) -> None:
    global _renderer
    st = get_style(style)
    real = st.source == "realwarp"
    _renderer = RealWarper(crops or [], st) if real else Renderer(fonts, Corpus(words), st, photos)


def _render_chunk(task: tuple[int, int, int, int]) -> list[tuple[bytes, str]]:
    """Render samples ``start .. start+count-1`` (0-based) of one shard."""
    seed, shard, start, count = task
    assert _renderer is not None, "worker not initialised"
    out = []
    for i in range(start, start + count):
        rng = sample_rng(seed, shard, i)
        img, label = _renderer.render(rng)
        out.append((effects.encode(img, rng, _renderer.style.jpeg_low_p), label))
    return out


def _inputs_digest(
    fonts: list[FontInfo], words: list[str], photos: list[np.ndarray] | None = None, crops: RealCrops | None = None
) -> str:
    """Short hash of the font files and word list (and photos, real crops): they are inputs of the output too."""
    h = hashlib.sha1()
    for f in fonts:
        h.update(f.path.encode() + b"\n")
    h.update(b"\0".join(w.encode() for w in words))
    # only hashed when used, so the digest of the older styles is what it always was
    for p in photos or []:
        h.update(str(p.shape).encode() + p.tobytes())
    for rel, data, label in crops or []:
        h.update(f"{rel}\t{label}\n".encode() + hashlib.sha1(data).digest())
    return h.hexdigest()[:16]


def _check_meta(out: Path, seed: int, shard_size: int, inputs: str, style: str = "default") -> None:
    """Refuse to resume a directory made with other settings: its shards would not match.

    ``inputs`` (fonts + word list digest) is only compared when the old file recorded it; ``style``
    is recorded when it is not the default, so sets made before styles existed still resume.
    """
    meta_path = out / META_FILE
    meta: dict[str, object] = {"generator_version": GENERATOR_VERSION, "seed": seed, "shard_size": shard_size,
                               "inputs": inputs}
    if style != "default":
        meta["style"] = style
    if meta_path.is_file():
        old = json.loads(meta_path.read_text(encoding="utf-8"))
        diff = {
            k: (old.get(k), v) for k, v in meta.items() if old.get(k) != v and (k != "inputs" or k in old)
        }
        if old.get("style", "default") != style:
            diff["style"] = (old.get("style", "default"), style)
        if diff:
            raise ValueError(f"{out} was generated with other settings {diff} (old, new); use a new --out")
    else:
        out.mkdir(parents=True, exist_ok=True)
        meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def generate(
    out: str | os.PathLike[str],
    num: int,
    shard_size: int = 50_000,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    fonts: list[FontInfo] | None = None,
    words: list[str] | None = None,
    style: str = "default",
    photos: list[np.ndarray] | None = None,
    real_labels: str | os.PathLike[str] | None = None,
    real_root: str | os.PathLike[str] | None = None,
) -> SynthStats:
    """Write ``num`` samples as LMDB shards under ``out``; see the module docstring.

    ``photos`` (default: :func:`~crnn.synth.backgrounds.load_backgrounds` when the style uses them)
    are the background photos. ``real_labels`` and ``real_root`` are the label file and image root
    of the real crops that ``style="realwarp"`` warps (and only it).

    Raises:
        FileNotFoundError: no fonts or no word list (run ``scripts/install_fonts.sh``), no extra
            fonts (``scripts/install_more_fonts.sh``) or photos (``scripts/install_backgrounds.sh``)
            for a style that needs them, or a missing real label file or crop.
        ValueError: ``out`` holds a set generated with another seed, shard size, version, fonts,
            word list, photos, crops or style; ``style`` is not in :data:`crnn.synth.styles.STYLES`;
            ``real_labels`` is missing for ``realwarp`` or given for another style.
    """
    st = get_style(style)  # fail before scanning fonts
    if (st.source == "realwarp") != (real_labels is not None):
        raise ValueError(f"--from (real crops) is needed by --style realwarp and by no other style, not {style!r}")
    out = Path(out)
    crops: RealCrops | None = None
    if st.source == "realwarp":
        assert real_labels is not None
        crops = load_real_crops(real_labels, real_root if real_root is not None else "../shared/data/train")
        fonts, words = [], []  # nothing is rendered
    fonts = fonts if fonts is not None else fonts_for_style(st.fonts)
    words = words if words is not None else load_words()
    if st.photo_p > 0 and photos is None:
        photos = load_backgrounds()
    photos = photos if st.photo_p > 0 else None
    plan = shard_plan(num, shard_size)
    _check_meta(out, seed, shard_size, _inputs_digest(fonts, words, photos, crops), style)
    todo: list[tuple[int, int]] = []
    skipped = 0
    for shard, target in enumerate(plan):
        path = shard_dir(out, shard)
        have = shard_count(path)
        if have == target:
            skipped += target
            continue
        if path.exists():
            log.info("%s has %d of %d samples: rewriting it", path, have, target)
            shutil.rmtree(path)
        todo.append((shard, target))

    def tasks() -> Iterator[tuple[int, int, int, int]]:
        for shard, target in todo:
            for start in range(0, target, CHUNK):
                yield seed, shard, start, min(CHUNK, target - start)

    written = 0
    t0, c0 = time.perf_counter(), time.process_time()
    pool = None
    if workers > 1 and todo:
        # Start the workers before tqdm starts its monitor thread: forking a threaded process is unsafe.
        ctx = mp.get_context("fork" if hasattr(os, "fork") else "spawn")
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(fonts, words, style, photos, crops))
    bar = tqdm(total=num, initial=skipped, unit="img", disable=not progress, smoothing=0.05)
    try:
        if pool is not None:
            results: Iterator[list[tuple[bytes, str]]] = pool.imap(_render_chunk, tasks())
        else:
            _init_worker(fonts, words, style, photos, crops)
            results = map(_render_chunk, tasks())
        writer: LmdbWriter | None = None
        current = -1
        for (_, shard, _, _), chunk in zip(tasks(), results, strict=True):
            if shard != current:
                if writer is not None:
                    writer.close()
                writer = LmdbWriter(shard_dir(out, shard), map_size=1 << 30)
                current = shard
            assert writer is not None
            for data, label in chunk:
                writer.add(data, label)
            written += len(chunk)
            bar.update(len(chunk))
        if writer is not None:
            writer.close()
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    return SynthStats(written, skipped, time.perf_counter() - t0, time.process_time() - c0)
