"""Optimizers and per-step learning-rate schedules for PaddleOCR's ``Optimizer`` section."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from crnn.config import OptimizerConfig


def build_optimizer(params: list[torch.nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.name``; Paddle's L2 regularizer is coupled weight decay."""
    lr = cfg.lr.learning_rate
    l2 = cfg.regularizer.factor if cfg.regularizer is not None else 0.0
    # One fused kernel per step instead of ~10 element-wise ops per parameter tensor (same maths).
    fused = all(p.dtype.is_floating_point for p in params) or None
    if cfg.name == "Adam":
        return torch.optim.Adam(params, lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.epsilon, weight_decay=l2,
                                fused=fused)
    if cfg.name == "AdamW":
        wd = cfg.weight_decay if cfg.weight_decay is not None else 0.01
        return torch.optim.AdamW(params, lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.epsilon, weight_decay=wd,
                                 fused=fused)
    if cfg.name in ("Momentum", "SGD"):
        momentum = cfg.momentum if cfg.name == "Momentum" else 0.0
        return torch.optim.SGD(params, lr, momentum=momentum, weight_decay=l2)
    if cfg.name == "RMSProp":
        return torch.optim.RMSprop(params, lr, momentum=cfg.momentum, eps=cfg.epsilon, weight_decay=l2)
    raise ValueError(f"unknown optimizer {cfg.name!r}")


def lr_factor(cfg: OptimizerConfig, steps_per_epoch: int, epoch_num: int) -> Callable[[int], float]:
    """Multiplier of the base learning rate at optimizer step ``s`` (0-based), warm-up included.

    Const: 1. Cosine: half a cosine from 1 to 0 over the run after warm-up. Piecewise: ``values[i]``
    (absolute rates) between ``decay_epochs`` boundaries. Linear: polynomial decay to ``end_lr``.
    Warm-up ramps linearly from 0 over ``warmup_epoch`` epochs plus ``warmup_steps`` steps.
    """
    lr = cfg.lr
    base = lr.learning_rate
    warmup = int(round(lr.warmup_epoch * steps_per_epoch)) + lr.warmup_steps
    total = (lr.epochs or epoch_num) * steps_per_epoch
    if lr.name == "Piecewise":
        if len(lr.values) != len(lr.decay_epochs) + 1:
            raise ValueError("Optimizer.lr: Piecewise needs len(values) == len(decay_epochs) + 1")
        bounds = [int(e * steps_per_epoch) for e in lr.decay_epochs]
        base = lr.values[0]

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        if lr.name == "Const":
            return 1.0
        if lr.name == "Cosine":
            t = min(1.0, (s - warmup) / max(1, total - warmup))
            return 0.5 * (1.0 + math.cos(math.pi * t))
        if lr.name == "Linear":
            t = min(1.0, (s - warmup) / max(1, total - warmup))
            return ((base - lr.end_lr) * (1 - t) ** lr.power + lr.end_lr) / base
        i = sum(s >= b for b in bounds)
        return lr.values[i] / lr.values[0]

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimizerConfig, steps_per_epoch: int,
                    epoch_num: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` following ``lr_factor`` (Piecewise starts from ``values[0]``)."""
    if cfg.lr.name == "Piecewise":
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] = cfg.lr.values[0]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, steps_per_epoch, epoch_num))
