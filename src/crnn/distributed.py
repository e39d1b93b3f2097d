"""torchrun integration: process-group set-up and the few collectives training needs.

A process started by ``torchrun`` has RANK, WORLD_SIZE and LOCAL_RANK in its environment; without
them (or with WORLD_SIZE=1) everything here is a no-op and training runs as a single process.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from crnn.threads import available_cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank, how many processes there are, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, draws progress bars, evaluates and writes checkpoints."""
        return self.rank == 0


@dataclass(frozen=True)
class Launch:
    """How ``crnn train`` runs: ``nproc`` processes, each with these extra ``-o`` overrides and environment."""

    nproc: int
    overrides: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def torchrun(self, config: str, overrides: list[str]) -> list[str]:
        """The torchrun command line: ``crnn train`` once per rank; ``--standalone`` picks a free port, so
        two runs on one machine do not both claim torchrun's default 29500."""
        given = [*overrides, *self.overrides]
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(self.nproc),
                "-m", "crnn", "train", "-c", config, *(["-o", *given] if given else [])]


def plan_launch(nproc: str, use_gpu: bool, batch_size_per_card: int) -> Launch:
    """What ``crnn train --nproc`` means.

    A number N is PaddleOCR's meaning: N processes (cards), each with ``batch_size_per_card``
    samples, so the global batch is N times it. ``auto`` on a CPU machine runs one single-thread
    rank per available core and splits the configured batch over them (the CPU is one card: the
    global batch stays ``batch_size_per_card``): on this machine N single-thread processes
    train faster than one process with N threads (docs/training_throughput.md). ``auto`` with
    GPUs (``Global.use_gpu``) runs one rank per GPU, each with ``batch_size_per_card``.
    """
    if nproc != "auto":
        if not nproc.isdigit() or int(nproc) < 1:
            raise ValueError(f"--nproc: expected a number of processes or auto, got {nproc!r}")
        return Launch(int(nproc))
    if use_gpu and torch.cuda.is_available():
        return Launch(torch.cuda.device_count())
    n = max(1, min(available_cores(), batch_size_per_card))
    if n == 1:
        return Launch(1)
    per_rank = batch_size_per_card // n
    if per_rank * n != batch_size_per_card:
        log.warning("Train.loader.batch_size_per_card %d does not split evenly over %d ranks: each takes %d "
                    "(global batch %d)", batch_size_per_card, n, per_rank, per_rank * n)
    log.info("--nproc auto: %d single-thread ranks of %d samples (global batch %d)", n, per_rank, per_rank * n)
    return Launch(n, (f"Train.loader.batch_size_per_card={per_rank}", "Global.num_threads=1"),
                  {"OMP_NUM_THREADS": "1"})


def local_world_size() -> int:
    """How many ranks torchrun started on this machine (1 without torchrun): they share its cores."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def init_distributed(use_gpu: bool) -> DistInfo:
    """Join the process group torchrun describes: NCCL on GPUs, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = use_gpu and torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world <= 1:
        return DistInfo(device=device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device)


def broadcast(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. the evaluation result, so all ranks agree on "best")."""
    if info.world_size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op for a single process)."""
    if info.world_size > 1:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Leave the process group."""
    if info.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
