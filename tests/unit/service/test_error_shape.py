"""Every error answer has one shape: ``{"error": {"code", "message", "field", "rule"}}``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

JSON = "application/json"
Call = Callable[[Any, Any], httpx.Response]


def _post_as(key_name: str, body: bytes = b"[]", **headers: str) -> Call:
    def call(s: Any, h: Any) -> httpx.Response:
        response: httpx.Response = s.client.post(
            "/v1/events",
            content=body,
            headers={**s.auth(getattr(s, key_name)), "Content-Type": JSON, **headers},
        )
        return response

    return call


#: (id, settings of the service, request, expected status, expected error code)
CASES: list[tuple[str, dict[str, Any], Call, int, str]] = [
    (
        "401-no-key",
        {},
        lambda s, h: s.client.post("/v1/events", content=b"[]", headers={"Content-Type": JSON}),
        401,
        "unauthorized",
    ),
    (
        "401-unknown-key",
        {},
        lambda s, h: s.client.get("/v1/tenants", headers=s.auth("ak_00000000_nope")),
        401,
        "unauthorized",
    ),
    ("403-scope-ingest", {}, _post_as("read_only_a"), 403, "forbidden_scope"),
    (
        "403-scope-read",
        {},
        lambda s, h: s.get("/v1/tenants", s.ingest_only_a),
        403,
        "forbidden_scope",
    ),
    (
        "403-tenant",
        {},
        lambda s, h: s.get("/v1/metrics/dau", s.key_a, {"tenant_id": h.TENANT_B}),
        403,
        "forbidden_tenant",
    ),
    ("404-unknown-path", {}, lambda s, h: s.get("/v1/nothing-here"), 404, "not_found"),
    ("404-unknown-root", {}, lambda s, h: s.client.get("/"), 404, "not_found"),
    (
        "405-delete-events",
        {},
        lambda s, h: s.client.delete("/v1/events", headers=s.auth(s.key_a)),
        405,
        "method_not_allowed",
    ),
    ("405-get-events", {}, lambda s, h: s.get("/v1/events"), 405, "method_not_allowed"),
    (
        "413-body",
        {"http_max_body_bytes": 1024},
        _post_as("key_a", b"[" + b" " * 2000 + b"]"),
        413,
        "too_large",
    ),
    (
        "413-events",
        {"http_max_events": 2},
        lambda s, h: s.post([h.event("e1"), h.event("e2"), h.event("e3")]),
        413,
        "too_many_events",
    ),
    (
        "415-content-type",
        {},
        lambda s, h: s.post_raw(b"[]", "text/plain"),
        415,
        "unsupported_media_type",
    ),
    (
        "415-encoding",
        {},
        lambda s, h: s.post_raw(b"[]", JSON, encoding="br"),
        415,
        "unsupported_encoding",
    ),
    ("422-body", {}, lambda s, h: s.post_raw(b'{"event_id": "e1"}'), 422, "unreadable_body"),
    (
        "422-parameter",
        {},
        lambda s, h: s.get("/v1/metrics/active", params={"window": 0}),
        422,
        "invalid_parameter",
    ),
    (
        "422-metric-name",
        {},
        lambda s, h: s.get("/v1/metrics/wau"),
        422,
        "invalid_parameter",
    ),
    (
        "429-queue-full",
        {"http_queue_requests": 0},
        lambda s, h: s.post([h.event("e1")]),
        429,
        "too_many_requests",
    ),
]


@pytest.mark.parametrize(
    ("settings", "call", "status", "code"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_every_error_has_the_one_error_shape(
    service_factory: Any,
    h: Any,
    settings: dict[str, Any],
    call: Call,
    status: int,
    code: str,
) -> None:
    s = service_factory(**settings)
    response = call(s, h)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert h.error_of(response)["code"] == code


def test_401_asks_for_a_bearer_key(service: Any) -> None:
    response = service.client.get("/v1/tenants")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_429_says_when_to_retry(service_factory: Any, h: Any) -> None:
    s = service_factory(http_queue_requests=0)
    response = s.post([h.event("e1")])
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert s.read("events").num_rows == 0


def test_openapi_documents_no_error_shape_the_service_never_sends(service: Any) -> None:
    """FastAPI documents its own 422 body ({"detail": [...]}) unless told otherwise; this
    service answers every error, 422 included, with {"error": {...}}."""
    spec = service.client.get("/openapi.json").json()
    documented = {
        (method.upper(), path, status): json.dumps(answer.get("content", {}))
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for status, answer in operation["responses"].items()
        if status >= "400"
    }
    wrong = sorted(k for k, content in documented.items() if "HTTPValidationError" in content)
    assert not wrong, f"documented with FastAPI's {{'detail': [...]}} body: {wrong}"
