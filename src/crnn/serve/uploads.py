"""Read a recognition request's images (multipart or JSON base64) within the size limits."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from crnn.data.images import ImageRejectedError, decode_image, image_size
from crnn.serve.schemas import ApiError, RecognizeJSON
from crnn.serve.settings import ServeSettings

MULTIPART = "multipart/form-data"
JSON = "application/json"
Upload = tuple[str, str | None, bytes]  # (item name for messages, client file name, bytes)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"request body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _multipart(request: Request, body: bytes, settings: ServeSettings) -> list[Upload]:
    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:  # the count is checked below, so that too many files is a 413 like every other limit
        form = await Request(request.scope, replay).form(max_files=10_000, max_fields=100)
    except (MultiPartException, HTTPException) as e:
        raise ApiError(400, "bad_multipart", f"cannot parse the multipart body: {getattr(e, 'detail', e)}") from e
    try:
        parts = form.getlist("files")
        if not parts:
            raise ApiError(400, "no_images", "multipart body has no `files` field (send each image as `files`)")
        _check_count(len(parts), settings)
        uploads: list[Upload] = []
        for i, part in enumerate(parts):
            if not isinstance(part, UploadFile):
                raise ApiError(422, "not_a_file", f"files[{i}] is a text field, not a file upload", item=i)
            uploads.append((f"files[{i}] ({part.filename})" if part.filename else f"files[{i}]", part.filename,
                            await part.read()))
        return uploads
    finally:
        await form.close()


def _json(body: bytes, settings: ServeSettings) -> list[Upload]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {str(e)[:200]}") from e
    if isinstance(payload, dict) and isinstance(payload.get("images"), list):
        _check_count(len(payload["images"]), settings)
    try:
        req = RecognizeJSON.model_validate(payload)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise ApiError(422, "invalid_request", f"JSON body does not match {{\"images\": [base64, ...]}}: "
                       f"{where}: {err['msg']}") from e
    uploads: list[Upload] = []
    for i, text in enumerate(req.images):
        data = text
        if text.startswith("data:"):
            # A data URI is "data:<mime>[;base64],<payload>"; without the comma there is no payload.
            header, comma, data = text.partition(",")
            if not comma:
                raise ApiError(422, "bad_base64", f"images[{i}] is a data URI without a comma before its "
                               f"base64 payload: {header[:40]!r}", item=i)
        try:
            raw = base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError) as e:
            raise ApiError(422, "bad_base64", f"images[{i}] is not valid base64: {e}", item=i) from e
        uploads.append((f"images[{i}]", None, raw))
    return uploads


def _check_count(n: int, settings: ServeSettings) -> None:
    if n > settings.max_images:
        raise ApiError(413, "too_many_images", f"{n} images in one request; the limit is {settings.max_images}")


async def read_uploads(request: Request, settings: ServeSettings) -> list[Upload]:
    """The request's image files, in order.

    Raises:
        ApiError: 415 wrong content type, 413 over a limit, 400 malformed body, 422 bad item.
    """
    mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if mime not in (MULTIPART, JSON):
        raise ApiError(415, "unsupported_media_type", f"content type {mime or '(none)'!r} is not supported: "
                       f"send {MULTIPART} with `files` parts or {JSON} {{\"images\": [base64, ...]}}")
    body = await read_body(request, settings.max_request_bytes)
    if not body:
        raise ApiError(400, "empty_body", "request body is empty: send at least one image")
    uploads = await _multipart(request, body, settings) if mime == MULTIPART else _json(body, settings)
    return uploads


def measure_all(uploads: list[Upload], settings: ServeSettings) -> int:
    """Pixels the request's images will take once decoded, from their headers (no pixel is decoded).

    Raises:
        ApiError: an image is unreadable (422) or over the per-image limit, or all of them together over
            ``max_request_pixels`` (413); the message names the image or the limit.
    """
    total = 0
    for i, (name, filename, data) in enumerate(uploads):
        try:
            w, h = image_size(data, name, settings.max_pixels, settings.max_side)
        except ImageRejectedError as e:
            raise ApiError(e.status, e.code, str(e), item=i, filename=filename) from e
        total += w * h
    if total > settings.max_request_pixels:
        raise ApiError(413, "request_too_large", f"the request's {len(uploads)} images have {total} pixels in "
                       f"all; the limit is {settings.max_request_pixels} pixels per request")
    return total


def decode_all(uploads: list[Upload], settings: ServeSettings) -> list[Any]:
    """Decode every upload to BGR uint8; the first bad one rejects the request (``ApiError`` naming it)."""
    images = []
    for i, (name, filename, data) in enumerate(uploads):
        try:
            images.append(decode_image(data, name, settings.max_pixels, settings.max_side))
        except ImageRejectedError as e:
            raise ApiError(e.status, e.code, str(e), item=i, filename=filename) from e
    return images
