"""Predictions recorded as events (assay.models._predlog): fields, pseudonyms, text, retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import assay
from assay._errors import UsageError
from assay.ingest._group import GroupWriter
from assay.ingest._pipeline import Ingestor
from assay.ingest._request import RequestPipeline
from assay.models import _predlog
from assay.models._intent import Prediction
from assay.models._predlog import UNKNOWN_USER, record_predictions

# Noon yesterday (UTC): inside every lateness window, on a known day.
DAY = (datetime.now(UTC) - timedelta(days=1)).date()
AT = datetime(DAY.year, DAY.month, DAY.day, 12, 0, tzinfo=UTC)
RAW_EMAIL = "alice.smith@example.com"
RAW_CARD = "4111 1111 1111 1111"
TEXTS = [f"mail {RAW_EMAIL} please", f"charge card {RAW_CARD}", "how do i reset my pin"]
PREDICTIONS: list[Any] = [
    {"label": "contact", "probability": 0.875, "top_k": []},
    Prediction("payment", 0.5, [("payment", 0.5), ("balance", 0.25)]),
    {"label": "oos", "probability": 0.25},
]


def expected_pseudonym(key: bytes, tenant: str, user: str) -> str:
    """The documented formula, written out: u_ + HMAC-SHA256(len(t) || t || u)[:32]."""
    t, u = tenant.encode(), user.encode()
    message = len(t).to_bytes(4, "big") + t + u
    return "u_" + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[assay.Workspace]:
    workspace = assay.Workspace.init(tmp_path / "ws")
    yield workspace
    workspace.close()


@pytest.fixture
def ws_without_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[assay.Workspace]:
    monkeypatch.setenv("ASSAY_STORE_TEXT", "false")
    workspace = assay.Workspace.init(tmp_path / "ws")
    assert workspace.settings.store_text is False
    yield workspace
    workspace.close()


def _record(ws: assay.Workspace, **overrides: Any) -> Any:
    args: dict[str, Any] = {
        "tenant_id": "acme",
        "model": "intent",
        "version": 3,
        "predictions": PREDICTIONS,
        "session_ids": "s-1",
        "user_ids": ["alice", "bob", "alice"],
        "texts": TEXTS,
        "request_id": "r1",
        "at": AT,
    }
    args.update(overrides)
    return record_predictions(ws, **args).result(timeout=60)


def _events(ws: assay.Workspace) -> list[dict[str, Any]]:
    rows = ws.read("events").sort_by("event_id").to_pylist()
    return rows  # type: ignore[no-any-return]


def _all_strings(table: pa.Table) -> str:
    """Every value of every column, as text (to search for leaked text)."""
    return repr(table.to_pylist())


def test_each_prediction_becomes_one_turn_event_with_its_fields(ws: assay.Workspace) -> None:
    recorded = _record(ws)
    assert (recorded.accepted, recorded.duplicates, recorded.rejected) == (3, 0, 0)
    assert recorded.event_ids == ["pred:r1:0", "pred:r1:1", "pred:r1:2"]
    rows = _events(ws)
    got = [
        (
            r["event_id"],
            r["event_type"],
            r["session_id"],
            r["intent"],
            r["intent_confidence"],
            r["model_version"],
            r["event_date"],
            r["event_time"],
        )
        for r in rows
    ]
    assert got == [
        ("pred:r1:0", "turn", "s-1", "contact", 0.875, "intent/3", DAY, AT),
        ("pred:r1:1", "turn", "s-1", "payment", 0.5, "intent/3", DAY, AT),
        ("pred:r1:2", "turn", "s-1", "oos", 0.25, "intent/3", DAY, AT),
    ]
    assert [dict(r["attributes"]) for r in rows] == [{"source": "predict"}] * 3
    alice = expected_pseudonym(ws.secret, "acme", "alice")
    bob = expected_pseudonym(ws.secret, "acme", "bob")
    assert [r["user_id"] for r in rows] == [alice, bob, alice]
    assert "alice" not in _all_strings(ws.read("events"))


def test_text_is_stored_redacted_in_the_content_table_when_the_workspace_keeps_text(
    ws: assay.Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    assert ws.settings.store_text is True
    with caplog.at_level(logging.DEBUG):
        _record(ws)
    content = ws.read("content").sort_by("event_id")
    assert content.column("text").to_pylist() == [
        "mail <EMAIL> please",
        "charge card <CARD>",
        "how do i reset my pin",
    ]
    assert content.column("redactions").to_pylist() == [1, 1, 0]
    stored = _all_strings(content) + _all_strings(ws.read("events"))
    assert RAW_EMAIL not in stored
    assert "4111" not in stored
    assert RAW_EMAIL not in caplog.text
    assert "4111" not in caplog.text
    assert "alice" not in caplog.text


def test_no_text_is_stored_nor_logged_when_the_workspace_keeps_none(
    ws_without_text: assay.Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        recorded = _record(ws_without_text)
    assert recorded.accepted == 3
    assert ws_without_text.read("content").num_rows == 0
    events = ws_without_text.read("events")
    assert events.column("has_text").to_pylist() == [False, False, False]
    stored = _all_strings(events)
    for needle in (RAW_EMAIL, "alice.smith", "4111", "reset my pin", "<EMAIL>"):
        assert needle not in stored
        assert needle not in caplog.text


class _CapturingPipeline:
    """Stands in for the service's pipeline: keeps what would be queued."""

    def __init__(self) -> None:
        self.pieces: list[Any] = []

    def submit(self, piece: Any) -> Future[Any]:
        self.pieces.append(piece)
        return Future()


def test_the_text_does_not_even_reach_the_pipeline_when_the_workspace_keeps_none(
    ws_without_text: assay.Workspace,
) -> None:
    capture = _CapturingPipeline()
    future = record_predictions(
        ws_without_text,
        tenant_id="acme",
        model="intent",
        version=3,
        predictions=PREDICTIONS,
        texts=TEXTS,
        pipeline=capture,  # type: ignore[arg-type]
        flush_seconds=0,
    )
    assert not future.done()  # queued, not waited for
    [piece] = capture.pieces
    assert (piece.lines, piece.key_tenant, piece.source) == (3, "acme", "predict:intent/3")
    assert b"alice.smith" not in piece.data
    assert b'"text"' not in piece.data


def test_requests_within_one_window_reach_the_pipeline_as_one_piece_per_tenant(
    ws: assay.Workspace,
) -> None:
    capture = _CapturingPipeline()
    for request, tenant in (("a", "acme"), ("b", "globex"), ("c", "acme")):
        record_predictions(
            ws,
            tenant_id=tenant,
            model="intent",
            version=3,
            predictions=PREDICTIONS[:2],
            user_ids="alice",
            request_id=request,
            pipeline=capture,  # type: ignore[arg-type]
            flush_seconds=60,
        )
    assert capture.pieces == []  # waiting for the window
    _predlog._batcher(capture).flush()  # type: ignore[arg-type]
    got = sorted(
        (p.key_tenant, p.lines, [json.loads(line)["event_id"] for line in p.data.splitlines()])
        for p in capture.pieces
    )
    assert got == [
        ("acme", 4, ["pred:a:0", "pred:a:1", "pred:c:0", "pred:c:1"]),
        ("globex", 2, ["pred:b:0", "pred:b:1"]),
    ]


def test_a_retried_request_is_recorded_once(ws: assay.Workspace) -> None:
    _record(ws)
    again = _record(ws)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 3, 0)
    assert len(_events(ws)) == 3
    other = _record(ws, request_id="r2")
    assert other.accepted == 3
    assert len(_events(ws)) == 6


def test_predictions_without_ids_get_the_unknown_user_and_one_session_per_request(
    ws: assay.Workspace,
) -> None:
    _record(ws, session_ids=None, user_ids=None, texts=None, request_id="q9")
    rows = _events(ws)
    unknown = expected_pseudonym(ws.secret, "acme", UNKNOWN_USER)
    assert [(r["user_id"], r["session_id"]) for r in rows] == [(unknown, "pred:q9")] * 3
    assert ws.read("content").num_rows == 0


def test_per_prediction_ids_and_a_version_string(ws: assay.Workspace) -> None:
    _record(ws, session_ids=["a", None, "c"], version="7", request_id="v7")
    rows = _events(ws)
    assert [r["session_id"] for r in rows] == ["a", "pred:v7", "c"]
    assert {r["model_version"] for r in rows} == {"intent/7"}


def test_misaligned_ids_or_texts_are_refused_before_anything_is_stored(
    ws: assay.Workspace,
) -> None:
    with pytest.raises(UsageError, match="expected 3 values, got 2"):
        _record(ws, user_ids=["alice", "bob"])
    with pytest.raises(UsageError, match="texts must be one per prediction: expected 3, got 1"):
        _record(ws, texts=["one"])
    assert ws.read("events").num_rows == 0


def test_an_empty_request_records_nothing(ws: assay.Workspace) -> None:
    recorded = _record(ws, predictions=[], user_ids=None, texts=None)
    assert (recorded.accepted, recorded.event_ids) == (0, [])
    assert ws.read("events").num_rows == 0


def test_an_invalid_prediction_is_rejected_by_the_pipeline_not_stored(
    ws: assay.Workspace,
) -> None:
    bad = [{"label": "x", "probability": 1.5}]  # intent_confidence must be in [0, 1]
    recorded = _record(ws, predictions=bad, user_ids="alice", texts=None)
    assert (recorded.accepted, recorded.rejected) == (0, 1)
    assert recorded.results[0]["error"]["field"] == "intent_confidence"
    assert ws.read("events").num_rows == 0


def test_through_the_service_pipeline_each_request_gets_its_share_of_a_batch(
    ws: assay.Workspace,
) -> None:
    ingestor = Ingestor(ws)
    writer = GroupWriter(ingestor, fsync=False)
    pipeline = RequestPipeline(ingestor, writer, workers=1)
    try:

        def send(rid: str, n: int) -> Any:
            return record_predictions(
                ws,
                tenant_id="acme",
                model="intent",
                version=3,
                predictions=PREDICTIONS[:n],
                user_ids="alice",
                request_id=rid,
                at=AT,
                pipeline=pipeline,
            )

        futures = [send(f"p{k}", 1) for k in range(5)]
        results = [f.result(timeout=60) for f in futures]
        # A retry of p0 and a new request in one window: each gets its own share back.
        again = [send(rid, 2) for rid in ("p0", "p9")]
        retried, new = (f.result(timeout=60) for f in again)
    finally:
        pipeline.close()
        writer.close()
        ingestor.close()
    assert [r.accepted for r in results] == [1] * 5
    assert [r.results[0]["event_id"] for r in results] == [f"pred:p{k}:0" for k in range(5)]
    assert (retried.accepted, retried.duplicates) == (1, 1)  # p0:0 was stored, p0:1 is new
    assert [(r["index"], r["event_id"], r["status"]) for r in retried.results] == [
        (0, "pred:p0:0", "duplicate"),
        (1, "pred:p0:1", "accepted"),
    ]
    assert [(r["index"], r["event_id"], r["status"]) for r in new.results] == [
        (0, "pred:p9:0", "accepted"),
        (1, "pred:p9:1", "accepted"),
    ]
    assert len(_events(ws)) == 5 + 1 + 2


def test_the_metrics_read_the_predictions_as_a_release(ws: assay.Workspace) -> None:
    _record(ws)  # alice and bob on intent/3
    _record(ws, version=4, user_ids="carol", request_id="r4")
    dau = ws.metrics.dau(tenant="acme", since=DAY, until=DAY, by="model_version").to_pylist()
    assert sorted((r["model_version"], r["day"], r["dau"]) for r in dau) == [
        ("intent/3", DAY, 2),
        ("intent/4", DAY, 1),
    ]
