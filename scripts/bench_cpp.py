"""Throughput of the C++ recognizer (deploy/cpp) next to the Python ONNX recognizer: same model,
same images, same thread count, one timed run each.

Both timings cover the same work: decoding the image files, preprocessing, inference and CTC
decoding (model loading excluded). The C++ program reports its own time (``crnn_infer --time``).

Usage:
    python scripts/bench_cpp.py --model model.onnx [--threads 1] [--labels ../shared/data/eval/ic03/labels.tsv]
        [--binary build/cpp/crnn_infer]   # default: build deploy/cpp into a temporary folder
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LABELS = ROOT.parent / "shared" / "data" / "eval" / "ic03" / "labels.tsv"


def build(build_dir: Path, ort_root: str) -> Path:
    """Configure and build deploy/cpp (Release) into ``build_dir``; the crnn_infer program."""
    for cmd in (["cmake", "-S", str(ROOT / "deploy" / "cpp"), "-B", str(build_dir), f"-DONNXRUNTIME_ROOT={ort_root}"],
                ["cmake", "--build", str(build_dir), "-j", "2"]):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return build_dir / "crnn_infer"


def image_paths(labels: Path, limit: int | None) -> list[str]:
    """Image paths of a label file (``path<TAB>label``, paths relative to its folder)."""
    from crnn.data.labels import read_label_file

    paths = [str(labels.parent / rel) for rel, _ in read_label_file(labels)]
    return paths[:limit] if limit else paths


def bench_cpp(binary: Path, model: str, paths: list[str], threads: int, batch_size: int) -> tuple[float, list[str]]:
    """(images/s, texts) of one crnn_infer run."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(paths) + "\n")
    try:
        r = subprocess.run([str(binary), "--time", "--threads", str(threads), "--batch-size", str(batch_size),
                            "--list", f.name, model], capture_output=True, text=True, check=False)
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        raise SystemExit(f"crnn_infer failed ({r.returncode}): {r.stderr.strip()}")
    m = re.search(r"\(([\d.]+) images/s\)", r.stderr)
    if not m:
        raise SystemExit(f"crnn_infer printed no timing: {r.stderr.strip()}")
    return float(m.group(1)), [line.split("\t")[1] for line in r.stdout.splitlines()]


def bench_python(model: str, paths: list[str], threads: int, batch_size: int) -> tuple[float, list[str]]:
    """(images/s, texts) of one ``crnn.Recognizer`` (ONNX back end) call on the files."""
    from crnn import Recognizer

    rec = Recognizer.from_checkpoint(model, num_threads=threads, batch_size=batch_size)
    t0 = time.perf_counter()
    preds = rec(paths)
    dt = time.perf_counter() - t0
    return len(paths) / dt, [p.text for p in preds]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="an .onnx model written by `crnn export`")
    ap.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help="label file of the images to run")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N images")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--binary", type=Path, default=None, help="a built crnn_infer (default: build one now)")
    ap.add_argument("--ort-root", default=os.environ.get("CRNN_ORT_ROOT", "/opt/crnn/onnxruntime"))
    args = ap.parse_args(argv)
    paths = image_paths(args.labels, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        binary = args.binary or build(Path(tmp), args.ort_root)
        cpp_ips, cpp_texts = bench_cpp(binary, args.model, paths, args.threads, args.batch_size)
    py_ips, py_texts = bench_python(args.model, paths, args.threads, args.batch_size)
    same = sum(a == b for a, b in zip(cpp_texts, py_texts, strict=True))
    print(f"images: {len(paths)} from {args.labels}; threads {args.threads}; batch size {args.batch_size}")
    print(f"{'C++ crnn_infer':<24}{cpp_ips:8.1f} images/s")
    print(f"{'Python Recognizer(onnx)':<24}{py_ips:8.1f} images/s")
    print(f"C++ / Python: {cpp_ips / py_ips:.2f}x; same text on {same}/{len(paths)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
