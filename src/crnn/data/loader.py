"""Batching: the epoch sampler (ratios, shuffling, sharding, resume) and the collate function."""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader

from crnn.charset import Charset
from crnn.config import LoaderConfig
from crnn.data.datasets import Item, RecDataset
from crnn.distributed import local_world_size
from crnn.threads import available_cores

log = logging.getLogger(__name__)


class Batch(NamedTuple):
    """A collated batch; ``targets`` are concatenated class ids, as ``F.ctc_loss`` takes them."""

    images: torch.Tensor  # (B, C, H, W) float32
    targets: torch.Tensor  # (sum(target_lengths),) int64
    target_lengths: torch.Tensor  # (B,) int64
    texts: list[str]  # raw labels
    keys: list[str]  # where each image came from
    skipped: int  # images of this batch that could not be read
    soft: torch.Tensor | None = None  # (B, T, C) float32 teacher log-probabilities (crnn.distill); None: no teacher
    soft_mask: torch.Tensor | None = None  # (B,) bool: which samples have ``soft`` rows


def epoch_indices(dataset: RecDataset, epoch: int, seed: int, shuffle: bool) -> list[int]:
    """The sample order of one epoch, before sharding.

    Each source contributes ``round(len * ratio)`` samples (PaddleOCR's ratio_list): a random subset
    when ratio < 1, whole repeats plus a random subset when ratio > 1, redrawn every epoch.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order: list[int] = []
    for (start, end), ratio in zip(dataset.source_ranges, dataset.ratios, strict=True):
        idx = list(range(start, end))
        want = int(round(len(idx) * ratio))
        full, rest = divmod(want, len(idx)) if idx else (0, 0)
        order += idx * full + (rng.sample(idx, rest) if ratio != 1.0 else idx[:rest])
    if shuffle:
        rng.shuffle(order)
    return order


class EpochSampler(torch.utils.data.Sampler[tuple[int, int]]):
    """Yields ``(index, epoch)``; each of ``world_size`` ranks gets a disjoint, equal-length shard.

    ``skip`` drops the first samples of this rank's shard, to resume mid-epoch.
    """

    def __init__(self, dataset: RecDataset, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False):
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch (reshuffles) and how many samples of this rank's shard to skip."""
        self.epoch = epoch
        self.skip = skip

    def _shard(self) -> list[int]:
        order = epoch_indices(self.dataset, self.epoch, self.seed, self.shuffle)
        if self.world_size > 1:
            # equal shard sizes keep the ranks in lock-step: trim (drop_last) or wrap around
            per = len(order) // self.world_size if self.drop_last else -(-len(order) // self.world_size)
            order = (order * 2)[: per * self.world_size] if order else order
            order = order[self.rank :: self.world_size]
        return order

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for i in self._shard()[self.skip :]:
            yield i, self.epoch

    def __len__(self) -> int:
        return max(0, len(self._shard()) - self.skip)


def make_collate(charset: Charset) -> Callable[[list[Item | None]], Batch]:
    """A collate function that drops unreadable samples and encodes labels with ``charset``."""

    def collate(items: list[Item | None]) -> Batch:
        good = [it for it in items if it is not None]
        ids = [charset.encode(it.label) for it in good]
        images = torch.from_numpy(np.stack([it.image for it in good])) if good else torch.zeros(0)
        soft = soft_mask = None
        shaped = [it.soft for it in good if it.soft is not None]
        if shaped:
            soft = torch.zeros((len(good), *shaped[0].shape), dtype=torch.float32)
            soft_mask = torch.tensor([it.soft is not None for it in good])
            soft[soft_mask] = torch.from_numpy(np.stack(shaped).astype(np.float32))
        return Batch(
            images=images,
            targets=torch.tensor([c for seq in ids for c in seq], dtype=torch.long),
            target_lengths=torch.tensor([len(seq) for seq in ids], dtype=torch.long),
            texts=[it.label for it in good],
            keys=[it.key for it in good],
            skipped=len(items) - len(good),
            soft=soft,
            soft_mask=soft_mask,
        )

    return collate


def split_batch(batch: Batch, size: int) -> list[Batch]:
    """``batch`` as ceil(B / size) chunks of near-equal size (at most ``size``), in order.

    Near-equal rather than ``size, size, ..., rest``: a last chunk of one sample would fail in
    BatchNorm's training mode, and equal shapes keep ``torch.compile`` from recompiling.
    """
    n = len(batch.texts)
    k = max(1, -(-n // size))
    if k == 1:
        return [batch]
    sizes = [n // k + (i < n % k) for i in range(k)]
    # each chunk's labels are the next sum(target_lengths) ids of the concatenated targets
    lengths = torch.split(batch.target_lengths, sizes)
    targets = torch.split(batch.targets, [int(t.sum()) for t in lengths])
    chunks: list[Batch] = []
    start = 0
    for images, tgt, lens, m in zip(torch.split(batch.images, sizes), targets, lengths, sizes, strict=True):
        # the batch's count of unreadable images goes with the first chunk, so chunks sum to the batch
        chunks.append(Batch(images, tgt, lens, batch.texts[start:start + m], batch.keys[start:start + m],
                            0 if chunks else batch.skipped,
                            None if batch.soft is None else batch.soft[start:start + m],
                            None if batch.soft_mask is None else batch.soft_mask[start:start + m]))
        start += m
    return chunks


def _ignore_interrupts(worker_id: int) -> None:
    """Workers leave Ctrl-C and SIGTERM to the main process, which stops after its step and saves
    (crnn.train); the loader then shuts them down. torchrun sends SIGTERM to each rank's whole process
    group, workers included: a worker killed by it made its rank crash before saving."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@functools.cache
def usable_workers(requested: int, ranks: int = 1) -> int:
    """``requested`` loader workers, at most one per core of this process's share of the cores.

    Configs written for big machines (PaddleOCR's ask for 4-8) would otherwise start more worker
    processes than cores on a laptop, which only adds contention (and PyTorch's warning); logged once.
    The ``ranks`` training processes of one machine share its cores, so each gets ``cores // ranks``
    (at least one: a rank without workers would decode in its training thread).
    """
    cores = max(1, available_cores() // ranks)
    if requested > cores:
        log.info("loader.num_workers %d > %d usable cores%s: using %d", requested, cores,
                 f" per rank ({ranks} ranks on this machine)" if ranks > 1 else "", cores)
        return cores
    return requested


def build_loader(dataset: RecDataset, cfg: LoaderConfig, charset: Charset, seed: int,
                 rank: int = 0, world_size: int = 1) -> tuple[DataLoader[Batch], EpochSampler]:
    """DataLoader + its sampler for a dataset (``batch_size_per_card`` is per process)."""
    sampler = EpochSampler(dataset, cfg.shuffle, seed, rank, world_size, cfg.drop_last)
    workers = usable_workers(cfg.num_workers, local_world_size())
    loader: DataLoader[Batch] = DataLoader(
        dataset,  # type: ignore[arg-type]
        batch_size=cfg.batch_size_per_card,
        sampler=sampler,
        num_workers=workers,
        collate_fn=make_collate(charset),
        drop_last=cfg.drop_last,
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=_ignore_interrupts if workers > 0 else None,
    )
    return loader, sampler
