"""Bad input and attacks: keys, content types, limits, gzip bombs, hostile JSON, SQL, paths."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

JSON = "application/json"
NDJSON = "application/x-ndjson"


def lines(*rows: Any) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


# -- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token ak_00000000_x",
        "ak_00000000_x",
        "Bearer ak_00000000_wrong",
        "Bearer not-a-key",
        "Bearer ak__",
    ],
    ids=repr,
)
def test_missing_or_malformed_key_is_401(service: Any, h: Any, authorization: str | None) -> None:
    headers = {"Content-Type": JSON}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = service.client.post(
        "/v1/events", content=json.dumps([h.event("e1")]), headers=headers
    )
    assert response.status_code == 401
    assert h.error_of(response)["code"] == "unauthorized"
    assert service.read("events").num_rows == 0


def test_known_key_id_with_a_wrong_secret_is_401(service: Any, h: Any) -> None:
    key_id = service.key_a.split("_")[1]
    forged = f"ak_{key_id}_{'A' * 43}"
    response = service.post([h.event("e1")], key=forged)
    assert response.status_code == 401
    assert h.error_of(response)["code"] == "unauthorized"


def test_revoked_key_is_refused_with_401_on_the_next_request(service: Any, h: Any) -> None:
    assert service.post([h.event("e1")]).status_code == 200
    service.revoke(service.key_a)
    response = service.post([h.event("e2")])
    assert response.status_code == 401
    assert h.error_of(response)["code"] == "unauthorized"
    assert service.get("/v1/tenants").status_code == 401
    assert service.read("events").column("event_id").to_pylist() == ["e1"]
    # Other keys still work.
    assert service.post([h.event("e3")], key=service.admin).status_code == 200


def test_key_without_ingest_scope_is_403_and_stores_nothing(service: Any, h: Any) -> None:
    response = service.post([h.event("e1")], key=service.read_only_a)
    assert response.status_code == 403
    assert h.error_of(response)["code"] == "forbidden_scope"
    assert service.read("events").num_rows == 0


def test_key_without_read_scope_is_403_on_every_read(service: Any, h: Any) -> None:
    for path in ("/v1/tenants", "/v1/metrics/dau", "/v1/quarantine"):
        response = service.get(path, service.ingest_only_a)
        assert response.status_code == 403, path
        assert h.error_of(response)["code"] == "forbidden_scope"


# -- content type and encoding -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "encoding", "code"),
    [
        ("text/plain", None, "unsupported_media_type"),
        (None, None, "unsupported_media_type"),
        ("application/xml", None, "unsupported_media_type"),
        ("multipart/form-data; boundary=x", None, "unsupported_media_type"),
        ("application/json; charset=latin-1", None, "unsupported_media_type"),
        ("application/x-ndjson; charset=iso-8859-1", None, "unsupported_media_type"),
        ("application/json", "br", "unsupported_encoding"),
        ("application/json", "deflate", "unsupported_encoding"),
        ("application/json", "gzip, br", "unsupported_encoding"),
    ],
)
def test_other_content_types_and_encodings_are_415(
    service: Any, h: Any, content_type: str | None, encoding: str | None, code: str
) -> None:
    body = json.dumps([h.event("e1")]).encode()
    response = service.post_raw(body, content_type, encoding=encoding)
    assert response.status_code == 415
    assert h.error_of(response)["code"] == code
    assert service.read("events").num_rows == 0


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", 'application/json; charset="UTF-8"', "Application/JSON"],
)
def test_utf8_charset_and_case_are_accepted(service: Any, h: Any, content_type: str) -> None:
    response = service.post_raw(json.dumps([h.event("e1")]).encode(), content_type)
    assert response.status_code == 200, response.text


# -- limits ---------------------------------------------------------------------------------------


def test_body_over_the_limit_set_in_the_environment_is_413(
    service_factory: Any, h: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_HTTP_MAX_BODY_BYTES", "2000")
    s = service_factory()
    small = json.dumps([h.event("e1")]).encode()
    assert len(small) < 2000
    assert s.post_raw(small).status_code == 200
    big = json.dumps([h.event("e2"), h.event("e3", text="x" * 2000)]).encode()
    response = s.post_raw(big)
    assert response.status_code == 413
    error = h.error_of(response)
    assert (error["code"], error["rule"]) == ("too_large", "size")
    assert s.read("events").column("event_id").to_pylist() == ["e1"]


def test_chunked_body_without_content_length_over_the_limit_is_413(
    service_factory: Any, h: Any
) -> None:
    s = service_factory(http_max_body_bytes=4096)

    def chunks() -> Iterator[bytes]:
        yield b"["
        for i in range(100):
            yield json.dumps(h.event(f"e{i}")).encode() + b","
        yield json.dumps(h.event("last")).encode() + b"]"

    response = s.post_raw(chunks())
    assert response.status_code == 413
    assert h.error_of(response)["code"] == "too_large"
    assert s.read("events").num_rows == 0


@pytest.mark.parametrize("kind", ["array", "ndjson", "ndjson-gzip"])
def test_more_events_than_the_limit_is_413_too_many_events(
    service_factory: Any, h: Any, kind: str
) -> None:
    s = service_factory(http_max_events=3)
    three = [h.event(f"e{i}") for i in range(3)]
    four = [*three, h.event("e3")]

    def send(events: list[dict[str, Any]]) -> Any:
        if kind == "array":
            return s.post(events)
        body = lines(*events)
        if kind == "ndjson-gzip":
            return s.post_raw(gzip.compress(body), NDJSON, encoding="gzip")
        return s.post_raw(body, NDJSON)

    response = send(four)
    assert response.status_code == 413
    error = h.error_of(response)
    assert error["code"] == "too_many_events"
    assert s.read("events").num_rows == 0
    assert send(three).status_code == 200


def test_gzip_bomb_is_refused_with_413_in_bounded_memory(service: Any, h: Any) -> None:
    bomb = gzip.compress(b"0" * 50_000_000, compresslevel=9)
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        response = service.post_raw(bomb, JSON, encoding="gzip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    error = h.error_of(response)
    assert (error["code"], error["rule"]) == ("too_large", "size")
    # The default limit is 5 MiB: inflating the whole 50 MB is not allowed.
    assert peak < 20_000_000
    assert service.read("events").num_rows == 0


def test_gzip_bomb_in_many_members_is_refused_with_413(service_factory: Any, h: Any) -> None:
    s = service_factory(http_max_body_bytes=100_000)
    member = gzip.compress(b"\n" * 60_000)
    response = s.post_raw(member * 3, NDJSON, encoding="gzip")
    assert response.status_code == 413
    assert h.error_of(response)["code"] == "too_large"


@pytest.mark.parametrize("cut", ["truncated", "not-gzip", "empty"])
def test_broken_gzip_is_422_unreadable_body(service: Any, h: Any, cut: str) -> None:
    whole = gzip.compress(json.dumps([h.event("e1")]).encode())
    body = {"truncated": whole[:-12], "not-gzip": b"[this is not gzip]", "empty": b""}[cut]
    response = service.post_raw(body, JSON, encoding="gzip")
    assert response.status_code == 422
    error = h.error_of(response)
    assert (error["code"], error["rule"]) == ("unreadable_body", "gzip")
    assert service.read("events").num_rows == 0


# -- unreadable bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b'{"event_id": "e1"}', b"42", b"", b"   ", b'"[]"', b"null", b"true"],
    ids=["object", "number", "empty", "blank", "string", "null", "true"],
)
def test_json_body_that_is_not_an_array_is_422(service: Any, h: Any, body: bytes) -> None:
    response = service.post_raw(body)
    assert response.status_code == 422
    assert h.error_of(response)["code"] == "unreadable_body"


@pytest.mark.parametrize(
    "body",
    [b"[", b'[{"event_id": "e1"},', b"[1, 2", b'[{"a": 1} {"b": 2}]', b"[] []", b"[}"],
    ids=["open", "trailing-comma", "unclosed", "no-comma", "two-arrays", "bad-bracket"],
)
def test_broken_array_is_422(service: Any, h: Any, body: bytes) -> None:
    response = service.post_raw(body)
    assert response.status_code == 422
    assert h.error_of(response)["code"] == "unreadable_body"
    assert service.read("events").num_rows == 0


def test_invalid_utf8_line_is_rejected_at_its_index(service: Any, h: Any) -> None:
    body = lines(h.event("e0"), b'{"event_id": "e1", "text": "\xff\xfe"}', h.event("e2"))
    response = service.post_raw(body, NDJSON)
    assert response.status_code == 207
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "accepted"),
    ]
    assert results[1]["error"]["code"] == "unreadable_event"


def test_non_objects_in_an_array_are_rejected_at_their_index(service: Any, h: Any) -> None:
    body = json.dumps([7, h.event("e1"), "text", None, [h.event("e2")]]).encode()
    response = service.post_raw(body)
    assert response.status_code == 207
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "rejected"),
        (1, "accepted"),
        (2, "rejected"),
        (3, "rejected"),
        (4, "rejected"),
    ]
    assert {r["error"]["code"] for r in results if r["error"]} == {"unreadable_event"}


# -- hostile JSON ------------------------------------------------------------------------------


def test_huge_event_within_the_body_limit_is_rejected_at_its_index(service: Any, h: Any) -> None:
    huge = h.event("huge", text="a " * 1_000_000)  # 2 MB of text, the limit is 32 KiB
    response = service.post([huge, h.event("e1")])
    assert response.status_code == 207
    results = response.json()["results"]
    assert results[0]["status"] == "rejected"
    assert results[0]["error"]["code"] == "invalid_event"
    assert (results[0]["error"]["field"], results[0]["error"]["rule"]) == ("text", "size")
    assert results[1] == {"index": 1, "event_id": "e1", "status": "accepted", "error": None}
    assert len(response.content) < 10_000


def _deep(depth: int) -> bytes:
    return b'{"event_id": "deep", "attributes": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


def test_deep_json_in_an_array_is_refused_not_a_crash(service: Any, h: Any) -> None:
    body = b"[" + json.dumps(h.event("e0")).encode() + b", " + _deep(10_000) + b"]"
    response = service.post_raw(body)
    if response.status_code == 422:
        assert h.error_of(response)["code"] == "unreadable_body"
    else:
        assert response.status_code == 207, response.text
        results = response.json()["results"]
        assert [(r["index"], r["status"]) for r in results] == [(0, "accepted"), (1, "rejected")]


def test_deep_json_line_is_rejected_at_its_index_and_its_neighbours_are_stored(
    service: Any, h: Any
) -> None:
    body = lines(h.event("e0"), _deep(10_000), h.event("e2"))
    response = service.post_raw(body, NDJSON)
    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "accepted"),
    ]
    assert sorted(service.read("events").column("event_id").to_pylist()) == ["e0", "e2"]


def test_moderately_deep_element_is_rejected_alone_not_the_whole_array(
    service: Any, h: Any
) -> None:
    # 500 levels is valid JSON that Python's json reads; only this element is wrong.
    body = b"[" + json.dumps(h.event("e0")).encode() + b", " + _deep(500) + b"]"
    response = service.post_raw(body)
    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [(0, "accepted"), (1, "rejected")]
    assert results[1]["error"]["code"] in ("invalid_event", "unreadable_event")


# 20,000 attribute keys once took minutes (one pc.struct_field call per key, each slower with
# the key count); they are converted in one flatten() now.
@pytest.mark.parametrize(
    ("where", "count", "content_type"),
    [
        ("top", 20_000, JSON),
        ("top", 20_000, NDJSON),
        ("attributes", 20_000, NDJSON),
        ("attributes", 20_000, JSON),
    ],
)
def test_wide_json_object_is_rejected_at_its_index(
    service: Any, h: Any, where: str, count: int, content_type: str
) -> None:
    wide = h.event("wide")
    keys = {f"k{i}": "v" for i in range(count)}
    if where == "top":
        wide.update(keys)
    else:
        wide["attributes"] = keys
    events = [h.event("e0"), wide]
    body = json.dumps(events).encode() if content_type == JSON else lines(*events)
    response = service.post_raw(body, content_type)
    assert response.status_code == 207
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [(0, "accepted"), (1, "rejected")]
    error = results[1]["error"]
    assert error["code"] == "invalid_event"
    expected = ("k0", "unknown_field") if where == "top" else ("attributes", "size")
    assert (error["field"], error["rule"]) == expected


def test_duplicate_key_with_another_tenant_is_not_a_way_around_the_tenant_check(
    service: Any, h: Any
) -> None:
    line = (
        f'{{"event_id": "dup", "event_time": "{h.RECENT}", "tenant_id": "{h.TENANT_A}", '
        f'"user_id": "u", "session_id": "s", "event_type": "turn", "tenant_id": "{h.TENANT_B}"}}'
    ).encode()
    for content_type, body in ((NDJSON, line + b"\n"), (JSON, b"[" + line + b"]")):
        response = service.post_raw(body, content_type)
        assert response.status_code == 207, response.text
        [result] = response.json()["results"]
        assert result["status"] == "rejected"
    assert service.read("events").num_rows == 0
    # What A's key sent stays in A's quarantine; B's stays empty.
    assert set(service.read("quarantine").column("tenant_id").to_pylist()) <= {h.TENANT_A, None}
    assert service.get("/v1/quarantine", service.key_b).json() == {"data": []}


# -- SQL-like strings in every query parameter ----------------------------------------------------

SQL = ["x' OR '1'='1", "1; DROP TABLE events"]
METRICS = ("dau", "active", "rolling", "max-active", "retention", "sessions")
#: Endpoint → its typed query parameters (tenant_id aside), which refuse a non-value with 422.
TYPED = {
    "/v1/tenants": [],
    **{f"/v1/metrics/{n}": ["since", "until", "window", "threshold", "by"] for n in METRICS},
    "/v1/quarantine": ["limit"],
}


@pytest.fixture(scope="module")
def two_tenants(module_service_factory: Any, h: Any) -> Any:
    s = module_service_factory()
    a = [h.event("a1"), h.event("a2", user_id="raw-user-2"), h.event("a-bad", turn_index=-3)]
    b = [
        h.event("b1", tenant_id=h.TENANT_B),
        h.event("b-bad", tenant_id=h.TENANT_B, turn_index=-3),
    ]
    assert s.post(a, key=s.key_a).status_code == 207
    assert s.post(b, key=s.key_b).status_code == 207
    return s


@pytest.mark.parametrize("path", list(TYPED))
@pytest.mark.parametrize("value", SQL)
def test_sql_like_strings_in_query_parameters_are_inert(
    two_tenants: Any, h: Any, path: str, value: str
) -> None:
    s = two_tenants
    # tenant_id is a free string: a plain filter value for an admin, another tenant for A.
    as_admin = s.get(path, s.admin, {"tenant_id": value})
    as_a = s.get(path, s.key_a, {"tenant_id": value})
    if path == "/v1/tenants":  # takes no parameter: refused, not ignored
        for answer in (as_admin, as_a):
            assert answer.status_code == 422, answer.text
            assert h.error_of(answer)["code"] == "unknown_parameter"
    elif path.startswith("/v1/metrics/"):
        # No such tenant (not an empty answer, which would look like a silent tenant).
        assert as_admin.status_code == 404, as_admin.text
        assert h.error_of(as_admin)["code"] == "not_found"
        assert as_a.status_code == 403
        assert h.error_of(as_a)["code"] == "forbidden_tenant"
    else:
        assert as_admin.status_code == 200, as_admin.text
        assert as_admin.json() == {"data": []}
        assert as_a.status_code == 403
        assert h.error_of(as_a)["code"] == "forbidden_tenant"
    assert h.TENANT_B not in as_a.text
    for param in TYPED[path]:
        response = s.get(path, s.admin, {param: value})
        assert response.status_code == 422, (param, response.text)
        error = h.error_of(response)
        assert (error["code"], error["field"]) == ("invalid_parameter", param)
    # Nothing was dropped or changed.
    assert sorted(s.read("events").column("event_id").to_pylist()) == ["a1", "a2", "b1"]
    assert s.read("quarantine").num_rows == 2


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
@pytest.mark.parametrize("value", SQL)
def test_sql_like_query_on_operations_endpoints_is_ignored(
    service: Any, path: str, value: str
) -> None:
    response = service.client.get(path, params={"tenant_id": value, "q": value})
    assert response.status_code == 200
    assert value not in response.text


@pytest.mark.parametrize("value", SQL)
def test_sql_like_metric_name_is_422(service: Any, h: Any, value: str) -> None:
    response = service.get(f"/v1/metrics/{value}")
    assert response.status_code in (404, 422)
    h.error_of(response)


# -- path tricks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/metrics/..%2f..%2fetc",
        "/v1/metrics/..%2F..%2Fetc%2Fpasswd",
        "/v1/metrics/%2e%2e/%2e%2e/etc/passwd",
        "/v1/metrics/dau%00",
        "/v1/metrics/dau%00.json",
        "/v1/metrics/dau/extra",
        "/v1/metrics/" + "a" * 10_000,
        "/v1/metrics/%ff%fe",
        "/v1/quarantine/..%2fevents",
        "/v1/" + "x/" * 2_000,
    ],
    ids=lambda p: p[:40],
)
def test_path_tricks_are_404_or_422_with_the_error_shape(service: Any, h: Any, path: str) -> None:
    response = service.get(path, service.admin)
    assert response.status_code in (404, 422), response.text
    h.error_of(response)
    assert "root:" not in response.text
    assert len(response.content) < 2_000
