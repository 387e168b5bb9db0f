"""Access to the dashboard: sign-in with an API key, server-side sessions, CSRF, security headers.

``POST /ui/login`` takes an API key of scope ``read`` and answers with a session cookie
(``assay_ui``: a random token, HttpOnly, SameSite=Strict, Secure over TLS, Path=/ui) naming a
session held in memory for ``session_hours`` (8 by default; a restart signs everyone out). The
key itself is never stored; the session remembers its id and tenant, and ends when the key is
revoked (checked again at most every :data:`RECHECK_SECONDS`).

Every ``POST`` under ``/ui/`` must come from the same origin (``Origin``, else ``Referer``; a
request with neither is refused) and, once signed in, carry the session's CSRF token in the
form field ``csrf_token``: use the dependency :data:`CsrfUser` on such routes. Every ``/ui``
answer carries :data:`SECURITY_HEADERS`.

A tenant key sees its own tenant only, everywhere: pages call :func:`require_tenant` before
reading a tenant's data, which answers 404 for any other tenant, whether it exists or not.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, Request

from assay.store import ApiKey, KeyStore

if TYPE_CHECKING:
    from assay._api import Workspace

COOKIE = "assay_ui"
#: Seconds between two checks that a signed-in key is still active.
RECHECK_SECONDS = 30.0
#: Sessions one key may hold at once; signing in again ends the oldest beyond this.
MAX_SESSIONS_PER_KEY = 20
#: The largest form body read (a sign-in or an incident note).
MAX_FORM_BYTES = 64 * 1024

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


class Backend(Protocol):
    """What the dashboard needs of the service: the keys, and a reader handle per read."""

    keys: KeyStore

    def reader(self, key: ApiKey) -> AbstractContextManager[Workspace]: ...


@dataclass(frozen=True)
class UiUser:
    """The signed-in key: its id, its tenant (None for an admin key), the session's CSRF token."""

    key: ApiKey
    csrf: str

    @property
    def key_id(self) -> str:
        return self.key.key_id

    @property
    def tenant_id(self) -> str | None:
        return self.key.tenant_id

    @property
    def is_admin(self) -> bool:
        return self.key.tenant_id is None


class UiError(Exception):
    """An answer as an HTML page (``error.html``): ``status``, a title and what to do."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.message = message


class SignInRequired(Exception):
    """No valid session: answered with a redirect to the sign-in page, back to ``next`` after."""

    def __init__(self, next_url: str) -> None:
        super().__init__("sign-in required")
        self.next_url = next_url


def not_found() -> UiError:
    """The one answer for a tenant (or an object of a tenant) that is absent or not the key's."""
    return UiError(
        404,
        "Not found",
        "There is nothing here that this key may see. Check the link, or sign in with a key "
        "of the tenant it belongs to.",
    )


def require_tenant(user: UiUser, tenant_id: str) -> str:
    """``tenant_id`` if ``user`` may read it; else the 404 of :func:`not_found` (no leak of
    whether that tenant exists)."""
    if user.tenant_id is not None and user.tenant_id != tenant_id:
        raise not_found()
    return tenant_id


@dataclass
class _Session:
    user: UiUser
    expires: float
    checked: float


@dataclass
class Sessions:
    """Sessions in memory, by the SHA-256 of their token (a memory dump holds no usable token)."""

    lifetime: float
    _items: dict[str, _Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def _id(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def open(self, key: ApiKey) -> tuple[str, UiUser]:
        """A new session for ``key``: its token (for the cookie) and its user."""
        token = secrets.token_urlsafe(32)
        user = UiUser(key=key, csrf=secrets.token_urlsafe(32))
        now = time.monotonic()
        with self._lock:
            for sid in [s for s, v in self._items.items() if v.expires <= now]:
                del self._items[sid]
            # A key signing in again and again (a script) must not grow memory without
            # bound: past the cap, its oldest sessions end (dicts keep insertion order).
            same = [s for s, v in self._items.items() if v.user.key_id == key.key_id]
            for sid in same[: max(0, len(same) - MAX_SESSIONS_PER_KEY + 1)]:
                del self._items[sid]
            self._items[self._id(token)] = _Session(user, now + self.lifetime, now)
        return token, user

    def close(self, token: str) -> None:
        with self._lock:
            self._items.pop(self._id(token), None)

    def user(self, token: str, keys: KeyStore) -> UiUser | None:
        """The session's user, or None when the token is unknown, expired or its key revoked."""
        sid = self._id(token)
        now = time.monotonic()
        with self._lock:
            session = self._items.get(sid)
        if session is None:
            return None
        if session.expires <= now:
            self.close(token)
            return None
        if now - session.checked >= RECHECK_SECONDS:
            active = {k.key_id for k in keys.list() if k.active}
            if session.user.key_id not in active:
                self.close(token)
                return None
            session.checked = now
        return session.user


@dataclass
class UiState:
    """The dashboard's state in ``app.state.assay_ui``."""

    backend: Callable[[Request], Backend]
    sessions: Sessions


def ui_state(request: Request) -> UiState:
    state: UiState = request.app.state.assay_ui
    return state


def backend(request: Request) -> Backend:
    """The service behind the dashboard (its keys, its reader handles)."""
    return ui_state(request).backend(request)


def safe_next(value: str | None) -> str:
    """``value`` if it is a local dashboard path (``/ui`` or under ``/ui/``), else ``/ui/``:
    a sign-in link must not send anyone to another site."""
    default = "/ui/"
    if not value or len(value) > 2000:
        return default
    if any(c in value for c in "\\\r\n\t") or any(ord(c) < 0x20 for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return default
    if not (parts.path == "/ui" or parts.path.startswith("/ui/")):
        return default
    if "/../" in parts.path or parts.path.endswith("/.."):
        return default
    return value


def current_user(request: Request) -> UiUser:
    """The signed-in user, else :class:`SignInRequired` (a redirect to ``/ui/login``)."""
    cached = getattr(request.state, "ui_user", None)
    if isinstance(cached, UiUser):
        return cached
    token = request.cookies.get(COOKIE)
    user = None
    if token:
        user = ui_state(request).sessions.user(token, backend(request).keys)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(safe_next(target))
    request.state.ui_user = user
    return user


def same_origin(request: Request) -> None:
    """403 unless the request's ``Origin`` (else ``Referer``) is this server's own origin."""
    own = f"{request.url.scheme}://{request.url.netloc}"
    origin = request.headers.get("origin")
    if origin is None:
        referer = urlsplit(request.headers.get("referer", ""))
        origin = f"{referer.scheme}://{referer.netloc}" if referer.netloc else None
    if origin != own:
        raise UiError(
            403,
            "Request refused",
            "This form was sent from another site, or without an Origin or Referer header, so "
            "it was not acted on. Reload the page here and send the form again.",
        )


async def form_data(request: Request) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` body of a POST (last value of each field),
    read once per request."""
    cached = getattr(request.state, "ui_form", None)
    if isinstance(cached, dict):
        return cached
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise UiError(413, "Form too large", f"A form is at most {MAX_FORM_BYTES} bytes.")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and ctype != "application/x-www-form-urlencoded":
        raise UiError(
            415, "Unsupported form", "Forms are sent as application/x-www-form-urlencoded."
        )
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as exc:
        raise UiError(400, "Unreadable form", "The form could not be read; send it again.") from exc
    form = {name: values[-1] for name, values in parsed.items()}
    request.state.ui_form = form
    return form


async def csrf_user(request: Request) -> UiUser:
    """The signed-in user of a state-changing request, after the origin and CSRF checks."""
    same_origin(request)
    user = current_user(request)
    form = await form_data(request)
    if not secrets.compare_digest(form.get("csrf_token", ""), user.csrf):
        raise UiError(
            403,
            "Request refused",
            "The form's security token is missing or out of date (the page may be older than "
            "your session). Reload the page and send the form again.",
        )
    return user


User = Annotated[UiUser, Depends(current_user)]
CsrfUser = Annotated[UiUser, Depends(csrf_user)]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every answer under ``/ui``, and a cache
    lifetime for the static files (which carry no secret and need no sign-in)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/ui" or path.startswith("/ui/")):
            await self.app(scope, receive, send)
            return
        static = path.startswith("/ui/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {h for h, _ in SECURITY_HEADERS}
                ]
                headers += SECURITY_HEADERS
                if static:
                    headers.append((b"cache-control", b"public, max-age=3600"))
                else:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
