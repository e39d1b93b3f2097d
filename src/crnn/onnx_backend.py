"""The onnxruntime back end of ``Recognizer``: an exported ``.onnx`` file, no torch needed.

Everything needed to run the model (charset, preprocessing spec, temperature) is read from the
file's ``metadata_props`` (written by ``crnn export``), so the file alone is enough. This module
also defines those keys and how the preprocessing spec is stored in them (written by
``crnn.export``, read here and by deploy/cpp). It must never import torch: it is what the light
``crnn[onnx]`` install runs.
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
from crnn.data.preprocess import Preprocess
from crnn.limits import shown

# metadata_props keys written by crnn.export (all values are strings; JSON where structured)
META_FORMAT = "crnn.format_version"
META_CHARSET = "crnn.charset"  # JSON of Charset.to_dict()
META_IMAGE_SHAPE = "crnn.image_shape"  # JSON [C, H, W]; also in crnn.preprocess, kept for older readers
META_IMG_MODE = "crnn.img_mode"  # "BGR" | "RGB"; likewise
META_PREPROCESS = "crnn.preprocess"  # JSON of Preprocess.to_dict(): shape, channel order, padding, normalisation
META_SOURCE = "crnn.source"  # checkpoint the model was exported from (informational)
META_TEMPERATURE = "crnn.temperature"  # optional: PostProcess.temperature (confidence calibration), a float
META_SOURCE_SHA256 = "crnn.source_sha256"  # sha256 of that checkpoint file (ties a shipped .onnx to its .pt)
FORMAT_VERSION = "1"
REQUIRED_KEYS = (META_FORMAT, META_CHARSET, META_IMAGE_SHAPE, META_IMG_MODE)


def preprocess_metadata(spec: Preprocess) -> dict[str, str]:
    """The metadata_props entries that carry ``spec`` (read back by ``preprocess_from_metadata``)."""
    return {META_IMAGE_SHAPE: json.dumps(list(spec.image_shape)), META_IMG_MODE: spec.img_mode,
            META_PREPROCESS: json.dumps(spec.to_dict())}


def preprocess_from_metadata(props: dict[str, str], name: str) -> Preprocess:
    """The preprocessing spec stored in an ONNX model's ``metadata_props``.

    Files exported before the spec existed hold only ``crnn.image_shape`` and ``crnn.img_mode``
    (their ``crnn.preprocess``, if any, is a description without ``padding``): their models were
    all run with padding and the default normalisation, which is what they get.

    Raises:
        ValueError: a malformed value, or a ``crnn.preprocess`` that contradicts ``crnn.image_shape``
            or ``crnn.img_mode``; the message names the file and the key.
    """
    raw: dict[str, Any] = {}
    for key in (META_IMAGE_SHAPE, META_PREPROCESS):
        try:
            raw[key] = json.loads(props[key]) if key in props else None
        except ValueError as e:
            raise ValueError(f"{name}: malformed crnn metadata ({key}): {e}") from e
    shape, img_mode, stored = raw[META_IMAGE_SHAPE], props[META_IMG_MODE], raw[META_PREPROCESS]
    if stored is None or (isinstance(stored, dict) and "padding" not in stored):  # exported before the spec
        # where "<file>: crnn" makes the errors name the keys: "<file>: crnn.image_shape: ..."
        return Preprocess.from_dict({**Preprocess().to_dict(), "image_shape": shape, "img_mode": img_mode},
                                    f"{name}: crnn")
    spec = Preprocess.from_dict(stored, f"{name}: {META_PREPROCESS}")
    if list(spec.image_shape) != shape or spec.img_mode != img_mode:  # a hand-edited file
        raise ValueError(f"{name}: {META_PREPROCESS} says {list(spec.image_shape)} {spec.img_mode} but "
                         f"{META_IMAGE_SHAPE} / {META_IMG_MODE} say {shape} {img_mode}")
    return spec


def charset_repeats(charset: Charset) -> list[str]:
    """Symbols that appear more than once, except the one extra space PaddleOCR's own dictionaries give
    (``en_dict.txt`` holds a space and ``use_space_char`` appends another; both classes are trained)."""
    seen: dict[str, int] = {}
    for c in charset.chars:
        seen[c] = seen.get(c, 0) + 1
    return [c for c, n in seen.items() if n > (2 if c == " " else 1)]


def check_classes(charset: Charset, classes: Any, name: str) -> None:
    """Refuse a model whose output classes are not its charset's symbols + the blank.

    A shorter charset made decoding fail with an IndexError; a longer one was accepted and would
    never read its extra symbols (deploy/cpp refuses both the same way).
    """
    if isinstance(classes, int) and classes != charset.num_classes:
        raise ValueError(f"{name}: model has {classes} classes but its charset ({META_CHARSET}) has {len(charset)} "
                         "symbols (+1 blank)")


def parse_metadata(props: dict[str, str], name: str) -> dict[str, Any]:
    """Recognizer metadata from an ONNX model's ``metadata_props``.

    Args:
        props: key -> string value.
        name: the file, for error messages.

    Returns:
        {"charset": Charset, "preprocess": Preprocess, "backend": "onnx",
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
    except (ValueError, TypeError, KeyError, AssertionError) as e:
        raise ValueError(f"{name}: malformed crnn metadata ({META_CHARSET}): {e}") from e
    repeated = charset_repeats(charset)
    if repeated:
        raise ValueError(f"{name}: {META_CHARSET} repeats {shown(''.join(repeated))}: a repeated symbol can never be "
                         "read from its other classes (a hand-edited or foreign file?)")
    spec = preprocess_from_metadata(props, name)
    postprocess = None
    if META_TEMPERATURE in props:
        try:
            temperature = float(props[META_TEMPERATURE])
        except ValueError:
            temperature = -1.0
        if not temperature > 0:
            raise ValueError(f"{name}: {META_TEMPERATURE} must be a positive number, got {props[META_TEMPERATURE]!r}")
        postprocess = PostProcessConfig(temperature=temperature)
    return {"charset": charset, "preprocess": spec, "backend": "onnx", "postprocess": postprocess}


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
    check_classes(meta["charset"], sess.get_outputs()[0].shape[-1], str(p))  # a symbolic dim is a str: checked per run
    input_name = sess.get_inputs()[0].name
    output_name = sess.get_outputs()[0].name
    c, h, _ = meta["preprocess"].image_shape

    def run(batch: np.ndarray) -> np.ndarray:
        if batch.ndim != 4 or batch.shape[1] != c or batch.shape[2] != h:
            raise ValueError(f"{p.name} expects (B, {c}, {h}, W) input, got {batch.shape}")
        logits = sess.run([output_name], {input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]
        check_classes(meta["charset"], int(logits.shape[-1]), str(p))
        return logits

    meta["path"] = str(p)
    return run, meta
