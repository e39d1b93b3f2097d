"""``crnn bench``: end-to-end recognition speed of PyTorch eager, ONNX fp32 and ONNX int8 on real crops.

End to end means decoded BGR arrays in, strings out: preprocessing (resize + normalise), the
model and CTC decoding are all timed; reading files from disk is not. Also counts the model's
multiply-accumulates per image from its modules (forward hooks), to express throughput as a
fraction of the CPU's fp32 peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from crnn.data.images import IMAGE_EXTS
from crnn.predict import DEFAULT_MODEL, Recognizer, load_image
from crnn.threads import n_threads

FLOP_PER_CYCLE_PER_CORE = 32  # Zen 2, AVX2: 2 FMA units x 8 fp32 lanes x 2 FLOP


def count_macs(model: Any, image_shape: list[int] | tuple[int, ...]) -> dict[str, int]:
    """Multiply-accumulates of one (C, H, W) image, counted per layer type with forward hooks.

    Conv2d: output elements x (in/groups x kh x kw); Linear: output elements x in_features;
    LSTM: per layer, direction and step 4H x (input + H) (the gate matmuls; the elementwise gate
    math is not counted). Batch-norm, activations and pooling are not counted either.
    """
    import torch
    from torch import nn

    counts = {"conv": 0, "linear": 0, "lstm": 0}

    def conv_hook(m: nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        kh, kw = m.kernel_size
        counts["conv"] += out[0].numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp: Any, out: torch.Tensor) -> None:
        counts["linear"] += out[0].numel() * m.in_features

    def lstm_hook(m: nn.LSTM, inp: Any, _out: Any) -> None:
        steps = inp[0].shape[1 if m.batch_first else 0]
        dirs = 2 if m.bidirectional else 1
        for layer in range(m.num_layers):
            in_size = m.input_size if layer == 0 else m.hidden_size * dirs
            counts["lstm"] += dirs * steps * 4 * m.hidden_size * (in_size + m.hidden_size)

    hooks = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            hooks.append(mod.register_forward_hook(linear_hook))
        elif isinstance(mod, nn.LSTM):
            hooks.append(mod.register_forward_hook(lstm_hook))
    try:
        with torch.inference_mode():
            model(torch.zeros(1, *image_shape))
    finally:
        for h in hooks:
            h.remove()
    return {**counts, "total": sum(counts.values())}


def fp32_flop_per_cycle(flags: set[str]) -> int:
    """fp32 FLOP per cycle and core from the CPU's SIMD flags, assuming two FMA units per core.

    AVX-512: 2 x 16 lanes x 2 (multiply + add) = 64; AVX2 + FMA: 2 x 8 x 2 = 32; SSE: 2 x 4 = 8.
    (Some CPUs have only one 512-bit FMA unit, which halves the AVX-512 figure.)
    """
    if "avx512f" in flags:
        return 64
    if "avx2" in flags and "fma" in flags:
        return 32
    return 8


def cpu_info() -> dict[str, Any]:
    """CPU model, cores, clock (MHz, from /proc/cpuinfo: the nominal clock the kernel reports), SIMD flags
    and the fp32 peak they give (``fp32_flop_per_cycle``)."""
    model, mhz = platform.processor() or "unknown", 0.0
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", ""):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":", 1)[1])
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    from crnn.threads import available_cores

    cores = available_cores()
    # The load average shows how busy the (shared) machine was when the numbers were taken.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    simd = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "f16c")))
    per_cycle = fp32_flop_per_cycle(flags)
    return {"model": model, "cores": cores, "mhz": mhz, "load_avg_1min": load, "simd_flags": simd,
            "fp32_flop_per_cycle_per_core": per_cycle, "fp32_peak_gflops": cores * per_cycle * mhz / 1e3}


def load_crops(folder: str | os.PathLike[str], limit: int) -> list[np.ndarray]:
    """Up to ``limit`` decoded BGR crops from ``folder``, taken evenly across its sorted image list."""
    root = Path(folder)
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    if not paths:
        raise FileNotFoundError(f"no images under {root}")
    step = max(1, len(paths) // limit)
    return [load_image(p) for p in paths[::step][:limit]]


def _pcts(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}


def time_recognizer(rec: Recognizer, images: list[np.ndarray], batch_size: int) -> dict[str, Any]:
    """Throughput and latency at batch 1 (one call per image) and at ``batch_size``."""
    rec.recognize_arrays(images[: 2 * batch_size])  # warm-up: allocators, thread pools
    out: dict[str, Any] = {}
    for bs in (1, batch_size):
        rec.batch_size = bs
        lat = []
        t0 = time.perf_counter()
        for i in range(0, len(images), bs):
            t = time.perf_counter()
            rec.recognize_arrays(images[i : i + bs])
            lat.append(time.perf_counter() - t)
        total = time.perf_counter() - t0
        out[f"batch_{bs}"] = {"images_per_s": len(images) / total, **_pcts(lat), "batch_size": bs}
    rec.batch_size = batch_size
    return out


def _export_temp(checkpoint: str, tmp: str) -> tuple[str, str]:
    from crnn.export import export_onnx

    res = export_onnx(checkpoint, Path(tmp) / "model.onnx", int8="dynamic")
    return res["onnx"], res["int8"]


def main_bench(args: argparse.Namespace) -> int:
    """The ``crnn bench`` command (arguments: see ``crnn bench --help``)."""
    import torch

    from crnn.torch_backend import load_model

    ckpt = args.checkpoint or DEFAULT_MODEL
    threads = args.threads or os.cpu_count() or 1
    images = load_crops(args.data, args.limit)
    model, _, _ = load_model(ckpt)
    rec0 = Recognizer(ckpt, num_threads=threads)
    macs = count_macs(model, rec0.spec.image_shape)
    cpu = cpu_info()
    print(f"{len(images)} images from {args.data}; {n_threads(threads)}; CPU {cpu['model']} "
          f"({cpu['cores']} cores, {cpu['mhz']:.0f} MHz); {macs['total'] / 1e6:.1f} M MAC/image")
    results: dict[str, Any] = {"checkpoint": str(ckpt), "data": str(args.data), "images": len(images),
                               "threads": threads, "macs_per_image": macs, "cpu": cpu, "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_fp32, onnx_int8 = args.onnx, args.onnx_int8
        if ({"onnx", "onnx-int8"} & set(args.backends)) and not (onnx_fp32 and onnx_int8):
            e32, e8 = _export_temp(str(ckpt), tmp)
            onnx_fp32, onnx_int8 = onnx_fp32 or e32, onnx_int8 or e8
        paths = {"torch": str(ckpt), "onnx": onnx_fp32, "onnx-int8": onnx_int8}
        torch.set_num_threads(threads)
        peak = cpu["fp32_peak_gflops"] * min(threads, cpu["cores"]) / cpu["cores"]  # of the cores in use
        results["fp32_peak_gflops_used_cores"] = peak
        for name in args.backends:
            rec = rec0 if name == "torch" else Recognizer(paths[name], num_threads=threads)
            r = time_recognizer(rec, images, args.batch_size)
            for v in r.values():
                v["fraction_of_fp32_peak"] = v["images_per_s"] * 2 * macs["total"] / 1e9 / peak if peak else None
            results["backends"][name] = {"model": paths[name], **r}
            for v in r.values():
                print(f"{name:<10} batch {v['batch_size']:>3}: {v['images_per_s']:8.1f} img/s  "
                      f"p50 {v['p50_ms']:7.2f} ms  p95 {v['p95_ms']:7.2f} ms  "
                      f"({100 * (v['fraction_of_fp32_peak'] or 0):.1f}% of fp32 peak)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0
