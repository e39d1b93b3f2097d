"""Export parity and int8 accuracy on the real eval sets (36-char protocol).

Exports CKPT to ONNX fp32, int8-dynamic and int8-static (calibrated on TRAINING images only), then
runs PyTorch and each ONNX model over every eval set and reports per-set accuracy, the fraction of
images whose decoded string equals PyTorch's, and (opt-in) accuracy with dynamic-width batching.

    python scripts/onnx_parity.py output/crnn_mv3_en/best_accuracy.pt --json docs/bench/onnx_parity.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from crnn.data.labels import read_label_file
from crnn.evaluate import set_name
from crnn.export import export_onnx
from crnn.metrics import RecMetric, filter_36
from crnn.predict import Recognizer, load_image
from crnn.quantize import quantize

EVAL_SETS = ["iiit5k/labels.tsv", "ic13/labels_1015.tsv", "ic15/labels.tsv", "ic03/labels.tsv"]


def load_set(label_file: Path, limit: int | None = None) -> tuple[list[Any], list[str], int]:
    """(BGR images, labels, skipped) of one set; labels empty under the 36-char protocol are skipped."""
    images, labels, skipped = [], [], 0
    for rel, label in read_label_file(label_file)[:limit]:
        if not filter_36(label):
            skipped += 1
            continue
        images.append(load_image(label_file.parent / rel))
        labels.append(label)
    return images, labels, skipped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--eval-root", default="../shared/data/eval")
    ap.add_argument("--calib", default="../shared/data/train", help="TRAINING images for static int8")
    ap.add_argument("--calib-count", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--limit", type=int, help="first N lines of each label file (smoke tests only)")
    ap.add_argument("--out-dir", help="keep the exported models here (default: a temporary folder)")
    ap.add_argument("--json", default="docs/bench/onnx_parity.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in ("root", "onnxruntime.quantization.shape_inference"):
        logging.getLogger(name).setLevel(logging.WARNING)  # the quantizer logs every tensor

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.out_dir or tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        exp = export_onnx(args.checkpoint, out_dir / "model.onnx")
        fp32 = Path(exp["onnx"])
        models = {
            "torch": (args.checkpoint, False),
            "onnx": (str(fp32), False),
            "onnx-int8-dynamic": (str(quantize(fp32, out_dir / "model.int8-dynamic.onnx", "dynamic")), False),
            "onnx-int8-static": (str(quantize(fp32, out_dir / "model.int8-static.onnx", "static", args.calib,
                                              args.calib_count)), False),
            "onnx-dynamic-width": (str(fp32), True),
        }
        sizes = {k: os.path.getsize(v[0]) for k, v in models.items()}
        recs = {k: Recognizer(p, num_threads=args.threads, dynamic_width=dw) for k, (p, dw) in models.items()}
        result: dict[str, Any] = {"checkpoint": str(args.checkpoint), "limit_per_set": args.limit,
                                  "export_max_abs_diff": exp["max_abs_diff"],
                                  "calibration": f"{args.calib_count} images from {args.calib}",
                                  "protocol": "36-char", "model_bytes": sizes, "sets": {}}
        norm = filter_36
        for rel in EVAL_SETS:
            lf = Path(args.eval_root) / rel
            images, labels, skipped = load_set(lf, args.limit)
            row: dict[str, Any] = {"count": len(labels), "skipped": skipped}
            texts: dict[str, list[str]] = {}
            for k, rec in recs.items():
                t0 = time.perf_counter()
                texts[k] = [p.text for p in rec.recognize_arrays(images)]
                m = RecMetric(norm)
                m.update(texts[k], labels)
                r = m.compute()
                row[k] = {"acc": r["acc"], "norm_edit_dis": r["norm_edit_dis"],
                          "same_as_torch": sum(a == b for a, b in zip(texts[k], texts["torch"], strict=True))
                          / max(len(labels), 1), "seconds": time.perf_counter() - t0}
            result["sets"][set_name(str(lf))] = row
            print(set_name(str(lf)), {k: f"{100 * v['acc']:.2f} ({100 * v['same_as_torch']:.2f}% =torch)"
                                      for k, v in row.items() if isinstance(v, dict)}, flush=True)
    sets = result["sets"].values()
    result["mean_acc"] = {k: sum(s[k]["acc"] for s in sets) / len(result["sets"]) for k in models}
    total = sum(s["count"] for s in sets)
    result["total_acc"] = {k: sum(s[k]["acc"] * s["count"] for s in sets) / total for k in models}
    result["min_same_as_torch"] = {k: min(s[k]["same_as_torch"] for s in sets) for k in models}
    result["tables_equal_to_0.1"] = all(round(100 * s["onnx"]["acc"], 1) == round(100 * s["torch"]["acc"], 1)
                                        for s in sets)
    for k in models:
        print(f"{k:<22} mean acc {100 * result['mean_acc'][k]:6.2f}  total {100 * result['total_acc'][k]:6.2f}  "
              f"min same-as-torch {100 * result['min_same_as_torch'][k]:6.2f}%  ({sizes[k] / 1e6:.1f} MB)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
