"""``create_app(recognizer, settings)``: the FastAPI app of ``crnn serve``.

Routes: ``POST /v1/recognize`` (multipart ``files`` or JSON base64), ``GET /healthz``, ``GET /readyz``,
``GET /metrics`` (Prometheus text), ``GET /`` (a page to try it). A request's images are decoded in
a thread pool and recognised by the micro-batcher's inference thread: the event loop only does I/O.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

import crnn
from crnn.predict import Recognizer
from crnn.serve.batcher import MicroBatcher, OverloadedError, recognize
from crnn.serve.guard import HostOriginGuard, PixelBudget, return_memory
from crnn.serve.metrics import Metrics, MetricsMiddleware, label_path
from crnn.serve.schemas import (
    RECOGNIZE_BODY,
    RECOGNIZE_ERRORS,
    ApiError,
    ErrorResponse,
    Health,
    Readiness,
    Recognition,
    RecognizeResponse,
)
from crnn.serve.settings import ServeSettings
from crnn.serve.uploads import decode_all, measure_all, read_uploads

log = logging.getLogger("crnn.serve")
INDEX_HTML = Path(__file__).parent / "static" / "index.html"
LARGE_REQUEST_PIXELS = 1_000_000  # after a request this large, freed memory is handed back to the OS
router = APIRouter()


def _error_response(request: Request, e: ApiError) -> JSONResponse:
    """An ``ApiError`` as its JSON body, counted in the metrics by route and code."""
    request.app.state.metrics.errors.labels(label_path(request.url.path), e.code).inc()
    body = ErrorResponse(detail=e.detail, code=e.code, item=e.item, filename=e.filename)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=e.status, headers=e.headers)


async def _api_error(request: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, ApiError)  # registered for ApiError only
    return _error_response(request, e)


async def _invalid_request(request: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, RequestValidationError)  # registered for RequestValidationError only
    err = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in err["loc"])
    return _error_response(request, ApiError(422, "invalid_parameter", f"{where}: {err['msg']}"))


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the batcher (after one warm-up pass) before serving; on shutdown finish every queued image."""
    recognizer: Recognizer = app.state.recognizer
    settings: ServeSettings = app.state.settings
    metrics: Metrics = app.state.metrics
    infer = functools.partial(recognize, recognizer)
    batcher = MicroBatcher(infer, settings.max_batch, settings.max_wait_ms / 1000.0, settings.max_queue,
                           on_batch=metrics.observe_batch)
    metrics.queue.set_function(lambda: batcher.pending)
    batcher.start()
    # The first forward pass is slow (allocations, thread pools): pay it before saying ready, on an
    # image of the model's own input size (images go through recognizer.spec like everywhere else).
    _, h, w = recognizer.spec.image_shape
    await batcher.run_in_worker(lambda: infer([np.full((h, w, 3), 255, np.uint8)], [False]))
    app.state.batcher = batcher
    log.info("crnn serve ready: backend=%s max_batch=%d max_wait_ms=%g", recognizer.backend,
             settings.max_batch, settings.max_wait_ms)
    try:
        yield
    finally:
        await batcher.stop()  # in-flight requests have finished by now (uvicorn waits for them)
        log.info("crnn serve stopped")


def create_app(recognizer: Recognizer, settings: ServeSettings | None = None) -> FastAPI:
    """The service around a loaded ``Recognizer``.

    The batcher starts (with one warm-up pass) in the app's lifespan and, on shutdown, finishes
    every queued image before stopping; use ``with TestClient(app)`` or an ASGI server that runs
    lifespan events (uvicorn does). The routes find the recognizer, settings, metrics and pixel
    budget in ``app.state``.
    """
    settings = settings or ServeSettings()
    metrics = Metrics()
    app = FastAPI(title="crnn", version=crnn.__version__, lifespan=_lifespan,
                  description="CRNN scene-text recognition of cropped word images, with dynamic batching.")
    app.add_middleware(HostOriginGuard, hosts=settings.host_names(), allow_cross_origin=settings.allow_cross_origin,
                       metrics=metrics)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # added last = outermost: counts the guard's refusals
    app.state.recognizer = recognizer
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.pixel_budget = PixelBudget(settings.max_inflight_pixels)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.include_router(router)
    return app


def _running_batcher(app: FastAPI) -> MicroBatcher:
    batcher: MicroBatcher | None = getattr(app.state, "batcher", None)
    if batcher is None or not batcher.running:
        raise ApiError(503, "not_ready", "the model is not loaded or the service is shutting down",
                       headers={"Retry-After": "1"})
    return batcher


@router.post("/v1/recognize", response_model=RecognizeResponse, response_model_exclude_none=True,
             responses=RECOGNIZE_ERRORS, openapi_extra={"requestBody": RECOGNIZE_BODY},
             summary="Recognise the text of one or more cropped word images")
async def recognize_images(
    request: Request,
    char_confidences: bool = Query(False, description="also return the probability of each symbol"),
    char_positions: bool = Query(False, description="also return each symbol's x range in the image's pixels"),
) -> RecognizeResponse:
    """Send images as multipart parts named `files` (repeat the field) or as JSON `{"images": [base64, ...]}`.

    Results come in input order. If any image is unusable the whole request is rejected and
    `item` names the first bad one, so results never silently skip an image.
    """
    batcher = _running_batcher(request.app)
    settings: ServeSettings = request.app.state.settings
    budget: PixelBudget = request.app.state.pixel_budget
    try:  # a client that never finishes sending its body must not hold a connection forever
        uploads = await asyncio.wait_for(read_uploads(request, settings), settings.timeout_s)
    except asyncio.TimeoutError as e:
        raise ApiError(408, "body_timeout", f"the request body was not received within {settings.timeout_s:g} s") from e
    pixels = await run_in_threadpool(measure_all, uploads, settings)  # headers only: 413 before decoding
    if not budget.reserve(pixels):
        raise ApiError(503, "overloaded", f"requests in progress hold {budget.used} decoded pixels; this one's "
                       f"{pixels} would pass the limit of {budget.limit}", headers={"Retry-After": "1"})
    try:
        images = await run_in_threadpool(decode_all, uploads, settings)
        del uploads
        preds = await asyncio.wait_for(batcher.submit(images, char_confidences or char_positions), settings.timeout_s)
    except asyncio.TimeoutError as e:
        raise ApiError(504, "timeout", f"{len(images)} images were not recognised within "
                       f"{settings.timeout_s:g} s") from e
    except OverloadedError as e:
        budget.note_overload()
        raise ApiError(503, "overloaded", str(e), headers={"Retry-After": "1"}) from e
    except ApiError:
        raise
    except Exception as e:
        raise ApiError(500, "inference_failed", f"inference failed: {type(e).__name__}: {e}") from e
    finally:
        budget.release(pixels)
        images = []
        if pixels >= LARGE_REQUEST_PIXELS:
            await run_in_threadpool(return_memory)
    return RecognizeResponse(results=[
        Recognition(text=p.text, confidence=min(max(p.confidence, 0.0), 1.0),
                    char_confidences=list(p.char_confidences) if char_confidences else None,
                    char_positions=[list(x) for x in p.char_positions] if char_positions else None)
        for p in preds])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    return Health()


@router.get("/readyz", response_model=Readiness, summary="Readiness: model loaded, batcher running, not overloaded",
            responses={503: {"model": Readiness, "description": "starting up, shutting down or overloaded"}})
async def readyz(request: Request) -> Response:
    state = request.app.state
    batcher: MicroBatcher | None = getattr(state, "batcher", None)
    running = batcher is not None and batcher.running
    overloaded = (batcher is not None and running
                  and (state.pixel_budget.overloaded or batcher.pending >= state.settings.max_queue))
    ready = running and not overloaded
    body = Readiness(ready=ready, backend=state.recognizer.backend, max_batch=state.settings.max_batch,
                     overloaded=overloaded)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def prometheus_metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(INDEX_HTML, media_type="text/html")
