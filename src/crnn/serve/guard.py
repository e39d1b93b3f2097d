"""What protects ``crnn serve`` from hostile callers beyond per-request limits.

* ``HostOriginGuard``: the Host header must name this service (a DNS-rebinding page cannot reach a
  service on localhost through its own domain name), and a browser request from another origin is
  refused unless ``allow_cross_origin``: a web page the user visits cannot drive the local service.
* ``PixelBudget``: decoded pixels held by all requests in progress are bounded, so concurrent requests
  of large images cannot exhaust memory; a request beyond the budget is refused (503) and counted as
  overload, which ``/readyz`` reports.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import time
import urllib.parse
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from crnn.serve.metrics import Metrics, label_path

OVERLOAD_MEMORY_S = 2.0  # /readyz reports overload this long after a request was refused for it


def _host_name(value: str) -> str:
    """``name`` of ``name[:port]`` or ``[v6]:port``, lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostOriginGuard:
    """ASGI middleware: 400 for a Host header not in ``hosts``, 403 for a cross-origin browser request."""

    def __init__(self, app: ASGIApp, hosts: set[str], allow_cross_origin: bool, metrics: Metrics | None = None):
        self.app = app
        self.hosts = hosts
        self.allow_cross_origin = allow_cross_origin
        self.metrics = metrics  # refusals are counted in crnn_http_errors_total like the app's own errors

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if "*" not in self.hosts and _host_name(host) not in self.hosts:
            return 400, "host_not_allowed", (f"Host header {host!r} is not a name of this service; allowed: "
                                             f"{', '.join(sorted(self.hosts))} (crnn serve --allowed-host NAME)")
        if self.allow_cross_origin:
            return None
        origin = headers.get("origin")
        if origin is not None:
            u = urllib.parse.urlsplit(origin)
            if origin == "null" or u.netloc.lower() != host.lower():
                return 403, "cross_origin", (f"cross-origin request from {origin!r} refused "
                                             "(crnn serve --allow-cross-origin accepts them)")
        if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return 403, "cross_origin", "cross-site browser request refused (crnn serve --allow-cross-origin)"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, code, detail = refusal
        if self.metrics is not None:
            self.metrics.errors.labels(label_path(scope["path"]), code).inc()
        body = json.dumps({"detail": detail, "code": code}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class PixelBudget:
    """Decoded pixels reserved by requests in progress (used from the event loop only, so no lock)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.refused_at = -1e9

    def reserve(self, pixels: int) -> bool:
        """Take ``pixels`` from the budget; False (and remembered as overload) if they do not fit."""
        if self.used and self.used + pixels > self.limit:
            self.refused_at = time.monotonic()
            return False
        self.used += pixels
        return True

    def release(self, pixels: int) -> None:
        self.used -= pixels

    def note_overload(self) -> None:
        """Remember that a request was refused for overload (e.g. a full queue)."""
        self.refused_at = time.monotonic()

    @property
    def overloaded(self) -> bool:
        """A request was refused for overload within the last ``OVERLOAD_MEMORY_S`` seconds."""
        return time.monotonic() - self.refused_at < OVERLOAD_MEMORY_S


def _libc_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def return_memory() -> None:
    """Give freed heap memory back to the OS (glibc keeps it in per-thread arenas otherwise).

    Called after a request that decoded large images: without it the pool threads' arenas kept the
    peak of the largest requests resident long after they were answered.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
