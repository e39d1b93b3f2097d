"""CRNN = backbone + SequenceEncoder + CTCHead, wired through ``out_channels``."""

from __future__ import annotations

import torch
from torch import nn

from crnn.config import ArchitectureConfig
from crnn.models.backbones import BACKBONES
from crnn.models.head import CTCHead
from crnn.models.neck import SequenceEncoder


class CRNN(nn.Module):
    """A pure function ``images (B, 3, H, W) -> logits (B, T, num_classes)``; T = W / 4."""

    def __init__(self, backbone: nn.Module, neck: SequenceEncoder, head: CTCHead):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.backbone(images)))


def build_model(cfg: ArchitectureConfig, num_classes: int) -> CRNN:
    """Build the model an ``Architecture`` section describes, with ``num_classes`` outputs.

    Example:
        >>> from crnn.config import Config
        >>> model = build_model(Config().Architecture, num_classes=37)
    """
    bb = cfg.Backbone
    kwargs = {k: v for k, v in vars(bb).items() if k != "name" and v is not None}
    backbone = BACKBONES[bb.name](**kwargs)
    neck = SequenceEncoder(int(backbone.out_channels), cfg.Neck.encoder_type, cfg.Neck.hidden_size)  # type: ignore[arg-type]
    if cfg.Head.out_channels is not None and cfg.Head.out_channels != num_classes:
        raise ValueError(f"Architecture.Head.out_channels={cfg.Head.out_channels} disagrees with the "
                         f"charset's {num_classes} classes")
    head = CTCHead(neck.out_channels, num_classes, cfg.Head.mid_channels)
    return CRNN(backbone, neck, head)
