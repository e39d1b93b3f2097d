"""Where a crnn model and the distillation teacher put each symbol's spike, frame by frame.

For every crop of a label file that both read right (greedy, 36-char protocol), pairs the i-th
emitted symbol of each (the first frame of its run) and counts teacher frame - model frame. Frame-wise
distillation (crnn.distill) asks the model to match the teacher frame by frame, so an offset here is
what that term pulls on. Prints the histogram; --json writes it.

    python scripts/distill_alignment.py --data ../shared/data/train --labels configs/data/real_val.tsv \
        --json docs/bench/distill_alignment_bundled.json
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np

from crnn import Recognizer
from crnn.charset import Charset
from crnn.data.images import decode_image
from crnn.data.labels import read_label_file
from crnn.data.preprocess import Preprocess
from crnn.distill.teacher import DEFAULT_TEACHER, fold_matrix, load_teacher
from crnn.threads import cpu_summary


def spikes(log_probs: np.ndarray) -> list[tuple[int, int]]:
    """(frame, class) of each emitted symbol of one (T, C) row: the first frame of each non-blank run."""
    out, prev = [], 0
    for i, c in enumerate(log_probs.argmax(-1)):
        if c != 0 and c != prev:
            out.append((i, int(c)))
        prev = int(c)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder the label file's paths are relative to")
    ap.add_argument("--labels", required=True, help="label file (path<TAB>label)")
    ap.add_argument("--model", default="src/crnn/assets/crnn_mv3_en.pt")
    ap.add_argument("--teacher", default=DEFAULT_TEACHER)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    cs, spec = Charset.from_config(None), Preprocess()
    items = read_label_file(args.labels)
    images = [decode_image((Path(args.data) / p).read_bytes(), p) for p, _ in items]
    teacher = load_teacher(args.teacher, args.threads)
    fold = fold_matrix(teacher.chars, cs)
    rec = Recognizer(args.model, num_threads=args.threads)
    frames = rec.run(spec.batch(images[:1], False)).shape[1]  # type: ignore[attr-defined]
    offsets: collections.Counter[int] = collections.Counter()
    both = 0
    for b in range(0, len(images), 64):
        chunk = images[b:b + 64]
        t = teacher.folded_log_probs(chunk, spec, frames, fold)
        s = rec.run(spec.batch(chunk, False))  # type: ignore[attr-defined]
        for j in range(len(chunk)):
            ts, ss = spikes(t[j]), spikes(s[j])
            want = cs.encode(items[b + j][1])
            if want and [c for _, c in ts] == [c for _, c in ss] == want:
                both += 1
                offsets.update(ti - si for (ti, _), (si, _) in zip(ts, ss, strict=True))
    n = sum(offsets.values())
    same = offsets[0] / n
    near = sum(v for k, v in offsets.items() if abs(k) <= 1) / n
    print(f"CPU: {cpu_summary()}")
    print(f"{both} of {len(images)} crops read right by both; {n} symbols")
    print(f"same frame {100 * same:.1f}%, within one frame {100 * near:.1f}%, "
          f"mean teacher - model {sum(k * v for k, v in offsets.items()) / n:+.2f} frames")
    print("histogram (teacher frame - model frame: symbols):", dict(sorted(offsets.items())))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": "python scripts/distill_alignment.py " + " ".join(
                f"--{k} {v}" for k, v in vars(args).items() if v is not None and k != "json"),
            "model": args.model, "teacher": teacher.path.name, "labels": args.labels, "crops": len(images),
            "both_right": both, "symbols": n, "same_frame": round(same, 4), "within_one": round(near, 4),
            "histogram": {str(k): v for k, v in sorted(offsets.items())}}, indent=1) + "\n")


if __name__ == "__main__":
    main()
