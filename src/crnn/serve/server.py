"""Run the service under uvicorn: load the model, build the app, serve until SIGINT/SIGTERM."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from crnn.config import PostProcessConfig
from crnn.decoders import build_decoder
from crnn.predict import Recognizer, default_model
from crnn.serve.app import create_app
from crnn.serve.settings import ServeSettings

log = logging.getLogger("crnn.serve")
ENV_SETTINGS = "CRNN_SERVE_SETTINGS"  # how worker processes receive the settings


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
    # a spawned worker does not inherit the CLI's logging setup
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(load_recognizer(settings), settings)


def run(settings: ServeSettings) -> None:
    """Serve until interrupted; on SIGTERM/SIGINT, requests in flight finish before the process exits."""
    import uvicorn

    common: dict[str, Any] = {"host": settings.host, "port": settings.port, "log_level": "info",
                              # let requests in flight finish, but do not hang forever on a stuck client
                              "timeout_graceful_shutdown": int(settings.timeout_s) + 5}
    if settings.workers == 1:
        app = create_app(load_recognizer(settings), settings)  # load first: a bad model fails before binding
        uvicorn.run(app, **common)
    else:
        load_recognizer(settings)  # fail fast in the parent with the same message
        os.environ[ENV_SETTINGS] = settings.to_json()
        uvicorn.run("crnn.serve.server:app_from_env", factory=True, workers=settings.workers, **common)
