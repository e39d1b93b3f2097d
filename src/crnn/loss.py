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


def distill_loss(logits: torch.Tensor, teacher_log_probs: torch.Tensor, mask: torch.Tensor,
                 temperature: float) -> torch.Tensor:
    """Frame-wise KL(teacher || student) at ``temperature``, times its square (Hinton et al.'s scaling,
    which keeps the gradient's size independent of the temperature): each sample's mean over frames,
    summed over the samples with teacher rows and divided by B, so a sample weighs what it does in CTC's
    mean whatever the share of taught samples in the batch.

    Args:
        logits: (B, T, C) raw student outputs.
        teacher_log_probs: (B, T, C) the teacher's log-probabilities over the same classes and frames.
        mask: (B,) bool, the samples that have teacher rows; the others add nothing.
        temperature: > 0; both distributions are log_softmax(x / temperature).

    Returns:
        scalar loss (0 when no sample has teacher rows).
    """
    if not bool(mask.any()):
        return logits.sum() * 0.0  # keeps the graph (DDP expects every parameter to get a gradient)
    t = float(temperature)
    student = F.log_softmax(logits[mask].float() / t, dim=2)
    teacher = F.log_softmax(teacher_log_probs[mask].float() / t, dim=2)
    kl = F.kl_div(student, teacher, reduction="none", log_target=True).sum(dim=2)  # (n, T)
    return kl.mean(dim=1).sum() / logits.shape[0] * (t * t)
