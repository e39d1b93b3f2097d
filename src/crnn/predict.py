"""Inference: ``Recognizer`` runs a checkpoint (torch) or an exported ``.onnx`` model on images.

Preprocessing (the model's ``Preprocess`` spec, from the checkpoint's config or the ONNX metadata)
and decoding are shared by both back ends; only "run the model" differs. This module does not
import torch: the torch back end is imported when a ``.pt`` checkpoint is loaded.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import typing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
from PIL import Image

from crnn.charset import Charset
from crnn.data.images import array_to_bgr, decode_image
from crnn.data.preprocess import MAX_WH_RATIO, Preprocess, ratio_batches
from crnn.decode import Prediction
from crnn.decoders import Decoder, build_decoder, frames_to_pixels
from crnn.limits import MAX_BATCH_SIZE, MAX_THREADS, check_range
from crnn.threads import default_threads, n_threads

ImageInput = str | os.PathLike[str] | bytes | Image.Image | np.ndarray
# What one image can be, other than an array (an array is one image or a batch depending on its dimensions).
SingleImage = str | os.PathLike[str] | bytes | Image.Image
T = TypeVar("T")
log = logging.getLogger(__name__)
DEFAULT_MODEL = str(Path(__file__).parent / "assets" / "crnn_mv3_en.pt")
# The same model exported by scripts/package_model.py (its metadata holds DEFAULT_MODEL's sha256):
# same strings, several times faster than PyTorch eager, and runs without torch.
DEFAULT_ONNX_MODEL = str(Path(DEFAULT_MODEL).with_suffix(".onnx"))


def default_model() -> str:
    """The bundled model in its fastest available form: the ONNX file when onnxruntime is installed,
    else the PyTorch checkpoint."""
    if Path(DEFAULT_ONNX_MODEL).is_file() and importlib.util.find_spec("onnxruntime") is not None:
        return DEFAULT_ONNX_MODEL
    return DEFAULT_MODEL


def load_image(image: ImageInput, name: str = "image") -> np.ndarray:
    """Any supported input as an OpenCV BGR (h, w, 3) uint8 array, decoded by ``crnn.data.images``.

    A path (str or ``os.PathLike``) or the bytes of an encoded image file are decoded. PIL images
    and numpy arrays are taken as RGB (or grey, or RGBA, composited over white), the convention of
    PIL and of ``np.asarray(pil_image)``. Images over ``crnn.data.images.MAX_PIXELS`` are refused.
    ``name`` is how messages call an input that is not a path (e.g. ``"image 3"``).

    Raises:
        ValueError: unreadable file, empty, too large or unsupported image; the message names the input.
    """
    if isinstance(image, (str, os.PathLike)):
        if not os.fspath(image):
            raise ValueError(f"{name}: the path is empty")
        try:
            data = Path(image).read_bytes()
        except OSError as e:
            raise ValueError(f"cannot read {image}: {e.strerror or e}") from e
        return decode_image(data, str(image))
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_image(bytes(image), name)
    if isinstance(image, Image.Image):
        try:
            image.load()
        except ValueError as e:  # Pillow: "Operation on closed image"
            raise ValueError(f"{name}: the PIL image cannot be read ({e}); was it closed? open it again") from None
    elif not isinstance(image, np.ndarray):
        raise ValueError(f"{name}: unsupported image type {type(image).__name__}; give a path, the bytes of an image "
                         "file, a PIL image or an H x W (x C) uint8 array")
    return array_to_bgr(image, name)


def is_single(images: object) -> bool:
    """Whether ``Recognizer.__call__`` reads ``images`` as one image (not a batch).

    One image: a path, encoded bytes, a PIL image, or an array with 2 (H x W) or 3 (H x W x C)
    dimensions. A batch: a list or another iterable of those, or a 4-D (N x H x W x C) array.
    """
    if isinstance(images, np.ndarray):
        return images.ndim < 4
    return isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image))


def load_images(images: Sequence[ImageInput], num_threads: int = 1) -> list[np.ndarray]:
    """``load_image`` of each input, decoded by ``num_threads`` threads (OpenCV releases the GIL).

    Raises:
        ValueError: the first input (in order) that cannot be read.
    """
    names = [f"image {i}" for i in range(len(images))]  # how a message names an input that is not a path
    if num_threads <= 1 or len(images) < 2:
        return [load_image(im, n) for im, n in zip(images, names, strict=True)]
    with ThreadPoolExecutor(min(num_threads, len(images))) as pool:
        return list(pool.map(load_image, images, names))


def _at_least(name: str, value: object, low: int) -> None:
    """Refuse a setting that is not an integer >= ``low`` (the message names it)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Recognizer {name} must be an integer >= {low}, got {value!r}")


class Recognizer:
    """Recognise cropped word images with a checkpoint (``.pt``, torch) or an exported ``.onnx`` model.

    Args:
        model: path of the model; ``None`` means the bundled English model, as ONNX when onnxruntime
            is installed (``crnn.predict.DEFAULT_ONNX_MODEL``), else the checkpoint (``crnn.DEFAULT_MODEL``).
        batch_size: images per forward pass.
        num_threads: inference (and image decoding) threads; default: the available cores that
            are not busy (``crnn.threads.default_threads``).
        dynamic_width: True: PaddleOCR's predict_rec (``Preprocess.batch``): images sorted by aspect
            ratio, each batch as wide as its widest image, ``int(H * max w/h)``, at least the training
            width W and at most ``int(H * MAX_WH_RATIO)`` (800 px for H = 32; wider crops are
            squeezed to it), each image resized to height H keeping its aspect ratio and right-padded.
            False (default): every image resized into the training width W (crops wider than W/H
            squeezed), as the model was trained and as ``crnn eval`` measures it: crnn's models, trained
            on 100-wide inputs, read worse at the variable width (72.5% vs 64.6% on the four eval sets
            for the bundled model, docs/variable_width.md).
        decoder: how logits become words (``crnn.decoders.build_decoder``); default: the checkpoint
            config's ``PostProcess`` (greedy for an ``.onnx`` model or a config without one).

    Attributes:
        spec: the model's ``Preprocess`` (input shape, channel order, padding, normalisation).

    Raises:
        FileNotFoundError: no such model.
        ValueError: an empty path, an unloadable model, ``dynamic_width`` for a model that does not pad,
            or a batch size or thread count outside ``crnn.limits`` (the message names it and the range).

    Example:
        >>> rec = Recognizer()  # doctest: +SKIP
        >>> rec("word.png")  # doctest: +SKIP
        Prediction(text='hello', confidence=0.98, char_confidences=(...), ...)
        >>> rec(["word.png", "other.png"])  # doctest: +SKIP
        [Prediction(text='hello', ...), Prediction(text='other', ...)]
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, *, batch_size: int = 32,
                 num_threads: int | None = None, dynamic_width: bool = False,
                 decoder: Decoder | None = None):
        if model is not None and not os.fspath(model):
            raise ValueError("Recognizer model path is empty: give a .pt or .onnx path, or None (the default) for "
                             "the bundled model")
        _at_least("batch_size", batch_size, 1)  # an integer >= 1 (the lower bound's message), then the upper
        if num_threads is not None:
            _at_least("num_threads", num_threads, 1)
        check_range("batch_size", batch_size, 1, MAX_BATCH_SIZE)
        check_range("num_threads", num_threads, 1, MAX_THREADS)
        path = default_model() if model is None else model
        if not Path(path).exists() and not Path(f"{path}.pt").exists():
            hint = " (the bundled model is missing from this install)" if model is None else ""
            raise FileNotFoundError(f"model {path} not found{hint}")
        num_threads = num_threads or default_threads()
        if str(path).endswith(".onnx"):
            from crnn.onnx_backend import onnx_runner

            run, meta = onnx_runner(path, num_threads)
        else:
            from crnn.torch_backend import torch_runner

            run, meta = torch_runner(path, num_threads)
        self.run: Callable[[np.ndarray], np.ndarray] = run  # (B, C, H, W) float32 -> (B, T, K) logits
        self.charset: Charset = meta["charset"]
        self.spec: Preprocess = meta["preprocess"]
        self.backend: str = meta["backend"]
        if dynamic_width and not self.spec.padding:
            raise ValueError(f"dynamic_width needs a model that pads its inputs; {path} stretches them "
                             "(RecResizeImg padding: false)")
        self.batch_size = batch_size
        self.path = str(path)
        self.num_threads = num_threads
        self.dynamic_width = dynamic_width
        self.decoder: Decoder = decoder or build_decoder(meta.get("postprocess"), self.charset)
        log.info("recognizer: %s back end, %s, %s", self.backend, self.path, n_threads(num_threads))

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Recognizer:
        """Same as ``Recognizer(path, **kwargs)``: a ``.pt`` checkpoint or an ``.onnx`` model."""
        return cls(path, **kwargs)

    def preprocess(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """One batch of BGR uint8 images -> (B, C, H, W) float32 by the model's spec
        (``Preprocess.batch``): W is the batch's variable width, or the training width."""
        return self.spec.batch(images, self.dynamic_width)

    def recognize_arrays(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        """Recognise already-decoded BGR images, batched in order of aspect ratio.

        Each ``Prediction`` carries per-symbol confidences and x positions in its image's pixels.
        """
        return self.decode_arrays(images, lambda logits, _charset: self.decoder(logits))

    def decode_arrays(self, images: Sequence[np.ndarray], decode: Callable[[np.ndarray, Charset], list[T]]
                      ) -> list[T]:
        """Run BGR images through the model in aspect-ratio order; ``decode`` maps (B, T, K) logits to results.

        Returns one result per image, in input order (e.g. ``greedy_decode_chars`` for per-symbol scores).
        """
        if self.dynamic_width:
            wide = sum(im.shape[1] > MAX_WH_RATIO * im.shape[0] for im in images)
            if wide:
                _, h, _ = self.spec.image_shape
                log.warning("%d of %d images are wider than MAX_WH_RATIO = %g (w/h): squeezed to %d px",
                            wide, len(images), MAX_WH_RATIO, int(h * MAX_WH_RATIO))
        out: list[T | None] = [None] * len(images)
        for idx in ratio_batches([im.shape[:2] for im in images], self.batch_size):
            x = self.preprocess([images[i] for i in idx])  # (b, C, H, width)
            width = x.shape[3]
            logits = self.run(x)  # (b, T, K)
            for i, res in zip(idx, decode(logits, self.charset), strict=True):
                if isinstance(res, Prediction) and res.char_frames:  # frames -> this image's pixels
                    h, w = images[i].shape[:2]
                    pos = frames_to_pixels(res.char_frames, (h, w), width, logits.shape[1],
                                           self.spec.content_width(h, w, width))
                    res = res._replace(char_positions=pos)
                out[i] = res
        return [r for r in out if r is not None]

    # A str or bytes is also an Iterable, so these overlap the batch one; they come first and win.
    @overload
    def __call__(self, images: SingleImage) -> Prediction: ...  # type: ignore[overload-overlap]

    @overload
    def __call__(self, images: np.ndarray) -> Prediction | list[Prediction]: ...  # type: ignore[overload-overlap]

    @overload
    def __call__(self, images: Iterable[ImageInput]) -> list[Prediction]: ...

    def __call__(self, images: ImageInput | Iterable[ImageInput]) -> Prediction | list[Prediction]:
        """Recognise one image or a batch, as EasyOCR's and RapidOCR's readers take them.

        One image (a path, the bytes of an image file, a PIL image, or an H x W or H x W x C uint8 RGB
        array) gives one ``Prediction``; a list (or any other iterable) of them, or an N x H x W x C
        array, gives a list of ``Prediction`` in input order.

        Raises:
            ValueError: an input cannot be read or has an unsupported type (the message names it).
        """
        if is_single(images) or not isinstance(images, Iterable):  # load_image refuses an unsupported type
            return self.recognize_arrays([load_image(images)])[0]  # type: ignore[arg-type]
        batch = typing.cast(Iterable[ImageInput], images)
        return self.recognize_arrays(load_images(list(batch), self.num_threads))

