"""Sign-in, sessions, CSRF and the security headers of the dashboard (``assay.dashboard._auth``)."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.dashboard import _auth
from assay.dashboard._auth import safe_next

ORIGIN = "http://testserver"
#: The fixture ``ui_site`` (tests/unit/dashboard/conftest.py), which test modules cannot import.
Site = Any


def get(client: TestClient, url: str) -> Any:
    return client.get(url, follow_redirects=False)


#: The policy the brief asks for, written out here rather than imported.
EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def fresh(site: Site) -> TestClient:
    return TestClient(site.client.app, raise_server_exceptions=False)


def test_an_unsigned_page_redirects_to_the_login_with_next(ui_site: Site) -> None:
    r = get(fresh(ui_site), "/ui/tenants/t0?since=2026-03-02")
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login?next=%2Fui%2Ftenants%2Ft0%3Fsince%3D2026-03-02"


def test_sign_in_sets_a_strict_httponly_cookie_on_ui_and_goes_to_next(ui_site: Site) -> None:
    c = fresh(ui_site)
    r = c.post(
        "/ui/login",
        data={"api_key": ui_site.keys["t0"], "next": "/ui/tenants/t0"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/tenants/t0"
    raw = r.headers["set-cookie"]
    morsel = SimpleCookie(raw)["assay_ui"]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "strict"
    assert morsel["path"] == "/ui"
    assert morsel["max-age"] == str(8 * 3600)
    assert not morsel["secure"]  # plain http here
    assert ui_site.keys["t0"] not in raw  # the cookie is a session token, never the key
    assert get(c, "/ui/").status_code == 200


def test_the_cookie_is_secure_over_tls(ui_site: Site) -> None:
    c = TestClient(ui_site.client.app, base_url="https://testserver")
    r = c.post(
        "/ui/login",
        data={"api_key": ui_site.keys["t0"]},
        headers={"Origin": "https://testserver"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert SimpleCookie(r.headers["set-cookie"])["assay_ui"]["secure"] is True


@pytest.mark.parametrize("key", ["t0_ingest", "nonsense"])
def test_sign_in_refuses_a_key_without_read_scope_or_unknown(ui_site: Site, key: str) -> None:
    c = fresh(ui_site)
    plain = ui_site.keys.get(key, "ak_00000000_not-a-real-key")
    r = c.post("/ui/login", data={"api_key": plain}, headers={"Origin": ORIGIN})
    assert r.status_code == 401
    assert "no read scope" in r.text
    assert "set-cookie" not in r.headers
    assert get(c, "/ui/").status_code == 303


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Referer": "http://evil.example/page"},
        {},  # neither Origin nor Referer
        {"Origin": "null"},
    ],
)
def test_a_post_from_another_origin_is_refused(ui_site: Site, headers: dict[str, str]) -> None:
    c = fresh(ui_site)
    r = c.post("/ui/login", data={"api_key": ui_site.keys["t0"]}, headers=headers)
    assert r.status_code == 403
    assert "sent from another site" in r.text
    assert "set-cookie" not in r.headers


def test_a_same_origin_referer_is_enough(ui_site: Site) -> None:
    c = fresh(ui_site)
    r = c.post(
        "/ui/login",
        data={"api_key": ui_site.keys["t0"]},
        headers={"Referer": "http://testserver/ui/login"},
        follow_redirects=False,
    )
    assert r.status_code == 303


def test_sign_out_needs_the_csrf_token(ui_site: Site) -> None:
    c = ui_site.login("t0")
    for data in ({}, {"csrf_token": "wrong"}):
        r = c.post("/ui/logout", data=data, headers={"Origin": ORIGIN})
        assert r.status_code == 403
        assert "security token" in r.text
        assert get(c, "/ui/").status_code == 200  # still signed in
    token = ui_site.csrf(c)
    r = c.post("/ui/logout", data={"csrf_token": token}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = c.post(
        "/ui/logout", data={"csrf_token": token}, headers={"Origin": ORIGIN}, follow_redirects=False
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login"
    assert get(c, "/ui/").status_code == 303


def test_a_stolen_cookie_is_dead_after_sign_out(ui_site: Site) -> None:
    c = ui_site.login("t0")
    cookie = c.cookies["assay_ui"]
    c.post("/ui/logout", data={"csrf_token": ui_site.csrf(c)}, headers={"Origin": ORIGIN})
    other = fresh(ui_site)
    other.cookies.set("assay_ui", cookie, path="/ui")
    assert get(other, "/ui/").status_code == 303


def test_each_session_has_its_own_csrf_token(ui_site: Site) -> None:
    a, b = ui_site.login("t0"), ui_site.login("t0")
    token_a = ui_site.csrf(a)
    assert token_a != ui_site.csrf(b)
    r = b.post("/ui/logout", data={"csrf_token": token_a}, headers={"Origin": ORIGIN})
    assert r.status_code == 403


def test_a_session_expires(ui_site: Site) -> None:
    sessions = ui_site.client.app.state.assay_ui.sessions
    lifetime = sessions.lifetime
    sessions.lifetime = 0.0
    try:
        c = ui_site.login("t0")
    finally:
        sessions.lifetime = lifetime
    assert get(c, "/ui/").status_code == 303


def test_revoking_the_key_ends_its_sessions(ui_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    import assay

    with assay.Workspace.open(ui_site.path) as ws:
        _, plain = ws.keys.create(tenant_id="t2", scopes=("read",))
    ui_site.keys["t2"] = plain
    c = ui_site.login("t2")
    assert get(c, "/ui/").status_code == 200
    with assay.Workspace.open(ui_site.path) as ws:
        ws.keys.revoke(plain.split("_")[1])
    monkeypatch.setattr(_auth, "RECHECK_SECONDS", 0.0)
    assert get(c, "/ui/").status_code == 303


@pytest.mark.parametrize(
    "value",
    [
        "https://evil.example/ui/",
        "//evil.example/ui/",
        "/\\evil.example",
        "\\\\evil.example/ui/",
        "/v1/tenants",
        "/uix",
        "/ui/../v1/tenants",
        "javascript:alert(1)",
        "/ui/\r\nSet-Cookie: x=1",
        "",
        None,
    ],
)
def test_next_never_leaves_the_dashboard(ui_site: Site, value: str | None) -> None:
    assert safe_next(value) == "/ui/"
    c = fresh(ui_site)
    data = {"api_key": ui_site.keys["t0"]}
    if value is not None:
        data["next"] = value
    r = c.post("/ui/login", data=data, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert r.headers["location"] == "/ui/"


@pytest.mark.parametrize("value", ["/ui/", "/ui", "/ui/tenants/t0?by=locale&since=2026-03-02"])
def test_next_keeps_a_dashboard_path(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize(
    "url",
    [
        "/ui/login",
        "/ui/",
        "/ui/tenants/t0",
        "/ui/static/app.css",
        "/ui/static/app.js",
        "/ui/no-such-page",
        "/ui/static/missing.js",
        "/ui/fleet.csv",
    ],
)
def test_every_ui_answer_carries_the_security_headers(ui_site: Site, url: str) -> None:
    c = ui_site.login("admin")
    r = get(c, url)
    assert r.headers["content-security-policy"] == EXPECTED_CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"


def test_static_files_need_no_sign_in_and_are_cacheable(ui_site: Site) -> None:
    r = get(fresh(ui_site), "/ui/static/app.css")
    assert r.status_code == 200
    assert "max-age=3600" in r.headers["cache-control"]
    assert r.headers["etag"]


def test_the_api_keeps_its_own_headers(ui_site: Site) -> None:
    r = get(ui_site.client, "/healthz")
    assert "content-security-policy" not in r.headers


INLINE = [
    re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    re.compile(r"\sstyle\s*=", re.I),
    re.compile(r"\son[a-z]+\s*=", re.I),
    re.compile(r"javascript:", re.I),
]


@pytest.mark.parametrize(
    "url", ["/ui/login", "/ui/", "/ui/?page=2", "/ui/tenants/t0", "/ui/tenants/t0?by=locale"]
)
def test_no_page_holds_inline_script_or_style(ui_site: Site, url: str) -> None:
    c = ui_site.login("admin")
    r = get(c, url)
    assert r.status_code == 200
    for pattern in INLINE:
        assert not pattern.search(r.text), (url, pattern.pattern)


def test_pages_have_landmarks_a_skip_link_and_the_signed_in_key(ui_site: Site) -> None:
    c = ui_site.login("t1")
    page = get(c, "/ui/").text
    assert '<a class="skip" href="#main">' in page
    assert '<main id="main"' in page
    assert '<nav aria-label="Main">' in page
    assert "tenant <code>t1</code>" in page
    admin = get(ui_site.login("admin"), "/ui/").text
    assert "admin (all tenants)" in admin


@pytest.mark.parametrize(
    ("url", "status"), [("/ui/no-such-page", 404), ("/ui/?page=abc", 400), ("/ui/?page=0", 400)]
)
def test_a_missing_page_or_bad_query_is_an_html_page(ui_site: Site, url: str, status: int) -> None:
    r = get(ui_site.login("admin"), url)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    assert '<main id="main"' in r.text
    assert "abc" not in r.text.split("<main", 1)[1]  # the input is not echoed


def test_the_api_keeps_its_json_errors(ui_site: Site) -> None:
    r = get(ui_site.client, "/v1/no-such-thing")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_a_key_holds_at_most_max_sessions(ui_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_auth, "MAX_SESSIONS_PER_KEY", 3)
    clients = [ui_site.login("t1") for _ in range(5)]
    signed_in = [get(c, "/ui/").status_code == 200 for c in clients]
    # The two oldest sessions ended when the fourth and fifth began.
    assert signed_in == [False, False, True, True, True]


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_next_is_always_a_path_of_this_dashboard(value: str) -> None:
    from urllib.parse import urljoin, urlsplit

    out = safe_next(value)
    assert out in {value, "/ui/"}
    # Resolved by a browser against this server, it stays on this server, under /ui.
    resolved = urlsplit(urljoin("http://testserver/ui/login", out))
    assert resolved.netloc == "testserver"
    assert resolved.path == "/ui" or resolved.path.startswith("/ui/")
