"""Carve a validation split from the real training sets in ../shared/data/train.

Writes ``configs/data/real_train.tsv`` and ``configs/data/real_val.tsv`` with paths relative to
``../shared/data/train`` (the images stay there). A sample goes to validation when the SHA-1 of
its ``set/path`` is 0 mod 10 (~10%), so the split is stable and independent of file order.
Nothing under ``../shared/data/eval`` is read.

    python scripts/make_val_split.py [--root ../shared/data/train]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

SETS = ["iiit5k", "ic15", "svt"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="../shared/data/train")
    ap.add_argument("--out", default="configs/data")
    args = ap.parse_args()
    train, val = [], []
    for name in SETS:
        for line in (Path(args.root) / name / "labels.tsv").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            rel, label = line.split("\t", 1)
            path = f"{name}/{rel}"
            digest = int(hashlib.sha1(path.encode()).hexdigest(), 16)
            (val if digest % 10 == 0 else train).append(f"{path}\t{label}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "real_train.tsv").write_text("\n".join(train) + "\n", encoding="utf-8")
    (out / "real_val.tsv").write_text("\n".join(val) + "\n", encoding="utf-8")
    print(f"train {len(train)}, val {len(val)} -> {out}")


if __name__ == "__main__":
    main()
