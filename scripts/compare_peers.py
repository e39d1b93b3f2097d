"""crnn's model vs EasyOCR (``english_g2``) and Tesseract 5 (``--psm 8``) on the same word crops.

All systems read the same images of the four eval sets in ``../shared/data/eval`` and are scored
the same way, by ``crnn.metrics`` under the 36-char protocol of ``shared/data/README.md``
(lower-case, keep 0-9a-z; samples whose filtered label is empty are skipped and counted).

- ``crnn``: ``crnn.Recognizer.from_checkpoint(--checkpoint)`` (default: the bundled model).
- ``tesseract``: the ``tesseract`` CLI (Debian 5.3, ``eng``) with ``--psm 8`` (one word); images are
  passed as list files, one process per chunk, which gives the same text as one call per image.
- ``easyocr`` / ``easyocr-alnum``: EasyOCR's ``english_g2`` recognizer alone (``Reader.recognize``
  on the whole crop as one box, CPU), default character set / ``allowlist`` 0-9a-zA-Z. It runs in
  the separate venv of ``scripts/install_peers.sh`` (EasyOCR needs torchvision), through this same
  file started there with ``--easyocr-worker``.

Peers are slow, so ``--merge SAVED.json`` adds the systems of this run (e.g. ``--systems crnn``) to
saved results, after checking that both runs scored the same images. See docs/peers.md.

    nice -n 10 python scripts/compare_peers.py --systems tesseract,easyocr,easyocr-alnum \\
        --json docs/bench/peers_2026-11-24.json
    python scripts/compare_peers.py --systems crnn --merge docs/bench/peers_2026-11-24.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# name -> label file under the eval folder (the protocol's primary files)
SETS = {"iiit5k": "iiit5k/labels.tsv", "ic13": "ic13/labels_1015.tsv", "ic15": "ic15/labels.tsv",
        "ic03": "ic03/labels.tsv"}
SYSTEMS = ("crnn", "tesseract", "easyocr", "easyocr-alnum")
ALNUM = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
TESS_CHUNK = 500  # images per tesseract process: few start-ups, still some progress output


def read_set(data: Path, label_file: str, limit: int) -> tuple[list[str], list[str], int]:
    """(image paths relative to the set folder, labels, skipped count) of one label file.

    Labels whose 36-char form is empty are skipped. ``limit`` > 0 keeps that many samples, evenly
    spaced over the file so a quick run sees the whole set's mix.
    """
    from crnn.data.labels import read_label_file
    from crnn.metrics import filter_36

    path = data / label_file
    if not path.is_file():
        raise SystemExit(f"label file {path} not found (is ../shared/data there?)")
    rels, labels, skipped = [], [], 0
    for rel, label in read_label_file(path):
        if not filter_36(label):
            skipped += 1
            continue
        rels.append(rel)
        labels.append(label)
    if 0 < limit < len(rels):
        keep = [round(i * len(rels) / limit) for i in range(limit)]
        rels, labels = [rels[i] for i in keep], [labels[i] for i in keep]
    return rels, labels, skipped


def images_digest(rels: list[str], labels: list[str]) -> str:
    """sha1 of the (image, label) list: two runs scored the same samples iff it matches."""
    return hashlib.sha1("\n".join(f"{r}\t{t}" for r, t in zip(rels, labels, strict=True)).encode()).hexdigest()


def crnn_system(checkpoint: str, threads: int) -> tuple[Callable[[list[str]], list[str]], str]:
    """A predictor ``paths -> texts`` for a crnn checkpoint, and its description."""
    from crnn import Recognizer

    # the fixed 3x32x100 of the published numbers (docs/peers.md, crnn eval); Recognizer's default variable
    # width reads this model's wide crops worse (docs/variable_width.md)
    rec = Recognizer.from_checkpoint(checkpoint, num_threads=threads, dynamic_width=False)
    return (lambda paths: [p.text for p in rec(paths)]), f"crnn {checkpoint} ({rec.backend}, fixed width)"


def tesseract_predict(paths: list[str], threads: int) -> list[str]:
    """Tesseract ``--psm 8`` on each image; list-file mode, pages come back separated by form feeds."""
    env = {**os.environ, "OMP_THREAD_LIMIT": str(threads)}
    out: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(0, len(paths), TESS_CHUNK):
            chunk = paths[start : start + TESS_CHUNK]
            if any("\n" in p for p in chunk):
                raise SystemExit(f"image path with a newline cannot go in a tesseract list: {chunk}")
            lst, base = Path(tmp) / "list.txt", Path(tmp) / "out"
            lst.write_text("\n".join(chunk) + "\n", encoding="utf-8")
            r = subprocess.run(["tesseract", str(lst), str(base), "--psm", "8"], env=env,
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"tesseract failed on {chunk[0]}..: {r.stderr[-2000:]}")
            # the text renderer writes a form feed before every page but the first, empty pages too
            pages = (base.with_suffix(".txt")).read_text(encoding="utf-8").split("\f")
            if len(pages) != len(chunk):
                raise SystemExit(f"tesseract returned {len(pages)} pages for {len(chunk)} images from {chunk[0]}")
            out += [" ".join(p.split()) for p in pages]
    return out


def tesseract_version() -> str:
    r = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("tesseract not found: run scripts/install_peers.sh")
    return (r.stdout or r.stderr).splitlines()[0]


def easyocr_predict(paths: list[str], variants: list[str], threads: int, venv: Path) -> dict[str, list[str]]:
    """Run ``--easyocr-worker`` in the peers venv; ``{variant: texts}`` in input order."""
    py = venv / "bin" / "python"
    if not py.exists():
        raise SystemExit(f"no peers venv at {venv}: run scripts/install_peers.sh")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "paths.json", Path(tmp) / "preds.json"
        src.write_text(json.dumps(paths))
        # EASYOCR_MODULE_PATH: EasyOCR creates folders there at import; keep them out of $HOME
        env = {**os.environ, "EASYOCR_MODULE_PATH": tmp}
        r = subprocess.run([str(py), __file__, "--easyocr-worker", str(src), str(dst), "--threads", str(threads),
                            "--systems", ",".join(variants)], env=env)
        if r.returncode != 0:
            raise SystemExit(f"EasyOCR worker failed (exit {r.returncode})")
        out: dict[str, list[str]] = json.loads(dst.read_text())
    return out


def easyocr_worker(src: str, dst: str, variants: list[str], threads: int) -> None:
    """Inside the peers venv: recognise each crop as one box with english_g2, offline weights."""
    import warnings

    import easyocr
    import torch
    from easyocr_en_models import model_dir

    # its DataLoader asks for pinned memory on CPU; its int8 LSTM uses ops torch now calls deprecated
    warnings.filterwarnings("ignore", message=".*(pin_memory|quantize_per_tensor).*")
    torch.set_num_threads(threads)
    reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=model_dir(), download_enabled=False,
                            detector=False, verbose=False)
    paths = json.loads(Path(src).read_text())
    out: dict[str, list[str]] = {}
    for v in variants:
        allow = ALNUM if v == "easyocr-alnum" else None
        # no box lists: recognize() takes the whole image as one horizontal box
        res = [reader.recognize(p, detail=1, allowlist=allow) for p in paths]
        out[v] = [" ".join(item[1] for item in r) for r in res]
    Path(dst).write_text(json.dumps(out))


def summarize(sets: dict[str, Any], systems: list[str]) -> dict[str, Any]:
    """Mean over sets and total (weighted by count) of acc and 1-NED, for systems scored on every set."""
    summary = {}
    for s in systems:
        rows = [v["results"][s] for v in sets.values() if s in v["results"]]
        if len(rows) < len(SETS):
            continue  # a partial run: no mean over a different mix of sets
        n = sum(r["count"] for r in rows)
        summary[s] = {"mean_acc": sum(r["acc"] for r in rows) / len(rows),
                      "mean_norm_edit_dis": sum(r["norm_edit_dis"] for r in rows) / len(rows),
                      "total_acc": sum(r["acc"] * r["count"] for r in rows) / n,
                      "total_norm_edit_dis": sum(r["norm_edit_dis"] * r["count"] for r in rows) / n,
                      "count": n, "seconds": sum(r["seconds"] for r in rows)}
    return summary


def _cell(row: dict[str, Any] | None, acc: str, ned: str) -> str:
    return f"{100 * row[acc]:7.2f} {100 * row[ned]:8.2f}" if row else f"{'-':>7} {'-':>8}"


def format_table(result: dict[str, Any]) -> str:
    """One row per set (+ mean, total), per system 'acc% 1-NED%'; '-' where a system was not run."""
    systems = list(result["systems"])
    head = f"{'set':<8}{'count':>6}{'skip':>5} | " + " | ".join(f"{s:^16}" for s in systems)
    lines = [head, f"{'':<19} | " + " | ".join(f"{'acc%':>7} {'1-NED%':>8}" for _ in systems), "-" * len(head)]
    for name, v in result["sets"].items():
        cells = [_cell(v["results"].get(s), "acc", "norm_edit_dis") for s in systems]
        lines.append(f"{name:<8}{v['count']:>6}{v['skipped']:>5} | " + " | ".join(cells))
    lines.append("-" * len(head))
    summ = result["summary"]
    total = sum(v["count"] for v in result["sets"].values())
    for key in ("mean", "total"):
        cells = [_cell(summ.get(s), f"{key}_acc", f"{key}_norm_edit_dis") for s in systems]
        lines.append(f"{key:<8}{total if key == 'total' else '':>6}{'':>5} | " + " | ".join(cells))
    per_img = [f"{summ[s]['seconds'] / summ[s]['count']:16.4f}" if s in summ else f"{'-':>16}" for s in systems]
    lines.append(f"{'sec/img':<19} | " + " | ".join(per_img))
    return "\n".join(lines)


def save(result: dict[str, Any], out: str) -> None:
    """Write the results JSON (atomically: a long run saves after every set)."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{out}.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out)


def run(args: argparse.Namespace, out: str | None) -> dict[str, Any]:
    """Predict with each requested system on each set, score, merge into saved results, save per set."""
    from crnn.metrics import RecMetric, make_normalizer

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    bad = [s for s in systems if s not in SYSTEMS]
    if bad or not systems:
        raise SystemExit(f"unknown systems {bad}: choose from {', '.join(SYSTEMS)}")
    set_names = [s.strip() for s in args.sets.split(",") if s.strip()]
    bad = [s for s in set_names if s not in SETS]
    if bad or not set_names:
        raise SystemExit(f"unknown sets {bad}: choose from {', '.join(SETS)}")
    data = Path(args.data)
    if args.merge:
        result = json.loads(Path(args.merge).read_text())
        if result["limit"] != args.limit:
            raise SystemExit(f"{args.merge} used --limit {result['limit']}, this run {args.limit}")
    else:
        result = {"protocol": "36-char: lower-case, keep [0-9a-z], skip empty filtered labels",
                  "data": str(data), "limit": args.limit, "threads": args.threads, "systems": {}, "sets": {}}
    result["date"] = time.strftime("%Y-%m-%d %H:%M")
    predictors: dict[str, Callable[[list[str]], dict[str, list[str]]]] = {}
    desc: dict[str, str] = {}
    if "crnn" in systems:
        f, desc["crnn"] = crnn_system(args.checkpoint, args.threads)
        predictors["crnn"] = lambda paths: {"crnn": f(paths)}
    if "tesseract" in systems:
        desc["tesseract"] = f"{tesseract_version()}, eng, --psm 8, CLI list mode"
        predictors["tesseract"] = lambda paths: {"tesseract": tesseract_predict(paths, args.threads)}
    easy = [s for s in systems if s.startswith("easyocr")]
    for s in easy:
        allow = "allowlist 0-9a-zA-Z" if s == "easyocr-alnum" else "default charset"
        desc[s] = f"EasyOCR 1.7.2 english_g2 recognizer only, CPU (its default dynamic int8), {allow}"
    if easy:
        predictors["easyocr"] = lambda paths: easyocr_predict(paths, easy, args.threads, Path(args.peers_venv))
    result["systems"] = {s: desc.get(s) or result["systems"][s] for s in SYSTEMS
                         if s in result["systems"] or s in systems}
    norm = make_normalizer(True, False, None)
    for name in set_names:
        label_file = SETS[name]
        rels, labels, skipped = read_set(data, label_file, args.limit)
        digest = images_digest(rels, labels)
        entry = result["sets"].setdefault(name, {"label_file": label_file, "count": len(rels), "skipped": skipped,
                                                 "digest": digest, "results": {}, "predictions": {}})
        if entry["digest"] != digest:
            raise SystemExit(f"{name}: images/labels differ from the merged file's ({label_file} changed?)")
        paths = [str(data / Path(label_file).parent / r) for r in rels]
        for predict in predictors.values():
            t0 = time.perf_counter()
            preds = predict(paths)
            secs = (time.perf_counter() - t0) / len(preds)  # the set's wall time, per system of this call
            for s, texts in preds.items():
                metric = RecMetric(norm)
                metric.update(texts, labels)
                entry["results"][s] = {**metric.compute(), "seconds": secs}
                entry["predictions"][s] = texts
                print(f"{name:<8} {s:<14} acc {100 * entry['results'][s]['acc']:6.2f}  n {len(texts)}  "
                      f"{secs:7.1f} s", file=sys.stderr, flush=True)
        result["sets"] = {k: result["sets"][k] for k in SETS if k in result["sets"]}
        result["summary"] = summarize(result["sets"], list(result["systems"]))
        if out:
            save(result, out)
    return result


def main() -> None:
    import crnn

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=crnn.DEFAULT_MODEL, help="crnn .pt checkpoint or .onnx model")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}")
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated sets, run in this order")
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/eval"), help="folder of the eval sets")
    ap.add_argument("--limit", type=int, default=0, help="samples per set, evenly spaced (0: all)")
    ap.add_argument("--threads", type=int, default=1, help="threads per system (the machine is shared)")
    ap.add_argument("--peers-venv", default=str(ROOT / ".peers-venv"), help="venv with easyocr (install_peers.sh)")
    ap.add_argument("--merge", help="saved results JSON to add this run's systems to")
    ap.add_argument("--json", help="write results here (default with --merge: the merged file)")
    args = ap.parse_args()
    out = args.json or args.merge
    result = run(args, out)
    print(format_table(result))
    if out:
        print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--easyocr-worker":
        w = argparse.ArgumentParser()
        w.add_argument("--easyocr-worker", nargs=2, metavar=("PATHS_JSON", "OUT_JSON"), required=True)
        w.add_argument("--threads", type=int, default=1)
        w.add_argument("--systems", required=True)
        a = w.parse_args()
        src, dst = a.easyocr_worker
        easyocr_worker(src, dst, a.systems.split(","), a.threads)
    else:
        main()
