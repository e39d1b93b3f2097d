"""CTC loss with PaddleOCR's reduction (training only)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ctc_loss(logits: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
             use_focal_loss: bool = False) -> torch.Tensor:
    """Mean over the batch of per-sample CTC losses, not divided by label length.

    PyTorch's ``reduction="mean"`` divides each loss by its target length; PaddleOCR's CTCLoss does
    not, so we reduce ourselves.

    Args:
        logits: (B, T, C) raw model outputs; blank is class 0.
        targets: (sum(target_lengths),) concatenated class ids.
        target_lengths: (B,).
        use_focal_loss: weight each loss by (1 - exp(-loss))^2, as PaddleOCR's option does.

    Returns:
        scalar loss.
    """
    log_probs = F.log_softmax(logits.float(), dim=2).transpose(0, 1)  # (B, T, C) -> (T, B, C)
    input_lengths = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long)
    losses = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="none",
                        zero_infinity=True)
    if use_focal_loss:
        losses = losses * (1.0 - torch.exp(-losses)) ** 2
    return losses.mean()
