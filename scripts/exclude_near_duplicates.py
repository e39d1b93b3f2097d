"""Drop the training crops that nearly duplicate a test image from a label file.

``../shared/data/train/near_test_duplicates.tsv`` lists training crops (``train/<set>/<path>``) that
are near-copies of benchmark test images; training on them would inflate benchmark accuracy. This
writes ``configs/data/real_train_dedup.tsv``: ``configs/data/real_train.tsv`` without them.
``--exclude-sets svt`` also drops whole sets (SVT's labels are upper-cased: useless for a cased charset).

    python scripts/exclude_near_duplicates.py [--labels configs/data/real_train.tsv]
        [--duplicates ../shared/data/train/near_test_duplicates.tsv] [--out configs/data/real_train_dedup.tsv]
    python scripts/exclude_near_duplicates.py --exclude-sets svt --out configs/data/real_train_cased.tsv
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", default="configs/data/real_train.tsv", help="paths relative to ../shared/data/train")
    ap.add_argument("--duplicates", default="../shared/data/train/near_test_duplicates.tsv")
    ap.add_argument("--out", default="configs/data/real_train_dedup.tsv")
    ap.add_argument("--exclude-sets", nargs="*", default=[], help="also drop every line of these sets")
    args = ap.parse_args()
    with open(args.duplicates, encoding="utf-8", newline="") as f:
        dups = {row["train_image"].removeprefix("train/") for row in csv.DictReader(f, delimiter="\t")}
    lines = [ln for ln in Path(args.labels).read_text(encoding="utf-8").splitlines() if ln.strip()]
    kept = [ln for ln in lines if ln.split("\t", 1)[0] not in dups and ln.split("/", 1)[0] not in args.exclude_sets]
    Path(args.out).write_text("\n".join(kept) + "\n", encoding="utf-8")
    print(f"{args.labels}: {len(lines)} lines, dropped {len(lines) - len(kept)} (near-test duplicates"
          f"{' and sets ' + ', '.join(args.exclude_sets) if args.exclude_sets else ''}) -> {args.out}")


if __name__ == "__main__":
    main()
