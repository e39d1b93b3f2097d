"""int8 quantization of an exported ONNX recognizer with ``onnxruntime.quantization``.

Two modes:

* ``dynamic``: int8 weights for the LSTM and the head (activations quantized on the fly); the
  convolutions stay fp32. No calibration data needed.
* ``static``: QDQ int8 for the convolutions (weights per output channel, activation ranges
  calibrated on training images; u8 activations x s8 weights, the VNNI/AMX integer dot product).
  The LSTM and the head stay float: they are the layers whose int8 error changes the strings
  most, and a small share of the time (docs/deploy.md).

Calibration images must come from training data, never from an evaluation set.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from crnn import onnx_backend as ob
from crnn.data.images import IMAGE_EXTS
from crnn.data.labels import read_label_file

log = logging.getLogger(__name__)


def calibration_images(source: str | os.PathLike[str], count: int, seed: int = 0) -> list[Path]:
    """Up to ``count`` image paths, sampled reproducibly from a folder (recursive) or a label file.

    Raises:
        FileNotFoundError: ``source`` does not exist or holds no images.
    """
    src = Path(source)
    if src.is_dir():
        paths = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    elif src.is_file():
        paths = [src.parent / rel for rel, _ in read_label_file(src)]
    else:
        raise FileNotFoundError(f"calibration source {src} not found")
    if not paths:
        raise FileNotFoundError(f"no images in calibration source {src}")
    rng = random.Random(seed)
    return sorted(rng.sample(paths, min(count, len(paths))))


class _Reader:
    """onnxruntime ``CalibrationDataReader``: preprocessed training images in batches."""

    def __init__(self, paths: list[Path], meta: dict, input_name: str, batch_size: int = 32):
        from crnn.predict import load_image

        images = [load_image(p) for p in paths]
        spec = meta["preprocess"]  # the model's own preprocessing: calibrate on what it will be fed
        self._batches: Iterator[np.ndarray] = iter(
            [spec(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
        self._name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self._name: batch}


def _copy_metadata(src: onnx.ModelProto, dst_path: Path) -> None:
    """The quantizers drop metadata_props; put the crnn ones back."""
    dst = onnx.load(str(dst_path))
    have = {p.key for p in dst.metadata_props}
    for p in src.metadata_props:
        if p.key not in have:
            dst.metadata_props.add(key=p.key, value=p.value)
    onnx.save(dst, str(dst_path))


def quantize(fp32: str | os.PathLike[str], out: str | os.PathLike[str], mode: str = "static",
             calib: str | os.PathLike[str] | None = None, count: int = 512, method: str = "percentile",
             float_lstm: bool = True) -> Path:
    """Write an int8 copy of an fp32 crnn ONNX model.

    Args:
        fp32: the exported fp32 model (with crnn metadata).
        out: where to write the int8 model.
        mode: "dynamic" or "static".
        calib: static mode: a folder of training images or a label file.
        count: static mode: number of calibration images.
        method: static mode: activation range calibration, "minmax", "percentile" (99.999th
            percentile of |x|: an outlier does not stretch the range) or "entropy".
        float_lstm: static mode: keep the LSTM float (else dynamic int8 as in ``dynamic`` mode).

    Raises:
        ValueError: unknown mode, or static mode without ``calib``.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32, out = Path(fp32), Path(out)
    src = onnx.load(str(fp32))
    meta = ob.parse_metadata({p.key: p.value for p in src.metadata_props}, str(fp32))
    if mode not in ("dynamic", "static"):
        raise ValueError(f"unknown int8 mode {mode!r} (dynamic, static)")
    if mode == "static" and not calib:
        raise ValueError("static int8 quantization needs --calib (a folder or label file of TRAINING images)")
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        pre = Path(tmp) / "pre.onnx"
        # Fold BN/constants and infer shapes first, as onnxruntime recommends before quantizing.
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=False)
        if mode == "dynamic":
            quantize_dynamic(str(pre), str(out), op_types_to_quantize=["LSTM", "MatMul", "Gemm"],
                             weight_type=QuantType.QInt8)
        else:
            paths = calibration_images(calib, count)  # type: ignore[arg-type]
            log.info("calibrating int8 ranges on %d images from %s", len(paths), calib)
            methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                       "entropy": CalibrationMethod.Entropy}
            if method not in methods:
                raise ValueError(f"unknown calibration method {method!r} ({', '.join(methods)})")
            staged = Path(tmp) / "static.onnx"
            quantize_static(str(pre), str(staged), _Reader(paths, meta, src.graph.input[0].name),
                            quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=methods[method],
                            extra_options={"CalibPercentile": 99.999, "CalibTensorRangeSymmetric": False})
            if float_lstm:
                staged.replace(out)
            else:
                quantize_dynamic(str(staged), str(out), op_types_to_quantize=["LSTM"], weight_type=QuantType.QInt8)
    _copy_metadata(src, out)
    return out
