"""PaddleOCR's recognition ResNet-vd (``rec_resnet_vd.py``): stride-1 stem, (2, 1) stage strides.

(B, 3, 32, W) -> (B, 512 or 2048, 1, W / 4).
"""

from __future__ import annotations

import torch
from torch import nn

from crnn.models.layers import ConvBNAct, init_weights

DEPTHS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3],
          200: [3, 12, 48, 3]}


def _shortcut(in_channels: int, out_channels: int, stride: tuple[int, int], first: bool) -> nn.Module:
    # Every stage's first block projects. After the stem, stride (2, 1) uses the vd trick:
    # average-pool, then a stride-1 1x1 conv.
    return ConvBNAct(in_channels, out_channels, 1, stride, avg_down=not first and stride[0] != 1)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: tuple[int, int], project: bool, first: bool):
        super().__init__()
        self.conv0 = ConvBNAct(in_channels, channels, 3, stride, act="relu")
        self.conv1 = ConvBNAct(channels, channels, 3)
        self.short = _shortcut(in_channels, channels, stride, first) if project else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = x if self.short is None else self.short(x)
        return torch.relu(self.conv1(self.conv0(x)) + short)


class BottleneckBlock(nn.Module):
    """1x1 reduce, 3x3 (with the stride), 1x1 expand x4, plus a shortcut (ResNet-50 and deeper)."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: tuple[int, int], project: bool, first: bool):
        super().__init__()
        self.conv0 = ConvBNAct(in_channels, channels, 1, act="relu")
        self.conv1 = ConvBNAct(channels, channels, 3, stride, act="relu")
        self.conv2 = ConvBNAct(channels, channels * 4, 1)
        self.short = _shortcut(in_channels, channels * 4, stride, first) if project else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = x if self.short is None else self.short(x)
        return torch.relu(self.conv2(self.conv1(self.conv0(x))) + short)


class ResNet(nn.Module):
    """Recognition ResNet-vd with ``layers`` in 18, 34, 50, 101, 152, 200."""

    def __init__(self, in_channels: int = 3, layers: int = 50):
        super().__init__()
        if layers not in DEPTHS:
            raise ValueError(f"ResNet layers must be one of {sorted(DEPTHS)}, got {layers}")
        block: type[BasicBlock] | type[BottleneckBlock] = BasicBlock if layers < 50 else BottleneckBlock
        self.conv1_1 = ConvBNAct(in_channels, 32, 3, act="relu")
        self.conv1_2 = ConvBNAct(32, 32, 3, act="relu")
        self.conv1_3 = ConvBNAct(32, 64, 3, act="relu")
        self.pool2d_max = nn.MaxPool2d(3, 2, 1)
        stages = []
        channels = 64
        for stage, (depth, filters) in enumerate(zip(DEPTHS[layers], [64, 128, 256, 512], strict=True)):
            blocks = []
            for i in range(depth):
                stride = (2, 1) if i == 0 and stage != 0 else (1, 1)
                blocks.append(block(channels, filters, stride, project=i == 0, first=stage == i == 0))
                channels = filters * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.out_pool = nn.MaxPool2d(2, 2)
        self.out_channels = channels
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool2d_max(self.conv1_3(self.conv1_2(self.conv1_1(x))))
        return self.out_pool(self.stages(x))
