"""Building blocks shared by the backbones."""

from __future__ import annotations

import torch
from torch import nn

from crnn.models.train_kernels import DepthwiseConv2d, bn_act, fused_bn_act_applies, squeeze_excite


def make_act(name: str | None) -> nn.Module:
    """Activation by PaddleOCR's name."""
    if name is None:
        return nn.Identity()
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hardswish":
        return nn.Hardswish()  # x * relu6(x + 3) / 6, same as Paddle's hardswish
    raise ValueError(f"unknown activation {name!r}")


class ConvBNAct(nn.Module):
    """Conv (no bias) + BatchNorm + activation, PaddleOCR's ``ConvBNLayer``.

    With ``avg_down`` (ResNet-vd's shortcut), the stride is taken by an average pool before a
    stride-1 convolution, so no rows are thrown away.

    Shapes: (B, in, H, W) -> (B, out, H / sh, W / sw).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int | tuple[int, int] = 1, groups: int = 1, act: str | None = None,
                 avg_down: bool = False):
        super().__init__()
        self.pool = (nn.AvgPool2d(stride, stride, padding=0, ceil_mode=True) if avg_down else nn.Identity())
        conv_stride = 1 if avg_down else stride
        padding = (kernel_size - 1) // 2
        if groups > 1 and groups == in_channels == out_channels:
            # Same parameters and outputs as nn.Conv2d; a faster weight gradient when training on CPU.
            self.conv: nn.Conv2d = DepthwiseConv2d(out_channels, kernel_size, conv_stride, padding)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, conv_stride, padding=padding,
                                  groups=groups, bias=False)
        # Paddle's BatchNorm momentum 0.9 is PyTorch's 0.1 (the default); eps 1e-5 in both.
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = make_act(act)
        self.act_name = act
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(self.pool(x))
        if fused_bn_act_applies(self.bn, y):
            return bn_act(self.bn, self.act_name, y)  # training on CPU: the same function, fewer passes
        return self.act(self.bn(y))


class SqueezeExcite(nn.Module):
    """MobileNetV3's SE block with PaddleOCR's gate ``clip(0.2 x + 0.5, 0, 1)``.

    PyTorch's ``hardsigmoid`` is x/6 + 0.5, which would change every output: the slope is 0.2 here.
    """

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // reduction, 1)
        self.conv2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # mean over pixels (B, C, H, W) -> (B, C, 1, 1), 1x1 convs, gate, x * gate (crnn/models/train_kernels.py)
        b1, b2 = self.conv1.bias, self.conv2.bias
        assert b1 is not None and b2 is not None
        return squeeze_excite(x, self.conv1.weight, b1, self.conv2.weight, b2, self.training)


def init_weights(module: nn.Module) -> None:
    """Paddle's default initialisation of convolutions: Normal(0, sqrt(2 / fan_in))."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
