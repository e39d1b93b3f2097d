"""End-to-end CPU speed: PaddleOCR's predict_rec (Paddle Inference) vs this project's recognizer.

Same images, same architecture (rec_mv3_none_bilstm_ctc), same thread count, one after the other
in one run; ``--rounds`` alternates the order and the best round of each configuration is kept
(the machine is shared, so a slow round is interference, not the code). End to end = decoded BGR
images in, strings out (resize + normalise, model, CTC decoding); file reading is not timed.

Paddle side: ``scripts/paddle_rec_bench.py`` in the separate Paddle venv (see docs/deploy.md).

    python scripts/bench_vs_paddle.py --checkpoint output/crnn_mv3_en/best_accuracy.pt --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from crnn.bench import count_macs, cpu_info, time_recognizer  # noqa: E402
from crnn.data.images import IMAGE_EXTS  # noqa: E402
from crnn.export import export_onnx  # noqa: E402
from crnn.predict import Recognizer, load_image  # noqa: E402
from crnn.torch_backend import load_model  # noqa: E402


def pick_images(folder: Path, limit: int) -> list[str]:
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    if not paths:
        raise SystemExit(f"no images under {folder}")
    return [str(p) for p in paths[:: max(1, len(paths) // limit)][:limit]]


def run_paddle(args: argparse.Namespace, list_file: str, mkldnn: bool) -> dict[str, Any]:
    cmd = [str(Path(args.paddle_venv) / "bin" / "python"), str(ROOT / "scripts" / "paddle_rec_bench.py"),
           "--paddleocr-dir", str(Path(args.paddleocr_dir).resolve()), "--model-dir", args.paddle_model,
           "--list", list_file, "--threads", str(args.threads),
           "--batch-sizes", *map(str, args.paddle_batch_sizes), *(["--mkldnn"] if mkldnn else [])]
    # paddle 2.6.2 needs the system zlib preloaded, or scipy/scikit-image imported after it crash
    env = {**os.environ, "LD_PRELOAD": "/lib/x86_64-linux-gnu/libz.so.1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=args.paddleocr_dir)
    if r.returncode != 0:
        raise SystemExit(f"Paddle benchmark failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(ROOT / "output/crnn_mv3_en/best_accuracy.pt"))
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/eval"))
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--batch-size", type=int, default=32, help="crnn's batch size (its default)")
    ap.add_argument("--paddle-batch-sizes", type=int, nargs="+", default=[1, 6, 32],
                    help="predict_rec's --rec_batch_num values (6 is its default)")
    ap.add_argument("--paddle-venv", default=str(ROOT / ".paddle-venv"))
    ap.add_argument("--paddleocr-dir", default=str(ROOT / ".paddle-pkgs/paddleocr"))
    ap.add_argument("--paddle-model", default=str(ROOT.parent / "shared/paddle/mv3_infer"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", default=str(ROOT / "docs/bench/vs_paddle.json"))
    args = ap.parse_args()

    import torch

    paths = pick_images(Path(args.data), args.limit)
    images = [load_image(p) for p in paths]
    model, _, _ = load_model(args.checkpoint)
    macs = count_macs(model, [3, 32, 100])
    cpu = cpu_info()
    peak = cpu["fp32_peak_gflops"] * args.threads / cpu["cores"]  # the cores actually used
    print(f"{len(images)} images, {args.threads} threads, CPU {cpu['model']} @ {cpu['mhz']:.0f} MHz "
          f"(fp32 peak {peak:.0f} GFLOP/s on {args.threads} cores), {macs['total'] / 1e6:.1f} M MAC/image at 3x32x100",
          flush=True)
    torch.set_num_threads(args.threads)
    best: dict[str, dict[str, Any]] = {}
    rounds: list[dict[str, Any]] = []

    def keep(name: str, res: dict[str, Any]) -> None:
        for k, v in res.items():
            key = f"{name} {k}"
            if key not in best or v["images_per_s"] > best[key]["images_per_s"]:
                best[key] = v
            print(f"  {key:<34} {v['images_per_s']:8.1f} img/s  p50 {v['p50_ms']:7.2f} ms  p95 {v['p95_ms']:7.2f} ms",
                  flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        list_file = str(Path(tmp) / "images.txt")
        Path(list_file).write_text("\n".join(paths) + "\n", encoding="utf-8")
        exp = export_onnx(args.checkpoint, Path(tmp) / "model.onnx", int8="dynamic")
        ours = {"crnn onnx-fp32": (exp["onnx"], False), "crnn onnx-int8": (exp["int8"], False),
                "crnn torch": (args.checkpoint, False), "crnn onnx-fp32 dynamic-width": (exp["onnx"], True)}
        recs = {k: Recognizer(p, num_threads=args.threads, batch_size=args.batch_size, dynamic_width=dw)
                for k, (p, dw) in ours.items()}
        for r in range(args.rounds):
            print(f"round {r + 1}", flush=True)
            log: dict[str, Any] = {}
            steps = ["paddle", "paddle-mkldnn", "ours"]
            for step in steps if r % 2 == 0 else steps[::-1]:
                if step == "ours":
                    for name, rec in recs.items():
                        log[name] = time_recognizer(rec, images, args.batch_size)
                        keep(name, log[name])
                else:
                    res = run_paddle(args, list_file, mkldnn=step == "paddle-mkldnn")
                    name = "paddleocr predict_rec" + (" +mkldnn" if step == "paddle-mkldnn" else "")
                    log[name] = res["runs"]
                    keep(name, res["runs"])
            rounds.append(log)

    for v in best.values():
        v["fraction_of_fp32_peak"] = v["images_per_s"] * 2 * macs["total"] / 1e9 / peak
    paddle_best = max((v for k, v in best.items() if k.startswith("paddleocr")), key=lambda v: v["images_per_s"])
    default_bs = 6 if 6 in args.paddle_batch_sizes else args.paddle_batch_sizes[0]  # predict_rec's default is 6
    paddle_default = best[f"paddleocr predict_rec batch_{default_bs}"]
    ratios = {k: {"vs_best_paddle": v["images_per_s"] / paddle_best["images_per_s"],
                  "vs_paddle_default": v["images_per_s"] / paddle_default["images_per_s"]}
              for k, v in best.items() if k.startswith("crnn")}
    print("\nbest of rounds (images/s, % of fp32 peak):")
    for k, v in best.items():
        extra = "" if k not in ratios else (f"  {ratios[k]['vs_best_paddle']:.2f}x best Paddle, "
                                            f"{ratios[k]['vs_paddle_default']:.2f}x Paddle default")
        print(f"  {k:<34} {v['images_per_s']:8.1f}  {100 * v['fraction_of_fp32_peak']:5.1f}%{extra}")
    result = {"images": len(images), "data": args.data, "threads": args.threads, "checkpoint": args.checkpoint,
              "paddle_model": args.paddle_model, "cpu": cpu, "fp32_peak_gflops_used_cores": peak,
              "macs_per_image": macs, "best": best, "ratios": ratios, "rounds": rounds,
              "note": "end to end: decoded images -> strings; best of rounds; shared machine"}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
