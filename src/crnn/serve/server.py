"""Run the service under uvicorn: load the model, build the app, serve until SIGINT/SIGTERM."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import h11
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from crnn.config import PostProcessConfig
from crnn.decoders import build_decoder
from crnn.predict import Recognizer, default_model
from crnn.serve.app import create_app
from crnn.serve.settings import ServeSettings

log = logging.getLogger("crnn.serve")
ENV_SETTINGS = "CRNN_SERVE_SETTINGS"  # how worker processes receive the settings


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for request headers and a cap on open connections.

    uvicorn has neither: its keep-alive timer starts only after a first response, and any byte
    received cancels it, so a client that opens a connection and sends a partial header line now
    and then holds it forever (an audit held 19,985 such connections; none timed out). Here a
    connection has ``header_timeout_s`` from when it opens (or from its last response) to complete
    its request headers, however it trickles them, and connections past ``max_connections`` are
    closed as they arrive. The class attributes are set from the settings before serving
    (``configure``), in each worker process.
    """

    header_timeout_s: float = ServeSettings.header_timeout_s
    max_connections: int = ServeSettings.max_connections
    _deadline: float = 0.0

    @classmethod
    def configure(cls, settings: ServeSettings) -> None:
        """Take the header timeout and the connection cap from ``settings``."""
        cls.header_timeout_s, cls.max_connections = settings.header_timeout_s, settings.max_connections

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.abort()  # refused now: no byte of a new connection is worth more than the held ones
            return
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # cancels the timer; a complete request header starts the request
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._rearm()  # still waiting for headers: the deadline stands, however many bytes came

    def on_response_complete(self) -> None:
        super().on_response_complete()  # arms uvicorn's keep-alive timer, which any byte would cancel
        if not self.transport.is_closing():
            self._deadline = self.loop.time() + self.header_timeout_s

    def _arm_header_deadline(self) -> None:
        self._deadline = self.loop.time() + self.header_timeout_s
        self._rearm()

    def _rearm(self) -> None:
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_at(self._deadline, self._header_timeout)

    def _header_timeout(self) -> None:
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def load_recognizer(settings: ServeSettings) -> Recognizer:
    """The recognizer for ``settings.model`` (a ``.pt`` checkpoint or an ``.onnx`` model).

    Raises:
        FileNotFoundError: no model there (or, with no --model, no bundled model installed).
        ValueError: the file is not a model this version can load.
    """
    if settings.model is None:
        if not Path(default_model()).is_file():
            raise FileNotFoundError(f"no --model given and the bundled model {default_model()} is not installed: "
                                    "pass --model PATH (a .pt checkpoint or an exported .onnx model)")
    elif not Path(settings.model).exists() and not Path(settings.model + ".pt").exists():
        raise FileNotFoundError(f"--model {settings.model} not found")
    try:
        threads = settings.threads
        if threads is None and settings.workers > 1:  # the free cores, shared among the worker processes
            from crnn.threads import default_threads

            threads = max(1, default_threads() // settings.workers)
        rec = Recognizer.from_checkpoint(settings.model, batch_size=settings.max_batch, num_threads=threads,
                                         dynamic_width=settings.dynamic_width)
    except ImportError as e:  # e.g. an .onnx model without onnxruntime or its back end
        raise ValueError(f"cannot load model {settings.model or default_model()}: {e}") from e
    if settings.postprocess:
        base = getattr(rec.decoder, "cfg", None) or PostProcessConfig()
        try:
            cfg = dataclasses.replace(base, **settings.postprocess)
        except TypeError as e:
            raise ValueError(f"serve postprocess settings: {e}") from None
        rec.decoder = build_decoder(cfg, rec.charset)
    return rec


def app_from_env() -> FastAPI:
    """App factory for uvicorn worker processes (``--workers > 1``): settings come from the environment."""
    settings = ServeSettings.from_json(os.environ[ENV_SETTINGS])
    GuardedH11Protocol.configure(settings)
    # a spawned worker does not inherit the CLI's logging setup
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(load_recognizer(settings), settings)


def run(settings: ServeSettings) -> None:
    """Serve until interrupted; on SIGTERM/SIGINT, requests in flight finish before the process exits."""
    import uvicorn

    GuardedH11Protocol.configure(settings)
    common: dict[str, Any] = {"host": settings.host, "port": settings.port, "log_level": "info",
                              # header deadline and connection cap (slowloris clients); a class path so
                              # worker processes import it too
                              "http": "crnn.serve.server:GuardedH11Protocol",
                              # let requests in flight finish, but do not hang forever on a stuck client
                              "timeout_graceful_shutdown": int(settings.timeout_s) + 5}
    if settings.workers == 1:
        app = create_app(load_recognizer(settings), settings)  # load first: a bad model fails before binding
        uvicorn.run(app, **common)
    else:
        load_recognizer(settings)  # fail fast in the parent with the same message
        os.environ[ENV_SETTINGS] = settings.to_json()
        uvicorn.run("crnn.serve.server:app_from_env", factory=True, workers=settings.workers, **common)
