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

Pillow reads headers and decodes everything except plain colour JPEG and WebP files, which OpenCV
decodes (the same libjpeg-turbo / libwebp pixels, twice as fast: most training data is such files).
"""

from __future__ import annotations

import io
import re

import cv2
import numpy as np
from PIL import Image, ImageOps

# file suffixes taken as images when a folder is listed (predict, bench, int8 calibration, scripts); all decode here
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm"})
MAX_PIXELS = 4_000_000  # width * height of one image, e.g. 4000 x 1000
MAX_SIDE = 8192  # longest side of one image
EXIF_ORIENTATION = 0x0112


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
    if has_alpha:
        rgb = composite_on_white(np.asarray(im.convert("RGBA")))
    else:
        rgb = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # a new contiguous array, faster than numpy's reversed copy


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


def _open(data: bytes, name: str, max_pixels: int, max_side: int) -> Image.Image:
    """The image with only its header read, checked against the limits."""
    if not data:
        raise ImageRejectedError(422, "empty_image", f"{name} is empty (0 bytes)")
    try:
        # Pillow's own decompression-bomb guard sits far above our limits, which are checked first.
        im = Image.open(io.BytesIO(data))
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
    check_size(im.width, im.height, name, max_pixels, max_side)
    return im


def image_size(data: bytes, name: str, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """(width, height) from the header only, checked against the limits.

    Raises:
        ImageRejectedError: empty, not an image (422) or too large (413); the message names ``name``.
    """
    return _open(data, name, max_pixels, max_side).size


def _simple_webp_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a WebP of one lossy (``VP8 ``) or lossless (``VP8L``) frame without alpha, else None.

    Such a file has no EXIF and no transparency (both need the extended ``VP8X`` layout).
    """
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    if data[12:16] == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if data[12:16] == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")  # 14 bits width - 1, 14 bits height - 1, alpha_is_used
        if not bits >> 28 & 1:
            return (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1
    return None


def _opencv_decode(data: bytes, name: str, size: tuple[int, int]) -> np.ndarray:
    """Plain colour JPEG / WebP (the bulk of training data) through OpenCV: the same libjpeg-turbo and libwebp
    pixels as Pillow's (tests/test_serve.py checks both on real crops) in half the time."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or (bgr.shape[1], bgr.shape[0]) != tuple(size):
        raise ImageRejectedError(422, "corrupt_image", f"{name} is a truncated or corrupt image")
    return bgr


def decode_image(data: bytes, name: str, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE) -> np.ndarray:
    """Decode one encoded image (PNG, JPEG, WebP, BMP, TIFF, PNM, GIF: first frame) to BGR uint8 (H, W, 3).

    Raises:
        ImageRejectedError (a ValueError): empty, not an image, truncated or corrupt (422), or over the
            size limits (413); a one-line message names ``name``.
    """
    size = _simple_webp_size(data)
    if size is not None:  # plain WebP: no alpha, no EXIF possible, and Pillow's open is slow for WebP
        check_size(*size, name, max_pixels, max_side)
        return _opencv_decode(data, name, size)
    src = _open(data, name, max_pixels, max_side)
    if not _jpeg_complete(data):
        raise ImageRejectedError(422, "corrupt_image", f"{name} is a truncated JPEG (no end-of-image marker)")
    try:
        upright = src.getexif().get(EXIF_ORIENTATION, 1) == 1
        if upright and src.format in ("JPEG", "WEBP") and src.mode == "RGB":
            return _opencv_decode(data, name, src.size)
        src.load()  # raises on truncated or corrupt data
        bgr = pil_to_bgr(src if upright else ImageOps.exif_transpose(src))
    except ImageRejectedError:
        raise
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
        raise ValueError(f"{name}: image arrays must be uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:  # H x W x 1: grey with a channel axis
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name}: unsupported image array shape {image.shape}; one image is H x W or H x W x C "
                         "(C = 1, 3 or 4)")
    check_size(image.shape[1], image.shape[0], name, max_pixels, max_side)
    if image.shape[2] == 4:
        image = composite_on_white(image)
    return np.ascontiguousarray(image[:, :, 2::-1])  # RGB -> BGR
