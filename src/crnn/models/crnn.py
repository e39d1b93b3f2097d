"""CRNN = backbone + neck + head, each picked from its table and wired through ``out_channels``."""

from __future__ import annotations

import torch
from torch import nn

from crnn.config import ArchitectureConfig
from crnn.models import HEADS, NECKS
from crnn.models.backbones import BACKBONES
from crnn.registry import lookup


class CRNN(nn.Module):
    """A pure function ``images (B, 3, H, W) -> logits (B, T, num_classes)``; T = W / 4."""

    def __init__(self, backbone: nn.Module, neck: nn.Module, head: nn.Module):
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
    if cfg.Head.out_channels is not None and cfg.Head.out_channels != num_classes:
        raise ValueError(f"Architecture.Head.out_channels={cfg.Head.out_channels} disagrees with the "
                         f"charset's {num_classes} classes")
    bb, nk, hd = cfg.Backbone, cfg.Neck, cfg.Head
    backbone = lookup(BACKBONES, bb.name, "Architecture.Backbone.name", "backbone").load()(**bb.params)
    neck = lookup(NECKS, nk.name, "Architecture.Neck.name", "neck").load()(int(backbone.out_channels), **nk.params)
    head = lookup(HEADS, hd.name, "Architecture.Head.name", "head").load()(int(neck.out_channels), num_classes,
                                                                             **hd.params)
    return CRNN(backbone, neck, head)
