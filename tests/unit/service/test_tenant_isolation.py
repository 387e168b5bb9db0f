"""Tenant isolation: with A's key, every endpoint refuses B or answers without a trace of B."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

METRICS = ("dau", "active", "rolling", "max-active", "retention", "sessions")

#: Event ids and raw user ids of tenant B: none may show in an answer to A's key.
B_EVENTS = ("bravo-event-1", "bravo-event-2", "bravo-event-bad")
B_USERS = ("bravo-user-1", "bravo-user-2")


@pytest.fixture(scope="module")
def two_tenants(module_service_factory: Any, h: Any) -> Any:
    """A service where tenants A and B both have events on two days and a quarantined one."""
    s = module_service_factory()
    a = [
        h.event("alpha-event-1", user_id="alpha-user-1", event_time=h.YESTERDAY),
        h.event("alpha-event-2", user_id="alpha-user-1"),
        h.event("alpha-event-3", user_id="alpha-user-2", session_id="sess-2"),
        h.event("alpha-event-bad", user_id="alpha-user-2", turn_index=-1),
    ]
    b = [
        h.event(B_EVENTS[0], tenant_id=h.TENANT_B, user_id=B_USERS[0], event_time=h.YESTERDAY),
        h.event(B_EVENTS[1], tenant_id=h.TENANT_B, user_id=B_USERS[1]),
        h.event(B_EVENTS[2], tenant_id=h.TENANT_B, user_id=B_USERS[1], turn_index=-1),
    ]
    assert s.post(a, key=s.key_a).status_code == 207
    assert s.post(b, key=s.key_b).status_code == 207
    secret = s.secret()
    s.b_traces = [
        h.TENANT_B,
        *B_EVENTS,
        *B_USERS,
        *(h.pseudonym(secret, h.TENANT_B, u) for u in B_USERS),
    ]
    return s


def assert_no_trace_of_b(s: Any, response: httpx.Response) -> None:
    for trace in s.b_traces:
        assert trace not in response.text, trace


def stored_b_events(s: Any, h: Any) -> list[str]:
    rows = s.read("events").to_pylist()
    return sorted(r["event_id"] for r in rows if r["tenant_id"] == h.TENANT_B)


Case = Callable[[Any, Any], httpx.Response]

REFUSED: list[Any] = [
    *(
        pytest.param(
            (lambda n: lambda s, h: s.get(f"/v1/metrics/{n}", s.key_a, {"tenant_id": h.TENANT_B}))(
                name
            ),
            id=f"metrics-{name}-of-B",
        )
        for name in METRICS
    ),
    pytest.param(
        lambda s, h: s.get("/v1/quarantine", s.key_a, {"tenant_id": h.TENANT_B}),
        id="quarantine-of-B",
    ),
]

ANSWERED: list[Any] = [
    pytest.param(lambda s, h: s.get("/v1/tenants", s.key_a), id="tenants"),
    *(
        pytest.param(
            (lambda n: lambda s, h: s.get(f"/v1/metrics/{n}", s.key_a))(name),
            id=f"metrics-{name}",
        )
        for name in METRICS
    ),
    *(
        pytest.param(
            (lambda n: lambda s, h: s.get(f"/v1/metrics/{n}", s.key_a, {"by": "locale"}))(name),
            id=f"metrics-{name}-by-locale",
        )
        for name in METRICS
    ),
    pytest.param(lambda s, h: s.get("/v1/quarantine", s.key_a), id="quarantine"),
]


@pytest.mark.parametrize("call", REFUSED)
def test_a_key_reading_b_is_403(two_tenants: Any, h: Any, call: Case) -> None:
    response = call(two_tenants, h)
    assert response.status_code == 403
    error = h.error_of(response)
    assert (error["code"], error["field"]) == ("forbidden_tenant", "tenant_id")
    assert_no_trace_of_b(two_tenants, response)


@pytest.mark.parametrize("call", ANSWERED)
def test_a_key_reads_only_a(two_tenants: Any, h: Any, call: Case) -> None:
    response = call(two_tenants, h)
    assert response.status_code == 200, response.text
    assert_no_trace_of_b(two_tenants, response)
    rows = response.json()["data"]
    assert rows
    assert all(r["tenant_id"] == h.TENANT_A for r in rows), rows


def test_a_key_reads_a_with_data(two_tenants: Any, h: Any) -> None:
    s = two_tenants
    assert s.get("/v1/tenants").json() == {"data": [{"tenant_id": h.TENANT_A}]}
    dau = s.get("/v1/metrics/dau").json()["data"]
    assert sorted(r["dau"] for r in dau) == [1, 2]
    quarantined = s.get("/v1/quarantine").json()["data"]
    assert [r["event_id"] for r in quarantined] == ["alpha-event-bad"]
    # Naming its own tenant is the same as naming none.
    assert s.get("/v1/metrics/dau", params={"tenant_id": h.TENANT_A}).json()["data"] == dau


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_a_key_posting_b_events_is_forbidden_per_event_and_stores_nothing(
    two_tenants: Any, h: Any, content_type: str
) -> None:
    s = two_tenants
    before = stored_b_events(s, h)
    quarantine_before = s.read("quarantine").num_rows
    events = [
        h.event("bravo-forged-1", tenant_id=h.TENANT_B, user_id=B_USERS[0]),
        h.event("bravo-forged-2", tenant_id=h.TENANT_B, user_id="x", turn_index=-1),
    ]
    if content_type == "application/json":
        response = s.post(events, key=s.key_a)
    else:
        body = "".join(json.dumps(e) + "\n" for e in events).encode()
        response = s.post_raw(body, content_type, key=s.key_a)
    assert response.status_code == 207
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (0, 0, 2)
    assert [(r["index"], r["error"]["code"]) for r in answer["results"]] == [
        (0, "forbidden_tenant"),
        (1, "forbidden_tenant"),
    ]
    assert_no_trace_of_b(s, response)
    assert stored_b_events(s, h) == before
    assert s.read("quarantine").num_rows == quarantine_before


def test_a_key_cannot_replay_b_event_ids_into_b(two_tenants: Any, h: Any) -> None:
    s = two_tenants
    replay = h.event(B_EVENTS[0], tenant_id=h.TENANT_B, user_id=B_USERS[0], event_time=h.YESTERDAY)
    response = s.post([replay], key=s.key_a)
    [result] = response.json()["results"]
    # Refused, not answered "duplicate": that would tell A that B holds this event id.
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "forbidden_tenant"


def test_b_key_reading_a_is_403(two_tenants: Any, h: Any) -> None:
    s = two_tenants
    response = s.get("/v1/metrics/dau", s.key_b, {"tenant_id": h.TENANT_A})
    assert response.status_code == 403
    assert h.error_of(response)["code"] == "forbidden_tenant"
    assert s.get("/v1/tenants", s.key_b).json() == {"data": [{"tenant_id": h.TENANT_B}]}


def test_admin_key_sees_both_tenants(two_tenants: Any, h: Any) -> None:
    s = two_tenants
    both = {h.TENANT_A, h.TENANT_B}
    tenants = s.get("/v1/tenants", s.admin).json()["data"]
    assert tenants == [{"tenant_id": t} for t in sorted(both)]
    for name in METRICS:
        response = s.get(f"/v1/metrics/{name}", s.admin)
        assert response.status_code == 200, (name, response.text)
        assert {r["tenant_id"] for r in response.json()["data"]} == both, name
        only_b = s.get(f"/v1/metrics/{name}", s.admin, {"tenant_id": h.TENANT_B}).json()["data"]
        assert {r["tenant_id"] for r in only_b} == {h.TENANT_B}, name
    quarantined = s.get("/v1/quarantine", s.admin).json()["data"]
    assert sorted(r["event_id"] for r in quarantined) == ["alpha-event-bad", B_EVENTS[2]]
    only_b = s.get("/v1/quarantine", s.admin, {"tenant_id": h.TENANT_B}).json()["data"]
    assert [r["event_id"] for r in only_b] == [B_EVENTS[2]]
