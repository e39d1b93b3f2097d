"""Models: pure ``nn.Module``s mapping images (B, 3, H, W) to logits (B, T, C)."""

from crnn.models.crnn import CRNN, build_model

__all__ = ["CRNN", "build_model"]
