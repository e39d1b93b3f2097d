"""The onnxruntime back end of ``Recognizer``: an exported ``.onnx`` file, no torch needed.

Everything needed to run the model (charset, image shape, channel order, preprocessing) is read
from the file's ``metadata_props`` (written by ``crnn export``), so the file alone is enough.
This module must never import torch: it is what the light ``crnn[onnx]`` install runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crnn.charset import Charset
from crnn.config import PostProcessConfig

# metadata_props keys written by crnn.export (all values are strings; JSON where structured)
META_FORMAT = "crnn.format_version"
META_CHARSET = "crnn.charset"  # JSON of Charset.to_dict()
META_IMAGE_SHAPE = "crnn.image_shape"  # JSON [C, H, W]
META_IMG_MODE = "crnn.img_mode"  # "BGR" | "RGB"
META_PREPROCESS = "crnn.preprocess"  # JSON description of resize_norm's parameters
META_SOURCE = "crnn.source"  # checkpoint the model was exported from (informational)
META_TEMPERATURE = "crnn.temperature"  # optional: PostProcess.temperature (confidence calibration), a float
META_SOURCE_SHA256 = "crnn.source_sha256"  # sha256 of that checkpoint file (ties a shipped .onnx to its .pt)
FORMAT_VERSION = "1"
REQUIRED_KEYS = (META_FORMAT, META_CHARSET, META_IMAGE_SHAPE, META_IMG_MODE)

# What crnn.data.transforms.resize_norm does; stored so that a non-Python runtime can reproduce it.
PREPROCESS = {
    "resize": "cv2.INTER_LINEAR to height H, width min(W, ceil(H*w/h)); wider images are squashed to W",
    "scale": 1.0 / 255.0, "mean": 0.5, "std": 0.5, "pad": "right", "pad_value": 0.0,
    "layout": "NCHW", "output": "logits (B, T, K); softmax + greedy CTC decoding, class 0 = blank",
}


def parse_metadata(props: dict[str, str], name: str) -> dict[str, Any]:
    """Recognizer metadata from an ONNX model's ``metadata_props``.

    Args:
        props: key -> string value.
        name: the file, for error messages.

    Returns:
        {"charset": Charset, "image_shape": [C, H, W], "img_mode": str, "backend": "onnx",
        "postprocess": PostProcessConfig carrying the stored temperature, or None}.

    Raises:
        ValueError: a key is missing or malformed (the message names the file and the key).
    """
    missing = [k for k in REQUIRED_KEYS if k not in props]
    if missing:
        raise ValueError(f"{name} has no crnn metadata (missing {', '.join(missing)}): export it with `crnn export`")
    if props[META_FORMAT] != FORMAT_VERSION:
        raise ValueError(f"{name}: crnn metadata format {props[META_FORMAT]!r} is not supported "
                         f"(this crnn reads {FORMAT_VERSION!r})")
    try:
        charset = Charset.from_dict(json.loads(props[META_CHARSET]))
        shape = [int(v) for v in json.loads(props[META_IMAGE_SHAPE])]
    except (ValueError, TypeError, KeyError, AssertionError) as e:
        raise ValueError(f"{name}: malformed crnn metadata ({META_CHARSET} / {META_IMAGE_SHAPE}): {e}") from e
    if len(shape) != 3:
        raise ValueError(f"{name}: {META_IMAGE_SHAPE} must be [C, H, W], got {shape}")
    img_mode = props[META_IMG_MODE]
    if img_mode not in ("BGR", "RGB"):
        raise ValueError(f"{name}: {META_IMG_MODE} must be BGR or RGB, got {img_mode!r}")
    postprocess = None
    if META_TEMPERATURE in props:
        try:
            temperature = float(props[META_TEMPERATURE])
        except ValueError:
            temperature = -1.0
        if not temperature > 0:
            raise ValueError(f"{name}: {META_TEMPERATURE} must be a positive number, got {props[META_TEMPERATURE]!r}")
        postprocess = PostProcessConfig(temperature=temperature)
    return {"charset": charset, "image_shape": shape, "img_mode": img_mode, "backend": "onnx",
            "postprocess": postprocess}


def session_options(num_threads: int | None) -> Any:
    """onnxruntime session options: ``num_threads`` intra-op threads (None: ``default_threads()``)."""
    import onnxruntime as ort

    from crnn.threads import default_threads

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # incl. the NCHWc conv layout
    so.intra_op_num_threads = num_threads or default_threads()
    so.inter_op_num_threads = 1
    return so


def onnx_runner(path: str | os.PathLike[str], num_threads: int | None = None
                ) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
    """A function (B, C, H, W) float32 -> (B, T, K) logits, plus the metadata the recognizer needs.

    Args:
        path: an ``.onnx`` file written by ``crnn export``.
        num_threads: onnxruntime intra-op threads (None: ``crnn.threads.default_threads()``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a loadable ONNX model, or one without crnn metadata; the message names the file.
    """
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ImportError("running .onnx models needs onnxruntime: pip install 'crnn[onnx]'") from e
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"ONNX model {p} not found")
    try:
        sess = ort.InferenceSession(str(p), sess_options=session_options(num_threads),
                                    providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        raise ValueError(f"{p} is not a loadable ONNX model: {str(e).strip().splitlines()[0]}") from e
    meta = parse_metadata(dict(sess.get_modelmeta().custom_metadata_map), str(p))
    input_name = sess.get_inputs()[0].name
    output_name = sess.get_outputs()[0].name
    c, h, _ = meta["image_shape"]

    def run(batch: np.ndarray) -> np.ndarray:
        if batch.ndim != 4 or batch.shape[1] != c or batch.shape[2] != h:
            raise ValueError(f"{p.name} expects (B, {c}, {h}, W) input, got {batch.shape}")
        return sess.run([output_name], {input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    meta["path"] = str(p)
    return run, meta
