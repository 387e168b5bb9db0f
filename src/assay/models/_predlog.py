"""Predictions as telemetry: each prediction of a served model becomes one event.

:func:`record_predictions` turns the predictions of one request into events of schema v1 and
hands them to the same ingest pipeline as ``POST /v1/events``: validated, user ids
pseudonymised, text redacted, deduplicated by (``tenant_id``, ``event_id``), committed once.
The scan, drift and regression checks then watch the model like any other release.

One event per prediction:

====================== =================================================================
``event_id``           ``pred:<request_id>:<i>`` (``i``: the prediction's index). Sending
                       the same request id again gives duplicates, not new events.
``event_time``         ``at`` (default: now, UTC), epoch milliseconds.
``tenant_id``          the caller's tenant (a tenant key predicts for its own tenant only).
``user_id``            the request's user id; pseudonymised at ingest like every user id.
                       Without one: :data:`UNKNOWN_USER` (one user per tenant).
``session_id``         the request's session id; without one ``pred:<request_id>`` (each
                       request its own session).
``event_type``         ``turn`` (a prediction is made on a user's turn).
``intent``             the predicted label (the OOS label below the threshold).
``intent_confidence``  the label's probability (the highest class probability), in [0, 1].
``model_version``      ``<model>/<version>``, the registry name and version (``intent/3``):
                       an alias moving to a new version starts a new release.
``text``               only when the workspace keeps text (setting ``store_text``); the
                       pipeline redacts it before it is stored in the content table.
``attributes``         ``{"source": "predict"}``, to tell these turns from the assistant's own;
                       a rollout's shadow predictions (``shadow=True``: the candidate's, never
                       answered) also ``"shadow": "true"``, and their ids are
                       ``shadow:<request_id>:<i>``. Leave them out of user outcome metrics.
====================== =================================================================

Cheap per request: building a request's events costs ~11 us, and the events of the requests
of one :data:`FLUSH_SECONDS` window go to the pipeline as one piece per tenant, so one commit
(20-40 ms of CPU, whatever its size) serves them all.

Raw text is never logged (nothing here logs it) and never stored unredacted. If the assistant
also sends its own ``turn`` events for the same turns, turn counts double: filter on
``attributes['source']`` or record predictions only where the assistant does not.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from assay._errors import UsageError
from assay.ingest._request import Piece, RequestResult

if TYPE_CHECKING:
    from assay.ingest._request import GroupOutcome, RequestPipeline
    from assay.models._intent import Prediction
    from assay.store import Workspace

#: The ``user_id`` of predictions made without one.
UNKNOWN_USER = "predict:unknown"
#: ``attributes['source']`` of prediction events.
SOURCE = "predict"


@dataclass(frozen=True)
class RecordedPredictions:
    """What the pipeline did with one request's prediction events."""

    event_ids: list[str]
    accepted: int
    duplicates: int
    rejected: int
    #: One result per event, by index (``status`` and ``error`` as in ``POST /v1/events``).
    results: list[dict[str, Any]]


def _aligned(name: str, values: str | Sequence[str | None] | None, n: int) -> list[str | None]:
    if values is None or isinstance(values, str):
        return [values] * n
    out = list(values)
    if len(out) != n:
        raise UsageError(
            f"{name} must be one id or one per prediction: expected {n} values, got {len(out)}"
        )
    return out


def _label_and_confidence(prediction: Prediction | Mapping[str, Any]) -> tuple[str, float]:
    if isinstance(prediction, Mapping):
        return str(prediction["label"]), float(prediction["probability"])
    return prediction.label, prediction.probability


class RequestFields(TypedDict, total=False):
    """The optional per-request fields of :func:`record_predictions` (see there)."""

    session_ids: str | Sequence[str | None] | None
    user_ids: str | Sequence[str | None] | None
    texts: Sequence[str] | None
    request_id: str | None
    at: datetime | None
    shadow: bool


def prediction_events(
    *,
    tenant_id: str,
    model: str,
    version: int | str,
    predictions: Sequence[Prediction | Mapping[str, Any]],
    **fields: Unpack[RequestFields],
) -> list[dict[str, Any]]:
    """The events (schema v1 dicts, before ingest) for one request's predictions.

    Pure: no workspace, no redaction, no pseudonymisation (the pipeline does those). ``texts``
    are put in the events as given: pass them only when the workspace keeps text.
    See the module docstring for each field.
    """
    n = len(predictions)
    sessions = _aligned("session_ids", fields.get("session_ids"), n)
    users = _aligned("user_ids", fields.get("user_ids"), n)
    texts = fields.get("texts")
    if texts is not None and len(texts) != n:
        raise UsageError(f"texts must be one per prediction: expected {n}, got {len(texts)}")
    rid = fields.get("request_id") or uuid.uuid4().hex
    at = fields.get("at")
    millis = int((at.timestamp() if at is not None else time.time()) * 1000)
    release = f"{model}/{version}"
    shadow = bool(fields.get("shadow"))
    prefix = "shadow" if shadow else "pred"
    attributes = {"source": SOURCE, "shadow": "true"} if shadow else {"source": SOURCE}
    events = []
    for i, prediction in enumerate(predictions):
        label, confidence = _label_and_confidence(prediction)
        event: dict[str, Any] = {
            "event_id": f"{prefix}:{rid}:{i}",
            "event_time": millis,
            "tenant_id": tenant_id,
            "user_id": users[i] or UNKNOWN_USER,
            "session_id": sessions[i] or f"pred:{rid}",
            "event_type": "turn",
            "intent": label,
            "intent_confidence": confidence,
            "model_version": release,
            "attributes": dict(attributes),
        }
        if texts is not None:
            event["text"] = texts[i]
        events.append(event)
    return events


def record_predictions(
    workspace: Workspace,
    *,
    tenant_id: str,
    model: str,
    version: int | str,
    predictions: Sequence[Prediction | Mapping[str, Any]],
    pipeline: RequestPipeline | None = None,
    flush_seconds: float | None = None,
    **fields: Unpack[RequestFields],
) -> Future[RecordedPredictions]:
    """Record one request's predictions as events, through the ingest pipeline.

    Parameters
    ----------
    workspace : the workspace the events go to (its ``store_text`` setting decides whether
        ``texts`` are kept, redacted).
    tenant_id : the tenant the predictions were made for.
    model, version : the registry name and the resolved version (``model_version`` is
        ``"<model>/<version>"``).
    predictions : :class:`~assay.models.IntentPredictor` predictions, or dicts with ``label``
        and ``probability`` (``Prediction.to_dict()``).
    pipeline : the service's :class:`~assay.ingest._request.RequestPipeline` (``state.pipeline``).
    flush_seconds : how long the events wait for other requests' before they go to the
        pipeline together (default :data:`FLUSH_SECONDS`; 0: at once). Only with ``pipeline``.
    session_ids, user_ids : one id for the whole request, one per prediction, or None.
    texts : the raw input texts, one per prediction; used only if the workspace keeps text.
    request_id : makes the event ids (``pred:<request_id>:<i>``); a retry with the same id is
        recorded once. Default: a random one.
    at : the time of the predictions (default now).
    shadow : the predictions are a rollout candidate's in shadow (scored, never answered):
        marked ``attributes["shadow"] = "true"``, ids ``shadow:<request_id>:<i>``.

    Returns
    -------
    concurrent.futures.Future of RecordedPredictions
        With ``pipeline``: returns at once (the events are queued, nothing blocks; safe in an
        async handler; ~11 us per call measured), and the future completes once the events are
        committed, with those of the other requests of the same ``flush_seconds`` window (one
        commit for all). Awaiting it (``await asyncio.wrap_future(f)``) adds the window and the
        commit (tens of ms) to a request; a server that need not tell the caller what was
        stored can leave it running instead. Without ``pipeline``: blocks while one
        :class:`~assay.ingest.Ingestor` stores the events (call it from a worker thread, not
        from an event loop), and returns a done future.

    Raises
    ------
    UsageError
        If ids or texts are not aligned with the predictions.
    """
    if not workspace.settings.store_text:
        fields = {**fields, "texts": None}
    events = prediction_events(
        tenant_id=tenant_id, model=model, version=version, predictions=predictions, **fields
    )
    source = f"predict:{model}/{version}"
    ids = [e["event_id"] for e in events]
    data = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events).encode()
    if not events:
        done: Future[RecordedPredictions] = Future()
        done.set_result(RecordedPredictions([], 0, 0, 0, []))
        return done
    if pipeline is not None:
        wait = FLUSH_SECONDS if flush_seconds is None else flush_seconds
        return _batcher(pipeline).add(tenant_id, source, data, ids, wait)
    done = Future()
    result = _store_now(workspace, Piece(data, len(events), tenant_id, source))
    done.set_result(_recorded(ids, result.results, 0))
    return done


def _recorded(ids: list[str], results: list[dict[str, Any]], offset: int) -> RecordedPredictions:
    """One request's share of a piece's results: indexes ``offset`` to ``offset + len(ids)``,
    numbered again from 0."""
    mine = [
        {**r, "index": r["index"] - offset}
        for r in results
        if offset <= r["index"] < offset + len(ids)
    ]
    statuses = Counter(r["status"] for r in mine)
    return RecordedPredictions(
        event_ids=ids,
        accepted=statuses["accepted"],
        duplicates=statuses["duplicate"],
        rejected=statuses["rejected"],
        results=mine,
    )


# -- batching ---------------------------------------------------------------------------------

#: Seconds the prediction events of a request wait for those of others before they are handed
#: to the pipeline together. One commit costs ~20-40 ms of CPU (more as the table grows, and
#: the same for 1 event as for hundreds: 2,000 events took ~80 ms): one commit per request
#: would cap a server at a few dozen recorded requests a second.
FLUSH_SECONDS = 0.2
#: Events that make a batch go at once, without waiting for the rest of the window.
FLUSH_EVENTS = 2000


@dataclass
class _Waiting:
    data: bytes
    ids: list[str]
    future: Future[RecordedPredictions]


class _Batcher:
    """Joins the prediction events of many requests into one piece per tenant and source."""

    def __init__(self, pipeline: RequestPipeline) -> None:
        self._pipeline = pipeline
        self._lock = threading.Lock()
        self._waiting: dict[tuple[str, str], list[_Waiting]] = {}
        self._events = 0
        self._timer: threading.Timer | None = None

    def add(
        self, tenant: str, source: str, data: bytes, ids: list[str], wait: float
    ) -> Future[RecordedPredictions]:
        future: Future[RecordedPredictions] = Future()
        with self._lock:
            self._waiting.setdefault((tenant, source), []).append(_Waiting(data, ids, future))
            self._events += len(ids)
            now = wait <= 0 or self._events >= FLUSH_EVENTS
            if not now and self._timer is None:
                self._timer = threading.Timer(wait, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if now:
            self.flush()
        return future

    def flush(self) -> None:
        """Hand everything waiting to the pipeline (one piece per tenant and source)."""
        with self._lock:
            waiting, self._waiting, self._events = self._waiting, {}, 0
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for (tenant, source), items in waiting.items():
            piece = Piece(
                b"".join(w.data for w in items), sum(len(w.ids) for w in items), tenant, source
            )
            try:
                submitted = self._pipeline.submit(piece)
            except BaseException as exc:  # every waiter must hear of it
                for w in items:
                    w.future.set_exception(exc)
                continue
            submitted.add_done_callback(partial(_answer, items))


def _answer(items: list[_Waiting], submitted: Future[tuple[GroupOutcome, int]]) -> None:
    try:
        group, k = submitted.result()
        results = group.answer(k).results
    except BaseException as exc:  # every waiter must hear of it
        for w in items:
            w.future.set_exception(exc)
        return
    offset = 0
    for w in items:
        w.future.set_result(_recorded(w.ids, results, offset))
        offset += len(w.ids)


_BATCHERS: weakref.WeakKeyDictionary[RequestPipeline, _Batcher] = weakref.WeakKeyDictionary()
_BATCHERS_LOCK = threading.Lock()


def _batcher(pipeline: RequestPipeline) -> _Batcher:
    with _BATCHERS_LOCK:
        batcher = _BATCHERS.get(pipeline)
        if batcher is None:
            batcher = _BATCHERS[pipeline] = _Batcher(pipeline)
        return batcher


def _store_now(workspace: Workspace, piece: Piece) -> RequestResult:
    """Prepare and store one piece with a short-lived ingestor (the library path)."""
    from assay.ingest._pipeline import Ingestor
    from assay.ingest._request import GroupOutcome, prepare_group

    with Ingestor(workspace) as ingestor:
        parts = prepare_group(ingestor, [piece], max_rows=max(piece.lines, 1))
        outcome = GroupOutcome([piece], parts)
        outcome.outcomes = ingestor.store_many([part.prep for part in parts])
    return outcome.answer(0)


__all__ = [
    "FLUSH_EVENTS",
    "FLUSH_SECONDS",
    "SOURCE",
    "UNKNOWN_USER",
    "RecordedPredictions",
    "prediction_events",
    "record_predictions",
]
