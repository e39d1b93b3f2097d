"""Side-by-side picture of synthetic crops and real training crops, to judge realism by eye.

    python scripts/synth_preview.py --out docs/img/synth_vs_real.png
    python scripts/synth_preview.py --stats ../synthdata/v2/shard_00000   # numbers, not a picture
    python scripts/synth_preview.py --style scene --num 12 --out docs/img/synth_scene.png
    python scripts/synth_preview.py --style realwarp --num 12 --out docs/img/synth_realwarp.png

Real crops are read (never copied) from the train splits in ``../shared/data/train``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from crnn.data.images import decode_image
from crnn.data.labels import read_label_file
from crnn.data.lmdb_io import image_key, label_key
from crnn.synth.corpus import Corpus, load_words
from crnn.synth.fonts import fonts_for_style
from crnn.synth.realwarp import RealWarper, load_real_crops
from crnn.synth.render import Renderer, sample_rng
from crnn.synth.styles import get_style

DEFAULT_REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train"
REAL_TRAIN = Path(__file__).resolve().parents[1] / "configs" / "data" / "real_train.tsv"  # what realwarp warps
REAL_SETS = ("iiit5k", "ic15", "svt")
TILE_W, TILE_H, LABEL_H, GAP = 168, 44, 14, 4


def _tile(img: np.ndarray, label: str) -> np.ndarray:
    """Image scaled into a TILE_W x TILE_H box (aspect kept) with its label underneath."""
    tile = np.full((TILE_H + LABEL_H, TILE_W, 3), 255, np.uint8)
    h, w = img.shape[:2]
    s = min(TILE_H / h, TILE_W / w)
    nw, nh = max(1, int(w * s)), max(1, int(h * s))
    tile[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    text = label.encode("ascii", "replace").decode()[:26]
    cv2.putText(
        tile, text, (1, TILE_H + LABEL_H - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 200), 1, cv2.LINE_AA
    )
    return tile


def _panel(tiles: list[np.ndarray], cols: int, title: str) -> np.ndarray:
    rows = (len(tiles) + cols - 1) // cols
    th, tw = TILE_H + LABEL_H, TILE_W
    panel = np.full((28 + rows * (th + GAP), cols * (tw + GAP), 3), 255, np.uint8)
    cv2.putText(panel, title, (4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = 28 + r * (th + GAP), c * (tw + GAP)
        panel[y : y + th, x : x + tw] = t
    return panel


def real_samples(root: Path, n: int, seed: int) -> list[tuple[np.ndarray, str]]:
    """``n`` random (image, label) pairs spread over the real train sets found under ``root``."""
    rng = np.random.default_rng(seed)
    pool: list[tuple[Path, str]] = []
    for name in REAL_SETS:
        lf = root / name / "labels.tsv"
        if lf.is_file():
            pool += [(root / name / rel, label) for rel, label in read_label_file(lf)]
    if not pool:
        raise FileNotFoundError(f"no real label files under {root}")
    out = []
    for i in rng.permutation(len(pool)):
        path = pool[int(i)][0]
        try:  # the one decoder of crnn, as training reads these crops
            img = decode_image(path.read_bytes(), str(path))
        except (OSError, ValueError):
            continue
        out.append((img, pool[int(i)][1]))
        if len(out) == n:
            break
    return out


def synth_samples(
    n: int, seed: int, style: str = "default", real_root: Path = DEFAULT_REAL
) -> list[tuple[np.ndarray, str]]:
    """``n`` samples exactly as ``crnn synth --seed SEED --style STYLE`` renders shard 0 (before JPEG)."""
    st = get_style(style)
    renderer: Renderer | RealWarper
    if st.source == "realwarp":
        renderer = RealWarper(load_real_crops(REAL_TRAIN, real_root), st)
    else:
        renderer = Renderer(fonts_for_style(st.fonts), Corpus(load_words()), st)
    return [renderer.render(sample_rng(seed, 0, i)) for i in range(n)]


def make_preview(
    out: Path, n: int = 24, cols: int = 3, seed: int = 0, real_root: Path = DEFAULT_REAL, style: str = "default"
) -> None:
    """Write the comparison picture to ``out``."""
    title = "synthetic (crnn synth)" if style == "default" else f"crnn synth --style {style}"
    syn = _panel([_tile(i, lab) for i, lab in synth_samples(n, seed, style, real_root)], cols, title)
    real = _panel(
        [_tile(i, lab) for i, lab in real_samples(real_root, n, seed)], cols, "real (IIIT5K/IC15/SVT train)"
    )
    h = max(syn.shape[0], real.shape[0])
    pad = np.full((h, 16, 3), 255, np.uint8)
    syn = np.vstack([syn, np.full((h - syn.shape[0], syn.shape[1], 3), 255, np.uint8)])
    real = np.vstack([real, np.full((h - real.shape[0], real.shape[1], 3), 255, np.uint8)])
    pad[:, 7:9] = 128
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), np.hstack([syn, pad, real]), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"cannot write {out}")


def image_stats(img: np.ndarray) -> dict[str, float]:
    """Height, aspect ratio, contrast (95th-5th grey percentile), mean grey, sharpness, saturation."""
    h, w = img.shape[:2]
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    small = cv2.resize(grey, (100, 32), interpolation=cv2.INTER_AREA)  # the model's input size
    # Laplacian variance relative to grey variance: edge sharpness independent of contrast.
    sharp = float(cv2.Laplacian(small, cv2.CV_32F).var() / (small.std() ** 2 + 1e-3))
    p5, p95 = np.percentile(grey, [5, 95])
    sat = float(cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[..., 1].mean())
    return {
        "height": h,
        "aspect": w / h,
        "contrast": p95 - p5,
        "mean": float(grey.mean()),
        "sharp": sharp,
        "saturation": sat,
    }


def print_stats(lmdb_dir: Path, n: int = 600, seed: int = 7, real_root: Path = DEFAULT_REAL) -> None:
    """Print p10 / median / p90 of :func:`image_stats` and label length: ``n`` samples of an LMDB
    (e.g. one shard of a generated set) beside ``n`` real train crops."""
    import lmdb  # only this report needs it

    rng = np.random.default_rng(seed)
    env = lmdb.open(str(lmdb_dir), readonly=True, lock=False)
    with env.begin() as txn:
        total = int(txn.get(b"num-samples") or 0)
        idx = rng.choice(total, min(n, total), replace=False) + 1
        syn = [
            (
                decode_image(txn.get(image_key(i)) or b"", f"{lmdb_dir}:{i}"),
                (txn.get(label_key(i)) or b"").decode(),
            )
            for i in map(int, idx)
        ]
    env.close()
    for name, samples in ((str(lmdb_dir), syn), ("real train crops", real_samples(real_root, n, seed))):
        feats = [image_stats(img) for img, _ in samples]
        feats = [{**f, "label_len": len(lab)} for f, (_, lab) in zip(feats, samples, strict=True)]
        cols = [
            f"{k} {np.percentile([f[k] for f in feats], [10, 50, 90]).round(2).tolist()}" for k in feats[0]
        ]
        print(f"{name} (n={len(samples)}): " + "; ".join(cols))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="PNG to write")
    p.add_argument("--stats", type=Path, metavar="LMDB", help="print image statistics of LMDB vs real crops")
    p.add_argument("--num", type=int, default=24, help="samples per side (default 24)")
    p.add_argument("--seed", type=int, default=0, help="seed for both the synthetic and the real pick")
    p.add_argument("--style", default="default", help="synth style of the left side (default: default)")
    p.add_argument(
        "--real-root", type=Path, default=DEFAULT_REAL, help=f"real train sets (default {DEFAULT_REAL})"
    )
    a = p.parse_args(argv)
    if a.out is None and a.stats is None:
        p.error("give --out and/or --stats")
    if a.stats is not None:
        print_stats(a.stats, real_root=a.real_root)
    if a.out is not None:
        make_preview(a.out, a.num, seed=a.seed, real_root=a.real_root, style=a.style)
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
