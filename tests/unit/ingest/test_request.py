"""One HTTP body through the shared pipeline (assay.ingest._request), without the server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from assay._errors import SchemaError
from assay.ingest._pipeline import Ingestor
from assay.ingest._request import (
    GroupOutcome,
    Piece,
    TooManyEventsError,
    prepare_group,
    read_piece,
)
from assay.store import Workspace

WHEN = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(event_id: str, tenant: str = "acme", **extra: object) -> dict[str, object]:
    return {
        "event_id": event_id,
        "event_time": WHEN,
        "tenant_id": tenant,
        "user_id": "u1",
        "session_id": "s1",
        "event_type": "turn",
        **extra,
    }


def _lines(*items: object) -> bytes:
    return "\n".join(i if isinstance(i, str) else json.dumps(i) for i in items).encode()


@pytest.fixture
def ingestor(tmp_path: Path) -> Ingestor:
    ws = Workspace.init(tmp_path / "ws")
    ing = Ingestor(ws, max_lateness=timedelta(days=30))
    yield ing
    ing.close()
    ws.close()


def _group(ing: Ingestor, pieces: list[Piece]) -> GroupOutcome:
    parts = prepare_group(ing, pieces, max_rows=1000)
    outcome = GroupOutcome(pieces, parts)
    outcome.outcomes = ing.store_many([p.prep for p in parts])
    return outcome


def _brief(result: Any) -> list[tuple]:
    return [
        (r["index"], r["event_id"], r["status"], r["error"] and r["error"]["code"])
        for r in result.results
    ]


def _run(ing: Ingestor, body: bytes, *, array: bool, tenant: str | None) -> list[tuple]:
    piece = read_piece(body, array=array, max_events=100, key_tenant=tenant, source="http:k1")
    return _brief(_group(ing, [piece]).answer(0))


def parse_request(body: bytes, *, array: bool, max_events: int) -> Piece:
    return read_piece(body, array=array, max_events=max_events, key_tenant=None, source="t")


def test_ndjson_results_are_indexed_by_line_and_blank_lines_keep_their_number(
    ingestor: Ingestor,
) -> None:
    body = _lines(_event("a"), "", "{not json", _event("b", tenant="other"), _event("a"))
    assert _run(ingestor, body, array=False, tenant="acme") == [
        (0, "a", "accepted", None),
        (2, None, "rejected", "unreadable_event"),
        (3, "b", "rejected", "forbidden_tenant"),
        (4, "a", "duplicate", None),
    ]


def test_array_results_are_indexed_by_position_even_on_one_line(ingestor: Ingestor) -> None:
    body = json.dumps([_event("a"), 7, _event("c", event_type="bogus"), _event("d")]).encode()
    assert _run(ingestor, body, array=True, tenant=None) == [
        (0, "a", "accepted", None),
        (1, None, "rejected", "unreadable_event"),
        (2, "c", "rejected", "invalid_event"),
        (3, "d", "accepted", None),
    ]


def test_unparseable_lines_sent_with_a_tenant_key_are_quarantined_under_that_tenant(
    ingestor: Ingestor,
) -> None:
    _run(ingestor, _lines("{broken", _event("x", tenant="other")), array=False, tenant="acme")
    quarantine = ingestor.ws.read("quarantine").to_pylist()
    # The broken line is acme's; the other tenant's event is refused, never quarantined.
    assert [(q["tenant_id"], q["rule"], q["line"]) for q in quarantine] == [("acme", "json", 1)]
    assert ingestor.ws.read("events").num_rows == 0


def test_a_body_that_is_not_an_array_or_a_broken_array_is_refused_whole() -> None:
    for body in (b"", b'{"event_id": "a"}', b"42", b'[{"event_id": "a"}, {"event_id": '):
        with pytest.raises(SchemaError):
            parse_request(body, array=True, max_events=10)


def test_more_events_than_the_limit_are_refused_whole() -> None:
    with pytest.raises(TooManyEventsError):
        parse_request(
            json.dumps([_event(str(i)) for i in range(11)]).encode(), array=True, max_events=10
        )
    with pytest.raises(TooManyEventsError):
        parse_request(_lines(*[_event(str(i)) for i in range(11)]), array=False, max_events=10)
    ten = parse_request(_lines(*[_event(str(i)) for i in range(10)]), array=False, max_events=10)
    assert ten.lines == 10


def test_messages_in_the_answer_are_redacted(ingestor: Ingestor) -> None:
    body = _lines(_event("a", event_time="mail bob@example.com"))
    piece = read_piece(body, array=False, max_events=10, key_tenant="acme", source="http:k")
    [answer] = _group(ingestor, [piece]).answer(0).results
    assert answer["error"]["rule"] == "time_format"
    assert "bob@example.com" not in answer["error"]["message"]
    assert "<EMAIL>" in answer["error"]["message"]


def test_requests_prepared_together_each_get_their_own_answer(ingestor: Ingestor) -> None:
    acme = read_piece(
        _lines(_event("a1"), "{bad", _event("b9", tenant="beta")),
        array=False,
        max_events=10,
        key_tenant="acme",
        source="http:ka",
    )
    beta = read_piece(
        json.dumps([_event("b1", tenant="beta"), _event("a1", tenant="acme")]).encode(),
        array=True,
        max_events=10,
        key_tenant="beta",
        source="http:kb",
    )
    admin = read_piece(
        _lines(_event("a1"), _event("b1", tenant="beta"), _event("c1", tenant="gamma")),
        array=False,
        max_events=10,
        key_tenant=None,
        source="http:kz",
    )
    group = _group(ingestor, [acme, beta, admin])
    assert _brief(group.answer(0)) == [
        (0, "a1", "accepted", None),
        (1, None, "rejected", "unreadable_event"),
        (2, "b9", "rejected", "forbidden_tenant"),
    ]
    assert _brief(group.answer(1)) == [
        (0, "b1", "accepted", None),
        (1, "a1", "rejected", "forbidden_tenant"),
    ]
    # The admin key's copies of a1 and b1 come after the first ones in the group.
    assert _brief(group.answer(2)) == [
        (0, "a1", "duplicate", None),
        (1, "b1", "duplicate", None),
        (2, "c1", "accepted", None),
    ]
    events = ingestor.ws.read("events")
    assert sorted(
        zip(
            events.column("tenant_id").to_pylist(),
            events.column("event_id").to_pylist(),
            strict=True,
        )
    ) == [("acme", "a1"), ("beta", "b1"), ("gamma", "c1")]
    [broken] = ingestor.ws.read("quarantine").to_pylist()
    assert (broken["tenant_id"], broken["source"], broken["line"]) == ("acme", "http:ka", 2)


def test_an_unknown_field_with_a_mixed_type_list_is_rejected_alone(ingestor: Ingestor) -> None:
    body = json.dumps([_event("a", x=[1, "b"]), _event("b", x=None), _event("c")]).encode()
    assert _run(ingestor, body, array=True, tenant="acme") == [
        (0, "a", "rejected", "invalid_event"),
        (1, "b", "accepted", None),  # an unknown field that is null is absent
        (2, "c", "accepted", None),
    ]
    assert ingestor.ws.read("quarantine").column("event_id").to_pylist() == ["a"]
