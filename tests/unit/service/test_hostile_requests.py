"""What a hostile or careless client sends that the service must neither echo, obey nor ignore
(issue 18): raw input in error messages, the ``Host`` header in redirects, unknown query
parameters, reads that would hold every tenant's readers."""

from __future__ import annotations

from typing import Any

import pytest

from assay.store import ApiKey

EMAIL = "paula.path@example.com"
CARD = "4111 1111 1111 1111"


def test_404_message_redacts_the_path(service: Any, h: Any) -> None:
    response = service.get(f"/v1/{EMAIL}")
    assert response.status_code == 404
    error = h.error_of(response)
    assert EMAIL not in response.text
    assert error["message"].startswith("no such resource '/v1/<EMAIL>'")


@pytest.mark.parametrize(
    ("header", "value", "code"),
    [
        ("content_type", f"application/{EMAIL}", "unsupported_media_type"),
        ("content_type", f"application/json; charset={EMAIL}", "unsupported_media_type"),
        ("encoding", f"br-{CARD}", "unsupported_encoding"),
    ],
)
def test_415_message_redacts_the_header_it_quotes(
    service: Any, h: Any, header: str, value: str, code: str
) -> None:
    kwargs = {"content_type": "application/json", header: value}
    response = service.post_raw(b"[]", **kwargs)
    assert response.status_code == 415
    assert h.error_of(response)["code"] == code
    assert EMAIL not in response.text
    assert CARD not in response.text
    assert "<EMAIL>" in response.text or "<CARD>" in response.text


def test_redirects_are_relative_whatever_the_host_header(service: Any) -> None:
    response = service.client.get(
        "/v1/tenants/?x=1",
        headers={**service.auth(service.key_a), "Host": "attacker.example"},
        follow_redirects=False,
    )
    assert response.status_code == 307
    assert response.headers["location"] == "/v1/tenants?x=1"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("http://attacker.example/v1/tenants", "/v1/tenants"),
        ("http://h//attacker.example/x?a=b", "/attacker.example/x?a=b"),
        ("https://h", "/"),
        ("/already/relative", "/already/relative"),
    ],
)
def test_relative_never_leaves_a_host_in_the_location(location: str, expected: str) -> None:
    from assay.service._observe import relative  # new in issue 18: the module still collects

    assert relative(location) == expected


@pytest.mark.parametrize(
    ("method", "path", "accepted"),
    [
        ("GET", "/v1/metrics/dau", "tenant_id, since, until, window, threshold, by"),
        ("GET", "/v1/quarantine", "tenant_id, limit"),
        ("GET", "/v1/tenants", None),
        ("POST", "/v1/events", None),
    ],
)
def test_unknown_query_parameter_is_422_naming_the_accepted_ones(
    service: Any, h: Any, method: str, path: str, accepted: str | None
) -> None:
    response = service.client.request(
        method,
        path,
        params={"tenant": h.TENANT_B},
        headers=service.auth(service.key_a),
        json=[h.event("e1")] if method == "POST" else None,
    )
    assert response.status_code == 422, response.text
    error = h.error_of(response)
    assert (error["code"], error["field"], error["rule"]) == (
        "unknown_parameter",
        "tenant",
        "unknown",
    )
    takes = f"accepts {accepted}" if accepted else "takes no query parameters"
    assert error["message"] == (
        f"unknown query parameter 'tenant'; {path.replace('dau', '{name}')} {takes} "
        "(see /openapi.json)"
    )
    assert service.read("events").num_rows == 0


def test_unknown_query_parameter_name_is_redacted(service: Any, h: Any) -> None:
    response = service.get("/v1/tenants", params={EMAIL: "1"})
    assert response.status_code == 422
    error = h.error_of(response)
    assert (error["code"], error["field"]) == ("unknown_parameter", "<EMAIL>")
    assert EMAIL not in response.text


def test_declared_parameters_are_still_accepted(service: Any, h: Any) -> None:
    assert service.post([h.event("e1")]).status_code == 200
    response = service.get("/v1/metrics/active", params={"window": 2, "by": "locale"})
    assert response.status_code == 200, response.text
    assert [r["active_users"] for r in response.json()["data"]] == [1]


def test_admin_read_of_an_unknown_tenant_is_404(service: Any, h: Any) -> None:
    assert service.post([h.event("e1")]).status_code == 200
    response = service.get("/v1/metrics/dau", service.admin, {"tenant_id": "no-such-tenant"})
    assert response.status_code == 404, response.text
    error = h.error_of(response)
    assert error["code"] == "not_found"
    assert h.TENANT_A in error["message"]  # the known tenants are suggested


def _key(service: Any, name: str) -> ApiKey:
    return ApiKey(
        key_id=service.key_ids[name],
        tenant_id=None,
        scopes=("ingest", "read"),
        created_at="2026-01-01T00:00:00Z",
        revoked_at=None,
    )


def test_a_key_over_its_concurrent_reads_gets_429_and_other_keys_do_not(
    service_factory: Any, h: Any
) -> None:
    s = service_factory(http_key_reads=2)
    state = s.client.app.state.assay
    busy = _key(s, "key_a")
    # As if two reads of key A were running (one holds a reader handle, as a real one would).
    with state.limits.hold("read", busy), state.reader(busy):
        refused = s.get("/v1/tenants", s.key_a)
        other = s.get("/v1/tenants", s.key_b)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    error = h.error_of(refused)
    assert error["code"] == "too_many_requests"
    assert "http_key_reads" in error["message"]
    assert other.status_code == 200
    assert s.get("/v1/tenants", s.key_a).status_code == 200  # the slots are free again


def test_a_window_over_the_setting_is_422_naming_it(service_factory: Any, h: Any) -> None:
    s = service_factory(http_max_window_days=30)
    assert s.post([h.event("e1")]).status_code == 200
    ok = s.get("/v1/metrics/active", params={"window": 30})
    too_long = s.get("/v1/metrics/active", params={"window": 31, "by": "prompt_template"})
    assert ok.status_code == 200
    assert too_long.status_code == 422
    error = h.error_of(too_long)
    assert (error["code"], error["field"]) == ("invalid_parameter", "window")
    assert "http_max_window_days" in error["message"]


def test_default_window_bound_refuses_ten_years(service: Any, h: Any) -> None:
    response = service.get("/v1/metrics/active", params={"window": 3650})
    assert response.status_code == 422
    assert h.error_of(response)["field"] == "window"
