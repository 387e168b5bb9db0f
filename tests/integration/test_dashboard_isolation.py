"""The dashboard's isolation matrix: every ``/ui`` route and every static asset.

The routes are read from the app itself, so a page added later is covered without editing this
file. Signed in with tenant A's key, each route is asked about tenant B (its id, its incident,
its session, in the path and as ``tenant``/``tenant_id`` query values): the answer must refuse
(403/404), or answer without a trace of B (B's id and session id are distinctive strings).
Unsigned, every page redirects to the sign-in page. Every answer, and every asset, carries the
Content-Security-Policy. Every state-changing form refused for A leaves B's incident as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import assay
from assay.dashboard._render import STATIC
from assay.ingest import ingest_paths
from assay.service import create_app
from assay.store import NewIncident

A, B = "tenant-alpha", "tenant-bravo-q7z"
B_SESSION = "sess-bravo-zx81"
ORIGIN = "http://testserver"
CSP_START = "default-src 'self'; script-src 'self';"
#: Pages that need no sign-in.
PUBLIC = {"/ui", "/ui/login"}


def _events() -> list[dict[str, Any]]:
    out = []
    for tenant, session in ((A, "sess-alpha-1"), (B, B_SESSION)):
        for day in range(1, 22):
            when = dt.date(2026, 3, day).isoformat()
            for k, kind in enumerate(("session_start", "turn", "feedback", "error")):
                out.append(
                    {
                        "event_id": f"{tenant}-{day}-{k}",
                        "event_time": f"{when}T10:00:0{k}Z",
                        "tenant_id": tenant,
                        "user_id": f"user-{tenant}-{day % 3}",
                        "session_id": f"{session}-{day}" if day > 1 else session,
                        "event_type": kind,
                        "locale": "de-DE",
                        "model_version": "v1",
                        "latency_ms": 100.0 + day,
                        **({"feedback": -1} if kind == "feedback" else {}),
                    }
                )
    return out


def _incident(tenant: str) -> NewIncident:
    return NewIncident(
        kind="anomaly",
        key=f"error_rate|tenant={tenant}",
        tenant_id=tenant,
        metric="error_rate",
        slice={},
        start=dt.date(2026, 3, 20),
        end=dt.date(2026, 3, 21),
        direction="up",
        severity="high",
        expected=0.1,
        observed=0.9,
        score=0.001,
        details={},
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("iso")
    data = base / "events.jsonl"
    data.write_text("".join(json.dumps(e) + "\n" for e in _events()), encoding="utf-8")
    with assay.Workspace.open(base / "ws", create=True) as ws:
        ingest_paths(ws, [data])
        key_a = ws.keys.create(tenant_id=A, scopes=("read",))[1]
        admin = ws.keys.create(tenant_id=None, scopes=("read",))[1]
        inc_a, _ = ws.incidents.record(_incident(A))
        inc_b, _ = ws.incidents.record(_incident(B))
        assert inc_a is not None
        assert inc_b is not None
    with TestClient(create_app(base / "ws"), raise_server_exceptions=False) as client:
        yield {
            "client": client,
            "path": base / "ws",
            "key_a": key_a,
            "admin": admin,
            "inc_b": inc_b.id,
        }


def _signed_in(site: dict[str, Any], key: str) -> TestClient:
    c = TestClient(site["client"].app, raise_server_exceptions=False)
    r = c.post("/ui/login", data={"api_key": site[key]}, headers={"Origin": ORIGIN})
    assert r.status_code == 200, r.text
    return c


def _routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """(full path, methods) of every API route, into included routers (FastAPI >= 0.165 keeps
    an included router as one entry holding the original router)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, set(route.methods)
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _routes(inner.routes, prefix + getattr(context, "prefix", ""))


def _ui_routes(app: Any) -> list[tuple[str, set[str]]]:
    return sorted((p, m) for p, m in _routes(app.routes) if p.startswith("/ui"))


def _url_about_b(path: str, site: dict[str, Any]) -> str:
    """The route's path with every parameter naming tenant B's things, plus B in the query."""
    values = {"incident_id": str(site["inc_b"]), "id": str(site["inc_b"])}
    values |= {"session_id": B_SESSION, "tenant_id": B, "tenant": B}

    def fill(m: re.Match[str]) -> str:
        return values.get(m.group(1), B)

    filled = re.sub(r"{(\w+)(?::\w+)?}", fill, path)
    return f"{filled}?tenant={B}&tenant_id={B}&metric=dau"


def test_the_matrix_covers_the_pages(site: dict[str, Any]) -> None:
    paths = {p for p, _ in _ui_routes(site["client"].app)}
    assert {"/ui/", "/ui/login", "/ui/logout", "/ui/tenants/{tenant_id}"} <= paths


def test_every_page_about_another_tenant_refuses_or_shows_nothing_of_it(
    site: dict[str, Any],
) -> None:
    c = _signed_in(site, "key_a")
    checked = 0
    for path, methods in _ui_routes(site["client"].app):
        if "GET" not in methods or path in PUBLIC:
            continue
        url = _url_about_b(path, site)
        r = c.get(url, follow_redirects=False)
        assert r.status_code in {200, 400, 403, 404}, (url, r.status_code)
        assert B not in r.text, url
        assert B_SESSION not in r.text, url
        assert r.headers["content-security-policy"].startswith(CSP_START), url
        checked += 1
    assert checked >= 4


def test_the_admin_sees_tenant_b_where_the_tenant_key_cannot(site: dict[str, Any]) -> None:
    # The same URLs answer B's data to an admin: the refusals above are not a broken page.
    c = _signed_in(site, "admin")
    r = c.get(f"/ui/tenants/{B}")
    assert r.status_code == 200
    assert B in r.text


def test_every_page_redirects_an_unsigned_request_to_the_sign_in(site: dict[str, Any]) -> None:
    c = TestClient(site["client"].app, raise_server_exceptions=False)
    for path, methods in _ui_routes(site["client"].app):
        if path in PUBLIC:
            continue
        url = _url_about_b(path, site)
        for method in sorted(methods & {"GET", "POST"}):
            r = c.request(method, url, headers={"Origin": ORIGIN}, follow_redirects=False)
            assert r.status_code == 303, (method, url, r.status_code)
            assert r.headers["location"].startswith("/ui/login?next="), url
            assert B not in r.text, url


def test_no_form_changes_another_tenants_incident(site: dict[str, Any]) -> None:
    c = _signed_in(site, "key_a")
    page = c.get("/ui/").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    for path, methods in _ui_routes(site["client"].app):
        if "POST" not in methods or path in PUBLIC | {"/ui/logout"}:
            continue
        url = _url_about_b(path, site)
        r = c.post(url, data={"csrf_token": token}, headers={"Origin": ORIGIN})
        assert r.status_code in {400, 403, 404}, (url, r.status_code)
        assert B not in r.text, url
    with assay.Workspace.open(site["path"]) as ws:
        incident = ws.incidents.get(site["inc_b"])
    assert incident.state == "open"
    assert incident.acknowledged_at is None


def _assets() -> list[str]:
    files = [p for p in Path(STATIC).rglob("*") if p.is_file()]
    return sorted("/ui/static/" + p.relative_to(STATIC).as_posix() for p in files)


def test_every_asset_is_served_without_sign_in_with_the_policy(site: dict[str, Any]) -> None:
    c = TestClient(site["client"].app, raise_server_exceptions=False)
    assets = _assets()
    assert "/ui/static/app.css" in assets
    for url in assets:
        r = c.get(url)
        assert r.status_code == 200, url
        assert r.headers["content-security-policy"].startswith(CSP_START), url
        assert r.headers["x-content-type-options"] == "nosniff", url
    assert c.get("/ui/static/../_auth.py").status_code == 404


def test_a_real_server_keeps_tenant_a_to_itself(site: dict[str, Any], tmp_path: Path) -> None:
    """Once over real HTTP (uvicorn on 127.0.0.1, a child process): sign-in, cookie, policy,
    and the refusals, as a browser would meet them."""
    from live_server import running_server  # type: ignore[import-not-found]

    with (
        running_server(site["path"], tmp_path / "server.err") as (_, port),
        httpx.Client(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        origin = {"Origin": f"http://127.0.0.1:{port}"}
        r = client.post("/ui/login", data={"api_key": site["key_a"]}, headers=origin)
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "path=/ui" in cookie
        fleet = client.get("/ui/fleet.csv")
        assert fleet.status_code == 200
        assert [line.split(",")[0] for line in fleet.text.splitlines()[1:]] == [A]
        other = client.get(f"/ui/tenants/{B}")
        assert other.status_code == 404
        assert B not in other.text
        assert other.headers["content-security-policy"].startswith(CSP_START)
        assert client.get(f"/ui/tenants/{A}").status_code == 200
