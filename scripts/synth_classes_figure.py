"""Picture of the hard classes: ``crnn synth --style CLASS`` samples beside real crops of that class.

Real crops are the ones listed in docs/synth_classes_real.tsv (picked by eye from the training
splits; read from ../shared/data/train, never copied). One row per class.

    python scripts/synth_classes_figure.py --out docs/img/synth_classes.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from synth_preview import _panel, _tile  # scripts/ is on sys.path when run as a script

from crnn.data.images import decode_image
from crnn.synth.corpus import Corpus, load_words
from crnn.synth.fonts import discover_fonts
from crnn.synth.render import Renderer, sample_rng
from crnn.synth.styles import get_style


def class_row(name: str, real: list[tuple[Path, str]], renderer: Renderer, n_synth: int, seed: int) -> np.ndarray:
    """One class: ``n_synth`` synthetic tiles, a gap, then the real tiles."""
    renderer.style = get_style(name)
    syn = [_tile(*renderer.render(sample_rng(seed, 0, i))) for i in range(n_synth)]
    rl = [_tile(decode_image(p.read_bytes(), str(p)), label) for p, label in real]
    left = _panel(syn, n_synth, f"{name}: crnn synth --style {name}")
    right = _panel(rl, max(1, len(rl)), f"{name}: real training crops")
    h = max(left.shape[0], right.shape[0])
    gap = np.full((h, 16, 3), 255, np.uint8)
    gap[:, 7:9] = 128
    fit = [np.vstack([p, np.full((h - p.shape[0], p.shape[1], 3), 255, np.uint8)]) for p in (left, right)]
    return np.hstack([fit[0], gap, fit[1]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/img/synth_classes.png")
    ap.add_argument("--list", default="docs/synth_classes_real.tsv")
    ap.add_argument("--root", default="../shared/data/train")
    ap.add_argument("--synth", type=int, default=5, help="synthetic samples per class")
    ap.add_argument("--seed", type=int, default=424242)
    args = ap.parse_args()
    classes: dict[str, list[tuple[Path, str]]] = {}
    for line in Path(args.list).read_text(encoding="utf-8").splitlines()[3:]:
        cls, rel, label = line.split("\t")
        classes.setdefault(cls, []).append((Path(args.root) / rel, label))
    renderer = Renderer(discover_fonts(), Corpus(load_words()))
    rows = [class_row(c, real, renderer, args.synth, args.seed) for c, real in classes.items()]
    width = max(r.shape[1] for r in rows)
    rows = [np.hstack([r, np.full((r.shape[0], width - r.shape[1], 3), 255, np.uint8)]) for r in rows]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, np.vstack(rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
