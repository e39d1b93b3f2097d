"""``--style realwarp``: real training crops bent along arcs, tilted in perspective or rotated.

The rendered styles draw the geometry of CUTE80/SVT-Perspective with fonts; here the texture,
lighting and letter shapes stay real and only the geometry is new. Each sample picks one crop of
the label file (``configs/data/real_train.tsv`` rows only: the validation split and the crops in
``near_test_duplicates.tsv`` are refused) and applies one warp:

- arc (35 %): along a circle spanning 90-180 degrees (at most 1.43 radians per unit of the crop's
  aspect ratio: a crop twice as wide as tall reaches 164 degrees), convex or concave; letters turn
  with the tangent (:func:`crnn.synth.render._arc`);
- perspective (25 %): one end of the word shrinks, the baseline slants (a sign seen from the side);
- rotation (25 %): 20-60 degrees either way;
- thin-plate spline (15 %): the top and bottom edges follow smooth random curves (wavy labels).

The whole crop is kept (no letter is cut), so the label is the label file's text, unchanged; the
area the warp uncovers is filled with the colour of the crop's edge. Deterministic like the
rendered styles: the sample's ``numpy.random.Generator`` picks the crop and the warp.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from crnn.charset import Charset
from crnn.data.images import decode_image
from crnn.data.labels import read_label_file
from crnn.synth.render import _arc
from crnn.synth.styles import Style

log = logging.getLogger(__name__)

NEAR_DUPLICATES = "near_test_duplicates.tsv"  # in the real root (../shared/data/train)
VAL_FILE = "real_val.tsv"  # beside the label file (configs/data/)
ARC_SPAN = (90.0, 180.0)
ROTATE = (20.0, 60.0)
MAX_HEIGHT = 160  # larger results are shrunk: the training resize goes to 32 px anyway


def load_real_crops(
    label_file: str | os.PathLike[str], root: str | os.PathLike[str], val_file: str | os.PathLike[str] | None = None
) -> list[tuple[str, bytes, str]]:
    """(relative path, encoded bytes, label) of every usable row of ``label_file``.

    Paths are relative to ``root``. Dropped, with a logged count: rows listed in
    ``root/near_test_duplicates.tsv`` (required), rows of the validation file (``val_file``, by
    default ``real_val.tsv`` beside ``label_file`` when it exists) and labels with nothing left
    after the 36-symbol filter (lower-case, keep ``0-9a-z``) that training applies.

    Raises:
        FileNotFoundError: the label file, the near-duplicate list or an image is missing.
        ValueError: no usable row is left.
    """
    label_file, root = Path(label_file), Path(root)
    if not label_file.is_file():
        raise FileNotFoundError(f"{label_file}: label file not found")
    dup_file = root / NEAR_DUPLICATES
    if not dup_file.is_file():
        raise FileNotFoundError(f"{dup_file}: near-duplicate list not found (is {root} the real train root?)")
    with open(dup_file, encoding="utf-8") as f:
        # listed as train/<set>/<path>, relative to the folder above the train root
        dups = {row["train_image"].split("/", 1)[1] for row in csv.DictReader(f, delimiter="\t")}
    val_path = Path(val_file) if val_file is not None else label_file.parent / VAL_FILE
    val = {rel for rel, _ in read_label_file(val_path)} if val_path.is_file() and val_path != label_file else set()
    charset = Charset.from_config(None)
    rows = read_label_file(label_file)
    keep = [(rel, lab) for rel, lab in rows if rel not in dups and rel not in val and charset.normalize(lab)]
    log.info("%s: %d crops to warp (%d near-test duplicates, %d validation, %d empty labels dropped)",
             label_file, len(keep), sum(r in dups for r, _ in rows), sum(r in val for r, _ in rows),
             sum(not charset.normalize(lab) for _, lab in rows))
    if not keep:
        raise ValueError(f"{label_file}: no usable crop left to warp")
    out = []
    for rel, lab in keep:
        path = root / rel
        try:
            out.append((rel, path.read_bytes(), lab))
        except OSError:
            raise FileNotFoundError(f"{path}: image of {label_file} not readable") from None
    return out


def _backdrop(img: np.ndarray) -> np.ndarray:
    """Colour (3,) of the crop's outer frame: what surrounds the word in the photo."""
    frame = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    return np.median(frame, axis=0).astype(np.float32)


def _with_alpha(img: np.ndarray) -> np.ndarray:
    """(H, W, 4) float32: BGR and a coverage channel, so warps can tell the crop from empty space."""
    return np.dstack([img.astype(np.float32), np.full(img.shape[:2], 255.0, np.float32)])


def _flatten(warped: np.ndarray, backdrop: np.ndarray) -> np.ndarray:
    """Composite a warped (H, W, 4) image over its backdrop colour; float32 BGR.

    The crop's edge is softened: a hard seam against the flat fill would be the sharpest edge
    of the image, which no real crop has.
    """
    cover = warped[..., 3] / 255.0
    # remap blended the crop's colours with the empty (black) space at its edge: un-premultiply
    rgb = warped[..., :3] / np.maximum(cover, 1e-3)[..., None]
    sigma = 0.5 + 0.01 * min(warped.shape[:2])
    # fade inwards only: outside the crop there is no colour to fade into
    a = np.minimum(cover, cv2.GaussianBlur(cover, (0, 0), sigma))[..., None]
    return rgb * a + backdrop * (1.0 - a)


def _warp_corners(img4: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Perspective warp mapping the image's corners to ``dst`` (4, 2); the output is their bounding box."""
    h, w = img4.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = dst - dst.min(axis=0)
    out_w, out_h = int(np.ceil(dst[:, 0].max())) + 1, int(np.ceil(dst[:, 1].max())) + 1
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    return cv2.warpPerspective(img4, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def warp_perspective(img4: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A sign seen from the side: one end 40-85 % as tall as the other, slanted, slightly jittered."""
    h, w = img4.shape[:2]
    s = rng.uniform(0.4, 0.85)
    slant = rng.uniform(-0.3, 0.3) * h
    near = np.array([[0, 0], [0, h]], np.float32)
    far = np.array([[w * rng.uniform(0.75, 1.0), h * (1 - s) / 2 + slant], [0, h * (1 + s) / 2 + slant]], np.float32)
    far[1, 0] = far[0, 0]
    dst = np.array([near[0], far[0], far[1], near[1]], np.float32)
    if rng.random() < 0.5:  # the far end on the left instead
        dst = np.array([[w - dst[1, 0], dst[1, 1]], [w, 0], [w, h], [w - dst[2, 0], dst[2, 1]]], np.float32)
    dst += rng.uniform(-0.08, 0.08, size=(4, 2)).astype(np.float32) * h
    return _warp_corners(img4, dst)


def warp_rotate(img4: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotation by 20-60 degrees either way; the output is the rotated crop's bounding box."""
    h, w = img4.shape[:2]
    t = np.deg2rad(rng.uniform(*ROTATE) * (1 if rng.random() < 0.5 else -1))
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]], np.float32)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    return _warp_corners(img4, src @ rot.T)


def _tps_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """U(r) = r^2 log r^2 between the rows of ``a`` (N, 2) and ``b`` (M, 2): (N, M)."""
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
    return np.where(d2 > 0, d2 * np.log(np.maximum(d2, 1e-12)), 0.0)


def tps_map(src: np.ndarray, dst: np.ndarray, out_w: int, out_h: int, step: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Thin-plate spline remap tables taking output pixels near ``dst`` (N, 2) back to ``src`` (N, 2).

    Solved on the control points, evaluated on a grid every ``step`` pixels and upsampled: the
    spline is smooth, and the full-size evaluation would cost N times the pixel count.
    """
    n = len(dst)
    p = np.hstack([np.ones((n, 1)), dst])  # (N, 3)
    lhs = np.zeros((n + 3, n + 3))
    lhs[:n, :n] = _tps_kernel(dst, dst)
    lhs[:n, n:] = p
    lhs[n:, :n] = p.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = src
    coef = np.linalg.solve(lhs, rhs)  # (N + 3, 2): kernel weights, then the affine part
    gx = np.arange(0, out_w + step, step, dtype=np.float64)
    gy = np.arange(0, out_h + step, step, dtype=np.float64)
    grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)  # (G, 2) as (x, y)
    val = _tps_kernel(grid, dst) @ coef[:n] + np.hstack([np.ones((len(grid), 1)), grid]) @ coef[n:]
    val = val.reshape(len(gy), len(gx), 2).astype(np.float32)
    # Bilinear upsampling with node k at pixel k*step exactly (cv2.resize would align pixel
    # centres instead): remap samples the node table at fractional node coordinates.
    fx = np.broadcast_to(np.arange(out_w, dtype=np.float32)[None, :] / step, (out_h, out_w))
    fy = np.broadcast_to(np.arange(out_h, dtype=np.float32)[:, None] / step, (out_h, out_w))
    big = cv2.remap(val, np.ascontiguousarray(fx), np.ascontiguousarray(fy), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(big[..., 0]), np.ascontiguousarray(big[..., 1])


def warp_tps(img4: np.ndarray, rng: np.random.Generator, k: int = 6) -> np.ndarray:
    """Bend the crop with a thin-plate spline: top and bottom edges follow one smooth random curve."""
    h, w = img4.shape[:2]
    xs = np.linspace(0, w, k)
    amp = rng.uniform(0.15, 0.4) * h
    phase, cycles = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5)
    dy = amp * np.sin(2 * np.pi * cycles * xs / w + phase)
    thick = 1 + rng.uniform(-0.15, 0.15, size=k) * (rng.random() < 0.5)  # letters grow/shrink a little
    src = np.concatenate([np.stack([xs, np.zeros(k)], 1), np.stack([xs, np.full(k, float(h))], 1)])
    mid = h / 2 + dy
    top, bot = mid - thick * h / 2, mid + thick * h / 2
    dst = np.concatenate([np.stack([xs, top], 1), np.stack([xs, bot], 1)])
    dst[:, 1] -= dst[:, 1].min()
    out_h = int(np.ceil(dst[:, 1].max())) + 1
    map_x, map_y = tps_map(src, dst, w, out_h)
    return cv2.remap(img4, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def warp_crop(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One random warp of a BGR uint8 crop; returns (BGR uint8 image, name of the warp)."""
    backdrop = _backdrop(img)
    img4 = _with_alpha(img)
    r = rng.random()
    if r < 0.35:
        # A real crop has margins above and below the letters, so the circle may be tighter than
        # for a rendered canvas: radius 0.7 crop heights lets a median crop (aspect 2.2) span 180°.
        out, kind = _arc(img4, rng, ARC_SPAN, min_radius=0.7), "arc"
    elif r < 0.60:
        out, kind = warp_perspective(img4, rng), "perspective"
    elif r < 0.85:
        out, kind = warp_rotate(img4, rng), "rotate"
    else:
        out, kind = warp_tps(img4, rng), "tps"
    flat = _flatten(out, backdrop)
    if flat.shape[0] > MAX_HEIGHT:
        s = MAX_HEIGHT / flat.shape[0]
        flat = cv2.resize(flat, (max(4, round(flat.shape[1] * s)), MAX_HEIGHT), interpolation=cv2.INTER_AREA)
    return np.clip(flat, 0, 255).astype(np.uint8), kind


class RealWarper:
    """Same interface as :class:`crnn.synth.render.Renderer`: ``render(rng) -> (image, label)``."""

    def __init__(self, crops: list[tuple[str, bytes, str]], style: Style):
        if not crops:
            raise ValueError("RealWarper needs at least one crop")
        self.crops = crops
        self.style = style

    def render(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """One warped crop and its label (the label file's text)."""
        rel, data, label = self.crops[int(rng.integers(len(self.crops)))]
        img, _ = warp_crop(decode_image(data, rel), rng)
        return img, label
