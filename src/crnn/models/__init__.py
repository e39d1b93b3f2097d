"""Models: pure ``nn.Module``s mapping images (B, 3, H, W) to logits (B, T, C).

``NECKS`` and ``HEADS`` are the tables of the sequence encoders and heads (``BACKBONES`` is in
``crnn.models.backbones``). Importing this package imports no torch: the config loader reads the
tables, and ``CRNN`` / ``build_model`` are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from crnn.registry import Entry

if TYPE_CHECKING:
    from crnn.models.crnn import CRNN, build_model

# A neck is built as ``cls(in_channels, **params)`` and a head as ``cls(in_channels, num_classes, **params)``;
# each needs an ``out_channels`` attribute.
NECKS: dict[str, Entry] = {
    "SequenceEncoder": Entry("crnn.models.neck:SequenceEncoder",
                             {"encoder_type": Literal["rnn", "reshape", "fc"], "hidden_size": int}),
}
HEADS: dict[str, Entry] = {
    "CTCHead": Entry("crnn.models.head:CTCHead", {"mid_channels": int}),
}


def __getattr__(name: str) -> Any:
    if name in ("CRNN", "build_model"):
        import importlib

        return getattr(importlib.import_module("crnn.models.crnn"), name)
    raise AttributeError(f"module 'crnn.models' has no attribute {name!r}")


__all__ = ["CRNN", "HEADS", "NECKS", "build_model"]
