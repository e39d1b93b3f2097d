"""Package a training checkpoint as the bundled model: the .pt (fp16 weights + config + charset) and its ONNX form.

    python scripts/package_model.py output/crnn_mv3_en/best_accuracy.pt src/crnn/assets/crnn_mv3_en.pt

writes ``crnn_mv3_en.pt`` and ``crnn_mv3_en.onnx`` (what ``crnn.Recognizer()`` runs when onnxruntime
is installed). Optimizer, scheduler and RNG state are dropped; weights are stored as float16 (loaded
back as float32, see crnn.torch_backend.load_model). The step, the validation result and the source
are kept as ``provenance``. The ONNX file is exported from the written .pt (verified against PyTorch,
fp16 weights, fp32 compute) and records the .pt's sha256 (``crnn.source_sha256``), which
tests/test_bundled_model.py checks. ``--onnx-only`` re-exports the ONNX file of an already packaged
.pt (SRC = DST). Check both with ``crnn eval --model`` before committing them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from crnn import checkpoint
from crnn.export import export_onnx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="training checkpoint (.pt)")
    ap.add_argument("dst", help="where to write the bundled model (.pt; the .onnx goes next to it)")
    ap.add_argument("--onnx-only", action="store_true", help="SRC is an already packaged .pt: only export its ONNX")
    args = ap.parse_args()
    if not args.onnx_only:
        package(args.src, args.dst)
    pt = checkpoint.resolve(args.dst)
    res = export_onnx(pt, pt.with_suffix(".onnx"), fp16_weights=True)
    onnx_path = Path(res["onnx"])
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.2f} MB; max |dlogit| vs PyTorch "
          f"{res['max_abs_diff']:.1e})")


def package(src: str, dst: str) -> None:
    """Write the inference-only, fp16-weight checkpoint ``dst`` from the training checkpoint ``src``."""
    state = checkpoint.load(src)
    weights = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    cfg = state["config"]
    cfg["Global"]["checkpoints"] = None  # paths of the machine that trained it mean nothing elsewhere
    cfg["Global"]["pretrained_model"] = None
    cfg["Global"]["pretrained_sha256"] = None
    out = checkpoint.save(dst, {
        "model": weights, "config": cfg, "charset": state["charset"],
        "provenance": {"source": Path(src).name, "step": state.get("step"), "epoch": state.get("epoch"),
                       "validation": state.get("best_metric"),
                       **({"averaged_from": state["averaged_from"]} if "averaged_from" in state else {})},
    })
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) from step {state.get('step')}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
