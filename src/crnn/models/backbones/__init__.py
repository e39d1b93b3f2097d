"""The backbones, by PaddleOCR's ``Architecture.Backbone.name``."""

from torch import nn

from crnn.models.backbones.mobilenet_v3 import MobileNetV3
from crnn.models.backbones.resnet_vd import ResNet

BACKBONES: dict[str, type[nn.Module]] = {"ResNet": ResNet, "MobileNetV3": MobileNetV3}

__all__ = ["BACKBONES", "MobileNetV3", "ResNet"]
