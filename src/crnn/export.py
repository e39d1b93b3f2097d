"""``crnn export``: a checkpoint -> a self-describing ONNX model, verified against PyTorch.

The ONNX graph maps images (B, C, H, W) float32 to logits (B, T, K) with dynamic B and W (H is
fixed by the config); softmax and decoding stay outside, as in the PyTorch model. The charset,
the preprocessing spec (``crnn.data.preprocess.Preprocess``: image shape, channel order, padding,
normalisation) and the temperature go into ``metadata_props``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from crnn import onnx_backend as ob
from crnn.checkpoint import file_sha256
from crnn.checkpoint import resolve as resolve_checkpoint
from crnn.data.preprocess import Preprocess
from crnn.onnx_graph import fuse_for_runtime, store_fp16
from crnn.torch_backend import load_model

log = logging.getLogger(__name__)

# onnxruntime's CPU provider implements every op this model needs at opset 17 (HardSigmoid,
# HardSwish, LSTM); 17 is also the newest opset the TorchScript exporter covers fully.
OPSET = 17
# Verification: max |logit(onnxruntime) - logit(torch)| allowed for fp32. Both run the same fp32
# math in different kernel orders; measured differences are ~1e-5 (far below any argmax margin
# that matters), so 1e-3 passes with a 100x margin and still catches any real export bug (those
# give differences of 0.1-1, see ../shared/paddle/README.md section 6).
ATOL = 1e-3
VERIFY_BATCHES = (1, 3, 8)
VERIFY_WIDTHS = (100, 48, 160, 320)


def write_metadata(model: onnx.ModelProto, meta: dict[str, str]) -> None:
    """Replace ``model``'s crnn metadata_props entries with ``meta``."""
    keep = [p for p in model.metadata_props if p.key not in meta]
    del model.metadata_props[:]
    for p in keep:
        model.metadata_props.add(key=p.key, value=p.value)
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """All metadata_props of an ONNX file (without loading weights into onnxruntime)."""
    m = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in m.metadata_props}


def _to_onnx(model: torch.nn.Module, image_shape: list[int], out: Path, fold: bool = True) -> None:
    c, h, w = image_shape
    dummy = torch.randn(2, c, h, w)
    with warnings.catch_warnings():
        # The tracer warns about the neck's shape check; it is constant for a fixed H. The LSTM
        # warning about batch size concerns constant initial states: ours are zeros built from the
        # input's shape (ConstantOfShape), and verify() checks batch sizes 1, 3 and 8.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            model, (dummy,), str(out), input_names=["x"], output_names=["logits"],
            dynamic_axes={"x": {0: "batch", 3: "width"}, "logits": {0: "batch", 1: "steps"}},
            opset_version=OPSET, do_constant_folding=fold, dynamo=False,
        )


class VerificationError(RuntimeError, ValueError):
    """The exported model does not compute what the checkpoint does (a RuntimeError as before; also a
    ValueError, so ``crnn export`` reports it in one line)."""


def verify(onnx_path: str | os.PathLike[str], model: torch.nn.Module, image_shape: list[int],
           atol: float = ATOL, batches: tuple[int, ...] = VERIFY_BATCHES,
           widths: tuple[int, ...] = VERIFY_WIDTHS, seed: int = 0) -> float:
    """Run the ONNX model and the PyTorch model on random inputs of several batch sizes and widths.

    Returns:
        the largest |Δlogit| seen.

    Raises:
        VerificationError: shapes differ, an output is not finite, or |Δlogit| > ``atol`` (the message
            names the case).
    """
    run, _ = ob.onnx_runner(onnx_path, num_threads=1)
    rng = np.random.default_rng(seed)
    c, h, _ = image_shape
    worst = 0.0
    for b in batches:
        for w in widths:
            x = rng.uniform(-1, 1, size=(b, c, h, w)).astype(np.float32)
            with torch.inference_mode():
                ref = model(torch.from_numpy(x)).numpy()
            got = run(x)
            if got.shape != ref.shape:
                raise VerificationError(f"{onnx_path}: output shape {got.shape} != torch {ref.shape} for input "
                                        f"{x.shape}")
            for who, out in (("ONNX", got), ("PyTorch", ref)):
                if not np.isfinite(out).all():  # NaN - NaN is NaN, and NaN > atol is False: it "verified"
                    raise VerificationError(f"{onnx_path}: the {who} model's logits are not finite (NaN or inf) "
                                            f"for input {x.shape}; the export is not usable")
            diff = float(np.abs(got - ref).max())
            worst = max(worst, diff)
            if not diff <= atol:
                raise VerificationError(f"{onnx_path}: max |Δlogit| {diff:.2e} > {atol:.0e} for input {x.shape}")
    return worst


def export_onnx(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], check: bool = True,
                int8: str | None = None, calib: str | None = None, calib_count: int = 256,
                fp16_weights: bool = False) -> dict[str, Any]:
    """Export a checkpoint to ONNX (fp32 compute), optionally also an int8 copy.

    The graph is rewritten into the ops onnxruntime fuses (``crnn.onnx_graph.fuse_for_runtime``);
    the metadata records the checkpoint's sha256 (``crnn.source_sha256``).

    Args:
        checkpoint: a ``.pt`` checkpoint.
        out: the fp32 ``.onnx`` file to write.
        check: verify against PyTorch (see ``verify``).
        int8: None, "dynamic" or "static": also write ``<out stem>.int8.onnx``.
        calib: for static int8: a folder of images or a label file (training images, never eval sets).
        calib_count: calibration images to use.
        fp16_weights: store the weights float16 holds exactly (all of them for a checkpoint whose
            weights are float16, like the bundled model) as float16: half the file, same results.
            Batch norm is then left unfolded in the file; onnxruntime folds it when loading.

    Returns:
        {"onnx": path, "max_abs_diff": float | None, "int8": path | None, "opset": int}.
    """
    out = Path(out)
    model, charset, cfg = load_model(checkpoint)
    spec = Preprocess.from_config(cfg)
    image_shape = list(spec.image_shape)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        raw = Path(tmp) / "raw.onnx"
        _to_onnx(model, image_shape, raw, fold=not fp16_weights)  # folding BN would make weights inexact in fp16
        m = onnx.load(str(raw))
    fuse_for_runtime(m)
    if fp16_weights:
        store_fp16(m)
    onnx.checker.check_model(m)
    m.producer_name = "crnn"
    m.doc_string = f"CRNN text recognizer exported from {Path(checkpoint).name}: x (B,C,H,W) -> logits (B,T,K)"
    write_metadata(m, {
        ob.META_FORMAT: ob.FORMAT_VERSION,
        ob.META_CHARSET: json.dumps(charset.to_dict(), ensure_ascii=False),
        **ob.preprocess_metadata(spec),
        ob.META_SOURCE: Path(checkpoint).name,
        ob.META_TEMPERATURE: repr(float(cfg.PostProcess.temperature)),
        ob.META_SOURCE_SHA256: file_sha256(resolve_checkpoint(checkpoint)),
    })
    tmp_out = out.with_name(out.name + ".tmp")
    onnx.save(m, str(tmp_out))
    os.replace(tmp_out, out)  # atomic: a crash never leaves a half-written model
    result: dict[str, Any] = {"onnx": str(out), "opset": OPSET, "max_abs_diff": None, "int8": None}
    if check:
        result["max_abs_diff"] = verify(out, model, image_shape)
        log.info("verified %s against PyTorch: max |Δlogit| %.2e (tolerance %.0e)", out, result["max_abs_diff"], ATOL)
    if int8:
        from crnn.quantize import quantize

        q_out = out.with_name(out.stem + ".int8.onnx")
        quantize(out, q_out, mode=int8, calib=calib, count=calib_count)
        result["int8"] = str(q_out)
    return result
