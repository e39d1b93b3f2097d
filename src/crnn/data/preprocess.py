"""The preprocessing spec: how a decoded image becomes the model's input, as one object.

A ``Preprocess`` is built from a config (``from_config``: the model's, i.e. its Eval transforms),
derived again from the config every checkpoint stores, written into an exported ONNX model's
metadata (``crnn.preprocess``, see ``crnn.onnx_backend``) and read back from it; training and
evaluation datasets, ``Recognizer`` (both back ends), ``crnn serve`` and the C++ program
(deploy/cpp) all build their input tensors from it, so none of them decides on its own (the
pattern of timm's ``resolve_model_data_config`` -> ``create_transform``).

No torch here: the light ``crnn[onnx]`` install uses this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from crnn.data.transforms import norm_lut, resize_norm_batch, resized_width
from crnn.limits import MAX_INPUT_HEIGHT, MAX_INPUT_WIDTH, check_range, shown

if TYPE_CHECKING:
    from crnn.config import Config, TransformsConfig

IMG_MODES = ("BGR", "RGB")
# Variable width (PaddleOCR's predict_rec, ``Preprocess.batch_width``): a batch is as wide as its
# widest crop, int(H * max w/h). PaddleOCR sets no upper bound; crnn caps the ratio so that one
# extreme crop cannot make a batch (and its memory and time) arbitrarily wide: a crop wider than
# MAX_WH_RATIO (800 px at H = 32) is squeezed to int(H * MAX_WH_RATIO) columns, as the fixed width
# squeezes every crop wider than W/H.
MAX_WH_RATIO = 25.0


@dataclass(frozen=True)
class Preprocess:
    """PaddleOCR's ``RecResizeImg`` + normalisation, fully specified.

    Attributes:
        image_shape: (C, H, W) of the model input; C is 1 or 3.
        img_mode: the model's channel order, "BGR" or "RGB" (images are decoded BGR).
        padding: True: resize to height H keeping the aspect ratio (width capped at W) and right-pad
            with zeros to W; False: stretch every image to exactly (H, W).
        scale, mean, std: pixel v in [0, 255] becomes (v * scale - mean) / std (computed as
            (v / (1 / scale) - mean) / std in float32, PaddleOCR's ``/ 255`` bit for bit).
    """

    image_shape: tuple[int, int, int] = (3, 32, 100)
    img_mode: str = "BGR"
    padding: bool = True
    scale: float = 1.0 / 255.0
    mean: float = 0.5
    std: float = 0.5

    def __post_init__(self) -> None:
        _check(self.to_dict(), "preprocess")

    @classmethod
    def from_transforms(cls, t: TransformsConfig) -> Preprocess:
        """The spec of one dataset's transforms section (``DecodeImage`` + ``RecResizeImg``)."""
        c, h, w = t.image_shape
        return cls(image_shape=(c, h, w), img_mode=t.img_mode, padding=t.padding)

    @classmethod
    def from_config(cls, cfg: Config) -> Preprocess:
        """The model's spec: its Eval transforms (else Train's; defaults for a config with neither)."""
        split = cfg.Eval or cfg.Train
        return cls() if split is None else cls.from_transforms(split.dataset.transforms)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (``image_shape`` as a list); ``from_dict`` reads it back."""
        return {"image_shape": list(self.image_shape), "img_mode": self.img_mode, "padding": self.padding,
                "scale": self.scale, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data: Any, where: str = "preprocess") -> Preprocess:
        """Validated inverse of ``to_dict``: every key required, none unknown.

        Raises:
            ValueError: one line naming ``where`` and the bad field.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected a mapping of {', '.join(FIELDS)}, got {type(data).__name__}")
        unknown = sorted(set(data) - set(FIELDS))
        missing = [k for k in FIELDS if k not in data]
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown} (known: {', '.join(FIELDS)})")
        if missing:
            raise ValueError(f"{where}: missing key(s) {missing}")
        _check(data, where)
        c, h, w = data["image_shape"]
        return cls(image_shape=(c, h, w), img_mode=data["img_mode"], padding=data["padding"],
                   scale=float(data["scale"]), mean=float(data["mean"]), std=float(data["std"]))

    def content_width(self, h: int, w: int, width: int | None = None) -> int:
        """Columns an (h, w) image fills in an input of width ``width`` (None: W); the rest is padding."""
        width = width or self.image_shape[2]
        return resized_width(h, w, self.image_shape[1], width) if self.padding else width

    def batch_width(self, sizes: Iterable[tuple[int, int]]) -> int:
        """Input width of a variable-width batch of images of (h, w) ``sizes``: PaddleOCR's predict_rec.

        ``int(H * max_wh_ratio)``, where max_wh_ratio is the largest w / h of the batch but at least
        W / H (so never narrower than the fixed width) and at most ``MAX_WH_RATIO`` (crnn's cap: wider
        crops are squeezed). Computed with PaddleOCR's float operations, so the width is its width.
        A spec that stretches (``padding`` false) has no aspect ratio to keep: always W.
        """
        _, image_h, image_w = self.image_shape
        if not self.padding:
            return image_w
        max_wh_ratio = image_w / image_h
        for h, w in sizes:
            max_wh_ratio = max(max_wh_ratio, w * 1.0 / h)
        return int(image_h * min(max_wh_ratio, MAX_WH_RATIO))

    def batch(self, images: Sequence[np.ndarray], dynamic_width: bool = True) -> np.ndarray:
        """A batch of BGR uint8 (h, w, 3) images -> (B, C, H, batch width) float32.

        ``dynamic_width``: as wide as ``batch_width`` says (PaddleOCR's predict_rec: each image keeps
        its aspect ratio and is right-padded to the batch's width); False: the fixed W (training and
        ``crnn eval``'s protocol: crops wider than W/H squeezed).
        """
        width = self.batch_width(im.shape[:2] for im in images) if dynamic_width else None
        return self(images, width)

    def __call__(self, images: Sequence[np.ndarray], width: int | None = None) -> np.ndarray:
        """Decoded BGR uint8 (h, w, 3) images -> the model input (B, C, H, W) float32.

        ``width`` overrides W (a variable-width batch: ``batch``); None keeps W.
        """
        c, h, w = self.image_shape
        return resize_norm_batch(images, (c, h, width or w), self.img_mode, self.padding,
                                 norm_lut(self.scale, self.mean, self.std))


def ratio_batches(sizes: Sequence[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Indices of images of (h, w) ``sizes`` in batches of ``batch_size``, in order of aspect ratio.

    PaddleOCR's predict_rec order (its float64 keys w / h, ascending), so that images of similar
    shape share a batch and a variable-width batch pads little. Ties keep input order (a stable sort,
    as deploy/cpp's ``std::stable_sort``): PaddleOCR's ``np.argsort`` quicksort orders ties by
    chance, and since a crop's batch decides its input width, both programs must agree on it. Callers
    put the results back in input order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(sizes)), key=lambda i: sizes[i][1] / float(sizes[i][0]))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


FIELDS = tuple(f.name for f in fields(Preprocess))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check(d: Mapping[str, Any], where: str) -> None:
    """Raise ValueError naming ``where`` and the first bad field of a spec's values."""
    shape = d["image_shape"]
    if (not isinstance(shape, (list, tuple)) or len(shape) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
            or shape[0] not in (1, 3) or min(shape) < 1):
        raise ValueError(f"{where}.image_shape: expected [C, H, W] with C 1 or 3 and H, W >= 1, "
                         f"got {shown(shape)}")
    # bounded: a 100000x100000 shape asked for a 27.9 GiB input tensor
    check_range(f"{where}.image_shape height", shape[1], 1, MAX_INPUT_HEIGHT)
    check_range(f"{where}.image_shape width", shape[2], 1, MAX_INPUT_WIDTH)
    if d["img_mode"] not in IMG_MODES:
        raise ValueError(f"{where}.img_mode: must be BGR or RGB, got {d['img_mode']!r}")
    if not isinstance(d["padding"], bool):
        raise ValueError(f"{where}.padding: must be true or false, got {d['padding']!r}")
    for key in ("scale", "mean", "std"):
        if not _is_number(d[key]) or (key != "mean" and not d[key] > 0):
            rule = "a finite number" if key == "mean" else "a positive number"
            raise ValueError(f"{where}.{key}: must be {rule}, got {d[key]!r}")
