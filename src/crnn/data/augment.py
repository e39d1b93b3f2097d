"""Training augmentation equivalent to PaddleOCR's ``RecAug`` (numpy + OpenCV).

Every step draws from the ``np.random.Generator`` it is given, so a sample's augmentation is a pure
function of (seed, epoch, index): resuming or changing the worker count gives the same data.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from crnn.config import RecAugConfig


def _perspective(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # TIA-style geometric distortion: move each corner by up to ~1/4 of the height.
    h, w = img.shape[:2]
    d = 0.25 * h
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    dst = src + rng.uniform(-d, d, size=(4, 2)).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _stretch(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Piecewise horizontal stretch (TIA "stretch"): 3-6 segments, each scaled independently.
    h, w = img.shape[:2]
    segments = int(rng.integers(3, 7))
    cuts = np.linspace(0, w, segments + 1).astype(int)
    parts = []
    for a, b in itertools.pairwise(cuts):
        if b <= a:
            continue
        new_w = max(1, int(round((b - a) * rng.uniform(0.7, 1.3))))
        parts.append(cv2.resize(img[:, a:b], (new_w, h)))
    return np.concatenate(parts, axis=1)


def _crop(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h = img.shape[0]
    top = int(rng.integers(0, 9)) if rng.random() < 0.5 else 0
    bottom = int(rng.integers(0, 9)) if top == 0 else 0
    top, bottom = min(top, h // 4), min(bottom, h // 4)
    return img[top : h - bottom]


def _hsv(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[:, :, 2] *= rng.uniform(0.6, 1.2)
    hsv[:, :, 1] *= rng.uniform(0.6, 1.2)
    return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)


def _jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    s = max(1, int(min(h, w) * 0.01))
    dx, dy = (int(v) for v in rng.integers(-s, s + 1, size=2))
    m = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0.0, rng.uniform(2.0, 12.0), size=img.shape)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def rec_aug(img: np.ndarray, cfg: RecAugConfig, rng: np.random.Generator) -> np.ndarray:
    """Apply PaddleOCR-style ``RecAug`` steps to a (h, w, 3) uint8 image, each with its probability."""
    return rec_aug_tracked(img, cfg, rng)[0]


def rec_aug_tracked(img: np.ndarray, cfg: RecAugConfig, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """``rec_aug``, and whether a step moved the text horizontally (TIA's warps, or a crop that changes
    the resized width): a teacher's frames computed on the original crop no longer line up with such an
    image (``crnn.distill``), while they do after the photometric steps and the 1% jitter."""
    h, w = img.shape[:2]
    big = h >= 20 and w >= 20
    moved = False
    if big and rng.random() < cfg.tia_prob:
        img = _perspective(img, rng) if rng.random() < 0.5 else _stretch(img, rng)
        moved = True
    if big and rng.random() < cfg.crop_prob:
        img = _crop(img, rng)
        moved = moved or img.shape[0] != h
    if rng.random() < cfg.blur_prob:
        img = cv2.GaussianBlur(img, (5, 5), 1)
    if rng.random() < cfg.hsv_aug_prob:
        img = _hsv(img, rng)
    if rng.random() < cfg.jitter_prob:
        img = _jitter(img, rng)
    if rng.random() < cfg.noise_prob:
        img = _noise(img, rng)
    if rng.random() < cfg.reverse_prob:
        img = 255 - img
    return img, moved
