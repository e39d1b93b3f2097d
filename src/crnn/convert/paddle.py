"""Convert PaddleOCR CRNN weights (``.pdparams`` or an inference model) into a crnn checkpoint.

The mapping is by name, strict in both directions: every Paddle tensor must land on exactly one
crnn tensor of the right shape, and every crnn tensor must be filled. Anything else is an error
that lists the offending tensors by name, so a partial load never happens silently.

Name rules (Paddle -> crnn):

* ``backbone.bb_S_B.`` -> ``backbone.stages.S.B.`` (ResNet-vd blocks)
* ``._conv.`` -> ``.conv.``, ``._batch_norm.`` -> ``.bn.`` (ResNet-vd ConvBNLayer)
* ``._mean`` / ``._variance`` -> ``.running_mean`` / ``.running_var`` (BatchNorm statistics)
* ``neck.encoder.lstm.L.cell_{fw,bw}.X`` are aliases of ``neck.encoder.lstm.X_lL[_reverse]``:
  they must equal them and are then dropped
* ``head.fc2.`` -> ``head.fc.`` (the class layer of a head with ``mid_channels``; ``head.fc1`` keeps its name)
* the weight of every ``nn.Linear`` (``head.fc``, ``head.fc1``, ``neck.encoder.fc``) is stored
  ``[in, out]`` by Paddle and transposed to PyTorch's ``[out, in]``
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crnn import checkpoint
from crnn.charset import Charset
from crnn.config import Config, load_config
from crnn.convert.pdparams import read_paddle_params
from crnn.models import CRNN, build_model

_ALIAS = re.compile(r"neck\.encoder\.lstm\.(\d+)\.cell_(fw|bw)\.(weight_ih|weight_hh|bias_ih|bias_hh)")
_HEAD_WEIGHTS = ("head.fc.weight", "head.fc2.weight")  # without / with Head.mid_channels


class ConversionError(ValueError):
    """The Paddle weights do not fit the model the config describes; the message names the tensors."""


def crnn_key(paddle_key: str) -> str:
    """The crnn state_dict key of a (non-alias) Paddle state_dict key."""
    key = re.sub(r"^backbone\.bb_(\d+)_(\d+)\.", r"backbone.stages.\1.\2.", paddle_key)
    key = key.replace("._conv.", ".conv.").replace("._batch_norm.", ".bn.")
    key = re.sub(r"^head\.fc2\.", "head.fc.", key)
    key = re.sub(r"\._mean$", ".running_mean", key)
    return re.sub(r"\._variance$", ".running_var", key)


def _resolve_aliases(params: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Drop Paddle's LSTM alias keys after checking each equals its primary key's tensor."""
    out: dict[str, np.ndarray] = {}
    problems: list[str] = []
    aliases = {}
    for key, value in params.items():
        m = _ALIAS.fullmatch(key)
        if m:
            layer, direction, name = m.groups()
            aliases[key] = (f"neck.encoder.lstm.{name}_l{layer}" + ("_reverse" if direction == "bw" else ""), value)
        else:
            out[key] = value
    for key, (primary, value) in aliases.items():
        if primary not in out:
            out[primary] = value  # a file holding only the alias spelling is still complete
        elif out[primary].shape != value.shape or not np.array_equal(out[primary], value):
            problems.append(f"{key} differs from {primary}, which it should alias")
    return out, problems


def _linear_weights(model: nn.Module) -> set[str]:
    return {f"{name}.weight" for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def head_weight_key(params: dict[str, np.ndarray]) -> str:
    """The Paddle key of the CTC head's class layer (``head.fc`` or, with mid_channels, ``head.fc2``)."""
    for key in _HEAD_WEIGHTS:
        if key in params:
            return key
    raise ConversionError(f"the Paddle weights have none of {list(_HEAD_WEIGHTS)}; is this a CRNN (CTCHead) model?")


def head_classes(params: dict[str, np.ndarray]) -> int:
    """Number of classes of a Paddle CTC head (its class layer's weight is [in, num_classes])."""
    key = head_weight_key(params)
    w = params[key]
    if w.ndim != 2:
        raise ConversionError(f"{key} has shape {list(w.shape)}, expected [in, num_classes]")
    return int(w.shape[1])


def paddle_to_state_dict(params: dict[str, np.ndarray], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map Paddle tensors onto ``model``'s state_dict and load them (strict).

    Args:
        params: Paddle state_dict key -> array (``read_paddle_params`` output; aliases allowed).
        model: the crnn model the weights are for; its tensors are replaced in place.

    Returns:
        ``model.state_dict()`` after loading (float32; BN ``num_batches_tracked`` = 0).

    Raises:
        ConversionError: listing every unmapped, missing, mis-shaped or non-float tensor by name.
    """
    params, problems = _resolve_aliases(params)
    target = model.state_dict()
    transpose = _linear_weights(model)
    mapped: dict[str, torch.Tensor] = {}
    sources: dict[str, str] = {}
    for pkey, value in params.items():
        key = crnn_key(pkey)
        if key not in target:
            problems.append(f"unmapped Paddle tensor {pkey} {list(value.shape)} (no crnn tensor {key})")
            continue
        if key in sources:
            problems.append(f"Paddle tensors {sources[key]} and {pkey} both map to {key}")
            continue
        if not np.issubdtype(value.dtype, np.floating):
            problems.append(f"Paddle tensor {pkey} has dtype {value.dtype}, expected floating point")
            continue
        array = value.T if key in transpose and value.ndim == 2 else value  # Paddle Linear is [in, out]
        want = tuple(target[key].shape)
        if array.shape != want:
            shown = f"{list(value.shape)} (transposed {list(array.shape)})" if array is not value else list(value.shape)
            problems.append(f"mis-shaped Paddle tensor {pkey}: {shown}, crnn {key} needs {list(want)}")
            continue
        sources[key] = pkey
        mapped[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    for key, tensor in target.items():
        if key in mapped:
            continue
        if key.endswith("num_batches_tracked"):  # PyTorch-only counter; Paddle has no equivalent
            mapped[key] = torch.zeros_like(tensor)
        else:
            problems.append(f"missing: no Paddle tensor for crnn {key} {list(tensor.shape)}")
    if problems:
        counts = {kind: sum(p.startswith(kind) for p in problems) for kind in ("unmapped", "missing", "mis-shaped")}
        summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
        hint = " (does the config's Architecture match the one the weights were trained with?)" if summary else ""
        raise ConversionError(f"{len(problems)} problem(s) mapping Paddle weights{': ' + summary if summary else ''}"
                              f"{hint}:\n  " + "\n  ".join(problems))
    model.load_state_dict(mapped, strict=True)
    return model.state_dict()


def charset_for(cfg: Config) -> Charset:
    """PaddleOCR's charset of a config: ``Global.character_dict_path`` + ``Global.use_space_char``."""
    return Charset.from_config(cfg.Global.character_dict_path, cfg.Global.use_space_char)


def build_converted_model(cfg: Config, params: dict[str, np.ndarray]) -> tuple[CRNN, Charset]:
    """The crnn model of ``cfg`` (eval mode) carrying the Paddle weights ``params``, and its charset.

    Raises:
        ConversionError: the head's class count disagrees with the config's charset, or a tensor
            does not fit (see ``paddle_to_state_dict``).
    """
    charset = charset_for(cfg)
    n = head_classes(params)
    g = cfg.Global
    if n != charset.num_classes:
        raise ConversionError(
            f"class count mismatch: the Paddle head {head_weight_key(params)} "
            f"{list(params[head_weight_key(params)].shape)} has {n} "
            f"classes, but the config's charset (Global.character_dict_path={g.character_dict_path!r}, "
            f"Global.use_space_char={g.use_space_char}) gives {charset.num_classes} ({len(charset)} symbols + "
            "blank). Use the dictionary and use_space_char the model was trained with, e.g. "
            "-o Global.character_dict_path=PATH Global.use_space_char=true"
        )
    model = build_model(cfg.Architecture, charset.num_classes)
    paddle_to_state_dict(params, model)
    model.eval()
    return model, charset


def convert_paddle(config: str | os.PathLike[str], params: str | os.PathLike[str], out: str | os.PathLike[str],
                   overrides: list[str] | None = None) -> Path:
    """``crnn convert paddle``: PaddleOCR config + weights -> crnn checkpoint; returns the written path.

    Args:
        config: the PaddleOCR CRNN YAML the model was trained with.
        params: ``.pdparams`` (with or without the suffix), ``.pdiparams`` or an inference-model folder.
        out: checkpoint path (``.pt`` is appended if missing).
        overrides: ``-o Section.key=value`` config overrides.
    """
    cfg = load_config(Path(config), overrides)
    tensors = read_paddle_params(params)
    try:
        model, charset = build_converted_model(cfg, tensors)
    except ConversionError as e:
        raise ConversionError(f"{params}: {e}") from None
    state: dict[str, Any] = {
        "model": model.state_dict(),
        "config": cfg.to_dict(),
        "charset": charset.to_dict(),
        "converted_from": str(params),
    }
    return checkpoint.save(out, state)
