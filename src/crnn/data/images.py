"""The one image decoder of crnn: encoded bytes (or a PIL image / array) -> BGR uint8 (H, W, 3).

Training, evaluation, ``crnn predict``, ``Recognizer`` and ``crnn serve`` all decode here, so the same
file gives the same pixels everywhere (``deploy/cpp`` follows the same rules, see docs/reliability.md):

* Size: width and height are read from the header first; an image over ``max_pixels`` (width *
  height) or ``max_side`` is refused before any pixel is decoded. Defaults: ``MAX_PIXELS`` and
  ``MAX_SIDE``: word crops are far smaller, and a decompression bomb is refused cheaply.
* Alpha: transparent pixels are composited over white, as a viewer shows them. Word crops cut out
  with a transparent background often store black (0, 0, 0, 0) there; dropping alpha would turn
  black text on a transparent background into black on black.
* Truncation: a truncated or corrupt file is refused (Pillow's ``LOAD_TRUNCATED_IMAGES`` stays off),
  and a JPEG must have its end-of-image marker after its last scan, a rule C++ checks identically.
* Grey, 16-bit, palette and CMYK images become 3 channels; EXIF orientation is applied.
"""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image, ImageOps

MAX_PIXELS = 4_000_000  # width * height of one image, e.g. 4000 x 1000
MAX_SIDE = 8192  # longest side of one image


class ImageRejectedError(ValueError):
    """An image cannot be used; ``status`` is the HTTP answer the service gives (413 too big, 422 unreadable)."""

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


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 RGBA -> (H, W, 3) uint8 RGB over a white background (Pillow's alpha_composite rounding)."""
    im = Image.fromarray(np.ascontiguousarray(rgba), "RGBA")
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, im).convert("RGB"))


def pil_to_bgr(im: Image.Image) -> np.ndarray:
    """Any Pillow mode as a contiguous BGR uint8 (H, W, 3) array; transparency is flattened onto white."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        grey = _to_8bit(np.asarray(im), im.mode)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)
    rgb = composite_on_white(np.asarray(im.convert("RGBA"))) if has_alpha else np.asarray(im.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])  # RGB -> BGR


def check_size(w: int, h: int, name: str, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE) -> None:
    """Refuse a (w, h) image that is empty or over the limits; the message names ``name`` and the limit."""
    if w < 1 or h < 1:
        raise ImageRejectedError(422, "empty_image", f"{name} has zero size ({w}x{h})")
    if w * h > max_pixels or max(w, h) > max_side:
        raise ImageRejectedError(413, "image_too_large", f"{name} is {w}x{h} pixels; the limit is {max_pixels} "
                                 f"pixels and {max_side} per side")


def _jpeg_complete(data: bytes) -> bool:
    """True unless ``data`` is a JPEG without an end-of-image marker after its last start-of-scan."""
    if not data.startswith(b"\xff\xd8"):
        return True
    return data.rfind(b"\xff\xd9") > data.rfind(b"\xff\xda")  # scan data never holds FF D9 (FF is stuffed)


def image_size(data: bytes, name: str, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """(width, height) from the header only, checked against the limits.

    Raises:
        ImageRejectedError: empty, not an image (422) or too large (413); the message names ``name``.
    """
    if not data:
        raise ImageRejectedError(422, "empty_image", f"{name} is empty (0 bytes)")
    try:
        # Pillow's own decompression-bomb guard sits far above our limits, which are checked first.
        w, h = Image.open(io.BytesIO(data)).size
    except Image.DecompressionBombError as e:  # Pillow's guard (> 179 M pixels) fires while opening
        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f"has {found.group(1)} pixels" if found else f"is over {2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels"
        raise ImageRejectedError(413, "image_too_large", f"{name} {size}; the limit is {max_pixels} pixels and "
                                 f"{max_side} per side") from e
    except Image.UnidentifiedImageError as e:
        raise ImageRejectedError(422, "not_an_image", f"{name} is not an image in a known format "
                                 f"({len(data)} bytes)") from e
    except Exception as e:  # a header so broken that even the size cannot be read
        raise ImageRejectedError(422, "corrupt_image", f"{name} is a truncated or corrupt image: {e}") from e
    check_size(w, h, name, max_pixels, max_side)
    return w, h


def decode_image(data: bytes, name: str, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE) -> np.ndarray:
    """Decode one encoded image (PNG, JPEG, WebP, BMP, TIFF, PNM, GIF: first frame) to BGR uint8 (H, W, 3).

    Raises:
        ImageRejectedError (a ValueError): empty, not an image, truncated or corrupt (422), or over the
            size limits (413); a one-line message names ``name``.
    """
    image_size(data, name, max_pixels, max_side)
    if not _jpeg_complete(data):
        raise ImageRejectedError(422, "corrupt_image", f"{name} is a truncated JPEG (no end-of-image marker)")
    try:
        src = Image.open(io.BytesIO(data))
        src.load()  # raises on truncated or corrupt data
        bgr = pil_to_bgr(ImageOps.exif_transpose(src))
    except Image.DecompressionBombError as e:
        raise ImageRejectedError(413, "image_too_large", f"{name} is too large: {e}") from e
    except Exception as e:  # Pillow's decoders raise OSError, ValueError, SyntaxError, struct.error, ...
        raise ImageRejectedError(422, "corrupt_image", f"{name} is a truncated or corrupt image: {e}") from e
    if bgr.size == 0:
        raise ImageRejectedError(422, "empty_image", f"{name} has zero size {bgr.shape[:2]}")
    return bgr


def array_to_bgr(image: Image.Image | np.ndarray, name: str = "image", max_pixels: int = MAX_PIXELS,
                 max_side: int = MAX_SIDE) -> np.ndarray:
    """A PIL image, or an RGB / grey / RGBA uint8 array (PIL's convention), as BGR uint8 (H, W, 3).

    Same size limits and alpha policy as ``decode_image``.

    Raises:
        ValueError: unsupported type, dtype or shape, or over the limits; the message names ``name``.
    """
    if isinstance(image, Image.Image):
        check_size(image.width, image.height, name, max_pixels, max_side)
        return pil_to_bgr(image)
    if not isinstance(image, np.ndarray):
        raise ValueError(f"unsupported image type {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image arrays must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"unsupported image array shape {image.shape}")
    check_size(image.shape[1], image.shape[0], name, max_pixels, max_side)
    if image.shape[2] == 4:
        image = composite_on_white(image)
    return np.ascontiguousarray(image[:, :, 2::-1])  # RGB -> BGR
