"""Prometheus metrics (one registry per app) and the ASGI middleware that counts requests."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Only known paths become label values, so random URLs (scanners, fuzzers) cannot grow the series count.
KNOWN_PATHS = {"/", "/v1/recognize", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """The service's metrics; ``registry`` is what ``GET /metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("crnn_http_requests", "HTTP requests by path and status", ["path", "status"],
                                registry=r)
        self.errors = Counter("crnn_http_errors", "Answers with status >= 400 by path and error code",
                              ["path", "code"], registry=r)
        self.latency = Histogram("crnn_http_request_duration_seconds", "Request latency by path", ["path"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("crnn_http_requests_in_flight", "Requests being answered", registry=r)
        self.images = Counter("crnn_images", "Images recognised", registry=r)
        self.batch_size = Histogram("crnn_batch_size", "Images per forward pass", buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram("crnn_batch_duration_seconds", "Inference time per batch",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.queue = Gauge("crnn_queue_images", "Images waiting for a batch", registry=r)

    def observe_batch(self, size: int, seconds: float) -> None:
        """Record one forward pass of ``size`` images."""
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
        self.images.inc(size)


def label_path(path: str) -> str:
    """The path as a metric label: itself if it is a known route, else ``other``."""
    return path if path in KNOWN_PATHS else "other"


class MetricsMiddleware:
    """Counts every HTTP request with its final status and latency (also for errors and 404s)."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = label_path(scope["path"])
        status: dict[str, Any] = {"code": 500}  # stays 500 if the app raises before answering

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        t0 = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.latency.labels(path).observe(time.perf_counter() - t0)
            self.metrics.requests.labels(path, str(status["code"])).inc()
