"""The backbones, by PaddleOCR's ``Architecture.Backbone.name``: ``BACKBONES`` is the one table.

Each entry names its class lazily (this module imports no torch, so the config loader can ask it
which names and keys are valid) and declares the constructor keys a config may set, with their
types; ``tests/test_models.py`` checks each declaration against the constructor's signature.
Adding a backbone: one file with an ``nn.Module`` mapping (B, C, 32, W) to (B, out_channels, 1, W / 4)
and an ``out_channels`` attribute, one line here, and a test (docs/extending.md).
"""

from __future__ import annotations

from typing import Literal

from crnn.registry import Entry

BACKBONES: dict[str, Entry] = {
    "MobileNetV3": Entry("crnn.models.backbones.mobilenet_v3:MobileNetV3", {
        "in_channels": int, "model_name": Literal["large", "small"], "scale": float, "large_stride": list[int],
        "small_stride": list[int], "disable_se": bool}),
    "ResNet": Entry("crnn.models.backbones.resnet_vd:ResNet", {"in_channels": int, "layers": int}),
}

__all__ = ["BACKBONES"]
