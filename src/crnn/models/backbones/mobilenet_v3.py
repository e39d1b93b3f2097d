"""PaddleOCR's recognition MobileNetV3 (``rec_mobilenet_v3.py``): ends at H = 1, T = W / 4."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from crnn.models.layers import ConvBNAct, SqueezeExcite, init_weights

Stride = int | tuple[int, int]


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor``, never below 90% of ``v``."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ResidualUnit(nn.Module):
    """Inverted residual: 1x1 expand, kxk depthwise (with the stride), optional SE, 1x1 linear.

    The residual add only happens for an integer stride of 1 with equal channels, as in PaddleOCR
    (blocks with stride (2, 1) never add).
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, kernel_size: int,
                 stride: Stride, use_se: bool, act: str):
        super().__init__()
        self.shortcut = stride == 1 and in_channels == out_channels
        self.expand_conv = ConvBNAct(in_channels, mid_channels, 1, act=act)
        self.bottleneck_conv = ConvBNAct(mid_channels, mid_channels, kernel_size, stride, groups=mid_channels,
                                         act=act)
        self.mid_se = SqueezeExcite(mid_channels) if use_se else None
        self.linear_conv = ConvBNAct(mid_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bottleneck_conv(self.expand_conv(x))
        if self.mid_se is not None:
            y = self.mid_se(y)
        y = self.linear_conv(y)
        return x + y if self.shortcut else y


class MobileNetV3(nn.Module):
    """Recognition MobileNetV3; (B, 3, 32, W) -> (B, out_channels, 1, W / 4).

    Args:
        model_name: "large" or "small".
        scale: width multiplier, one of 0.35, 0.5, 0.75, 1.0, 1.25.
        large_stride / small_stride: PaddleOCR's four height strides of the two variants.
        disable_se: drop every SE block.
    """

    def __init__(self, in_channels: int = 3, model_name: Literal["large", "small"] = "small", scale: float = 0.5,
                 large_stride: list[int] | None = None, small_stride: list[int] | None = None,
                 disable_se: bool = False):
        super().__init__()
        ls = large_stride or [1, 2, 2, 2]
        ss = small_stride or [2, 2, 2, 2]
        if len(ls) != 4 or len(ss) != 4:
            raise ValueError("large_stride and small_stride need 4 entries each")
        if scale not in (0.35, 0.5, 0.75, 1.0, 1.25):
            raise ValueError(f"MobileNetV3 scale must be one of 0.35, 0.5, 0.75, 1.0, 1.25, got {scale}")
        # k, expand, out, SE, activation, stride
        cfg: list[tuple[int, int, int, bool, str, Stride]]
        if model_name == "large":
            cfg = [
                (3, 16, 16, False, "relu", ls[0]),
                (3, 64, 24, False, "relu", (ls[1], 1)),
                (3, 72, 24, False, "relu", 1),
                (5, 72, 40, True, "relu", (ls[2], 1)),
                (5, 120, 40, True, "relu", 1),
                (5, 120, 40, True, "relu", 1),
                (3, 240, 80, False, "hardswish", 1),
                (3, 200, 80, False, "hardswish", 1),
                (3, 184, 80, False, "hardswish", 1),
                (3, 184, 80, False, "hardswish", 1),
                (3, 480, 112, True, "hardswish", 1),
                (3, 672, 112, True, "hardswish", 1),
                (5, 672, 160, True, "hardswish", (ls[3], 1)),
                (5, 960, 160, True, "hardswish", 1),
                (5, 960, 160, True, "hardswish", 1),
            ]
            squeeze = 960
        elif model_name == "small":
            cfg = [
                (3, 16, 16, True, "relu", (ss[0], 1)),
                (3, 72, 24, False, "relu", (ss[1], 1)),
                (3, 88, 24, False, "relu", 1),
                (5, 96, 40, True, "hardswish", (ss[2], 1)),
                (5, 240, 40, True, "hardswish", 1),
                (5, 240, 40, True, "hardswish", 1),
                (5, 120, 48, True, "hardswish", 1),
                (5, 144, 48, True, "hardswish", 1),
                (5, 288, 96, True, "hardswish", (ss[3], 1)),
                (5, 576, 96, True, "hardswish", 1),
                (5, 576, 96, True, "hardswish", 1),
            ]
            squeeze = 576
        else:
            raise ValueError(f"MobileNetV3 model_name must be 'large' or 'small', got {model_name!r}")
        inplanes = make_divisible(16 * scale)
        self.conv1 = ConvBNAct(in_channels, inplanes, 3, stride=2, act="hardswish")
        blocks = []
        for k, exp, c, se, act, s in cfg:
            out = make_divisible(scale * c)
            blocks.append(ResidualUnit(inplanes, make_divisible(scale * exp), out, k, s, se and not disable_se,
                                       act))
            inplanes = out
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = make_divisible(scale * squeeze)
        self.conv2 = ConvBNAct(inplanes, self.out_channels, 1, act="hardswish")
        self.pool = nn.MaxPool2d(2, 2)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv2(self.blocks(self.conv1(x))))
