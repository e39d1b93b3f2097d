"""The preprocessing functions behind ``crnn.data.preprocess.Preprocess`` (numpy + OpenCV only).

Images are decoded once, in ``crnn.data.images``. Everything that builds model inputs (training,
evaluation, ``Recognizer``, the service) does so through a ``Preprocess`` spec, which calls
``resize_norm_batch``; ``resize_norm`` is the per-image reference it is tested against.

``resize_norm`` reproduces PaddleOCR's ``RecResizeImg`` / ``resize_norm_img`` exactly: the image
keeps PaddleOCR's channel order (BGR by default), is resized with OpenCV bilinear to height H and
width ``min(W, ceil(H * w / h))`` (so images wider than W/H are squashed), scaled to [-1, 1] and
left-aligned in a zero tensor: the right padding is 0 after normalisation (mid-grey).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np


def resized_width(h: int, w: int, image_h: int, image_w: int) -> int:
    """Width PaddleOCR resizes an (h, w) image to, for target height ``image_h`` and width cap ``image_w``."""
    ratio = w / float(h)
    return min(image_w, int(math.ceil(image_h * ratio)))


def resize_norm(img: np.ndarray, image_shape: Sequence[int], padding: bool = True) -> np.ndarray:
    """PaddleOCR's ``resize_norm_img``.

    Args:
        img: (h, w, 3) uint8, in the channel order the model was trained with (BGR for PaddleOCR).
        image_shape: (C, H, W) of the output.
        padding: keep the aspect ratio and right-pad (True), or stretch to exactly W (False).

    Returns:
        (C, H, W) float32 in [-1, 1], zero (mid-grey) right padding.
    """
    c, image_h, image_w = image_shape
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"image of size {w}x{h} cannot be resized")
    new_w = resized_width(h, w, image_h, image_w) if padding else image_w
    resized = cv2.resize(img, (new_w, image_h)).astype(np.float32)
    if c == 1:
        resized = resized[:, :, None] if resized.ndim == 2 else resized[:, :, :1]
    # (H, w, C) -> (C, H, w), then [0, 255] -> [-1, 1]
    chw = resized.transpose(2, 0, 1) / 255.0
    chw = (chw - 0.5) / 0.5
    out = np.zeros((c, image_h, image_w), dtype=np.float32)
    out[:, :, :new_w] = chw
    return out


@lru_cache(maxsize=8)
def norm_lut(scale: float = 1.0 / 255.0, mean: float = 0.5, std: float = 0.5) -> np.ndarray:
    """The uint8 -> float32 normalisation (v * scale - mean) / std as a (256,) table.

    Computed as float32 (v / (1 / scale) - mean) / std: for the default scale 1/255 these are
    resize_norm's float32 operations (v / 255.0), so the values are bit-identical (multiplying by
    float32(1/255) would differ in the last bit for 111 of the 256 values).
    """
    lut = np.arange(256, dtype=np.float32) / np.float32(1.0 / scale)
    lut = (lut - np.float32(mean)) / np.float32(std)
    lut.flags.writeable = False  # shared by every caller through the cache
    return lut


def resize_norm_batch(images: Sequence[np.ndarray], image_shape: Sequence[int], img_mode: str = "BGR",
                      padding: bool = True, lut: np.ndarray | None = None) -> np.ndarray:
    """A batch of BGR images -> (B, C, H, W) float32, equal bit for bit to stacking ``resize_norm``.

    The fast path both inference back ends use: each image is resized by OpenCV straight into one
    preallocated uint8 (B, H, W, 3) buffer, then the whole batch is normalised, transposed to CHW and
    put in the model's channel order by one table lookup (no per-image float64/float32 temporaries).

    Args:
        images: (h, w, 3) uint8 BGR images.
        image_shape: (C, H, W) of each output image.
        img_mode: the model's channel order, "BGR" or "RGB".
        padding: as in ``resize_norm``.
        lut: the normalisation table (``norm_lut``); None: resize_norm's, ``norm_lut()``.
    """
    c, image_h, image_w = (int(v) for v in image_shape)
    buf = np.empty((len(images), image_h, image_w, 3), dtype=np.uint8)
    widths = []
    for i, img in enumerate(images):
        h, w = img.shape[:2]
        if h == 0 or w == 0:
            raise ValueError(f"image of size {w}x{h} cannot be resized")
        new_w = resized_width(h, w, image_h, image_w) if padding else image_w
        cv2.resize(img, (new_w, image_h), dst=buf[i, :, :new_w])  # a view: OpenCV writes in place
        widths.append(new_w)
    chw = buf.transpose(0, 3, 1, 2)  # (B, 3, H, W) view
    if img_mode == "RGB":
        chw = chw[:, ::-1]
    if c == 1:
        chw = chw[:, :1]  # resize_norm's single channel: the first one in the model's order
    out = np.empty((len(images), c, image_h, image_w), dtype=np.float32)
    np.take(norm_lut() if lut is None else lut, chw, out=out)
    for i, new_w in enumerate(widths):
        out[i, :, :, new_w:] = 0.0  # right padding: 0 after normalisation (mid-grey)
    return out


def to_model_order(img_bgr: np.ndarray, img_mode: str) -> np.ndarray:
    """Convert an OpenCV BGR (h, w, 3) image to the model's channel order ("BGR" or "RGB")."""
    if img_mode == "RGB":
        return np.ascontiguousarray(img_bgr[:, :, ::-1])
    return img_bgr
