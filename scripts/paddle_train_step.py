"""Time PaddleOCR's own training step (model, CTCLoss, optimizer builder) on fixed batches.

Runs inside the separate Paddle venv (see docs/training_throughput.md); called by
scripts/train_step_vs_paddle.py. ``--paddleocr-src`` is a PaddleOCR source tree (``git clone -b
release/2.8``): this script imports PaddleOCR's classes from there and holds none of its code.
The model is built as PaddleOCR's BaseModel builds it for a config without Transform (backbone ->
neck -> head); each step is the core of ``tools/program.py``'s train loop: forward, loss, backward,
``optimizer.step()``, ``optimizer.clear_grad()``. Prints one JSON object.

    .paddle-venv/bin/python scripts/paddle_train_step.py --paddleocr-src ../paddleocr_src \\
        --batches /tmp/batch.npz --config configs/rec/rec_mv3_none_bilstm_ctc.yml --threads 2 --steps 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paddleocr-src", required=True, help="PaddleOCR source tree (holds ppocr/)")
    ap.add_argument("--batches", required=True,
                    help=".npz with images (B,3,H,W) float32, labels (B,L) int, lengths (B,) int")
    ap.add_argument("--config", required=True, help="the PaddleOCR-layout YAML (Architecture, Optimizer, Global)")
    ap.add_argument("--num-classes", type=int, required=True, help="head size (blank + characters)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8, help="timed steps (after --warmup untimed ones)")
    ap.add_argument("--warmup", type=int, default=3)
    return ap.parse_args()


def build(cfg: dict, num_classes: int):  # type: ignore[no-untyped-def]
    """PaddleOCR's backbone, neck and head for ``cfg['Architecture']``, wrapped in one Layer."""
    import paddle
    from ppocr.modeling.backbones.rec_mobilenet_v3 import MobileNetV3
    from ppocr.modeling.heads.rec_ctc_head import CTCHead
    from ppocr.modeling.necks.rnn import SequenceEncoder

    arch = cfg["Architecture"]
    known = {"MobileNetV3": MobileNetV3, "SequenceEncoder": SequenceEncoder, "CTCHead": CTCHead}
    for part in ("Backbone", "Neck", "Head"):
        if arch[part]["name"] not in known:
            raise SystemExit(f"paddle_train_step: {part} {arch[part]['name']} is not supported here")
    if arch.get("Transform"):
        raise SystemExit("paddle_train_step: Architecture.Transform is not supported here")

    def kwargs(part: str) -> dict:
        return {k: v for k, v in arch[part].items() if k != "name"}

    class Rec(paddle.nn.Layer):  # BaseModel.forward for a rec model without transform
        def __init__(self) -> None:
            super().__init__()
            self.backbone = known[arch["Backbone"]["name"]](in_channels=3, **kwargs("Backbone"))
            self.neck = known[arch["Neck"]["name"]](in_channels=self.backbone.out_channels, **kwargs("Neck"))
            head = {**kwargs("Head"), "out_channels": num_classes}
            self.head = known[arch["Head"]["name"]](in_channels=self.neck.out_channels, **head)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.head(self.neck(self.backbone(x)))

    return Rec()


def main() -> None:
    a = parse_args()
    # the math libraries read these when paddle loads: set before the import
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    sys.path.insert(0, a.paddleocr_src)
    import numpy as np
    import paddle
    import yaml
    from ppocr.losses.rec_ctc_loss import CTCLoss
    from ppocr.optimizer import build_optimizer

    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(a.threads)
    with open(a.config, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    data = np.load(a.batches)
    images = paddle.to_tensor(data["images"].astype("float32"))
    labels = paddle.to_tensor(data["labels"].astype("int64"))
    lengths = paddle.to_tensor(data["lengths"].astype("int64"))
    batch = [images, labels, lengths]

    paddle.seed(0)
    model = build(cfg, a.num_classes)
    model.train()
    loss_class = CTCLoss(**{k: v for k, v in cfg["Loss"].items() if k != "name"})
    optimizer, lr_scheduler = build_optimizer(cfg["Optimizer"], epochs=cfg["Global"]["epoch_num"],
                                              step_each_epoch=1000, model=model)
    # trainable only: Paddle also lists BatchNorm's running mean and variance as (frozen) parameters
    n_params = int(sum(int(np.prod(p.shape)) for p in model.parameters() if p.trainable))
    losses, times = [], []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        preds = model(images)
        avg_loss = loss_class(preds, batch)["loss"]
        avg_loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        if not isinstance(lr_scheduler, float):
            lr_scheduler.step()
        loss = float(avg_loss.numpy())  # also waits for the step to finish
        dt = time.perf_counter() - t0
        losses.append(loss)
        if step >= a.warmup:
            times.append(dt)
    step_ms = 1000 * statistics.median(times)
    print(json.dumps({
        "paddle": paddle.__version__, "threads": a.threads, "batch": int(images.shape[0]),
        "steps": a.steps, "warmup": a.warmup, "params": n_params, "step_ms": step_ms,
        "step_ms_all": [1000 * t for t in times], "img_s": images.shape[0] * 1000 / step_ms,
        "loss_first": losses[0], "loss_last": losses[-1], "losses": losses,
    }))


if __name__ == "__main__":
    main()
