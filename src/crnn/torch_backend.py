"""The PyTorch back end of ``Recognizer``: a checkpoint's model in eval mode."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from crnn import checkpoint
from crnn.charset import Charset
from crnn.data.preprocess import Preprocess
from crnn.models import CRNN, build_model


def load_model(path: str | os.PathLike[str]) -> tuple[CRNN, Charset, Any]:
    """Model (eval mode, float32), charset and config of a checkpoint."""
    state = checkpoint.load(path)
    cfg = checkpoint.stored_config(state, path)
    charset = Charset.from_dict(state["charset"])
    model = build_model(cfg.Architecture, charset.num_classes)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in state["model"].items()}
    checkpoint.load_weights(model, weights, path)
    model.eval()
    return model, charset, cfg


def for_inference(model: CRNN) -> CRNN:
    """An eval-mode model made faster for CPU inference, in place: the same function, fewer passes.

    Batch norm is folded into the convolution before it (one pass over each activation instead of
    two, as the ONNX export does) and the weights are made channels-last, the layout in which
    oneDNN runs the many depthwise and 1x1 convolutions of MobileNetV3 fastest (docs/deploy.md).
    Not for training: the folded model has no batch-norm statistics left to update.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    from crnn.models.layers import ConvBNAct

    model.eval()
    for mod in model.modules():
        if isinstance(mod, ConvBNAct) and isinstance(mod.bn, torch.nn.BatchNorm2d):
            mod.conv = fuse_conv_bn_eval(mod.conv, mod.bn)
            mod.bn = torch.nn.Identity()  # type: ignore[assignment]
    return model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def torch_runner(path: str | os.PathLike[str], num_threads: int | None = None
                 ) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
    """A function (B, C, H, W) float32 -> (B, T, K) logits, plus the metadata the recognizer needs."""
    from crnn.threads import default_threads

    model, charset, cfg = load_model(path)
    model = for_inference(model)
    torch.set_num_threads(num_threads or default_threads())

    @torch.inference_mode()
    def run(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
        return model(x).float().numpy()

    # the spec is derived from the config every checkpoint stores (one source, nothing to disagree with)
    return run, {"charset": charset, "preprocess": Preprocess.from_config(cfg), "backend": "torch",
                 "postprocess": cfg.PostProcess}
