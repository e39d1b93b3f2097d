"""Service settings: batching, limits and timeouts (one frozen dataclass, JSON-serialisable)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ServeSettings:
    """What ``crnn serve`` can be tuned with; every limit is answered with a clear HTTP error.

    Attributes:
        model: path given to ``Recognizer.from_checkpoint`` (None: the bundled model).
        host, port: where uvicorn listens.
        workers: uvicorn worker processes; each loads its own copy of the model.
        threads: inference threads per worker (torch / onnxruntime intra-op threads).
        max_batch: images per forward pass of the micro-batcher.
        max_wait_ms: how long the first image of a batch may wait for more to arrive.
        max_queue: images waiting for inference before new requests get 503.
        max_images: images per request (413 beyond).
        max_request_bytes: request body size (413 beyond).
        max_pixels: width * height of one image (413 beyond).
        max_side: longest side of one image (413 beyond).
        timeout_s: time a request may wait for its results (504 beyond).
        postprocess: decoder options (``PostProcess`` keys, e.g. ``{"decoder": "beam"}``) over the model's own.
    """

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int | None = None
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 1024
    max_images: int = 64
    max_request_bytes: int = 16 * 1024 * 1024
    max_pixels: int = 8_000_000
    max_side: int = 8192
    timeout_s: float = 30.0
    postprocess: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("workers", "max_batch", "max_queue", "max_images", "max_request_bytes", "max_pixels", "max_side"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"serve setting {name} must be >= 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.timeout_s <= 0:
            raise ValueError(f"serve settings need max_wait_ms >= 0 and timeout_s > 0, got "
                             f"{self.max_wait_ms} and {self.timeout_s}")

    def to_json(self) -> str:
        """The settings as JSON (passed to worker processes through the environment)."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        """Inverse of ``to_json``; unknown keys are an error."""
        return cls(**json.loads(text))
