"""Time PaddleOCR's own recognizer (``tools/infer/predict_rec.TextRecognizer``) on a list of images.

Runs inside the separate Paddle venv (see docs/deploy.md); called by scripts/bench_vs_paddle.py,
which passes ``--paddleocr-dir`` (the unpacked ``paddleocr==2.8.1`` wheel). Prints one JSON object.
Images are decoded here with OpenCV (PaddleOCR's own file lister skips .webp).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paddleocr-dir", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--list", required=True, help="file with one image path per line")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 6])
    ap.add_argument("--mkldnn", action="store_true", help="enable oneDNN (predict_rec's default is off)")
    a = ap.parse_args()
    sys.path.insert(0, a.paddleocr_dir)
    import cv2
    import numpy as np
    from tools.infer import utility
    from tools.infer.predict_rec import TextRecognizer

    # predict_rec applies --cpu_threads only with oneDNN on; without it Paddle Inference uses its
    # default of 1 math thread. Set the thread count on every predictor so both sides use the same.
    create = utility.inference.create_predictor

    def create_with_threads(config):  # type: ignore[no-untyped-def]
        config.set_cpu_math_library_num_threads(a.threads)
        return create(config)

    utility.inference.create_predictor = create_with_threads

    with open(a.list, encoding="utf-8") as f:
        paths = [p for p in f.read().splitlines() if p]
    images = [cv2.imread(p) for p in paths]
    if any(im is None for im in images):
        raise SystemExit("cannot decode " + paths[[im is None for im in images].index(True)])
    out: dict = {"images": len(images), "threads": a.threads, "mkldnn": a.mkldnn, "runs": {}}
    for bs in a.batch_sizes:
        sys.argv = ["predict_rec", f"--rec_model_dir={a.model_dir}", "--rec_image_shape=3, 32, 100",
                    f"--rec_char_dict_path={a.paddleocr_dir}/ppocr/utils/ic15_dict.txt", "--use_gpu=False",
                    f"--rec_batch_num={bs}", f"--cpu_threads={a.threads}", f"--enable_mkldnn={a.mkldnn}",
                    "--show_log=False"]
        rec = TextRecognizer(utility.parse_args())
        rec(images[: 2 * bs])  # warm-up
        lat = []
        t0 = time.perf_counter()
        for i in range(0, len(images), bs):  # one call per batch, as crnn.bench does
            t = time.perf_counter()
            rec(images[i : i + bs])
            lat.append(time.perf_counter() - t)
        total = time.perf_counter() - t0
        ms = np.asarray(lat) * 1e3
        out["runs"][f"batch_{bs}"] = {"batch_size": bs, "images_per_s": len(images) / total,
                                      "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
