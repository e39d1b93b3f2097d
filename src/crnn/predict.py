"""Inference: ``Recognizer`` runs a checkpoint (torch) or an exported ``.onnx`` model on images.

Preprocessing (the model's ``Preprocess`` spec, from the checkpoint's config or the ONNX metadata)
and decoding are shared by both back ends; only "run the model" differs. This module does not
import torch: the torch back end is imported when a ``.pt`` checkpoint is loaded.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from crnn.charset import Charset
from crnn.data.images import array_to_bgr, decode_image
from crnn.data.preprocess import Preprocess
from crnn.data.transforms import resized_width
from crnn.decode import Prediction
from crnn.decoders import Decoder, build_decoder, frames_to_pixels
from crnn.limits import MAX_BATCH_SIZE, MAX_INPUT_WIDTH, MAX_THREADS, check_range
from crnn.threads import default_threads

ImageInput = str | os.PathLike[str] | Image.Image | np.ndarray
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


def load_image(image: ImageInput) -> np.ndarray:
    """Any supported input as an OpenCV BGR (h, w, 3) uint8 array, decoded by ``crnn.data.images``.

    PIL images and numpy arrays are taken as RGB (or grey, or RGBA, composited over white), the
    convention of PIL and of ``np.asarray(pil_image)``. Images over ``crnn.data.images.MAX_PIXELS``
    are refused.

    Raises:
        ValueError: unreadable file, empty, too large or unsupported image; the message names the input.
    """
    if isinstance(image, (str, os.PathLike)):
        try:
            data = Path(image).read_bytes()
        except OSError as e:
            raise ValueError(f"cannot read {image}: {e.strerror or e}") from e
        return decode_image(data, str(image))
    return array_to_bgr(image)


def load_images(images: Sequence[ImageInput], num_threads: int = 1) -> list[np.ndarray]:
    """``load_image`` of each input, decoded by ``num_threads`` threads (OpenCV releases the GIL).

    Raises:
        ValueError: the first input (in order) that cannot be read.
    """
    if num_threads <= 1 or len(images) < 2:
        return [load_image(im) for im in images]
    with ThreadPoolExecutor(min(num_threads, len(images))) as pool:
        return list(pool.map(load_image, images))


class Recognizer:
    """Recognise cropped word images with a checkpoint (``.pt``, torch) or an exported ``.onnx`` model.

    Args:
        model: path of the model; ``None`` means the bundled English model, as ONNX when onnxruntime
            is installed (``crnn.predict.DEFAULT_ONNX_MODEL``), else the checkpoint (``crnn.DEFAULT_MODEL``).
        batch_size: images per forward pass.
        num_threads: inference (and image decoding) threads; default: the available cores that
            are not busy (``crnn.threads.default_threads``).
        dynamic_width: opt-in: instead of resizing every image to the training width W (squashing
            wider ones, as PaddleOCR's eval does; the default), keep each image's aspect ratio and pad
            each batch (images sorted by aspect ratio) to its widest image, rounded up to a multiple
            of 16, at least W and at most ``max_width``. Only for a model that pads (its spec's
            ``padding``): one trained on stretched images has no aspect ratio to keep.
        max_width: dynamic_width's cap; wider images are squashed to it (at most
            ``crnn.limits.MAX_INPUT_WIDTH``).
        decoder: how logits become words (``crnn.decoders.build_decoder``); default: the checkpoint
            config's ``PostProcess`` (greedy for an ``.onnx`` model or a config without one).

    Attributes:
        spec: the model's ``Preprocess`` (input shape, channel order, padding, normalisation).

    Raises:
        FileNotFoundError: no such model.
        ValueError: an unloadable model, ``dynamic_width`` for a model that does not pad, or a size
            outside ``crnn.limits`` (the message names the argument and the range).

    Example:
        >>> rec = Recognizer()  # doctest: +SKIP
        >>> rec(["word.png"])  # doctest: +SKIP
        [Prediction(text='hello', confidence=0.98, char_confidences=(...), ...)]
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, *, batch_size: int = 32,
                 num_threads: int | None = None, dynamic_width: bool = False, max_width: int = 800,
                 decoder: Decoder | None = None):
        check_range("batch_size", batch_size, 1, MAX_BATCH_SIZE)
        check_range("num_threads", num_threads, 1, MAX_THREADS)
        check_range("max_width", max_width, 1, MAX_INPUT_WIDTH)  # 100000 on 32 wide images needed 22 GB
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
        self.max_width = max_width
        self.decoder: Decoder = decoder or build_decoder(meta.get("postprocess"), self.charset)
        log.info("recognizer: %s back end, %s, %d threads", self.backend, self.path, num_threads)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Recognizer:
        """Same as ``Recognizer(path, **kwargs)``: a ``.pt`` checkpoint or an ``.onnx`` model."""
        return cls(path, **kwargs)

    def batch_width(self, images: Sequence[np.ndarray]) -> int:
        """Input width W for a batch: the training width, or its dynamic-width bucket."""
        _, h, w = self.spec.image_shape
        if not self.dynamic_width:
            return w
        need = max(resized_width(im.shape[0], im.shape[1], h, self.max_width) for im in images)
        return max(w, min(self.max_width, -(-need // 16) * 16))

    def preprocess(self, images: Sequence[np.ndarray], width: int | None = None) -> np.ndarray:
        """BGR uint8 images -> (B, C, H, W) float32 by the model's spec, as in training and evaluation.

        ``width`` overrides W (dynamic-width mode); None keeps the training width.
        """
        return self.spec(images, width)

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
        order = sorted(range(len(images)), key=lambda i: images[i].shape[1] / images[i].shape[0])
        out: list[T | None] = [None] * len(images)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = [images[i] for i in idx]
            width = self.batch_width(batch)
            logits = self.run(self.preprocess(batch, width))  # (b, T, K)
            for i, res in zip(idx, decode(logits, self.charset), strict=True):
                if isinstance(res, Prediction) and res.char_frames:  # frames -> this image's pixels
                    h, w = images[i].shape[:2]
                    pos = frames_to_pixels(res.char_frames, (h, w), width, logits.shape[1],
                                           self.spec.content_width(h, w, width))
                    res = res._replace(char_positions=pos)
                out[i] = res
        return [r for r in out if r is not None]

    def __call__(self, images: Sequence[ImageInput]) -> list[Prediction]:
        """Recognise images (paths, PIL images or HWC uint8 RGB arrays); results in input order.

        Raises:
            ValueError: an input cannot be read (the message names it).
        """
        return self.recognize_arrays(load_images(images, self.num_threads))

