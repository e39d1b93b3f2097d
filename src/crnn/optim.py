"""Optimizers and per-step learning-rate schedules for PaddleOCR's ``Optimizer`` section.

``OPTIMIZERS`` and ``LR_SCHEDULES`` are the tables: name -> builder, with the ``Optimizer`` /
``Optimizer.lr`` keys each reads (a key that only other entries read has no effect; the config
loader warns when one is set). Importing this module imports no torch: the builders do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from crnn.config import OptimizerConfig
from crnn.registry import Entry, lookup

if TYPE_CHECKING:
    import torch

Params = list[Any]  # tensors, or param-group dicts as torch.optim takes them


def _keys(*names: str) -> dict[str, Any]:
    return dict.fromkeys(names, Any)  # the types are the schema's (OptimizerConfig, LRConfig)


def _adam(params: Params, cfg: OptimizerConfig, l2: float, fused: bool | None) -> torch.optim.Optimizer:
    import torch

    return torch.optim.Adam(params, cfg.lr.learning_rate, betas=(cfg.beta1, cfg.beta2), eps=cfg.epsilon,
                            weight_decay=l2, fused=fused)


def _adamw(params: Params, cfg: OptimizerConfig, l2: float, fused: bool | None) -> torch.optim.Optimizer:
    import torch

    # decoupled decay by weight_decay; Paddle's coupled L2 (regularizer, Head.fc_decay) does not apply
    params = [{k: v for k, v in g.items() if k != "weight_decay"} if isinstance(g, dict) else g for g in params]
    wd = cfg.weight_decay if cfg.weight_decay is not None else 0.01
    return torch.optim.AdamW(params, cfg.lr.learning_rate, betas=(cfg.beta1, cfg.beta2), eps=cfg.epsilon,
                             weight_decay=wd, fused=fused)


def _sgd(params: Params, cfg: OptimizerConfig, l2: float, fused: bool | None) -> torch.optim.Optimizer:
    import torch

    momentum = cfg.momentum if cfg.name == "Momentum" else 0.0
    return torch.optim.SGD(params, cfg.lr.learning_rate, momentum=momentum, weight_decay=l2)


def _rmsprop(params: Params, cfg: OptimizerConfig, l2: float, fused: bool | None) -> torch.optim.Optimizer:
    import torch

    return torch.optim.RMSprop(params, cfg.lr.learning_rate, momentum=cfg.momentum, eps=cfg.epsilon, weight_decay=l2)


OPTIMIZERS: dict[str, Entry] = {
    "Adam": Entry(_adam, _keys("beta1", "beta2", "epsilon", "regularizer")),
    "AdamW": Entry(_adamw, _keys("beta1", "beta2", "epsilon", "weight_decay")),
    "Momentum": Entry(_sgd, _keys("momentum", "regularizer")),
    "SGD": Entry(_sgd, _keys("regularizer")),
    "RMSProp": Entry(_rmsprop, _keys("momentum", "epsilon", "regularizer")),
}


def param_groups(model: torch.nn.Module, fc_decay: float, l2: float) -> Params:
    """The trainable parameters; the head's in a group of their own when ``Architecture.Head.fc_decay``
    differs from the optimizer's L2 factor (PaddleOCR's CTCHead sets its own L2Decay(fc_decay), which
    replaces the optimizer's regularizer for those weights). One plain list otherwise, as before."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    head = getattr(model, "head", None)
    if fc_decay == l2 or head is None:
        return trainable
    head_ids = {id(p) for p in head.parameters()}
    return [{"params": [p for p in trainable if id(p) not in head_ids]},
            {"params": [p for p in trainable if id(p) in head_ids], "weight_decay": fc_decay}]


def regularizer_l2(cfg: OptimizerConfig) -> float:
    """Paddle's L2 regularizer factor (0 without one): coupled weight decay."""
    return cfg.regularizer.factor if cfg.regularizer is not None else 0.0


def build_optimizer(params: Iterable[Any], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimizer ``OPTIMIZERS[cfg.name]`` over ``params`` (tensors or ``param_groups``)."""
    params = list(params)
    tensors = [t for g in params for t in (g["params"] if isinstance(g, dict) else [g])]
    # One fused kernel per step instead of ~10 element-wise ops per parameter tensor (same maths).
    fused = all(p.dtype.is_floating_point for p in tensors) or None
    build = lookup(OPTIMIZERS, cfg.name, "Optimizer.name", "optimizer").load()
    return cast("torch.optim.Optimizer", build(params, cfg, regularizer_l2(cfg), fused))


Factor = Callable[[int], float]


def _const(cfg: OptimizerConfig, total: int, warmup: int, steps_per_epoch: int) -> Factor:
    return lambda s: 1.0


def _cosine(cfg: OptimizerConfig, total: int, warmup: int, steps_per_epoch: int) -> Factor:
    def factor(s: int) -> float:
        t = min(1.0, (s - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


def _linear(cfg: OptimizerConfig, total: int, warmup: int, steps_per_epoch: int) -> Factor:
    lr = cfg.lr

    def factor(s: int) -> float:
        t = min(1.0, (s - warmup) / max(1, total - warmup))
        return ((lr.learning_rate - lr.end_lr) * (1 - t) ** lr.power + lr.end_lr) / lr.learning_rate

    return factor


def _piecewise(cfg: OptimizerConfig, total: int, warmup: int, steps_per_epoch: int) -> Factor:
    lr = cfg.lr
    if len(lr.values) != len(lr.decay_epochs) + 1:
        raise ValueError("Optimizer.lr: Piecewise needs len(values) == len(decay_epochs) + 1")
    bounds = [int(e * steps_per_epoch) for e in lr.decay_epochs]
    return lambda s: lr.values[sum(s >= b for b in bounds)] / lr.values[0]


# Const: 1. Cosine: half a cosine from 1 to 0 over the run after warm-up. Piecewise: ``values[i]``
# (absolute rates, the first replacing learning_rate) between ``decay_epochs`` boundaries. Linear:
# polynomial decay to ``end_lr``.
LR_SCHEDULES: dict[str, Entry] = {
    "Const": Entry(_const, _keys("learning_rate")),
    "Cosine": Entry(_cosine, _keys("learning_rate", "epochs")),
    "Piecewise": Entry(_piecewise, _keys("decay_epochs", "values")),
    "Linear": Entry(_linear, _keys("learning_rate", "end_lr", "power", "epochs")),
}


def lr_factor(cfg: OptimizerConfig, steps_per_epoch: int, epoch_num: int) -> Factor:
    """Multiplier of the base learning rate at optimizer step ``s`` (0-based), warm-up included.

    The schedule is ``LR_SCHEDULES[cfg.lr.name]``; warm-up ramps linearly from 0 over
    ``warmup_epoch`` epochs plus ``warmup_steps`` steps, whatever the schedule.
    """
    lr = cfg.lr
    warmup = int(round(lr.warmup_epoch * steps_per_epoch)) + lr.warmup_steps
    total = (lr.epochs or epoch_num) * steps_per_epoch
    schedule = lookup(LR_SCHEDULES, lr.name, "Optimizer.lr.name", "learning-rate schedule").load()
    after = schedule(cfg, total, warmup, steps_per_epoch)

    def factor(s: int) -> float:
        return (s + 1) / warmup if s < warmup else float(after(s))

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimizerConfig, steps_per_epoch: int,
                    epoch_num: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` following ``lr_factor`` (Piecewise starts from ``values[0]``)."""
    import torch

    if cfg.lr.name == "Piecewise":
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] = cfg.lr.values[0]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, steps_per_epoch, epoch_num))
