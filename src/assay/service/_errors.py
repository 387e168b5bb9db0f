"""One JSON shape for every error the service answers, and the handlers that produce it.

Every error body is ``{"error": {"code": ..., "message": ..., "field": ..., "rule": ...}}``:
``code`` is a stable machine-readable name, ``message`` says what was expected, what came and
how to fix it (never raw text, raw ids or keys), ``field`` and ``rule`` name the offending input
where there is one.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from assay._errors import (
    AssayError,
    EngineError,
    LockTimeoutError,
    NotFoundError,
    PrivacyError,
    UsageError,
)
from assay.privacy import redact_text

log = logging.getLogger("assay.service")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    """What went wrong: a stable code, a message, and the field and rule where there is one."""

    code: str
    message: str
    field: str | None = None
    rule: str | None = None


class ErrorPublic(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the one error shape for ``statuses``."""
    descriptions = {
        401: "Missing, unknown or revoked key.",
        403: "The key lacks the scope, or asks for another tenant.",
        408: "The body arrived too slowly.",
        413: "Over the size or event-count limit.",
        415: "Unsupported Content-Type or Content-Encoding.",
        422: "A parameter or the body as a whole is invalid.",
        429: "Too many requests in flight (for the key, or in all); retry after Retry-After "
        "seconds.",
        503: "Busy or shutting down; retry.",
    }
    return {s: {"model": ErrorPublic, "description": descriptions[s]} for s in statuses}


def redacted(value: str, limit: int) -> str:
    """``value`` as an error may show it: redacted (assay.privacy), at most ``limit`` characters.

    Redacted before it is cut, so that a cut never leaves part of an email or a card number
    for the redaction to miss.
    """
    try:
        return redact_text(value[: limit * 8])[:limit]
    except AssayError:  # fails closed: show nothing rather than the raw value
        return "<UNREADABLE>"


def quoted(value: str, limit: int) -> str:
    """:func:`redacted`, quoted for a message."""
    return repr(redacted(value, limit))


class ApiError(Exception):
    """An error answered with ``status`` and the one error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        rule: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.rule = rule
        self.headers = headers or {}


def error_body(
    code: str, message: str, field: str | None = None, rule: str | None = None
) -> dict[str, Any]:
    """The error shape: ``{"error": {"code", "message", "field", "rule"}}``."""
    return {"error": {"code": code, "message": message, "field": field, "rule": rule}}


def _answer(exc: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.code, exc.message, exc.field, exc.rule),
        status_code=exc.status,
        headers=exc.headers,
    )


def _from_assay(exc: AssayError) -> ApiError:
    if isinstance(exc, NotFoundError):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, UsageError):
        return ApiError(422, "invalid_parameter", str(exc))
    if isinstance(exc, LockTimeoutError):
        return ApiError(503, "busy", f"{exc}; retry later", headers={"Retry-After": "5"})
    if isinstance(exc, PrivacyError):
        return ApiError(500, "privacy", "redaction failed; nothing was stored")
    if isinstance(exc, EngineError):
        return ApiError(503, "engine", str(exc))
    return ApiError(500, "internal", str(exc))


def _validation(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "header", "body")]
    name = ".".join(loc) or None
    expected = str(first.get("msg", "invalid value"))
    return ApiError(
        422,
        "invalid_parameter",
        f"parameter {name or '?'}: {expected}; see /openapi.json for the accepted values",
        field=name,
        rule=str(first.get("type", "invalid")),
    )


def install(app: FastAPI) -> None:
    """Map every exception to the one error shape."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _answer(exc)

    @app.exception_handler(AssayError)
    async def assay_error(request: Request, exc: AssayError) -> JSONResponse:
        return _answer(_from_assay(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _answer(_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = {
            404: f"no such resource {quoted(request.url.path, 200)}; see /openapi.json for the API",
            405: f"method {request.method} is not allowed here; see /openapi.json",
        }.get(exc.status_code, str(exc.detail))
        return JSONResponse(
            error_body(code, message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The type only: an exception's text could quote an input.
        log.error(
            "unexpected error",
            extra={"assay": {"path": request.url.path[:200], "error": type(exc).__name__}},
        )
        return JSONResponse(
            error_body("internal", "an internal error occurred; the server log has its type"),
            status_code=500,
        )
