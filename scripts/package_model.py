"""Package a training checkpoint as the bundled model: inference weights in fp16 + config + charset.

    python scripts/package_model.py output/crnn_mv3_en/best_accuracy.pt src/crnn/assets/crnn_mv3_en.pt

Optimizer, scheduler and RNG state are dropped; weights are stored as float16 (loaded back as float32,
see crnn.torch_backend.load_model). The step, the validation result and the source are kept as
``provenance``. Check the packaged model with ``crnn eval --checkpoint`` before committing it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from crnn import checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="training checkpoint (.pt)")
    ap.add_argument("dst", help="where to write the bundled model")
    args = ap.parse_args()
    state = checkpoint.load(args.src)
    weights = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    cfg = state["config"]
    cfg["Global"]["checkpoints"] = None  # paths of the machine that trained it mean nothing elsewhere
    cfg["Global"]["pretrained_model"] = None
    out = checkpoint.save(args.dst, {
        "model": weights, "config": cfg, "charset": state["charset"],
        "provenance": {"source": Path(args.src).name, "step": state.get("step"), "epoch": state.get("epoch"),
                       "validation": state.get("best_metric")},
    })
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) from step {state.get('step')}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
