"""``POST /v1/events``: telemetry in, one answer per event, acknowledged once durable."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import Counter
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from opentelemetry import trace
from pydantic import BaseModel

from assay._errors import SchemaError, WorkspaceError
from assay.ingest._request import Piece, RequestResult, TooManyEventsError, read_piece
from assay.ingest.jsonl import read_json_body
from assay.service._body import BodyKind, ClientAborted, body_kind, decode, read_body
from assay.service._errors import ApiError, ErrorDetail, error_responses
from assay.service._observe import route_of
from assay.service._state import ServiceState
from assay.service.deps import IngestKey, StateDep
from assay.store import ApiKey

router = APIRouter(tags=["events"])
log = logging.getLogger("assay.service")


class EventResultPublic(BaseModel):
    index: int
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    error: ErrorDetail | None


class IngestResultPublic(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResultPublic]


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"type": "object"}},
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/v1/events",
    summary="Send events",
    response_model=IngestResultPublic,
    responses={
        207: {"model": IngestResultPublic, "description": "Some events were rejected."},
        **error_responses(401, 403, 408, 413, 415, 422, 429, 503),
    },
    openapi_extra=_BODY_DOC,
)
async def post_events(request: Request, key: IngestKey, state: StateDep) -> Response:
    """Validate, redact, pseudonymise, deduplicate and store a batch of events.

    The body is a JSON array (``application/json``) or one event per line
    (``application/x-ndjson``), optionally ``Content-Encoding: gzip``. The answer has one
    result per event, by index; it is sent only once the accepted events are committed.
    200 when nothing was rejected, else 207.
    """
    settings = state.settings
    kind = body_kind(request.headers.get("content-type"))
    # The body is read before a slot is taken, under a per-key limit and a deadline, so that
    # slow senders hold their key's slots at most, never the ones every tenant shares.
    with state.limits.hold("ingest", key):
        state.receiving += 1
        try:
            raw = await read_body(
                request,
                settings.http_max_body_bytes,
                timeout=settings.http_body_timeout_seconds,
                min_rate=settings.http_body_min_bytes_per_second,
            )
        except ClientAborted as exc:
            state.obs.aborted_requests.labels(route_of(request)).inc()
            log.warning(
                "aborted request",
                extra={"assay": {"key_id": key.key_id, "bytes_in": exc.received}},
            )
            raise
        except ApiError as exc:
            state.obs.rejected_requests.labels(exc.code).inc()
            raise
        finally:
            state.receiving -= 1
        result = await _ingest(request, key, state, kind, raw)
    request.state.events = result.accepted + result.duplicates + result.rejected
    for (tenant, outcome), count in result.by_tenant.items():
        state.obs.events.labels(tenant, outcome).inc(count)
    return Response(
        result.to_json(),
        status_code=200 if result.rejected == 0 else 207,
        media_type="application/json",
    )


async def _ingest(
    request: Request, key: ApiKey, state: ServiceState, kind: BodyKind, raw: bytes
) -> RequestResult:
    """Parse ``raw`` and have its events committed, in one of the shared in-flight slots."""
    settings = state.settings
    if state.inflight >= settings.http_queue_requests:
        state.obs.rejected_requests.labels("queue_full").inc()
        raise ApiError(
            429,
            "too_many_requests",
            f"{state.inflight} ingest requests are in flight (limit "
            f"{settings.http_queue_requests}); retry after the Retry-After delay",
            headers={"Retry-After": "1"},
        )
    state.inflight += 1
    state.obs.queue_depth.set(state.inflight)
    try:
        loop = asyncio.get_running_loop()
        tracer = state.obs.tracer
        source = f"http:{key.key_id}"

        def read() -> Piece:
            with tracer.start_as_current_span("decode"):
                data = decode(
                    raw, request.headers.get("content-encoding"), settings.http_max_body_bytes
                )
            with tracer.start_as_current_span("parse"):
                try:
                    piece = read_piece(
                        data,
                        array=kind == "array",
                        max_events=settings.http_max_events,
                        key_tenant=key.tenant_id,
                        source=source,
                    )
                except TooManyEventsError as exc:
                    raise ApiError(413, "too_many_events", str(exc), rule="size") from None
                except SchemaError as exc:
                    raise ApiError(422, "unreadable_body", str(exc), rule="json") from None
                if state.parse_only and piece.data:
                    # The ceiling still parses the JSON; it only skips the pipeline.
                    piece.lines = sum(
                        b.table.num_rows for b in read_json_body(piece.data, array=False)
                    )
            piece.context = trace.get_current_span().get_span_context()
            return piece

        # In the request's context, so that the stage spans are children of its span.
        context = contextvars.copy_context()
        piece = await loop.run_in_executor(state.prepare_pool, context.run, read)
        if state.parse_only:
            return RequestResult(piece.lines, 0, 0, "[]", Counter())
        # Waits for the group this request joins to be prepared and committed.
        with tracer.start_as_current_span("commit"):
            try:
                future = state.pipeline.submit(piece)
            except WorkspaceError as exc:
                raise ApiError(503, "unavailable", str(exc), headers={"Retry-After": "1"}) from None
            group, k = await asyncio.wrap_future(future)
        result = group.answer(k)
        if result.accepted and state.profiles is not None:
            state.profiles.mark_dirty()  # a flag: the build runs in the background
        return result
    finally:
        state.inflight -= 1
        state.obs.queue_depth.set(state.inflight)
