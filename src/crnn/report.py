"""``crnn eval --report DIR``: one self-contained HTML page about what the model gets wrong.

Per set: accuracy by word length and by aspect ratio, the most frequent symbol confusions, and the
misrecognised images beside label, reading and confidence (most confident mistakes first); for all
sets, the calibration report (reliability diagram). Images are embedded (small JPEG data URLs), so the
page opens anywhere (with ``reliability.png`` beside it). Every text taken from data is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from rapidfuzz.distance import Levenshtein

from crnn.calibration import _atomic, plot_reliability, rejection, reliability
from crnn.data.datasets import RecDataset
from crnn.evaluate import Record

LENGTHS = ((1, 2), (3, 3), (4, 4), (5, 5), (6, 7), (8, 10), (11, 99))
ASPECTS = ((0.0, 1.5), (1.5, 2.5), (2.5, 3.5), (3.5, 5.0), (5.0, 1e9))
MAX_IMAGES = 200  # misrecognised images shown per set
THUMB_H = 40

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f3f3f3}td.n{text-align:right}
img.crop{height:40px;image-rendering:pixelated}.bar{background:#4a7;height:10px;display:inline-block}
code{background:#f6f6f6;padding:0 3px}"""


def confusions(records: Sequence[Record], normalize: Callable[[str], str], top: int = 15) -> list[tuple[str, int]]:
    """Most frequent edits from label to reading over the wrong records: ``a→e``, ``l→∅`` (lost), ``∅→i``."""
    counts: Counter[str] = Counter()
    for r in records:
        if r.right:
            continue
        label, pred = normalize(r.label), normalize(r.prediction)
        for op in Levenshtein.editops(label, pred):
            if op.tag == "replace":
                counts[f"{label[op.src_pos]}→{pred[op.dest_pos]}"] += 1
            elif op.tag == "delete":
                counts[f"{label[op.src_pos]}→∅"] += 1
            else:
                counts[f"∅→{pred[op.dest_pos]}"] += 1
    return counts.most_common(top)


def by_bucket(values: Sequence[float], right: Sequence[bool], buckets: Sequence[tuple[float, float]]
              ) -> list[tuple[tuple[float, float], int, float]]:
    """(bucket, count, accuracy) for each bucket [lo, hi] (inclusive) that has samples."""
    v, r = np.asarray(values, dtype=np.float64), np.asarray(right, dtype=np.float64)
    out = []
    for lo, hi in buckets:
        m = (v >= lo) & (v <= hi) if float(lo).is_integer() and float(hi).is_integer() else (v >= lo) & (v < hi)
        if m.any():
            out.append(((lo, hi), int(m.sum()), float(r[m].mean())))
    return out


def _sources(ds: RecDataset) -> dict[str, tuple[int, int]]:
    return {ds.sources[s].key(i): (s, i) for s, i in ds.index}


def _image_bytes(ds: RecDataset, where: tuple[int, int]) -> bytes:
    s, i = where
    return ds.sources[s].image_bytes(i)


def _thumbnail(data: bytes) -> str:
    """A JPEG data URL of the image scaled to THUMB_H pixels high ("" if it cannot be decoded)."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        return ""
    h, w = img.shape[:2]
    img = cv2.resize(img, (max(1, min(600, round(w * THUMB_H / h))), THUMB_H), interpolation=cv2.INTER_AREA)
    ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])  # ~3 KB a crop
    return "data:image/jpeg;base64," + base64.b64encode(jpg.tobytes()).decode() if ok else ""


def _aspect(data: bytes) -> float:
    try:
        w, h = Image.open(io.BytesIO(data)).size  # header only: no full decode
    except Exception:  # an unreadable image was already counted as skipped by the evaluation
        return float("nan")
    return w / max(h, 1)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(rows_cell for rows_cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _acc_rows(buckets: list[tuple[tuple[float, float], int, float]], fmt: Callable[[float, float], str]
              ) -> list[list[str]]:
    return [[f"<td>{fmt(lo, hi)}</td>", f"<td class=n>{n}</td>",
             f"<td class=n>{100 * acc:.1f}%</td>", f"<td><span class=bar style='width:{int(100 * acc)}px'></span></td>"]
            for (lo, hi), n, acc in buckets]


def set_section(name: str, records: list[Record], ds: RecDataset, normalize: Callable[[str], str]) -> str:
    """The HTML of one set."""
    where = _sources(ds)
    right = [r.right for r in records]
    acc = float(np.mean(right)) if right else 0.0
    lengths = [len(normalize(r.label)) for r in records]
    aspects = [_aspect(_image_bytes(ds, where[r.key])) if r.key in where else float("nan") for r in records]
    parts = [f"<h2 id='{html.escape(name)}'>{html.escape(name)}</h2>",
             f"<p>{len(records)} images, word accuracy <b>{100 * acc:.2f}%</b>, "
             f"{len(records) - sum(right)} misrecognised.</p>",
             "<h3>Accuracy by word length</h3>",
             _table(["length", "images", "accuracy", ""], _acc_rows(by_bucket(lengths, right, LENGTHS),
                    lambda lo, hi: f"{lo:g}" if lo == hi else (f"{lo:g}+" if hi >= 99 else f"{lo:g}-{hi:g}"))),
             "<h3>Accuracy by aspect ratio (width / height)</h3>",
             _table(["aspect", "images", "accuracy", ""], _acc_rows(by_bucket(aspects, right, ASPECTS),
                    lambda lo, hi: f"&ge; {lo:g}" if hi > 1e8 else f"{lo:g}-{hi:g}")),
             "<h3>Most frequent confusions (label → reading)</h3>",
             _table(["edit", "count"], [[f"<td><code>{html.escape(e)}</code></td>", f"<td class=n>{n}</td>"]
                                        for e, n in confusions(records, normalize)])]
    wrong = sorted((r for r in records if not r.right), key=lambda r: -r.confidence)[:MAX_IMAGES]
    rows = []
    for r in wrong:
        url = _thumbnail(_image_bytes(ds, where[r.key])) if r.key in where else ""
        img = f"<img class=crop alt='{html.escape(r.key)}' src='{url}'>" if url else "(unreadable)"
        rows.append([f"<td>{img}</td>", f"<td>{html.escape(r.label)}</td>", f"<td>{html.escape(r.prediction)}</td>",
                     f"<td class=n>{r.confidence:.3f}</td>", f"<td><small>{html.escape(r.key)}</small></td>"])
    parts += [f"<h3>Misrecognised images, most confident first ({len(wrong)} shown)</h3>",
              _table(["image", "label", "reading", "confidence", "file"], rows)]
    return "\n".join(parts)


def write_report(records: dict[str, tuple[list[Record], RecDataset]], normalize: Callable[[str], str],
                 out_dir: str | Path, title: str) -> Path:
    """Write ``index.html`` and ``reliability.png`` in ``out_dir``; returns the HTML file's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    every = [r for recs, _ in records.values() for r in recs]
    cal = {name: reliability([r.confidence for r in recs], [r.right for r in recs])
           for name, (recs, _) in records.items() if recs}
    plot_reliability(cal, out / "reliability.png")
    reject = rejection([r.confidence for r in every], [r.right for r in every]) if every else {}
    summary = _table(["set", "images", "accuracy", "ECE"], [
        [f"<td><a href='#{html.escape(n)}'>{html.escape(n)}</a></td>", f"<td class=n>{len(recs)}</td>",
         f"<td class=n>{100 * np.mean([r.right for r in recs]):.2f}%</td>",
         f"<td class=n>{100 * cal[n]['ece']:.2f}%</td>"]
        for n, (recs, _) in records.items() if recs])
    body = [f"<h1>{html.escape(title)}</h1>", summary, "<h2>Calibration</h2>",
            "<p>Accuracy when the least confident images are rejected: "
            + ", ".join(f"{k}: {100 * v:.2f}%" for k, v in reject.items()) + "</p>",
            "<img alt='reliability diagram' src='reliability.png' width=400>"]
    body += [set_section(name, recs, ds, normalize) for name, (recs, ds) in records.items()]
    page = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    path = out / "index.html"
    _atomic(path, lambda f: f.write(page.encode("utf-8")))
    return path

