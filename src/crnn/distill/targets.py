"""The teacher's frames, computed once per data source and stored, for training to read.

For one source (an LMDB leaf or a label file) with N samples, ``prepare`` writes into
``Distill.targets_dir``:

- ``<key>.npy``: (N, T, C) float16, the teacher's log-probabilities folded onto crnn's C classes, one
  row per frame of crnn's T (``crnn.distill.teacher``), for the sample's un-augmented crop;
- ``<key>.nll.npy``: (N,) float32, the teacher's CTC negative log-likelihood of the sample's label
  (normalised by the charset): high when the teacher, told the answer, still cannot read the crop;
- ``<key>.json``: what the key was made from, and the teacher's reading accuracy on the source.

``key`` is a digest of the source (name and size), the teacher's bytes, crnn's input shape, frame count
and charset: a changed source or teacher gets new files, never stale ones. Files are written in
chunks with a progress file, so an interrupted ``crnn distill`` resumes where it stopped, and are
renamed into place only when complete. They are read with ``np.load(mmap_mode="r")``: numpy's own
format without pickles, paged in as training touches it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from crnn.charset import Charset
from crnn.config import DatasetConfig, DistillConfig
from crnn.data.images import decode_image
from crnn.data.preprocess import Preprocess
from crnn.distill.teacher import Teacher, fold_matrix

if TYPE_CHECKING:
    from crnn.data.datasets import RecDataset

log = logging.getLogger(__name__)

CHUNK = 1024  # samples between progress saves


class SourceLike(Protocol):
    """The part of a ``crnn.data.datasets`` source used here."""

    name: str

    def __len__(self) -> int: ...
    def label(self, i: int) -> str: ...
    def key(self, i: int) -> str: ...
    def image_bytes(self, i: int) -> bytes: ...


def target_key(source: SourceLike, teacher_sha256: str, spec: Preprocess, frames: int, charset: Charset) -> str:
    """The file stem of one source's targets: a digest of everything the targets depend on."""
    import hashlib

    name = source.name
    resolved = str(Path(name).resolve()) if Path(name).exists() else name
    desc = json.dumps({"source": resolved, "n": len(source), "teacher": teacher_sha256,
                       "preprocess": spec.to_dict(), "frames": frames, "charset": charset.to_dict()},
                      sort_keys=True)
    stem = Path(name).name or "source"
    return f"{stem}-{hashlib.sha256(desc.encode()).hexdigest()[:16]}"


@dataclass
class SourceTargets:
    """One source's stored targets: ``log_probs`` (N, T, C) float16 and ``nll`` (N,) float32, memory-mapped."""

    log_probs: np.ndarray
    nll: np.ndarray
    info: dict[str, object]


def load(targets_dir: str | Path, key: str) -> SourceTargets | None:
    """The targets of ``key``, or None when they were not (completely) computed."""
    d = Path(targets_dir)
    paths = d / f"{key}.npy", d / f"{key}.nll.npy", d / f"{key}.json"
    if not all(p.is_file() for p in paths):
        return None
    lp = np.load(paths[0], mmap_mode="r", allow_pickle=False)
    nll = np.load(paths[1], mmap_mode="r", allow_pickle=False)
    info = json.loads(paths[2].read_text(encoding="utf-8"))
    if lp.ndim != 3 or nll.shape != (lp.shape[0],):
        raise ValueError(f"teacher targets {paths[0]}: shapes {lp.shape} and {nll.shape} do not agree")
    return SourceTargets(lp, nll, info)


def ctc_nll(log_probs: np.ndarray, labels: Sequence[list[int]]) -> np.ndarray:
    """(B, T, C) log-probabilities and class-id labels -> (B,) CTC negative log-likelihoods (blank 0).

    An empty label, or one longer than CTC can align in T frames, gets +inf.
    """
    import torch
    import torch.nn.functional as F

    lp = torch.from_numpy(np.ascontiguousarray(log_probs, dtype=np.float32)).log_softmax(2).transpose(0, 1)
    b, t = log_probs.shape[0], log_probs.shape[1]
    out = np.full(b, np.inf, dtype=np.float32)
    ok = [i for i, lab in enumerate(labels) if lab]
    if ok:
        targets = torch.tensor([c for i in ok for c in labels[i]], dtype=torch.long)
        lengths = torch.tensor([len(labels[i]) for i in ok], dtype=torch.long)
        nll = F.ctc_loss(lp[:, ok], targets, torch.full((len(ok),), t, dtype=torch.long), lengths, blank=0,
                         reduction="none", zero_infinity=False)
        out[ok] = nll.numpy()
    return out


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def prepare(source: SourceLike, teacher: Teacher, spec: Preprocess, frames: int, charset: Charset,
            targets_dir: str | Path, batch_size: int = 64,
            progress: Callable[[int], None] | None = None) -> SourceTargets:
    """Compute (or finish computing) one source's targets; returns them, memory-mapped.

    An image that cannot be decoded gets all-blank targets and nll +inf (training skips it anyway;
    ``decode_image`` logged why). ``progress(n)`` is called with the number of samples done so far.
    """
    d = Path(targets_dir)
    d.mkdir(parents=True, exist_ok=True)
    key = target_key(source, teacher.sha256, spec, frames, charset)
    done = load(d, key)
    if done is not None:
        return done
    n, c = len(source), charset.num_classes
    part_lp, part_nll, part_pos = d / f"{key}.partial.npy", d / f"{key}.nll.partial.npy", d / f"{key}.progress"
    start = int(part_pos.read_text()) if part_pos.is_file() and part_lp.is_file() and part_nll.is_file() else 0
    mode = "r+" if start else "w+"
    lp = np.lib.format.open_memmap(part_lp, mode=mode, dtype=np.float16, shape=(n, frames, c))
    nll = np.lib.format.open_memmap(part_nll, mode=mode, dtype=np.float32, shape=(n,))
    fold = fold_matrix(teacher.chars, charset)
    if start:
        log.info("%s: resuming the teacher's targets at sample %d of %d", source.name, start, n)
    for c0 in range(start, n, CHUNK):
        c1 = min(n, c0 + CHUNK)
        for b0 in range(c0, c1, batch_size):
            idx = range(b0, min(c1, b0 + batch_size))
            images, good = [], []
            for i in idx:
                try:
                    images.append(decode_image(source.image_bytes(i), source.key(i)))
                    good.append(i)
                except (OSError, ValueError) as e:
                    log.warning("teacher targets: %s (all-blank targets)", e)
                    lp[i] = 0.0
                    lp[i, :, 1:] = np.float16(-30.0)
                    nll[i] = np.inf
            if good:
                out = teacher.folded_log_probs(images, spec, frames, fold)
                lp[good] = np.maximum(out, -30.0).astype(np.float16)  # float16 keeps -30 (e^-30 ~ 1e-13)
                nll[good] = ctc_nll(out, [charset.encode(source.label(i)) for i in good])
            if progress is not None:
                progress(idx.stop)
        lp.flush()
        nll.flush()
        _write_atomic(part_pos, str(c1))
    del lp, nll
    acc = reading_accuracy(d, key, source, charset, part_lp)
    info = {"source": source.name, "n": n, "teacher": teacher.path.name, "teacher_sha256": teacher.sha256,
            "frames": frames, "classes": c, "preprocess": spec.to_dict(), "teacher_acc": acc}
    os.replace(part_nll, d / f"{key}.nll.npy")
    os.replace(part_lp, d / f"{key}.npy")
    _write_atomic(d / f"{key}.json", json.dumps(info, indent=2) + "\n")
    part_pos.unlink(missing_ok=True)
    stored = load(d, key)
    assert stored is not None
    return stored


def reading_accuracy(d: Path, key: str, source: SourceLike, charset: Charset, lp_path: Path | None = None) -> float:
    """Percent of the source's samples whose label (normalised) the teacher's folded frames read greedily."""
    from crnn.decode import greedy_decode

    lp = np.load(lp_path or d / f"{key}.npy", mmap_mode="r", allow_pickle=False)
    ok = n = 0
    for b0 in range(0, lp.shape[0], 4096):
        preds = greedy_decode(np.asarray(lp[b0:b0 + 4096], dtype=np.float32), charset)
        for j, p in enumerate(preds):
            label = charset.normalize(source.label(b0 + j))
            n += bool(label)
            ok += bool(label) and p.text == label
    return round(100.0 * ok / max(n, 1), 2)


def entry_sources(dataset_cfg: DatasetConfig) -> list[int]:
    """For each source ``build_sources`` makes of a Train dataset section, the index of its entry in
    ``datasets`` (a MixDataSet), or 0 for a single dataset; lists files only, reads no sample."""
    from crnn.data.lmdb_io import find_lmdb_dirs

    def count(sub: DatasetConfig) -> int:
        if sub.name == "LMDBDataSet":
            return len(find_lmdb_dirs(sub.data_dir)) if sub.data_dir else 0
        if sub.name == "SimpleDataSet":
            return len(sub.label_file_list)
        raise ValueError(f"Distill: a {sub.name} inside a MixDataSet is not supported")

    if dataset_cfg.name != "MixDataSet":
        return [0] * count(dataset_cfg)
    return [j for j, sub in enumerate(dataset_cfg.datasets) for _ in range(count(sub))]


def selected(dataset_cfg: DatasetConfig, distill: DistillConfig, n_sources: int) -> list[bool]:
    """Which of the dataset's sources ``Distill.apply_to`` selects (all when it is unset)."""
    entries = entry_sources(dataset_cfg)
    if len(entries) != n_sources:
        raise ValueError(f"Distill: {n_sources} sources but {len(entries)} listed by the config")
    return [distill.apply_to is None or e in distill.apply_to for e in entries]


def attach(dataset: RecDataset, dataset_cfg: DatasetConfig, distill: DistillConfig, charset: Charset,
           frames: int) -> None:
    """Give the training set its stored teacher frames (and drop illegible samples if asked).

    Raises:
        FileNotFoundError: a selected source has no complete targets in ``Distill.targets_dir``; the
            message names it and the command that computes them.
    """
    from crnn.distill.teacher import file_sha256, find_teacher

    sha = file_sha256(find_teacher(distill.teacher))
    soft: list[np.ndarray | None] = []
    nll: list[np.ndarray | None] = []
    for src, use in zip(dataset.sources, selected(dataset_cfg, distill, len(dataset.sources)), strict=True):
        if not use:
            soft.append(None)
            nll.append(None)
            continue
        key = target_key(src, sha, dataset.preprocess, frames, charset)
        t = load(distill.targets_dir, key)
        if t is None:
            raise FileNotFoundError(f"Distill: no teacher targets for {src.name} in {distill.targets_dir} "
                                    f"(expected {key}.npy): run `crnn distill -c CONFIG` first")
        if t.log_probs.shape != (len(src), frames, charset.num_classes):
            raise ValueError(f"Distill: {key}.npy has shape {t.log_probs.shape}, expected "
                             f"{(len(src), frames, charset.num_classes)}")
        soft.append(t.log_probs)
        nll.append(t.nll)
    dropped = dataset.attach_targets(soft, nll, distill.max_teacher_nll)
    for src, arr, d in zip(dataset.sources, soft, dropped, strict=True):
        if arr is not None:
            log.info("Distill: %s: teacher targets attached%s", src.name,
                     f"; {d} of {len(src)} samples dropped as illegible (teacher NLL > {distill.max_teacher_nll})"
                     if distill.max_teacher_nll is not None else "")
