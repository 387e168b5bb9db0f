"""``POST /v1/events``: one result per event by index, counts, 200 vs 207, what is stored."""

from __future__ import annotations

import gzip
import json
from typing import Any

NDJSON = "application/x-ndjson"


def ok(index: int, event_id: str, status: str = "accepted") -> dict[str, Any]:
    return {"index": index, "event_id": event_id, "status": status, "error": None}


def lines(*rows: Any) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def stored_ids(s: Any, table: str = "events") -> list[str]:
    return sorted(s.read(table).column("event_id").to_pylist())


def test_json_array_is_answered_by_index_with_200(service: Any, h: Any) -> None:
    response = service.post([h.event("e1"), h.event("e2", user_id="raw-user-2")])
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": 0,
        "results": [ok(0, "e1"), ok(1, "e2")],
    }
    assert stored_ids(service) == ["e1", "e2"]


def test_empty_array_is_200_with_no_results(service: Any) -> None:
    response = service.post([])
    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicates": 0, "rejected": 0, "results": []}


def test_ndjson_blank_line_takes_an_index_and_a_malformed_line_is_rejected_alone(
    service: Any, h: Any
) -> None:
    body = lines(h.event("e0"), "", '{"event_id": "e2", broken', h.event("e3"))
    response = service.post_raw(body, NDJSON)
    assert response.status_code == 207
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (2, 0, 1)
    results = answer["results"]
    assert [r["index"] for r in results] == [0, 2, 3]
    assert results[0] == ok(0, "e0")
    assert results[2] == ok(3, "e3")
    bad = results[1]
    assert (bad["index"], bad["event_id"], bad["status"]) == (2, None, "rejected")
    assert set(bad["error"]) == {"code", "message", "field", "rule"}
    assert bad["error"]["code"] == "unreadable_event"
    assert bad["error"]["rule"] == "json"
    assert stored_ids(service) == ["e0", "e3"]


def test_ndjson_without_final_newline_and_with_crlf_is_read(service: Any, h: Any) -> None:
    body = (json.dumps(h.event("e0")) + "\r\n" + json.dumps(h.event("e1"))).encode()
    response = service.post_raw(body, "application/x-ndjson; charset=utf-8")
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [ok(0, "e0"), ok(1, "e1")]


def test_gzip_ndjson_is_decoded(service: Any, h: Any) -> None:
    body = gzip.compress(lines(h.event("g1"), h.event("g2"), h.event("g3")))
    response = service.post_raw(body, NDJSON, encoding="gzip")
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [ok(0, "g1"), ok(1, "g2"), ok(2, "g3")]
    assert stored_ids(service) == ["g1", "g2", "g3"]


def test_gzip_json_array_is_decoded(service: Any, h: Any) -> None:
    body = gzip.compress(json.dumps([h.event("g1")]).encode())
    response = service.post_raw(body, "application/json", encoding="gzip")
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1


def test_resend_is_answered_duplicate_and_stores_nothing_new(service: Any, h: Any) -> None:
    events = [h.event("e1"), h.event("e2", user_id="raw-user-2")]
    first = service.post(events)
    assert first.json()["accepted"] == 2
    again = service.post(events)
    assert again.status_code == 200
    assert again.json() == {
        "accepted": 0,
        "duplicates": 2,
        "rejected": 0,
        "results": [ok(0, "e1", "duplicate"), ok(1, "e2", "duplicate")],
    }
    assert stored_ids(service) == ["e1", "e2"]


def test_duplicate_inside_one_body_is_stored_once(service: Any, h: Any) -> None:
    response = service.post([h.event("e1"), h.event("e2"), h.event("e1")])
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 2,
        "duplicates": 1,
        "rejected": 0,
        "results": [ok(0, "e1"), ok(1, "e2"), ok(2, "e1", "duplicate")],
    }
    assert stored_ids(service) == ["e1", "e2"]


def test_207_when_one_event_is_rejected_and_the_others_are_stored(service: Any, h: Any) -> None:
    response = service.post([h.event("e1"), h.event("e2", turn_index=-1), h.event("e3")])
    assert response.status_code == 207
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (2, 0, 1)
    assert answer["results"][1]["status"] == "rejected"
    assert answer["results"][1]["error"]["field"] == "turn_index"
    assert stored_ids(service) == ["e1", "e3"]


def test_event_of_another_tenant_is_forbidden_at_its_index_and_kept_nowhere(
    service: Any, h: Any
) -> None:
    foreign = h.event(
        "b-secret-1",
        tenant_id=h.TENANT_B,
        user_id="raw-user-of-b",
        text="reach me at bob.b@example.net",
    )
    response = service.post([h.event("a1"), foreign, h.event("a2")], key=service.key_a)
    assert response.status_code == 207
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (2, 0, 1)
    assert answer["results"][0] == ok(0, "a1")
    assert answer["results"][2] == ok(2, "a2")
    refused = answer["results"][1]
    assert refused["index"] == 1
    assert (refused["event_id"], refused["status"]) == ("b-secret-1", "rejected")
    assert refused["error"]["code"] == "forbidden_tenant"
    assert refused["error"]["field"] == "tenant_id"
    assert h.TENANT_B not in response.text
    # Not stored, and in no one's quarantine.
    assert stored_ids(service) == ["a1", "a2"]
    assert service.read("quarantine").num_rows == 0
    assert service.read("content").column("event_id").to_pylist() == ["a1", "a2"]
    for key in (service.admin, service.key_a, service.key_b):
        shown = service.get("/v1/quarantine", key)
        assert shown.status_code == 200
        assert shown.json() == {"data": []}


def test_invalid_event_is_rejected_with_field_and_rule_and_quarantined_redacted(
    service: Any, h: Any
) -> None:
    bad = h.event(
        "bad-1",
        event_type="bogus",
        user_id="raw-user-77",
        text="write to jane.doe@example.org please",
    )
    response = service.post([bad])
    assert response.status_code == 207
    [result] = response.json()["results"]
    assert (result["index"], result["event_id"], result["status"]) == (0, "bad-1", "rejected")
    assert result["error"]["code"] == "invalid_event"
    assert (result["error"]["field"], result["error"]["rule"]) == ("event_type", "choice")
    assert service.read("events").num_rows == 0

    shown = service.get("/v1/quarantine", service.key_a)
    assert shown.status_code == 200
    [row] = shown.json()["data"]
    assert (row["tenant_id"], row["event_id"]) == (h.TENANT_A, "bad-1")
    assert (row["field"], row["rule"]) == ("event_type", "choice")
    assert row["user_id"] == h.pseudonym(service.secret(), h.TENANT_A, "raw-user-77")
    stored_row = json.loads(row["row"])
    assert stored_row["text"] == "write to <EMAIL> please"
    assert stored_row["user_id"] == row["user_id"]
    assert "jane.doe@example.org" not in shown.text
    assert "raw-user-77" not in shown.text
    # The other tenant does not see it; the admin does.
    assert service.get("/v1/quarantine", service.key_b).json() == {"data": []}
    admin_rows = service.get("/v1/quarantine", service.admin).json()["data"]
    assert [r["event_id"] for r in admin_rows] == ["bad-1"]


def test_accepted_events_are_stored_pseudonymised_and_redacted(service: Any, h: Any) -> None:
    response = service.post(
        [
            h.event("e1", user_id="raw-user-1", text="mail jane.doe@example.org now"),
            h.event("e2", user_id="raw-user-2", session_id="sess-2"),
            h.event("e3", user_id="raw-user-1", turn_index=1),
        ]
    )
    assert response.status_code == 200
    events = {r["event_id"]: r for r in service.read("events").to_pylist()}
    assert sorted(events) == ["e1", "e2", "e3"]
    secret = service.secret()
    user_1 = h.pseudonym(secret, h.TENANT_A, "raw-user-1")
    user_2 = h.pseudonym(secret, h.TENANT_A, "raw-user-2")
    assert user_1 != user_2
    assert [events[e]["user_id"] for e in ("e1", "e2", "e3")] == [user_1, user_2, user_1]
    assert all(r["tenant_id"] == h.TENANT_A for r in events.values())
    content = {r["event_id"]: r for r in service.read("content").to_pylist()}
    assert content["e1"]["text"] == "mail <EMAIL> now"
    assert content["e1"]["user_id"] == user_1
    for table in ("events", "content"):
        dumped = json.dumps(service.read(table).to_pylist(), default=str)
        assert "raw-user-" not in dumped
        assert "jane.doe@example.org" not in dumped


def test_admin_key_ingests_for_any_tenant(service: Any, h: Any) -> None:
    response = service.post([h.event("a1"), h.event("b1", tenant_id=h.TENANT_B)], key=service.admin)
    assert response.status_code == 200
    stored = {r["event_id"]: r["tenant_id"] for r in service.read("events").to_pylist()}
    assert stored == {"a1": h.TENANT_A, "b1": h.TENANT_B}


def test_same_event_id_in_two_tenants_is_two_events(service: Any, h: Any) -> None:
    response = service.post([h.event("x1"), h.event("x1", tenant_id=h.TENANT_B)], key=service.admin)
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "accepted"]
    assert service.read("events").num_rows == 2


def test_late_event_is_rejected_over_http(service: Any, h: Any) -> None:
    response = service.post([h.event("old", event_time="2020-01-01T00:00:00Z")])
    assert response.status_code == 207
    [result] = response.json()["results"]
    assert result["error"]["code"] == "invalid_event"
    assert (result["error"]["field"], result["error"]["rule"]) == ("event_time", "late")
