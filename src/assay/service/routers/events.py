"""``POST /v1/events``: telemetry in, one answer per event, acknowledged once durable."""

from __future__ import annotations

import asyncio
import contextvars
import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from opentelemetry import trace
from pydantic import BaseModel

from assay._errors import SchemaError, WorkspaceError
from assay.ingest._request import Piece, TooManyEventsError, read_piece
from assay.ingest.jsonl import read_json_body
from assay.service._body import body_kind, decode, read_body
from assay.service._errors import ApiError, ErrorDetail, error_responses
from assay.service.deps import IngestKey, StateDep

router = APIRouter(tags=["events"])


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
        **error_responses(401, 403, 413, 415, 422, 429, 503),
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
        try:
            raw = await read_body(request, settings.http_max_body_bytes)
        except ApiError:
            state.obs.rejected_requests.labels("too_large").inc()
            raise
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
            answer = {"accepted": piece.lines, "duplicates": 0, "rejected": 0, "results": []}
            return Response(json.dumps(answer), media_type="application/json")
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
    finally:
        state.inflight -= 1
        state.obs.queue_depth.set(state.inflight)
    request.state.events = result.accepted + result.duplicates + result.rejected
    for (tenant, outcome), count in result.by_tenant.items():
        state.obs.events.labels(tenant, outcome).inc(count)
    return Response(
        result.to_json(),
        status_code=200 if result.rejected == 0 else 207,
        media_type="application/json",
    )
