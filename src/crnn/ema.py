"""Exponential moving average of a model's weights, kept as a module of its own.

Evaluation during training runs the average module directly: the training model's weights are
never swapped out and back in (no copy per evaluation, and nothing to restore if evaluation fails).
"""

from __future__ import annotations

import copy

import torch


class EMA:
    """An average copy (``module``, eval mode, no gradients) of every float tensor of a model's state,
    weights and batch-norm statistics alike; integer buffers (BN's batch counter) are copied.

    The decay ramps up as min(decay, (1 + n) / (10 + n)) over the n updates so far: with a fixed
    0.999 from step 0 the average still carried the untrained weights thousands of steps later and
    scored near 0% while the raw weights scored 32% (round 1 of the bundled model).
    """

    def __init__(self, model: torch.nn.Module, decay: float, updates: int = 0):
        self.decay = decay
        self.updates = updates
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """One step of the average towards ``model``'s current state."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        # state_dict tensors share storage with the module, so updating them updates ``module``
        for avg, v in zip(self.module.state_dict().values(), model.state_dict().values(), strict=True):
            if v.dtype.is_floating_point:
                avg.lerp_(v.detach(), 1.0 - decay)
            else:
                avg.copy_(v)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights, as the training model's ``state_dict`` names them."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        """Resume: the averaged weights of a checkpoint, after ``updates`` steps."""
        self.module.load_state_dict(state)
        self.updates = updates
