"""Request and response models of the HTTP API, and the one error type every handler raises."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ApiError(Exception):
    """An answer other than 200: HTTP status, a stable machine code and a message naming the bad item."""

    def __init__(self, status: int, code: str, detail: str, item: int | None = None, filename: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.item, self.filename, self.headers = item, filename, headers


class ErrorResponse(BaseModel):
    """Body of every error answer."""

    detail: str = Field(description="what is wrong, naming the bad item")
    code: str = Field(description="stable machine-readable reason, e.g. not_an_image, too_many_images")
    item: int | None = Field(None, description="0-based index of the bad image in the request, if one is")
    filename: str | None = Field(None, description="its uploaded file name, if it had one")


class Recognition(BaseModel):
    """The recognised word of one image."""

    text: str
    confidence: float = Field(ge=0.0, le=1.0, description="mean probability of the kept CTC steps (0 if none)")
    char_confidences: list[float] | None = Field(
        None, description="probability of each recognised symbol; present only with ?char_confidences=true")
    char_positions: list[list[float]] | None = Field(
        None, description="[x0, x1] of each recognised symbol in the image's pixels (from the CTC frames); "
                          "present only with ?char_positions=true")


class RecognizeResponse(BaseModel):
    """One result per image, in the order the images were sent."""

    results: list[Recognition]


class RecognizeJSON(BaseModel):
    """The JSON form of a request: base64-encoded image files (data: URLs are accepted too)."""

    model_config = ConfigDict(extra="forbid")
    images: list[str] = Field(min_length=1, description="base64 of each image file (PNG, JPEG, WebP, ...)")


class Health(BaseModel):
    """Liveness: the process answers."""

    status: str = "ok"


class Readiness(BaseModel):
    """Readiness: the model is loaded, warmed up and the batcher is running."""

    ready: bool
    backend: str
    max_batch: int
    overloaded: bool = False  # requests were refused for overload in the last 2 s (queue or pixel budget full)


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


RECOGNIZE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("malformed request: empty body, bad multipart, invalid JSON, no `files` field"),
    408: _error("the request body did not arrive within the timeout"),
    413: _error("request body, number of images, or one image's pixels over the limit"),
    415: _error("content type is neither multipart/form-data nor application/json"),
    422: _error("an item is not a usable image (not an image, corrupt, truncated, zero-size, bad base64) "
                "or the JSON / query does not match the schema; `item` names it and nothing is recognised"),
    500: _error("inference failed for this request's batch (the service keeps running)"),
    503: _error("not ready, shutting down, or queue full: retry later (see Retry-After)"),
    504: _error("the images were not recognised within the request timeout"),
}

RECOGNIZE_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {"type": "object", "required": ["files"], "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                          "description": "one part per image, all with field name `files`"}}},
        },
        "application/json": {"schema": RecognizeJSON.model_json_schema()},
    },
}
