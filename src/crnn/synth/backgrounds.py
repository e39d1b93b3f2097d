"""Photographic backgrounds: random crops of real photos and textures behind a word.

The photos come from Debian wallpaper and texture packages that ``scripts/install_backgrounds.sh``
installs and links into :data:`BACKGROUND_DIR` (picked by eye: no people, no text). A background is
a crop of one photo at a random scale, blurred (out of focus behind a sign's letters) and
colour-shifted; the text colour is then chosen against the luminance of the pixels *under the
text*, so a word over a busy photo stays legible (:func:`contrast_text_color`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from crnn.synth import effects

log = logging.getLogger(__name__)

BACKGROUND_DIR = "/usr/local/share/crnn/backgrounds"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
MAX_SIDE = 1024  # photos are kept this small in memory: a crop behind a word rarely needs more


def load_backgrounds(root: str | os.PathLike[str] = BACKGROUND_DIR, max_side: int = MAX_SIDE) -> list[np.ndarray]:
    """Every image under ``root`` (sorted by name), as BGR uint8, longest side at most ``max_side``.

    Raises:
        FileNotFoundError: ``root`` holds no readable image; the message names the install script.
    """
    root = Path(root)
    files = sorted(p for p in root.glob("*") if p.suffix.lower() in IMAGE_EXTENSIONS) if root.is_dir() else []
    photos = []
    for path in files:
        img = _read_small(path, max_side)
        if img is None:
            raise FileNotFoundError(f"{path}: not a readable image (re-run scripts/install_backgrounds.sh)")
        photos.append(img)
    if not photos:
        raise FileNotFoundError(
            f"no background photos in {root}; install them with scripts/install_backgrounds.sh (as root)"
        )
    return photos


def _read_small(path: Path, max_side: int) -> np.ndarray | None:
    """Decode at a reduced scale when the format allows (JPEG), then shrink to ``max_side``."""
    data = np.fromfile(str(path), np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        return None
    s = max_side / max(img.shape[:2])
    if s < 1:
        img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def photo_background(h: int, w: int, photos: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A (h, w, 3) float32 crop of a random photo: random scale, flip, blur and colour shift."""
    photo = photos[int(rng.integers(len(photos)))]
    ph, pw = photo.shape[:2]
    # Scale: how many photo pixels one output pixel covers. Below 1 the photo is magnified
    # (smooth, out of focus), above 1 it is shrunk (fine grain such as grass or gravel).
    zoom = float(np.exp(rng.uniform(np.log(0.3), np.log(2.5))))
    cw, ch = w * zoom, h * zoom
    fit = min(1.0, pw / cw, ph / ch)  # the crop must fit inside the photo
    cw, ch = max(2, int(cw * fit)), max(2, int(ch * fit))
    x0 = int(rng.integers(0, pw - cw + 1))
    y0 = int(rng.integers(0, ph - ch + 1))
    crop = photo[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    interp = cv2.INTER_AREA if cw > w else cv2.INTER_LINEAR
    img: np.ndarray = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=interp).astype(np.float32)
    if rng.random() < 0.5:  # the background is out of focus behind the sign or the letters
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 0.08 * h + 1.0))
    # Colour shift: white balance, brightness and lower texture contrast (a photo's full contrast
    # behind letters is rarer than a calm one).
    img = img * rng.uniform(0.8, 1.2, size=3).astype(np.float32)
    mean = img.mean(axis=(0, 1), keepdims=True)
    img = mean * rng.uniform(0.6, 1.3) + (img - mean) * rng.uniform(0.4, 1.1)
    if rng.random() < 0.3:  # desaturate: concrete, asphalt, faded paint
        grey = img.mean(axis=2, keepdims=True)
        img = grey + (img - grey) * rng.uniform(0.0, 0.6)
    return np.clip(img, 0, 255)


def _luma(img: np.ndarray) -> np.ndarray:
    """(H, W) luminance in [0, 1] of a BGR float image (same weights as :func:`effects.luminance`)."""
    return (img[..., 0] * 0.114 + img[..., 1] * 0.587 + img[..., 2] * 0.299) / 255.0


def contrast_text_color(
    img: np.ndarray, fill: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, effects.Color, effects.Color]:
    """Choose a text colour that stands out from the background *under the text*.

    ``img`` is the (H, W, 3) float background, ``fill`` the (H, W) text coverage in [0, 1]. The
    luminance of the background pixels the text covers is measured (5th and 95th percentiles);
    the text goes darker than the darkest of them or lighter than the lightest by a random margin
    (0.25-0.5, sometimes 0.15 for faded signs). When neither fits (a busy photo spanning black to
    white), the background is washed towards white or black, as a sign panel or haze would, until
    it does. Returns (background, text colour, mean background colour under the text).
    """
    under = fill > 0.3
    lum = _luma(img)
    vals = lum[under] if under.any() else lum.ravel()
    lo, hi = np.percentile(vals, [5, 95])
    margin = rng.uniform(0.25, 0.5) if rng.random() < 0.9 else rng.uniform(0.15, 0.25)
    dark = rng.random() < (0.75 if vals.mean() > 0.5 else 0.25)  # mostly the side with more room
    if dark and lo < margin + 0.02:
        # wash towards white: luminance l -> t + (1 - t) l puts the darkest pixel at >= t
        t = float(np.clip((margin + 0.05 - lo) / max(1.0 - lo, 1e-3), 0.0, 0.9))
        img = img + (255.0 - img) * t
        lo = t + (1 - t) * lo
    elif not dark and hi > 1.0 - margin - 0.02:
        t = float(np.clip((hi - (1.0 - margin - 0.05)) / max(hi, 1e-3), 0.0, 0.9))
        img = img * (1 - t)
        hi = hi * (1 - t)
    target = max(0.0, lo - margin) * rng.uniform(0.0, 1.0) if dark else hi + margin + (1 - hi - margin) * rng.random()
    fg = _with_luminance(effects.random_color(rng), float(np.clip(target, 0.0, 1.0)))
    bg_col = img[under].mean(axis=0) if under.any() else img.reshape(-1, 3).mean(axis=0)
    return img, fg, bg_col.astype(np.float32)


def _with_luminance(c: effects.Color, target: float) -> effects.Color:
    """``c`` mixed with black or white (hue kept) until its luminance is ``target``."""
    lum = effects.luminance(c)
    if lum > target:  # darken: scale towards black
        return (c * (target / max(lum, 1e-6))).astype(np.float32)
    # lighten: mix with white
    a = (target - lum) / max(1.0 - lum, 1e-6)
    return (c + (255.0 - c) * a).astype(np.float32)


def text_contrast(img: np.ndarray, fill: np.ndarray) -> float:
    """Luminance difference (0-1) between the text's pixels and the background ring around them.

    Median over the pixels with coverage > 0.7 against the median of a 3-pixel ring outside the
    text: a check that words stay legible (tests), not used for rendering.
    """
    text = fill > 0.7
    ring = (cv2.dilate((fill > 0.05).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0) & (fill < 0.05)
    lum = _luma(img.astype(np.float32))
    if not text.any() or not ring.any():
        return 0.0
    return float(abs(np.median(lum[text]) - np.median(lum[ring])))
