"""Service settings: batching, limits and timeouts (one frozen dataclass, JSON-serialisable)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from crnn.data.images import MAX_PIXELS, MAX_SIDE
from crnn.limits import MAX_BATCH_SIZE, MAX_THREADS, MAX_TIMEOUT_S, MAX_WORKERS, check_range

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# the `crnn serve` flag of each bounded setting, named in its error
FLAGS = {"threads": "--threads", "workers": "--workers", "max_batch": "--max-batch", "max_images": "--max-images",
         "max_connections": "--max-connections", "timeout_s": "--timeout", "max_wait_ms": "--max-wait-ms",
         "header_timeout_s": "--header-timeout"}


@dataclass(frozen=True)
class ServeSettings:
    """What ``crnn serve`` can be tuned with; every limit is answered with a clear HTTP error.

    Attributes:
        model: path given to ``Recognizer.from_checkpoint`` (None: the bundled model).
        host, port: where uvicorn listens.
        workers: uvicorn worker processes; each loads its own copy of the model.
        threads: inference threads per worker (torch / onnxruntime intra-op threads).
        max_batch: images per forward pass of the micro-batcher.
        dynamic_width: PaddleOCR's variable width (``Recognizer(dynamic_width=True)``) instead of the
            model's training width (the default). With variable width a batch is as wide as its widest
            image, so an image's input, and in rare cases its result, can depend on the images of other
            requests batched with it.
        max_wait_ms: how long the first image of a batch may wait for more to arrive.
        max_queue: images waiting for inference before new requests get 503.
        max_images: images per request (413 beyond).
        max_request_bytes: request body size (413 beyond).
        max_pixels: width * height of one image (413 beyond); read from the header before decoding.
        max_side: longest side of one image (413 beyond).
        max_request_pixels: width * height summed over one request's images (413 beyond).
        max_inflight_pixels: decoded pixels all requests in progress may hold together; a request that
            would pass it gets 503 (overloaded) and ``/readyz`` says so.
        timeout_s: time a request may wait for its results (504 beyond).
        header_timeout_s: time a new connection has to send its request headers, and an idle
            keep-alive connection its next ones; then it is closed (slowloris clients).
        max_connections: open connections per worker; more are closed at once (slowloris clients).
        allowed_hosts: names the Host header may carry (400 otherwise); empty: the loopback names plus
            ``host`` when it is not a wildcard address; ``*`` allows any.
        allow_cross_origin: accept requests a browser sends from another origin (403 otherwise).
        postprocess: decoder options (``PostProcess`` keys, e.g. ``{"decoder": "beam"}``) over the model's own.
    """

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int | None = None
    max_batch: int = 32
    dynamic_width: bool = False
    max_wait_ms: float = 5.0
    max_queue: int = 1024
    max_images: int = 64
    max_request_bytes: int = 16 * 1024 * 1024
    max_pixels: int = MAX_PIXELS
    max_side: int = MAX_SIDE
    max_request_pixels: int = 16_000_000
    max_inflight_pixels: int = 32_000_000
    timeout_s: float = 30.0
    header_timeout_s: float = 10.0
    max_connections: int = 1000
    allowed_hosts: tuple[str, ...] = ()
    allow_cross_origin: bool = False
    postprocess: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))  # JSON gives a list
        if not 0 <= int(self.port) <= 65535:
            raise ValueError(f"serve setting port must be 0..65535, got {self.port}")
        if self.threads is not None and int(self.threads) < 1:
            raise ValueError(f"serve setting threads must be >= 1, got {self.threads}")
        for name in ("workers", "max_batch", "max_queue", "max_images", "max_request_bytes", "max_pixels", "max_side",
                     "max_request_pixels", "max_inflight_pixels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"serve setting {name} must be >= 1, got {getattr(self, name)}")
        if self.max_request_pixels > self.max_inflight_pixels:
            raise ValueError(f"serve setting max_request_pixels ({self.max_request_pixels}) must not exceed "
                             f"max_inflight_pixels ({self.max_inflight_pixels})")
        # written so that nan fails too (every comparison with nan is false); inf would never time out
        if not (0 <= self.max_wait_ms < math.inf and 0 < self.timeout_s < math.inf):
            raise ValueError(f"serve settings need finite max_wait_ms >= 0 and timeout_s > 0, got "
                             f"{self.max_wait_ms} and {self.timeout_s}")
        # upper bounds (crnn.limits): --threads 100000 grew memory and never answered; --timeout inf
        # crashed at start (it schedules the graceful-shutdown timer)
        for name, high in (("threads", MAX_THREADS), ("workers", MAX_WORKERS), ("max_batch", MAX_BATCH_SIZE),
                           ("max_images", MAX_BATCH_SIZE), ("max_connections", 1_000_000)):
            check_range(f"serve setting {name} ({FLAGS[name]})", getattr(self, name), 1, high)
        for key, low, top in (("timeout_s", 0.001, MAX_TIMEOUT_S), ("header_timeout_s", 0.001, MAX_TIMEOUT_S),
                              ("max_wait_ms", 0.0, MAX_TIMEOUT_S * 1000)):
            check_range(f"serve setting {key} ({FLAGS[key]})", getattr(self, key), low, top)

    def host_names(self) -> set[str]:
        """Host header names accepted (lower case, no port); contains ``*`` when any is."""
        if self.allowed_hosts:
            return {h.lower().strip("[]") for h in self.allowed_hosts}
        names = set(LOOPBACK_NAMES)
        if self.host not in ("0.0.0.0", "::", ""):
            names.add(self.host.lower().strip("[]"))
        return names

    def to_json(self) -> str:
        """The settings as JSON (passed to worker processes through the environment)."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        """Inverse of ``to_json``; unknown keys are an error."""
        return cls(**json.loads(text))
