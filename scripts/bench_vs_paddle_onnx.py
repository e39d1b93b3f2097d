"""End to end (image files on disk -> strings) on ONNX Runtime: PaddleOCR's mv3 export vs crnn.

One run prints the whole table: for 1 and 2 threads (``--threads``), images/s of

* ``paddleocr mv3_infer.onnx``: PaddleOCR's own ONNX export (``../shared/paddle/mv3_infer.onnx``, the
  same mv3 CRNN) on onnxruntime with PaddleOCR's own inference code, reproduced here: ``cv2.imread``,
  ``TextRecognizer.resize_norm_img`` per image (rec_image_shape 3,32,100; as in its eval, every crop is
  resized to the 100-wide input, so both sides compute the same 70.3 M MAC per image), images sorted
  by aspect ratio, ``np.concatenate``, and ``CTCLabelDecode`` (argmax/max over the graph's softmax);
* ``crnn default``: ``crnn.Recognizer()``, i.e. the bundled model as the library picks it;
* ``crnn fp32 onnx``: ``crnn export`` of the bundled checkpoint (fp32 weights), via ``Recognizer``;
* ``crnn int8 dynamic``: ``crnn export --int8 dynamic`` (int8 LSTM and head weights, the int8 form that
  keeps the accuracy: docs/deploy.md);
* ``crnn int8 static``: ``crnn export --int8 static`` (QDQ int8 convolutions calibrated on ``--calib``
  training images; -1 point of accuracy, listed to show its speed);
* ``crnn pytorch``: the bundled ``.pt`` on PyTorch eager (reference).

Each configuration reads, decodes, preprocesses, runs and decodes the same ``--limit`` IIIT5K test
crops at batch ``--batch-size``; ``--rounds`` rounds alternate the order and the best is kept (the
machine is shared). The ratio is against PaddleOCR's export at the same thread count. The fraction
of peak counts 2 x 70.3 M FLOP per image against the fp32 FMA peak of the cores used, from the CPU's
flags and nominal clock (``crnn.bench.cpu_info``).

    python scripts/bench_vs_paddle_onnx.py --json docs/bench/vs_paddle_onnx.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from crnn.bench import cpu_info  # noqa: E402
from crnn.predict import DEFAULT_MODEL, Recognizer  # noqa: E402
from crnn.threads import default_threads  # noqa: E402

MACS_PER_IMAGE = 70.3e6  # docs/deploy.md: crnn.bench.count_macs of the mv3 CRNN at 3x32x100
PADDLE_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"  # ic15_dict.txt, class 0 = blank


class PaddleOnnx:
    """PaddleOCR's ``predict_rec.TextRecognizer`` path, on its exported ONNX model."""

    def __init__(self, path: str, threads: int, batch_size: int, shape: tuple[int, int, int] = (3, 32, 100)):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.input = self.sess.get_inputs()[0].name
        self.shape, self.batch_size = shape, batch_size

    def resize_norm_img(self, img: np.ndarray, max_wh_ratio: float) -> np.ndarray:
        """PaddleOCR 2.8 ``TextRecognizer.resize_norm_img`` (CRNN branch), line for line."""
        img_c, img_h, img_w = self.shape
        img_w = int(img_h * max_wh_ratio)
        h, w = img.shape[:2]
        ratio = w / float(h)
        resized_w = img_w if math.ceil(img_h * ratio) > img_w else int(math.ceil(img_h * ratio))
        resized_image = cv2.resize(img, (resized_w, img_h)).astype("float32")
        resized_image = resized_image.transpose((2, 0, 1)) / 255
        resized_image -= 0.5
        resized_image /= 0.5
        padding_im = np.zeros((img_c, img_h, img_w), dtype=np.float32)
        padding_im[:, :, 0:resized_w] = resized_image
        return padding_im

    @staticmethod
    def ctc_decode(preds: np.ndarray) -> list[tuple[str, float]]:
        """PaddleOCR's ``CTCLabelDecode``: argmax, merge repeats, drop blanks, mean probability."""
        idx, prob = preds.argmax(axis=2), preds.max(axis=2)
        out = []
        for i in range(len(idx)):
            keep = np.ones(len(idx[i]), dtype=bool)
            keep[1:] = idx[i][1:] != idx[i][:-1]
            keep &= idx[i] != 0
            text = "".join(PADDLE_CHARS[c - 1] for c in idx[i][keep])
            out.append((text, float(np.mean(prob[i][keep])) if keep.any() else 0.0))
        return out

    def __call__(self, paths: list[str]) -> list[tuple[str, float]]:
        images = [cv2.imread(p) for p in paths]
        order = np.argsort([im.shape[1] / float(im.shape[0]) for im in images])
        results: list[tuple[str, float]] = [("", 0.0)] * len(images)
        max_wh_ratio = self.shape[2] / self.shape[1]  # the fixed 100-wide input (see the module docstring)
        for beg in range(0, len(images), self.batch_size):
            idx = order[beg : beg + self.batch_size]
            batch = np.concatenate([self.resize_norm_img(images[i], max_wh_ratio)[np.newaxis] for i in idx])
            preds = self.sess.run(None, {self.input: batch})[0]
            for i, r in zip(idx, self.ctc_decode(preds), strict=True):
                results[i] = r
        return results


def pick_images(label_file: Path, limit: int) -> list[str]:
    """The first ``limit`` crops of a label file (IIIT5K test: 1,000 of 3,000)."""
    lines = [ln for ln in label_file.read_text(encoding="utf-8").splitlines() if ln.strip()][:limit]
    return [str(label_file.parent / ln.split("\t", 1)[0]) for ln in lines]


def timed(run: Callable[[list[str]], Any], paths: list[str]) -> tuple[float, float, list[str]]:
    """(images per wall-clock second, images per CPU second of this process, strings)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = run(paths)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    return len(paths) / secs, len(paths) / cpu, [p.text if hasattr(p, "text") else p[0] for p in out]


def breakdown(rec: Recognizer, paths: list[str]) -> dict[str, float]:
    """Seconds per stage of ``rec(paths)``: read + decode files, resize + normalise, model, CTC decoding."""
    from crnn.data.preprocess import ratio_batches
    from crnn.decode import greedy_decode
    from crnn.predict import load_images

    t0 = time.perf_counter()
    images = load_images(paths, rec.num_threads)
    t1 = time.perf_counter()
    pre = model = dec = 0.0
    for idx in ratio_batches([im.shape[:2] for im in images], rec.batch_size):  # as Recognizer batches
        batch = [images[i] for i in idx]
        a = time.perf_counter()
        x = rec.preprocess(batch)
        b = time.perf_counter()
        logits = rec.run(x)
        c = time.perf_counter()
        greedy_decode(logits, rec.charset)
        pre, model, dec = pre + b - a, model + c - b, dec + time.perf_counter() - c
    return {"read+decode": t1 - t0, "resize+normalise": pre, "model": model, "ctc decode": dec}


def build(name: str, threads: int, args: argparse.Namespace, models: dict[str, str]) -> Callable[[list[str]], Any]:
    if name == "paddleocr mv3_infer.onnx":
        return PaddleOnnx(args.paddle_onnx, threads or default_threads(), args.batch_size)
    path = {"crnn default": None, "crnn fp32 onnx": models["fp32"], "crnn int8 dynamic": models["int8 dynamic"],
            "crnn int8 static": models["int8 static"], "crnn pytorch": DEFAULT_MODEL}[name]
    return Recognizer(path, num_threads=threads, batch_size=args.batch_size)  # 0: crnn's own default


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", default=str(ROOT.parent / "shared/data/eval/iiit5k/labels.tsv"))
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                    help="thread counts to compare; 0 = crnn's default (crnn.threads.default_threads, given to "
                    "PaddleOCR's session too)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--paddle-onnx", default=str(ROOT.parent / "shared/paddle/mv3_infer.onnx"))
    ap.add_argument("--calib", default=str(ROOT.parent / "shared/data/train"), help="TRAINING images for int8")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch eager row")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    from crnn.export import export_onnx

    paths = pick_images(Path(args.labels), args.limit)
    for p in paths:  # page cache: every configuration then reads the files from memory
        Path(p).read_bytes()
    cpu = cpu_info()
    names = ["paddleocr mv3_infer.onnx", "crnn default", "crnn fp32 onnx", "crnn int8 dynamic", "crnn int8 static"]
    names += [] if args.no_torch else ["crnn pytorch"]
    best: dict[str, dict[int, float]] = {n: {} for n in names}
    # images per CPU-second: what a quiet core would do, as long as the threads do not spin (1 thread)
    best_cpu: dict[str, dict[int, float]] = {n: {} for n in names}
    texts: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        from crnn.quantize import quantize

        fp32 = export_onnx(DEFAULT_MODEL, Path(tmp) / "fp32.onnx")["onnx"]
        models = {"fp32": fp32, "int8 dynamic": str(quantize(fp32, Path(tmp) / "dynamic.onnx", "dynamic")),
                  "int8 static": str(quantize(fp32, Path(tmp) / "static.onnx", "static", args.calib, 256))}
        used: dict[int, int] = {}
        for threads in args.threads:
            used[threads] = threads or default_threads()  # chosen now, from the load at this moment
            runners = {n: build(n, threads, args, models) for n in names}
            for r in range(args.rounds):
                for n in names if r % 2 == 0 else names[::-1]:
                    ips, ipcpu, texts[n] = timed(runners[n], paths)
                    best[n][threads] = max(best[n].get(threads, 0.0), ips)
                    best_cpu[n][threads] = max(best_cpu[n].get(threads, 0.0), ipcpu)
            del runners
        stages = {t: breakdown(Recognizer(None, num_threads=t, batch_size=args.batch_size), paths)
                  for t in args.threads}
    ref = texts.get("crnn pytorch")  # sanity check: the same strings as PyTorch (PaddleOCR's weights differ)
    same = {n: sum(a == b for a, b in zip(t, ref, strict=True)) / len(ref)
            for n, t in texts.items() if ref is not None and n.startswith("crnn")}
    result = {"images": len(paths), "labels": args.labels, "batch_size": args.batch_size, "cpu": cpu,
              "macs_per_image": MACS_PER_IMAGE, "images_per_s": best, "images_per_cpu_s": best_cpu,
              "same_strings_as_pytorch": same,
              "threads_used": used, "crnn_default_stage_seconds": stages,
              "note": "end to end: files on disk -> strings; best of rounds; 1 and 2 threads; shared machine"}
    print_table(result, args.threads)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")


def print_table(result: dict[str, Any], threads: list[int]) -> None:
    cpu, best = result["cpu"], result["images_per_s"]
    print(f"CPU {cpu['model']}, {cpu['cores']} cores available, {cpu['mhz']:.0f} MHz (nominal), "
          f"load avg {cpu['load_avg_1min']:.2f}")
    print(f"SIMD flags: {' '.join(cpu['simd_flags'])}")
    print(f"fp32 peak assumed: {cpu['fp32_flop_per_cycle_per_core']} FLOP/cycle/core (2 FMA units x SIMD lanes x 2) "
          f"x {cpu['mhz']:.0f} MHz = {cpu['fp32_peak_gflops'] / cpu['cores']:.0f} GFLOP/s per core; "
          f"{2 * result['macs_per_image'] / 1e6:.1f} MFLOP per image")
    print(f"{result['images']} crops, batch {result['batch_size']}, files on disk -> strings")
    used = result["threads_used"]
    head = "| path | " + " | ".join(f"{t} thread(s): img/s (vs Paddle, % fp32 peak)" if t else
                                    f"default ({used[t]} thread(s)): img/s (vs Paddle, % fp32 peak)" for t in threads)
    print(head + " |")
    print("|---|" + "---:|" * len(threads))
    paddle = best["paddleocr mv3_infer.onnx"]
    for name, row in best.items():
        cells = []
        for t in threads:
            peak = cpu["fp32_peak_gflops"] / cpu["cores"] * used[t] * 1e9
            frac = row[t] * 2 * result["macs_per_image"] / peak
            cells.append(f"{row[t]:.0f} ({row[t] / paddle[t]:.2f}x, {100 * frac:.0f}%)")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if 1 in threads:
        cpu_row = result["images_per_cpu_s"]
        print("1 thread, images per CPU-second of the process (less sensitive to other jobs): "
              + ", ".join(f"{n} {v[1]:.0f} ({v[1] / cpu_row['paddleocr mv3_infer.onnx'][1]:.2f}x)"
                          for n, v in cpu_row.items()))
    for t, st in result["crnn_default_stage_seconds"].items():
        total = sum(st.values())
        print(f"crnn default, {used[t]} thread(s), where the time goes: "
              + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in st.items()))
    for name, v in result["same_strings_as_pytorch"].items():
        print(f"{name}: same string as PyTorch on {100 * v:.1f}% of the crops")


if __name__ == "__main__":
    main()
