"""The Sessions pages on a hand-written workspace: which sessions a slice lists, their counts,
one session's timeline, pseudonyms only, and tenant isolation.

The events are written here by hand, so every expected list and count below is worked out by
reading them (see the table in ``EVENTS``' comment).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import assay
from assay.dashboard._sessions import list_sessions, parse_slice, session_timeline
from assay.ingest import ingest_paths
from assay.service import create_app

ACME, GLOBEX = "acme", "globex-k3"
RAW_USERS = ("alice.raw.id@example.com", "bob-raw-id-77", "carol-raw-id-91", "dave-raw-id-55")
SECRET_TEXT = "write to alice.private@example.org please"


def _event(eid: str, when: str, session: str, user: str, kind: str, **f: Any) -> dict[str, Any]:
    return {
        "event_id": eid,
        "event_time": when,
        "tenant_id": f.pop("tenant", ACME),
        "user_id": user,
        "session_id": session,
        "event_type": kind,
        **f,
    }


#   session  user   day         events                                     slice
#   s1       alice  2026-03-02  start, turn, feedback -1, handoff         de-DE, v1, no flight
#   s2       bob    2026-03-02  turn, error                               fr-FR, v1, no flight
#   s3       alice  2026-03-03  turn (text with an email)                 de-DE, v2, flight f1
#   s4       carol  2026-03-04  turn, turn                                en-US, v2, no flight
#   g1       dave   2026-03-02  turn (tenant globex)                      de-DE, v1
A, B, C, D = RAW_USERS
EVENTS = [
    _event("e1", "2026-03-02T10:00:00Z", "s1", A, "session_start", locale="de-DE"),
    _event(
        "e2",
        "2026-03-02T10:00:05Z",
        "s1",
        A,
        "turn",
        turn_index=0,
        locale="de-DE",
        model_version="v1",
        latency_ms=120.0,
    ),
    _event("e3", "2026-03-02T10:00:09Z", "s1", A, "feedback", locale="de-DE", feedback=-1),
    _event("e4", "2026-03-02T10:01:00Z", "s1", A, "handoff", locale="de-DE", handoff=True),
    _event(
        "e5",
        "2026-03-02T11:00:00Z",
        "s2",
        B,
        "turn",
        turn_index=0,
        locale="fr-FR",
        model_version="v1",
        latency_ms=300.0,
    ),
    _event("e6", "2026-03-02T11:00:02Z", "s2", B, "error", locale="fr-FR", error_code="E42"),
    _event(
        "e7",
        "2026-03-03T09:00:00Z",
        "s3",
        A,
        "turn",
        turn_index=0,
        locale="de-DE",
        model_version="v2",
        flights=["f1"],
        text=SECRET_TEXT,
    ),
    _event(
        "e8",
        "2026-03-04T12:00:00Z",
        "s4",
        C,
        "turn",
        turn_index=0,
        locale="en-US",
        model_version="v2",
    ),
    _event(
        "e9",
        "2026-03-04T12:00:30Z",
        "s4",
        C,
        "turn",
        turn_index=1,
        locale="en-US",
        model_version="v2",
    ),
    _event(
        "g1",
        "2026-03-02T08:00:00Z",
        "g1",
        D,
        "turn",
        tenant=GLOBEX,
        locale="de-DE",
        model_version="v1",
    ),
]
DAYS = {"since": dt.date(2026, 3, 2), "until": dt.date(2026, 3, 4)}


@pytest.fixture(scope="module")
def ws_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sessions")
    data = root / "events.jsonl"
    data.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n", encoding="utf-8")
    with assay.Workspace.open(root / "ws", create=True) as ws:
        summary = ingest_paths(ws, [data])
        assert summary.total("accepted") == len(EVENTS)
    return root / "ws"


@pytest.fixture(scope="module")
def keys(ws_path: Path) -> dict[str, str]:
    with assay.Workspace.open(ws_path) as ws:
        return {
            name: ws.keys.create(tenant_id=tenant, scopes=("read",))[1]
            for name, tenant in (("admin", None), ("acme", ACME), ("globex", GLOBEX))
        }


@pytest.fixture(scope="module")
def client(ws_path: Path, keys: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(ws_path), raise_server_exceptions=False) as c:
        yield c


def _sign_in(client: TestClient, key: str) -> None:
    client.cookies.clear()
    r = client.post(
        "/ui/login",
        data={"api_key": key, "next": "/ui/"},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def _listed(ws_path: Path, **filters: Any) -> list[str]:
    slice_ = filters.pop("slice_", {})
    with assay.Workspace.open(ws_path) as ws:
        page = list_sessions(ws, tenant=ACME, slice_=slice_, **{**DAYS, **filters})
    return [r.session_id for r in page.rows]


def test_sessions_of_a_slice_are_those_with_an_event_in_it_newest_first(ws_path: Path) -> None:
    assert _listed(ws_path) == ["s4", "s3", "s2", "s1"]
    assert _listed(ws_path, slice_={"locale": "de-DE"}) == ["s3", "s1"]
    assert _listed(ws_path, slice_={"flight": "f1"}) == ["s3"]
    assert _listed(ws_path, slice_={"flight": None}) == ["s4", "s2", "s1"]
    assert _listed(ws_path, slice_={"locale": "de-DE", "model_version": "v1"}) == ["s1"]
    one_day = {"since": dt.date(2026, 3, 2), "until": dt.date(2026, 3, 2)}
    assert _listed(ws_path, slice_={"model_version": "v1"}, **one_day) == ["s2", "s1"]
    assert _listed(ws_path, slice_={"locale": "ja-JP"}) == []


def test_session_counts_match_the_hand_worked_events(ws_path: Path) -> None:
    with assay.Workspace.open(ws_path) as ws:
        rows = {r.session_id: r for r in list_sessions(ws, tenant=ACME, **DAYS).rows}
    s1, s2, s4 = rows["s1"], rows["s2"], rows["s4"]
    assert (s1.events, s1.turns, s1.handoff, s1.thumbs_down, s1.errors) == (4, 1, True, 1, 0)
    assert (s2.events, s2.turns, s2.handoff, s2.thumbs_down, s2.errors) == (2, 1, False, 0, 1)
    assert (s4.events, s4.turns, s4.model_versions) == (2, 2, ("v2",))
    assert s1.first_event == dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    assert s1.last_event == dt.datetime(2026, 3, 2, 10, 1, tzinfo=dt.UTC)


def test_pages_split_the_list_without_overlap(ws_path: Path) -> None:
    with assay.Workspace.open(ws_path) as ws:
        first = list_sessions(ws, tenant=ACME, page_size=3, **DAYS)
        second = list_sessions(ws, tenant=ACME, page=2, page_size=3, **DAYS)
        beyond = list_sessions(ws, tenant=ACME, page=3, page_size=3, **DAYS)
    assert [r.session_id for r in first.rows] == ["s4", "s3", "s2"]
    assert [r.session_id for r in second.rows] == ["s1"]
    assert (first.total, first.pages, second.pages) == (4, 2, 2)
    assert (beyond.rows, beyond.total) == ([], 4)


def test_parse_slice_reads_the_none_marker_and_ignores_empty_and_other_parameters() -> None:
    assert parse_slice({"flight": "(none)", "locale": "de-DE", "page": "2", "platform": ""}) == {
        "locale": "de-DE",
        "flight": None,
    }


def _pseudonym(ws_path: Path, user: str) -> str:
    """The documented pseudonym (HMAC-SHA256 over the length-prefixed tenant), computed here."""
    secret = bytes.fromhex((ws_path / "secret.key").read_text(encoding="ascii").strip())
    tenant = ACME.encode()
    message = len(tenant).to_bytes(4, "big") + tenant + user.encode()
    return "u_" + hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def test_timeline_is_in_time_order_with_redacted_text_and_the_pseudonym(ws_path: Path) -> None:
    with assay.Workspace.open(ws_path) as ws:
        s1 = session_timeline(ws, tenant=ACME, session_id="s1")
        s3 = session_timeline(ws, tenant=ACME, session_id="s3")
    assert [e["event_type"] for e in s1.events] == ["session_start", "turn", "feedback", "handoff"]
    assert s1.user == _pseudonym(ws_path, A)
    assert s1.events[1]["latency_ms"] == 120.0
    [turn] = s3.events
    assert turn["text"] == "write to <EMAIL> please"


def test_pages_show_the_slice_sessions_and_never_a_raw_user_id(
    client: TestClient, keys: dict[str, str], ws_path: Path
) -> None:
    _sign_in(client, keys["admin"])
    listing = client.get(
        "/ui/sessions",
        params={"tenant": ACME, "since": "2026-03-02", "until": "2026-03-04", "locale": "de-DE"},
    )
    assert listing.status_code == 200
    assert "2 sessions with an event on 2026-03-02 to 2026-03-04 in locale=de-DE" in listing.text
    assert 'href="/ui/sessions/acme/s3"' in listing.text
    assert 'href="/ui/sessions/acme/s2"' not in listing.text
    assert _pseudonym(ws_path, A) in listing.text
    one = client.get("/ui/sessions/acme/s3")
    assert one.status_code == 200
    assert "write to &lt;EMAIL&gt; please" in one.text
    for page in (listing, one, client.get("/ui/sessions/acme/s1")):
        for raw in (*RAW_USERS, "alice.private@example.org"):
            assert raw not in page.text


def test_a_tenant_key_sees_its_own_sessions_only(client: TestClient, keys: dict[str, str]) -> None:
    _sign_in(client, keys["globex"])
    own = client.get("/ui/sessions", params={"since": "2026-03-02", "until": "2026-03-04"})
    assert own.status_code == 200
    assert 'href="/ui/sessions/globex-k3/g1"' in own.text
    assert "/ui/sessions/acme/" not in own.text
    other = client.get("/ui/sessions", params={"tenant": ACME})
    absent = client.get("/ui/sessions", params={"tenant": "no-such-tenant"})
    assert other.status_code == absent.status_code == 404
    assert other.text.replace(ACME, "X") == absent.text.replace("no-such-tenant", "X")
    assert client.get("/ui/sessions/acme/s1").status_code == 404
    assert client.get("/ui/sessions/globex-k3/s1").status_code == 404  # acme's id, not globex's
    assert client.get("/ui/sessions/globex-k3/g1").status_code == 200


def test_signed_out_requests_are_sent_to_sign_in(client: TestClient) -> None:
    client.cookies.clear()
    r = client.get("/ui/sessions/acme/s1", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/ui/login?next=")


def test_the_page_form_with_empty_fields_lists_the_last_week(
    client: TestClient, keys: dict[str, str]
) -> None:
    _sign_in(client, keys["admin"])
    empty = {
        f: ""
        for f in (
            "since",
            "until",
            "locale",
            "platform",
            "app_version",
            "model_version",
            "prompt_template",
            "flight",
        )
    }
    r = client.get("/ui/sessions", params={"tenant": ACME, **empty})
    assert r.status_code == 200
    # The week up to the last event day (2026-03-04) holds all four acme sessions.
    assert "4 sessions with an event on 2026-02-26 to 2026-03-04." in r.text
