"""Health, Prometheus metrics and the access log (which must hold no text, ids, keys or queries)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from assay._logging import JsonFormatter


def test_healthz_is_200_ok_without_a_key(service: Any) -> None:
    response = service.client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "inflight", "receiving", "profiles"}
    assert (body["status"], body["inflight"], body["receiving"]) == ("ok", 0, 0)
    # The background profile refresh, on by default every 60 s (its state varies with timing).
    assert body["profiles"]["enabled"] is True
    assert body["profiles"]["interval"] == 60.0
    assert set(body["profiles"]) == {
        "enabled",
        "interval",
        "running",
        "building",
        "pending",
        "age_seconds",
        "builds",
        "last",
    }


def ingest_counts(text: str) -> dict[tuple[str, str], float]:
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "assay_ingest_events_total":
                counts[(sample.labels["tenant"], sample.labels["outcome"])] = sample.value
    return counts


def test_metrics_count_ingested_events_by_tenant_and_outcome(service: Any, h: Any) -> None:
    s = service
    assert ingest_counts(s.client.get("/metrics").text) == {}
    # A's key: 2 accepted, 1 invalid, 1 of B refused (rejected), then a resend (duplicate).
    first = s.post(
        [
            h.event("a1"),
            h.event("a2"),
            h.event("a-bad", turn_index=-1),
            h.event("b-forged", tenant_id=h.TENANT_B),
        ]
    )
    assert first.status_code == 207
    assert s.post([h.event("a1")]).json()["duplicates"] == 1
    # The admin key: one event of B accepted.
    assert s.post([h.event("b1", tenant_id=h.TENANT_B)], key=s.admin).status_code == 200
    # Refused whole: counts no event.
    assert s.post_raw(b"{}").status_code == 422

    response = s.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert ingest_counts(response.text) == {
        (h.TENANT_A, "accepted"): 2.0,
        (h.TENANT_A, "rejected"): 2.0,
        (h.TENANT_A, "duplicate"): 1.0,
        (h.TENANT_B, "accepted"): 1.0,
    }
    requests = {
        (x.labels["route"], x.labels["status"]): x.value
        for family in text_string_to_metric_families(response.text)
        for x in family.samples
        if x.name == "assay_http_requests_total"
    }
    assert requests[("/v1/events", "207")] == 1.0
    assert requests[("/v1/events", "200")] == 2.0
    assert requests[("/v1/events", "422")] == 1.0


def test_metrics_never_label_by_raw_path(service: Any) -> None:
    service.get("/v1/metrics/not-a-metric-zz9")
    service.get("/v1/unknown-path-zz9")
    text = service.client.get("/metrics").text
    assert "zz9" not in text
    assert 'route="unmatched"' in text
    assert 'route="/v1/metrics/{name}"' in text


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Any:
    # The CLI (run by other tests in this process) stops "assay" logs from propagating.
    monkeypatch.setattr(logging.getLogger("assay"), "propagate", True)
    caplog.set_level(logging.INFO, logger="assay.access")
    return caplog


def test_access_log_holds_no_text_ids_keys_or_query_values(
    service: Any, h: Any, access_log: pytest.LogCaptureFixture
) -> None:
    s = service
    raw_text = "my diary says zebra-7731 at jane.doe@example.org"
    raw_user = "raw-user-kq81"
    query_values = ["qvalue-tenant-5512", "1999-12-31", "2000-01-02"]
    s.post([h.event("e1", user_id=raw_user, text=raw_text)])
    s.post([h.event("e2", user_id=raw_user, text=raw_text, event_type="bogus")])
    s.post_raw(json.dumps([h.event("e3", user_id=raw_user, text=raw_text)]), "text/plain")
    s.get(
        "/v1/metrics/dau",
        s.admin,
        {"tenant_id": query_values[0], "since": query_values[1], "until": query_values[2]},
    )
    s.get("/v1/quarantine", s.key_a, {"tenant_id": query_values[0]})
    s.client.get("/v1/tenants", headers=s.auth("ak_00000000_secret-guess-9931"))
    s.client.get(f"/v1/metrics/{raw_user}", headers=s.auth(s.key_a))

    records = [r for r in access_log.records if r.name == "assay.access"]
    assert len(records) == 7
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in records]
    fields = [json.loads(line) for line in lines]
    # What the log does hold: the method, route template, status and key id.
    assert [(f["method"], f["route"], f["status"]) for f in fields] == [
        ("POST", "/v1/events", 200),
        ("POST", "/v1/events", 207),
        ("POST", "/v1/events", 415),
        ("GET", "/v1/metrics/{name}", 404),  # no such tenant
        ("GET", "/v1/quarantine", 403),
        ("GET", "/v1/tenants", 401),
        ("GET", "/v1/metrics/{name}", 422),
    ]
    assert fields[0]["key_id"] == s.key_ids["key_a"]
    assert fields[3]["key_id"] == s.key_ids["admin"]
    assert fields[0]["events"] == 1

    secrets = [s.key_a.split("_", 2)[2], s.admin.split("_", 2)[2], "secret-guess-9931"]
    forbidden = [
        raw_text,
        "zebra-7731",
        "jane.doe@example.org",
        raw_user,
        s.key_a,
        s.admin,
        *secrets,
        *query_values,
        "tenant_id=",
        "since=",
    ]
    everything = "\n".join(lines + [repr(vars(r)) for r in records])
    for value in forbidden:
        assert value not in everything, value
