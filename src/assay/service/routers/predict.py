"""``POST /v1/models/{name}/predict``: online inference with every registered model.

``name`` is ``NAME``, ``NAME@ALIAS`` or ``NAME/VERSION``. The body is
``{"inputs": [...]}`` (texts for intent models, feature records for tabular models) with
optional ``top_k``, ``tenant_id``, ``record``, ``session_id``, ``user_id`` and ``request_id``;
the answer ``{"model": NAME, "version": V, "predictions": [...]}``. The work is
:class:`~assay.models._serving.ModelPool`'s (loading, micro-batching, swaps); this module reads
the body within limits, checks the key and the tenant, and maps errors to the one shape.

Recording (``"record": true``, or a ``session_id`` or ``user_id`` given) turns each prediction
into an event through the ingest pipeline (:func:`assay.models._predlog.record_predictions`).
The answer does not wait for their commit (``recorded`` says how many were ``queued``; a
failure is logged and counted, never the texts); with ``"record_wait": true`` it waits and says
what was stored (``accepted``, ``duplicates``, ``rejected``).

Rollouts: when the pool's router gives the model a routing, the version that answers is
chosen per user from the keyed pseudonym of ``user_id`` (the workspace's key, as ingest
computes it; the raw id is used for nothing else), else per ``request_id``; in shadow mode the
candidate also scores the request after the answer is sent, and its predictions are recorded
(when the request records) as shadow events of the candidate's version.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assay._errors import AssayError
from assay.models._predlog import record_predictions
from assay.models._serving import (
    InputError,
    LoadedModel,
    ModelPool,
    OverloadedError,
    PredictResult,
    RegistryUnavailableError,
)
from assay.privacy import pseudonym
from assay.service._body import decode, read_body
from assay.service._errors import ApiError, _from_assay, error_responses, quoted, redacted
from assay.service._state import ServiceState
from assay.service.deps import PredictKey, StateDep, tenant_for_predict
from assay.store import ApiKey

router = APIRouter(tags=["models"])
log = logging.getLogger("assay.service")


class PredictCreate(BaseModel):
    """A predict request."""

    model_config = ConfigDict(extra="forbid", strict=True)

    inputs: list[Any] = Field(
        description="Texts (intent models) or objects of feature values (tabular models)."
    )
    top_k: int = Field(3, description="How many classes each prediction ranks.")
    tenant_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="The tenant predicted for (a tenant key: its own, the default; an admin "
        "key must name it to record).",
    )
    record: bool = Field(False, description="Record each prediction as an event.")
    record_wait: bool = Field(
        False,
        description="Answer only after the recorded events are committed, with what was "
        "stored (otherwise the answer says how many were queued and does not wait).",
    )
    session_id: str | None = Field(
        None, min_length=1, max_length=256, description="Recorded with the predictions."
    )
    user_id: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="Recorded with the predictions (pseudonymised).",
    )
    request_id: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Names the recorded events (a retry with the same id is recorded once).",
    )


class RecordedPublic(BaseModel):
    queued: int
    accepted: int | None = None
    duplicates: int | None = None
    rejected: int | None = None


class PredictPublic(BaseModel):
    """A predict answer: the version that answered and one prediction per input."""

    model: str
    version: int
    predictions: list[dict[str, Any]]
    recorded: RecordedPublic | None = None


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictCreate.model_json_schema()}},
    }
}


def _parse(raw: bytes) -> PredictCreate:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(
            422,
            "unreadable_body",
            'the body is not valid JSON (UTF-8); send {"inputs": [...]}',
            rule="json",
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            422,
            "invalid_body",
            f'the body must be a JSON object (got {type(data).__name__}); send {{"inputs": [...]}}',
            rule="type",
        )
    try:
        return PredictCreate.model_validate(data)
    except ValidationError as exc:
        # An unknown field first: a misspelt "input" also makes "inputs" missing.
        first = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or None
        if first.get("type") == "extra_forbidden":
            message = (
                f"unknown field {quoted(str(where), 40)}; the body takes inputs, top_k, "
                "tenant_id, record, session_id, user_id and request_id"
            )
        else:
            message = f"{where}: {first.get('msg', 'invalid value')}; see /openapi.json"
        raise ApiError(
            422,
            "invalid_body",
            message,
            field=None if where is None else redacted(where, 40),
            rule=str(first.get("type", "invalid")),
        ) from None


def _input_error(exc: InputError) -> ApiError:
    if exc.too_large:
        return ApiError(413, "too_large", str(exc), field=exc.field, rule=exc.rule)
    return ApiError(422, "invalid_input", str(exc), field=exc.field, rule=exc.rule)


async def _record(
    state: ServiceState, body: PredictCreate, tenant: str | None, model: LoadedModel, out: Any
) -> dict[str, int]:
    if model.kind != "intent":
        raise ApiError(
            422,
            "invalid_body",
            "only intent models' predictions can be recorded as events (they fill intent and "
            "intent_confidence); drop record, session_id and user_id for this model",
            field="record",
            rule="kind",
        )
    if tenant is None:
        raise ApiError(
            422,
            "invalid_body",
            "an admin key must name tenant_id to record predictions (events belong to one "
            "tenant); add tenant_id, or drop record, session_id and user_id",
            field="tenant_id",
            rule="required",
        )
    future = _submit(state, body, tenant, out, shadow=False)
    queued = len(out.predictions)
    if not body.record_wait:
        future.add_done_callback(_recorded_in_background)
        return {"queued": queued}
    done = await asyncio.wrap_future(future)
    return {
        "queued": queued,
        "accepted": done.accepted,
        "duplicates": done.duplicates,
        "rejected": done.rejected,
    }


def _recorded_in_background(future: Future[Any]) -> None:
    """Log what went wrong with predictions recorded without waiting (counts, never texts)."""
    exc = future.exception()
    if exc is not None:
        log.error(
            "recording predictions as events failed (%s); the predictions were answered but "
            "not stored",
            type(exc).__name__,
        )
        return
    done = future.result()
    if done.rejected:
        log.warning(
            "%d of %d recorded prediction events were rejected by validation",
            done.rejected,
            done.accepted + done.duplicates + done.rejected,
        )


class _Seen:
    """The version a request resolved to, for the metrics of an error answered after it."""

    model: LoadedModel | None = None


async def _predict(
    request: Request, name: str, key: ApiKey, state: ServiceState, pool: ModelPool, seen: _Seen
) -> Response:
    settings = state.settings
    raw = await read_body(
        request,
        pool.config.max_body_bytes,
        timeout=settings.http_body_timeout_seconds,
        min_rate=settings.http_body_min_bytes_per_second,
    )
    media = (request.headers.get("content-type") or "").partition(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json (got {quoted(media, 60) if media else 'none'})",
            field="Content-Type",
        )
    body = _parse(decode(raw, request.headers.get("content-encoding"), pool.config.max_body_bytes))
    tenant = tenant_for_predict(key, body.tenant_id)
    user = None
    if pool.router is not None and body.user_id is not None:
        # The unit of assignment is the pseudonym stored for the user, never the raw id.
        user = pseudonym(state.writer_ws.secret, tenant or "", body.user_id)
    try:
        choice = await pool.choose(name, tenant_id=tenant, user=user, request_id=body.request_id)
        model = seen.model = choice.model
    except RegistryUnavailableError as exc:
        raise ApiError(503, "unavailable", str(exc), headers={"Retry-After": "1"}) from None
    span = trace.get_current_span()
    span.set_attribute("assay.model", model.ref.name)
    span.set_attribute("assay.model_version", model.ref.version)
    span.set_attribute("assay.inputs", len(body.inputs))
    if choice.routing is not None:
        span.set_attribute("assay.rollout", choice.routing.rollout_id)
        span.set_attribute("assay.shadow", choice.shadow is not None)
    try:
        out = await pool.predict_with(model, body.inputs, top_k=body.top_k)
    except InputError as exc:
        raise _input_error(exc) from None
    except OverloadedError as exc:
        raise ApiError(429, "too_many_requests", str(exc), headers={"Retry-After": "1"}) from None
    answer = out.to_dict()
    recording = body.record or body.session_id is not None or body.user_id is not None
    if recording:
        answer["recorded"] = await _record(state, body, tenant, model, out)
    if choice.shadow is not None:
        on_result = None
        if recording and tenant is not None and choice.shadow.kind == "intent":
            on_result = _shadow_recorder(state, body, tenant)
        pool.shadow(out, choice.shadow, body.inputs, top_k=body.top_k, on_result=on_result)
    return JSONResponse(answer)


def _shadow_recorder(
    state: ServiceState, body: PredictCreate, tenant: str
) -> Callable[[PredictResult], None]:
    """Records a candidate's shadow predictions as events of its version, marked shadow (no
    text: the answered events carry it once)."""

    def record(got: PredictResult) -> None:
        _submit(state, body, tenant, got, shadow=True).add_done_callback(_recorded_in_background)

    return record


def _submit(
    state: ServiceState, body: PredictCreate, tenant: str, out: PredictResult, *, shadow: bool
) -> Future[Any]:
    """Queue ``out``'s predictions as events of the version that made them."""
    return record_predictions(
        state.writer_ws,
        tenant_id=tenant,
        model=out.ref.name,
        version=out.ref.version,
        predictions=out.predictions,
        pipeline=state.pipeline,
        session_ids=body.session_id,
        user_ids=body.user_id,
        texts=None if shadow else body.inputs,
        request_id=body.request_id,
        shadow=shadow,
    )


@router.post(
    "/v1/models/{name:path}/predict",
    summary="Predict with a registered model",
    response_model=PredictPublic,
    responses=error_responses(401, 403, 408, 413, 415, 422, 429, 503),
    openapi_extra=_BODY_DOC,
)
async def post_predict(request: Request, name: str, key: PredictKey, state: StateDep) -> Response:
    """Predictions of the version ``name`` names (``NAME``: its champion, else its latest;
    ``NAME@ALIAS``; ``NAME/VERSION``) for ``inputs``.

    Intent models answer ``label`` (``oos`` below the threshold), ``probability`` and
    ``top_k``; tabular models also ``score`` (the calibrated probability of the label).
    Concurrent requests to one version are scored together (micro-batching).
    """
    pool = state.models
    assert pool is not None
    start = time.perf_counter()
    seen = _Seen()
    with state.obs.tracer.start_as_current_span("predict"):
        try:
            with state.limits.hold("predict", key):
                response = await _predict(request, name, key, state, pool, seen)
        except (ApiError, AssayError) as exc:
            err = exc if isinstance(exc, ApiError) else _from_assay(exc)
            _observe(state, seen.model, err.status, err.code, start)
            raise err from None
        _observe(state, seen.model, response.status_code, None, start)
        return response


def _observe(
    state: ServiceState, model: LoadedModel | None, status: int, code: str | None, start: float
) -> None:
    labels = (model.ref.name, str(model.ref.version)) if model is not None else ("", "")
    state.obs.on_predict(*labels, status, code, time.perf_counter() - start)


@router.post(
    "/v1/models/refresh",
    summary="Resolve the served models' aliases again now",
    responses=error_responses(401, 403),
)
async def post_refresh(key: PredictKey, state: StateDep) -> dict[str, Any]:
    """Resolve every alias (and bare name) served so far again now, instead of within
    ``--predict-refresh-seconds``, and load the versions they point at; admin keys only."""
    if key.tenant_id is not None:
        raise ApiError(
            403,
            "forbidden_scope",
            f"this key (id {key.key_id}) belongs to one tenant; refreshing the served models "
            "takes an admin key (--all-tenants) with the predict scope",
        )
    pool = state.models
    assert pool is not None
    refs = await pool.refresh()
    return {"data": [{"ref": r, "model": v.name, "version": v.version} for r, v in refs.items()]}
