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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from crnn.data.transforms import norm_lut, resize_norm_batch, resized_width
from crnn.limits import MAX_INPUT_HEIGHT, MAX_INPUT_WIDTH, check_range, shown

if TYPE_CHECKING:
    from crnn.config import Config, TransformsConfig

IMG_MODES = ("BGR", "RGB")


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

    def __call__(self, images: Sequence[np.ndarray], width: int | None = None) -> np.ndarray:
        """Decoded BGR uint8 (h, w, 3) images -> the model input (B, C, H, W) float32.

        ``width`` overrides W (``Recognizer``'s dynamic width); None keeps W.
        """
        c, h, w = self.image_shape
        return resize_norm_batch(images, (c, h, width or w), self.img_mode, self.padding,
                                 norm_lut(self.scale, self.mean, self.std))


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
