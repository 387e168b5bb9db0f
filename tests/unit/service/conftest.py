"""Fixtures for the in-process tests of the HTTP service (``assay serve``).

Every service runs on its own workspace (a temp dir) under ``fastapi.testclient.TestClient``
used as a context manager, so that the app's lifespan opens the workspace and, on exit, commits
and closes it. Keys are made with the store's API before the app starts. Events are built by
hand with a recent ``event_time`` (HTTP refuses events older than ``http_max_lateness_days``),
so the expected answers are worked out by hand.

The client does not re-raise server exceptions: a crash shows up as a 500 that the tests assert
against, with the error shape, like any other answer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from assay.service import create_app
from assay.store import Settings, Workspace

#: Two tenants; B's id is distinctive so that tests can look for it in any answer.
TENANT_A = "tenant-alpha"
TENANT_B = "tenant-bravo-q7z"

#: An event time an hour ago, RFC 3339 with Z (well inside the 30 days accepted over HTTP).
RECENT = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
#: 24 hours before RECENT, so always on the UTC day before RECENT's.
YESTERDAY = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)).strftime("%Y-%m-%dT%H:%M:%SZ")

ERROR_FIELDS = {"code", "message", "field", "rule"}


def make_event(event_id: str, **fields: Any) -> dict[str, Any]:
    """A valid ``turn`` event of tenant A; ``fields`` override (None drops a field)."""
    event: dict[str, Any] = {
        "event_id": event_id,
        "event_time": RECENT,
        "tenant_id": TENANT_A,
        "user_id": "raw-user-1",
        "session_id": "sess-1",
        "event_type": "turn",
        "turn_index": 0,
        "text": "what is my balance",
    }
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def reference_pseudonym(secret: bytes, tenant_id: str, user_id: str) -> str:
    """The documented pseudonym (HMAC-SHA256, length-prefixed tenant), computed here."""
    tenant = tenant_id.encode("utf-8")
    message = len(tenant).to_bytes(4, "big") + tenant + user_id.encode("utf-8")
    return "u_" + hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an error answer, after checking the one error shape."""
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == ERROR_FIELDS, error
    assert isinstance(error["code"], str), error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    assert error["field"] is None or isinstance(error["field"], str), error
    assert error["rule"] is None or isinstance(error["rule"], str), error
    return error


@dataclass
class Service:
    """One running app, its workspace and its keys (plaintexts)."""

    client: TestClient
    path: Path
    admin: str
    key_a: str
    key_b: str
    read_only_a: str
    ingest_only_a: str
    key_ids: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def post(self, events: list[Any], key: str | None = None) -> httpx.Response:
        """POST a JSON array of events with ``key`` (default: tenant A's key)."""
        response: httpx.Response = self.client.post(
            "/v1/events", json=events, headers=self.auth(key or self.key_a)
        )
        return response

    def post_raw(
        self,
        body: Any,
        content_type: str | None = "application/json",
        *,
        key: str | None = None,
        encoding: str | None = None,
    ) -> httpx.Response:
        headers = self.auth(key or self.key_a)
        if content_type is not None:
            headers["Content-Type"] = content_type
        if encoding is not None:
            headers["Content-Encoding"] = encoding
        response: httpx.Response = self.client.post("/v1/events", content=body, headers=headers)
        return response

    def get(
        self, path: str, key: str | None = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        response: httpx.Response = self.client.get(
            path, headers=self.auth(key or self.key_a), params=params
        )
        return response

    def read(self, table: str) -> pa.Table:
        """A stored table, read through a workspace handle of its own."""
        with Workspace.open(self.path) as ws:
            return ws.read(table)  # type: ignore[arg-type]

    def secret(self) -> bytes:
        return bytes.fromhex((self.path / "secret.key").read_text(encoding="ascii").strip())

    def revoke(self, key: str) -> None:
        with Workspace.open(self.path) as ws:
            ws.keys.revoke(key.split("_")[1])


ServiceFactory = Callable[..., Service]


class Helpers:
    """What the test modules share (they cannot import this conftest): the fixture ``h``."""

    TENANT_A = TENANT_A
    TENANT_B = TENANT_B
    RECENT = RECENT
    YESTERDAY = YESTERDAY
    event = staticmethod(make_event)
    error_of = staticmethod(error_of)
    pseudonym = staticmethod(reference_pseudonym)


@pytest.fixture(scope="session")
def h() -> type[Helpers]:
    return Helpers


def start_service(stack: ExitStack, path: Path, **settings: Any) -> Service:
    """Create (or open) the workspace at ``path`` with ``settings`` in its assay.toml, make
    keys, and start the app."""
    ws = Workspace.init(path)
    try:
        values = {"http_fsync": False, **settings}
        (path / "assay.toml").write_text(Settings.from_mapping(values).to_toml(), encoding="utf-8")
        made = {
            "admin": ws.keys.create(tenant_id=None, scopes=("ingest", "read")),
            "key_a": ws.keys.create(tenant_id=TENANT_A, scopes=("ingest", "read")),
            "key_b": ws.keys.create(tenant_id=TENANT_B, scopes=("ingest", "read")),
            "read_only_a": ws.keys.create(tenant_id=TENANT_A, scopes=("read",)),
            "ingest_only_a": ws.keys.create(tenant_id=TENANT_A, scopes=("ingest",)),
        }
    finally:
        ws.close()
    client = stack.enter_context(TestClient(create_app(path), raise_server_exceptions=False))
    return Service(
        client=client,
        path=path,
        key_ids={name: key.key_id for name, (key, _) in made.items()},
        **{name: plain for name, (_, plain) in made.items()},
    )


def _clean_environment(mp: pytest.MonkeyPatch) -> None:
    """No ASSAY_* variable of the caller's shell may change a setting or the secret."""
    for name in list(os.environ):
        if name.startswith("ASSAY_"):
            mp.delenv(name)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ASSAY_* variable during the test (it may set its own with monkeypatch)."""
    _clean_environment(monkeypatch)


@pytest.fixture
def service_factory(tmp_path: Path, clean_environment: None) -> Iterator[ServiceFactory]:
    """``service_factory(**settings)`` starts a service; all are stopped after the test.

    ASSAY_* variables are cleared when the fixture is set up, so a test may set one with
    ``monkeypatch.setenv`` before it calls the factory.
    """
    count = 0
    with ExitStack() as stack:

        def factory(**settings: Any) -> Service:
            nonlocal count
            count += 1
            return start_service(stack, tmp_path / f"ws{count}", **settings)

        yield factory


@pytest.fixture
def service(service_factory: ServiceFactory) -> Service:
    """A service with the default limits (but no fsync: the tests do not pull the plug)."""
    return service_factory()


@pytest.fixture(scope="module")
def module_service_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceFactory]:
    """``service_factory`` for services shared by the tests of one module."""
    with pytest.MonkeyPatch.context() as mp, ExitStack() as stack:
        _clean_environment(mp)

        def factory(path: Path | None = None, **settings: Any) -> Service:
            """``path``: an existing workspace to serve (default: a new one)."""
            where = path or tmp_path_factory.mktemp("service") / "ws"
            return start_service(stack, where, **settings)

        yield factory
