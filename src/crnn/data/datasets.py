"""Datasets: where (image bytes, label) pairs come from, and the torch Dataset that preprocesses them.

A *source* is one label file (``SimpleDataSet``) or one LMDB leaf (``LMDBDataSet``). Labels are
checked once at start-up; unusable samples are skipped with a logged count (or raise in strict
mode) and never replaced by another sample, unlike PaddleOCR.
"""

from __future__ import annotations

import logging
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crnn.config import DatasetConfig
from crnn.data.augment import rec_aug_tracked
from crnn.data.images import decode_image
from crnn.data.labels import read_label_file
from crnn.data.lmdb_io import find_lmdb_dirs, image_key, label_key
from crnn.data.preprocess import Preprocess
from crnn.registry import Entry, lookup

log = logging.getLogger(__name__)

LabelCheck = Callable[[str], "str | None"]  # returns why a label is unusable, or None


class DataError(ValueError):
    """An unusable sample in strict mode, or a dataset that cannot be read; names the item."""


class SimpleSource:
    """One ``relative/path<TAB>label`` file; paths are relative to ``data_dir``."""

    def __init__(self, data_dir: str, label_file: str, delimiter: str = "\t"):
        self.root = Path(data_dir)
        self.name = label_file
        if not Path(label_file).is_file():
            raise FileNotFoundError(f"label file {label_file} not found")
        if not self.root.is_dir():  # every image would be skipped as unreadable, one warning each
            raise FileNotFoundError(f"data_dir {data_dir} not found (the folder {label_file}'s paths are under)")
        self.items = read_label_file(label_file, delimiter)

    def __len__(self) -> int:
        return len(self.items)

    def label(self, i: int) -> str:
        return self.items[i][1]

    def key(self, i: int) -> str:
        return str(self.root / self.items[i][0])

    def image_bytes(self, i: int) -> bytes:
        return Path(self.key(i)).read_bytes()


class LmdbSource:
    """One LMDB leaf; the environment is opened lazily in each process (DataLoader workers fork)."""

    def __init__(self, path: Path):
        self.path = path
        self.name = str(path)
        with self._open().begin() as txn:
            raw = txn.get(b"num-samples")
            if raw is None:
                raise DataError(f"LMDB {path} has no 'num-samples' key")
            try:
                self.n = int(raw)
            except ValueError:
                raise DataError(f"LMDB {path}: num-samples is {bytes(raw)[:20]!r}, not a number") from None
            if self.n < 0:  # range() would make it an empty set, silently
                raise DataError(f"LMDB {path}: num-samples is {self.n}; it must be a count >= 0")
            self.labels = [self._read_label(txn, i) for i in range(self.n)]

    def _read_label(self, txn: Any, i: int) -> str:
        raw = txn.get(label_key(i + 1))
        if raw is None:
            raise DataError(f"LMDB {self.path}: missing {label_key(i + 1).decode()}")
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"LMDB {self.path}: {label_key(i + 1).decode()} is not UTF-8 text") from None

    def _open(self) -> Any:
        # One environment per (path, process): LMDB refuses to open the same file twice in a
        # process (train and eval may share an LMDB), and forked workers need their own.
        import lmdb

        from crnn.data.lmdb_io import check_lmdb_file

        key = (str(self.path.resolve()), os.getpid())
        env = _ENVS.get(key)
        if env is None:
            for other in [k for k in _ENVS if k[0] == key[0]]:
                # inherited through fork: never used here, but py-lmdb refuses a second open of the
                # path until this process's copy is closed
                _ENVS.pop(other).close()
            check_lmdb_file(self.path)
            try:
                env = _ENVS[key] = lmdb.open(key[0], readonly=True, lock=False, readahead=False, meminit=False)
            except lmdb.Error as e:
                raise DataError(f"LMDB {self.path} cannot be opened: {e}") from None
        return env

    def __len__(self) -> int:
        return self.n

    def label(self, i: int) -> str:
        return self.labels[i]

    def key(self, i: int) -> str:
        return f"{self.path}:{image_key(i + 1).decode()}"

    def image_bytes(self, i: int) -> bytes:
        import lmdb

        env = self._open()
        try:
            txn = env.begin()
        except lmdb.MapResizedError:  # another process grew the map: adopt its size
            env.set_mapsize(0)
            txn = env.begin()
        with txn:
            raw = txn.get(image_key(i + 1))
        if raw is None:
            raise DataError(f"missing {self.key(i)}")
        return bytes(raw)


Source = SimpleSource | LmdbSource
_ENVS: dict[tuple[str, int], Any] = {}


def _ratios(cfg: DatasetConfig, sources: list[Source]) -> list[tuple[Source, float]]:
    ratios = cfg.ratio_list or [1.0]
    if len(ratios) == 1:
        ratios = ratios * len(sources)
    if len(ratios) != len(sources):
        raise DataError(f"{cfg.name}: ratio_list has {len(ratios)} entries for {len(sources)} sources")
    return list(zip(sources, ratios, strict=True))


def _simple_sources(cfg: DatasetConfig) -> list[tuple[Source, float]]:
    if cfg.data_dir is None:
        raise DataError(f"{cfg.name}: data_dir is required")
    if not cfg.label_file_list:
        raise DataError("SimpleDataSet: label_file_list is required")
    return _ratios(cfg, [SimpleSource(cfg.data_dir, f, cfg.delimiter) for f in cfg.label_file_list])


def _lmdb_sources(cfg: DatasetConfig) -> list[tuple[Source, float]]:
    if cfg.data_dir is None:
        raise DataError(f"{cfg.name}: data_dir is required")
    return _ratios(cfg, [LmdbSource(p) for p in find_lmdb_dirs(cfg.data_dir)])


def _mix_sources(cfg: DatasetConfig) -> list[tuple[Source, float]]:
    if len(cfg.ratio_list) not in (0, len(cfg.datasets)):
        raise DataError("MixDataSet: ratio_list needs one ratio per entry of datasets")
    out = []
    for j, sub in enumerate(cfg.datasets):
        if sub.transforms != cfg.transforms and sub.transforms != DatasetConfig().transforms:
            raise DataError("MixDataSet: give transforms once, on the MixDataSet, not on its members")
        r = cfg.ratio_list[j] if cfg.ratio_list else 1.0
        out += [(src, ratio * r) for src, ratio in build_sources(sub)]
    return out


# The one table of dataset kinds (``Train.dataset.name``): name -> function returning (source, ratio)
# pairs, with the DatasetConfig keys it reads (every kind also reads name and transforms).
SOURCES: dict[str, Entry] = {
    "SimpleDataSet": Entry(_simple_sources, dict.fromkeys(("data_dir", "label_file_list", "ratio_list",
                                                           "delimiter"), Any)),
    "LMDBDataSet": Entry(_lmdb_sources, dict.fromkeys(("data_dir", "ratio_list"), Any)),
    "MixDataSet": Entry(_mix_sources, dict.fromkeys(("datasets", "ratio_list"), Any)),
}


def build_sources(cfg: DatasetConfig) -> list[tuple[Source, float]]:
    """The sources a dataset section names, each with its sampling ratio."""
    build = lookup(SOURCES, cfg.name, "dataset.name", "dataset").load()
    return typing.cast(list[tuple[Source, float]], build(cfg))


@dataclass
class Item:
    """One preprocessed sample."""

    image: np.ndarray  # (C, H, W) float32
    label: str
    key: str
    soft: np.ndarray | None = None  # (T, C) float16: a teacher's log-probabilities per frame (crnn.distill)


class RecDataset:
    """Valid samples of several sources, preprocessed for the model by ``preprocess``.

    Indexing takes ``(index, epoch)`` so augmentation is reproducible; a plain int means epoch 0.
    ``__getitem__`` returns ``None`` for an image that cannot be decoded (logged; raises if strict).
    """

    def __init__(
        self,
        sources: list[tuple[Source, float]],
        preprocess: Preprocess,
        label_check: LabelCheck,
        augment: Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, bool]] | None = None,
        strict: bool = False,
        seed: int = 0,
        normalize: Callable[[str], str] | None = None,
    ):
        self.sources = [s for s, _ in sources]
        self.ratios = [r for _, r in sources]
        self.preprocess = preprocess
        self.augment = augment
        self.strict = strict
        self.seed = seed
        self.index: list[tuple[int, int]] = []  # (source, item) of every usable sample
        self.source_ranges: list[tuple[int, int]] = []  # [start, end) in self.index per source
        self.soft: list[np.ndarray | None] = [None] * len(self.sources)  # per source: (N, T, C) teacher frames
        self.skipped_labels = 0
        self.stripped_labels = 0  # kept labels with characters the charset cannot express (``normalize``)
        for s, src in enumerate(self.sources):
            start = len(self.index)
            bad: list[str] = []
            stripped: list[str] = []
            for i in range(len(src)):
                why = label_check(src.label(i))
                if why is None:
                    self.index.append((s, i))
                    if normalize is not None and len(normalize(src.label(i))) != len(src.label(i)):
                        stripped.append(f"{src.key(i)} ({src.label(i)!r} -> {normalize(src.label(i))!r})")
                else:
                    if strict:
                        raise DataError(f"{src.key(i)}: label {src.label(i)!r} {why}")
                    bad.append(f"{src.key(i)} ({src.label(i)!r}: {why})")
            self.source_ranges.append((start, len(self.index)))
            if stripped:
                self.stripped_labels += len(stripped)
                log.warning("%s: %d of %d labels have characters outside the charset, which are dropped from "
                            "them, e.g. %s", src.name, len(stripped), len(src), "; ".join(stripped[:3]))
            if bad:
                self.skipped_labels += len(bad)
                log.warning("%s: skipped %d of %d samples with unusable labels, e.g. %s",
                            src.name, len(bad), len(src), "; ".join(bad[:3]))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx: int | tuple[int, int]) -> Item | None:
        index, epoch = idx if isinstance(idx, tuple) else (idx, 0)
        got = self._image(index, epoch)
        if got is None:
            return None
        img, moved = got
        s, i = self.index[index]
        soft = self.soft[s]
        # the teacher saw the crop as it is: after a warp that moves the text its frames would not line up
        return Item(self.preprocess([img])[0], self.label(index), self.key(index),
                    None if soft is None or moved else soft[i])

    def image(self, index: int, epoch: int = 0) -> np.ndarray | None:
        """Sample ``index`` decoded (and augmented), BGR uint8 (h, w, 3), before ``preprocess``;
        None when it cannot be decoded (logged; raises if strict)."""
        got = self._image(index, epoch)
        return None if got is None else got[0]

    def _image(self, index: int, epoch: int) -> tuple[np.ndarray, bool] | None:
        """``image``, and whether augmentation moved the text horizontally (``rec_aug_tracked``)."""
        s, i = self.index[index]
        src = self.sources[s]
        try:
            img = decode_image(src.image_bytes(i), src.key(i))
        except (OSError, ValueError, DataError) as e:
            if self.strict:
                raise DataError(str(e)) from e
            log.warning("skipping unreadable image: %s", e)
            return None
        if self.augment is None:
            return img, False
        return self.augment(img, np.random.default_rng([self.seed, epoch, index]))

    def label(self, index: int) -> str:
        """The label of sample ``index``."""
        s, i = self.index[index]
        return self.sources[s].label(i)

    def key(self, index: int) -> str:
        """Where sample ``index`` came from."""
        s, i = self.index[index]
        return self.sources[s].key(i)

    def attach_targets(self, soft: list[np.ndarray | None], nll: list[np.ndarray | None],
                       max_nll: float | None) -> list[int]:
        """Give each source its teacher frames ((N, T, C) or None) and, with ``max_nll``, drop the samples
        whose teacher NLL of the label exceeds it (illegible by construction); returns the drops per source."""
        if len(soft) != len(self.sources) or len(nll) != len(self.sources):
            raise ValueError(f"{len(soft)} target arrays for {len(self.sources)} sources")
        self.soft = soft
        dropped = [0] * len(self.sources)
        if max_nll is None:
            return dropped
        index: list[tuple[int, int]] = []
        ranges: list[tuple[int, int]] = []
        for s, (start, end) in enumerate(self.source_ranges):
            first = len(index)
            bad = nll[s]
            for si, i in self.index[start:end]:
                if bad is not None and not bad[i] <= max_nll:
                    dropped[s] += 1
                else:
                    index.append((si, i))
            ranges.append((first, len(index)))
        self.index, self.source_ranges = index, ranges
        return dropped


def train_label_check(charset_normalize: Callable[[str], str], max_text_length: int) -> LabelCheck:
    """PaddleOCR's ``CTCLabelEncode`` rejection rules, as a check."""

    def check(label: str) -> str | None:
        if not label:
            return "is empty"
        if len(label) > max_text_length:
            return f"is longer than max_text_length={max_text_length}"
        if not charset_normalize(label):
            return "has no character of the charset"
        return None

    return check


def eval_label_check(normalize: Callable[[str], str]) -> LabelCheck:
    """Evaluation keeps every sample whose label is non-empty after the metric's normalisation."""

    def check(label: str) -> str | None:
        return None if normalize(label) else "is empty after normalisation"

    return check


def build_dataset(
    cfg: DatasetConfig, label_check: LabelCheck, train: bool, strict: bool = False, seed: int = 0,
    normalize: Callable[[str], str] | None = None,
) -> RecDataset:
    """A ``RecDataset`` from a config section (augmentation only when ``train``)."""
    t = cfg.transforms
    augment = None
    if train and t.rec_aug is not None:
        aug_cfg = t.rec_aug

        def augment(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
            return rec_aug_tracked(img, aug_cfg, rng)

    return RecDataset(build_sources(cfg), Preprocess.from_transforms(t), label_check, augment, strict, seed, normalize)
