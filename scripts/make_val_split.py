"""Carve a validation split from the real training sets in ../shared/data/train.

Writes ``configs/data/real_train.tsv`` and ``configs/data/real_val.tsv`` with paths relative to
``../shared/data/train`` (the images stay there). A sample goes to validation when the SHA-1 of
its group is 0 mod 10 (~10%), so the split is stable and independent of file order. The group is
the ``set/path`` of the crop, except for IC03, whose crops are cut from scene photos: there it is
the scene, so that no photo has crops on both sides. Crops listed in ``near_test_duplicates.tsv``
(near copies of benchmark test crops) go to neither side. Nothing under ``../shared/data/eval`` is read.

    python scripts/make_val_split.py [--root ../shared/data/train]
"""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

from crnn.data.labels import read_label_file

SETS = ["iiit5k", "ic15", "svt", "ic03"]
# IC03 crops are named <folder>_<photo>_<box>.jpg: the photo is the group.
SCENE = {"ic03": re.compile(r"^(.*)_\d+\.[a-z]+$")}


def near_duplicates(root: Path) -> set[str]:
    """``set/path`` of every training crop that ``near_test_duplicates.tsv`` lists."""
    path = root / "near_test_duplicates.tsv"
    if not path.is_file():
        raise SystemExit(f"make_val_split: {path} not found")
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    return {row.split("\t", 1)[0].removeprefix("train/") for row in rows if row.strip()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="../shared/data/train")
    ap.add_argument("--out", default="configs/data")
    args = ap.parse_args()
    root = Path(args.root)
    dropped = near_duplicates(root)
    train, val, left_out = [], [], 0
    for name in SETS:
        for rel, label in read_label_file(root / name / "labels.tsv"):
            path = f"{name}/{rel}"
            if path in dropped:
                left_out += 1
                continue
            scene = SCENE[name].match(rel) if name in SCENE else None
            group = f"{name}/{scene.group(1)}" if scene else path
            digest = int(hashlib.sha1(group.encode()).hexdigest(), 16)
            (val if digest % 10 == 0 else train).append(f"{path}\t{label}")
    if left_out != len(dropped):
        raise SystemExit(f"make_val_split: {len(dropped) - left_out} listed near duplicates were not found")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "real_train.tsv").write_text("\n".join(train) + "\n", encoding="utf-8")
    (out / "real_val.tsv").write_text("\n".join(val) + "\n", encoding="utf-8")
    print(f"train {len(train)}, val {len(val)}, near test duplicates left out {left_out} -> {out}")


if __name__ == "__main__":
    main()
