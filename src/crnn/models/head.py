"""PaddleOCR's ``CTCHead``: per-step class logits. Softmax lives in decoding, not here."""

from __future__ import annotations

import torch
from torch import nn


class CTCHead(nn.Module):
    """(B, T, D) -> logits (B, T, num_classes); one Linear, or two with ``mid_channels``."""

    def __init__(self, in_channels: int, num_classes: int, mid_channels: int | None = None):
        super().__init__()
        self.fc1: nn.Linear | None = None
        if mid_channels is None:
            self.fc = nn.Linear(in_channels, num_classes)
        else:
            # PaddleOCR puts no activation between the two layers; neither do we.
            self.fc1 = nn.Linear(in_channels, mid_channels)
            self.fc = nn.Linear(mid_channels, num_classes)
        self.out_channels = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fc1 is not None:
            x = self.fc1(x)
        return self.fc(x)
