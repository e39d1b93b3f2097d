"""Uploaded bytes -> BGR uint8 arrays, with size limits checked before pixels are decoded."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps


class ImageRejectedError(ValueError):
    """An uploaded image cannot be used; ``status`` is the HTTP answer (413 too big, 422 unreadable)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code


def _to_8bit(arr: np.ndarray, mode: str) -> np.ndarray:
    """A single-channel integer or float array of mode I;16*, I or F as uint8 (H, W)."""
    a = arr.astype(np.float64)
    if mode.startswith("I;16"):
        a = a / 257.0  # full 16-bit range -> 8 bits
    else:  # I (32-bit) or F: the value range is not declared, so stretch what is there
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 255:
            a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _to_bgr(im: Image.Image) -> np.ndarray:
    """Any Pillow mode as a contiguous BGR uint8 (H, W, 3) array; transparency is flattened onto white."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        grey = _to_8bit(np.asarray(im), im.mode)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        # Word crops cut out with a transparent background often have black (0,0,0,0) there: dropping
        # alpha would hide dark text, so composite onto white as a viewer would show it.
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, rgba).convert("RGB")
    else:
        rgb = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])  # RGB -> BGR


def decode_upload(data: bytes, name: str, max_pixels: int, max_side: int) -> np.ndarray:
    """Decode one uploaded image (PNG, JPEG, WebP, BMP, TIFF, GIF: first frame) to BGR uint8 (H, W, 3).

    Grey, 16-bit, palette, RGBA and CMYK images are converted; EXIF orientation is applied.

    Raises:
        ImageRejectedError: empty, not an image, truncated or corrupt (422), or too large (413); the message
            names ``name``.
    """
    if not data:
        raise ImageRejectedError(422, "empty_image", f"{name} is empty (0 bytes)")
    try:
        # Pillow's own decompression-bomb guard (a warning, then an error) sits far above our limits;
        # its warning is not turned into an error here because warning filters are process-global and
        # images are decoded in several threads at once.
        src = Image.open(io.BytesIO(data))
        w, h = src.size
        if w < 1 or h < 1:
            raise ImageRejectedError(422, "empty_image", f"{name} has zero size ({w}x{h})")
        if w * h > max_pixels or max(w, h) > max_side:
            raise ImageRejectedError(413, "image_too_large", f"{name} is {w}x{h} pixels; the limit is "
                                     f"{max_pixels} pixels and {max_side} per side")
        src.load()  # raises on truncated or corrupt data (LOAD_TRUNCATED_IMAGES stays off)
        im = ImageOps.exif_transpose(src)
        bgr = _to_bgr(im)
    except ImageRejectedError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageRejectedError(413, "image_too_large", f"{name} is too large: {e}") from e
    except Image.UnidentifiedImageError as e:
        raise ImageRejectedError(422, "not_an_image", f"{name} is not an image in a known format "
                            f"({len(data)} bytes)") from e
    except Exception as e:  # Pillow's decoders raise OSError, ValueError, SyntaxError, struct.error, ...
        raise ImageRejectedError(422, "corrupt_image", f"{name} is a truncated or corrupt image: {e}") from e
    if bgr.size == 0:
        raise ImageRejectedError(422, "empty_image", f"{name} has zero size {bgr.shape[:2]}")
    return bgr
