"""Export parity and int8 accuracy on the real eval sets (36-char protocol), through ``crnn eval``'s path.

Exports CKPT to ONNX (fp16-stored weights, fp32 compute: the bundled model's form), int8-dynamic and
int8-static (calibrated on TRAINING images only), then evaluates PyTorch and each ONNX model over
every eval set with ``crnn.evaluate.evaluate_sets`` (the code behind ``crnn eval --model``) and reports
per-set accuracy and the fraction of images whose decoded string equals PyTorch's.

    python scripts/onnx_parity.py src/crnn/assets/crnn_mv3_en.pt --json docs/bench/onnx_parity.json
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

from crnn.data.sets import sets_dataset
from crnn.evaluate import evaluate_sets, load_eval_model
from crnn.export import export_onnx
from crnn.quantize import quantize

EVAL_SETS = ["iiit5k", "ic13:labels_1015.tsv", "ic15", "ic03"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--eval-root", default="../shared/data/eval")
    ap.add_argument("--calib", default="../shared/data/train", help="TRAINING images for static int8")
    ap.add_argument("--calib-count", type=int, default=512)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--models", nargs="+", help="extra .onnx files to evaluate next to the exported ones")
    ap.add_argument("--out-dir", help="keep the exported models here (default: a temporary folder)")
    ap.add_argument("--json", default="docs/bench/onnx_parity.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in ("root", "onnxruntime.quantization.shape_inference"):
        logging.getLogger(name).setLevel(logging.WARNING)  # the quantizer logs every tensor

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.out_dir or tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        exp = export_onnx(args.checkpoint, out_dir / "model.onnx", fp16_weights=True)
        fp32 = Path(export_onnx(args.checkpoint, out_dir / "model.fp32.onnx", check=False)["onnx"])  # int8 input
        models = {
            "torch": str(args.checkpoint),
            "onnx": exp["onnx"],
            "onnx-int8-dynamic": str(quantize(fp32, out_dir / "model.int8-dynamic.onnx", "dynamic")),
            "onnx-int8-static": str(quantize(fp32, out_dir / "model.int8-static.onnx", "static", args.calib,
                                             args.calib_count)),
            **{Path(m).name: m for m in args.models or []},
        }
        result: dict[str, Any] = {
            "checkpoint": str(args.checkpoint), "export_max_abs_diff": exp["max_abs_diff"],
            "calibration": f"{args.calib_count} images from {args.calib}", "protocol": "36-char",
            "model_bytes": {k: os.path.getsize(v) for k, v in models.items()},
            "sets": {}, "mean_acc": {}, "total_acc": {}, "seconds": {}}
        texts: dict[str, dict[str, dict[str, str]]] = {}
        for name, path in models.items():
            cfg, model, charset, _, spec = load_eval_model(path, None, [], args.threads)
            assert cfg.Eval is not None  # the checkpoints' configs have one
            data = sets_dataset([f"{args.eval_root}/{s}" for s in EVAL_SETS], "labels.tsv", cfg.Eval.dataset.transforms)
            t0 = time.perf_counter()
            res = evaluate_sets(model, cfg, charset, data, cfg.Eval.loader, is_filter=True,
                                texts=texts.setdefault(name, {}), preprocess=spec)
            result["seconds"][name] = time.perf_counter() - t0
            result["mean_acc"][name], result["total_acc"][name] = res["mean"]["acc"], res["total"]["acc"]
            for set_name, r in res["sets"].items():
                ref, got = texts["torch"][set_name], texts[name][set_name]
                same = sum(got.get(k) == v for k, v in ref.items()) / max(len(ref), 1)
                result["sets"].setdefault(set_name, {"count": r["count"], "skipped": r["skipped"]})[name] = {
                    "acc": r["acc"], "norm_edit_dis": r["norm_edit_dis"], "same_as_torch": same}
            print(f"{name:<22} mean acc {100 * res['mean']['acc']:6.2f}  total {100 * res['total']['acc']:6.2f}  "
                  + "  ".join(f"{s} {100 * v[name]['acc']:.2f} ({100 * v[name]['same_as_torch']:.2f}% =torch)"
                              for s, v in result["sets"].items()), flush=True)
    sets = result["sets"].values()
    result["min_same_as_torch"] = {k: min(s[k]["same_as_torch"] for s in sets) for k in models}
    result["all_same_as_torch"] = {k: sum(s[k]["same_as_torch"] * s["count"] for s in sets)
                                   / sum(s["count"] for s in sets) for k in models}
    for k in models:
        loss = 100 * (result["mean_acc"][k] - result["mean_acc"]["torch"])
        print(f"{k:<22} mean acc {100 * result['mean_acc'][k]:6.2f} ({loss:+.2f})  "
              f"same string as torch {100 * result['all_same_as_torch'][k]:6.2f}%  "
              f"({result['model_bytes'][k] / 1e6:.1f} MB)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
