"""crnn: CRNN scene-text recognition (CNN + BiLSTM + CTC), PaddleOCR-compatible, in PyTorch.

Importing ``crnn`` does not import torch, so the ONNX recognizer works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crnn.charset import Charset
from crnn.config import Config, ConfigError, load_config
from crnn.decode import Prediction
from crnn.predict import DEFAULT_MODEL, Recognizer

if TYPE_CHECKING:
    import torch

__version__ = "0.1.0"
__all__ = ["DEFAULT_MODEL", "Charset", "Config", "ConfigError", "Prediction", "Recognizer",
           "build_model_from_config", "load_config"]


def build_model_from_config(path: str, overrides: list[str] | None = None) -> torch.nn.Module:
    """The untrained model a YAML config describes, with its charset's class count.

    Example:
        >>> model = build_model_from_config("configs/rec/rec_mv3_none_bilstm_ctc.yml")  # doctest: +SKIP
    """
    from crnn.models import build_model

    cfg = load_config(path, overrides)
    charset = Charset.from_config(cfg.Global.character_dict_path, cfg.Global.use_space_char)
    return build_model(cfg.Architecture, charset.num_classes)

