"""``assay serve`` keeps profiles current: events posted over HTTP reach the stored profiles in
the background (only where profiles were built before), a failed build is logged and retried,
and the refresher shows in ``/metrics`` and ``/healthz``.

Each test starts the app in process on a temp workspace (``TestClient`` as a context manager
runs its lifespan), posts events, waits (bounded) for the refresher to be idle, then compares the
stored profiles with counts worked out from the posted events in plain Python.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from assay.profiles import ProfileRefresher, build_profiles, profiles_built, read_profiles
from assay.service import create_app
from assay.store import Settings, Workspace, WriteLock

WAIT = 30.0  # bound of every wait
NOW = dt.datetime.now(dt.UTC)
TIMES = [
    (NOW - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    (NOW - dt.timedelta(hours=25)).strftime("%Y-%m-%dT%H:%M:%SZ"),  # the UTC day before
]
TENANTS = ("acme", "beta")
RAW_TEXT = "please call me at jane.roe@example.org about order zz-4471"


class App:
    def __init__(self, client: TestClient, path: Path, keys: dict[str, str]) -> None:
        self.client = client
        self.path = path
        self.keys = keys

    @property
    def refresher(self) -> ProfileRefresher:
        refresher: ProfileRefresher = self.client.app.state.assay.profiles  # type: ignore[attr-defined]
        return refresher

    def post(self, events: list[dict[str, Any]], tenant: str) -> httpx.Response:
        response: httpx.Response = self.client.post(
            "/v1/events", json=events, headers={"Authorization": f"Bearer {self.keys[tenant]}"}
        )
        return response

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.client.get("/metrics").text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if "profile" in s.name
        }


def _workspace(path: Path, *, built: bool, **settings: Any) -> dict[str, str]:
    """A new workspace with ``settings`` and a key per tenant (returned), and profiles built
    on it (empty) when ``built``."""
    with Workspace.init(path) as ws:
        values = {"http_fsync": False, **settings}
        (path / "assay.toml").write_text(Settings.from_mapping(values).to_toml(), encoding="utf-8")
        keys = {t: ws.keys.create(tenant_id=t, scopes=("ingest", "read"))[1] for t in TENANTS}
    if built:
        with Workspace.open(path) as ws:
            build_profiles(ws)
    return keys


@pytest.fixture
def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``start(built=True, interval=0.05, **settings)``: a running app on a new workspace;
    stopped after the test."""
    for name in [n for n in os.environ if n.startswith("ASSAY_")]:
        monkeypatch.delenv(name)
    with ExitStack() as stack:

        def factory(*, built: bool = True, interval: float = 0.05, **settings: Any) -> App:
            path = tmp_path / "ws"
            keys = _workspace(path, built=built, **settings)
            app = create_app(path, profile_interval=interval)
            client = stack.enter_context(TestClient(app, raise_server_exceptions=False))
            return App(client, path, keys)

        yield factory


def _event(i: int, tenant: str, when: str, user: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"{tenant}-{i}",
        "event_time": when,
        "tenant_id": tenant,
        "user_id": user,
        "session_id": f"s-{user}",
        "event_type": "turn",
        "text": RAW_TEXT,
        **fields,
    }


def _batches() -> dict[str, list[dict[str, Any]]]:
    """acme: 7 events on today's UTC day and 4 on the day before; beta: 3 and 0."""
    acme = [_event(i, "acme", TIMES[0], f"user-{i % 3}", latency_ms=float(i)) for i in range(7)]
    acme += [_event(10 + i, "acme", TIMES[1], f"user-{i}") for i in range(4)]
    beta = [_event(i, "beta", TIMES[0], f"beta-user-{i}") for i in range(3)]
    return {"acme": acme, "beta": beta}


def _expected(events: list[dict[str, Any]]) -> dict[tuple[dt.date, str], int]:
    """Events per (UTC day, tenant), from the event times as sent."""
    return dict(
        Counter(
            (dt.datetime.strptime(e["event_time"], "%Y-%m-%dT%H:%M:%SZ").date(), e["tenant_id"])
            for e in events
        )
    )


def _stored(path: Path) -> dict[tuple[dt.date, str], int]:
    with Workspace.open(path) as ws:
        return {
            (r["event_date"], r["tenant_id"]): r["count"]
            for r in read_profiles(ws).to_pylist()
            if r["column"] == "event_id" and r["slice_field"] == ""
        }


def test_events_posted_over_http_reach_the_profiles_in_the_background(start: Any) -> None:
    app = start()
    batches = _batches()
    assert app.post(batches["acme"][:5], "acme").status_code == 200
    assert app.post(batches["acme"][5:], "acme").status_code == 200
    assert app.post(batches["beta"], "beta").status_code == 200
    # Replays and rejected events change nothing: the profiles hold committed events once.
    assert app.post(batches["acme"][:2], "acme").json()["duplicates"] == 2
    bad = app.post([_event(99, "acme", TIMES[0], "user-0", turn_index=-1)], "acme")
    assert bad.json()["rejected"] == 1
    assert app.refresher.wait_idle(WAIT)
    assert _stored(app.path) == _expected(batches["acme"] + batches["beta"])
    status = app.refresher.status()
    assert status.last is not None
    assert status.last.outcome == "ok"
    assert (status.pending, status.age_seconds) == (False, 0.0)
    metrics = app.metrics()
    assert metrics[("assay_profile_builds_total", (("outcome", "ok"),))] >= 1
    assert metrics[("assay_profile_builds_total", (("outcome", "failed"),))] == 0
    assert metrics[("assay_profiles_age_seconds", ())] == 0
    assert metrics[("assay_profile_last_build_seconds", ())] == status.last.seconds
    health = app.client.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["profiles"]["enabled"] is True
    assert health["profiles"]["interval"] == 0.05
    assert health["profiles"]["pending"] is False
    assert health["profiles"]["last"]["outcome"] == "ok"


def test_profiles_are_not_created_where_none_were_built(start: Any) -> None:
    app = start(built=False)
    assert app.post(_batches()["beta"], "beta").status_code == 200
    assert app.refresher.wait_idle(WAIT)
    with Workspace.open(app.path) as ws:
        assert not profiles_built(ws)
    assert not (app.path / "profiles").exists()
    status = app.refresher.status()
    assert status.builds["ok"] == 0
    assert status.builds["skipped"] >= 1
    assert app.metrics()[("assay_profile_builds_total", (("outcome", "skipped"),))] >= 1


def test_interval_zero_turns_the_background_refresh_off(start: Any) -> None:
    app = start(interval=0)
    assert app.post(_batches()["beta"], "beta").status_code == 200
    status = app.refresher.status()
    assert (status.enabled, status.running, status.pending) == (False, False, True)
    assert _stored(app.path) == {}  # nothing ran: the profiles were built on no events
    health = app.client.get("/healthz").json()
    assert health["profiles"]["enabled"] is False
    assert health["profiles"]["pending"] is True


def test_a_failed_build_is_logged_without_raw_data_and_retried(
    start: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI (run by other tests in this process) stops "assay" logs from propagating.
    monkeypatch.setattr(logging.getLogger("assay"), "propagate", True)
    caplog.set_level(logging.WARNING, logger="assay.profiles")
    app = start(lock_timeout_seconds=0.5)
    assert app.refresher.wait_idle(WAIT)  # the catch-up build at start
    batches = _batches()
    # Another build (here: the test) holds the profiles' build lock: the refresh times out.
    lock = WriteLock(app.path / "profiles" / ".build.lock")
    with lock.hold(5):
        assert app.post(batches["acme"], "acme").status_code == 200
        deadline = dt.datetime.now() + dt.timedelta(seconds=WAIT)
        while app.refresher.status().builds["failed"] == 0:
            assert dt.datetime.now() < deadline, "the refresh never failed on the held lock"
            app.refresher.wait_idle(0.05)
        assert app.refresher.status().age_seconds > 0  # not taken in: the profiles lag
    # Released: a later attempt takes the events in.
    assert app.refresher.wait_idle(WAIT)
    assert _stored(app.path) == _expected(batches["acme"])
    failed = [r for r in caplog.records if r.name == "assay.profiles" and r.levelno >= 30]
    assert failed
    assert all(r.assay["error"].startswith("LockTimeoutError") for r in failed)  # type: ignore[attr-defined]
    assert RAW_TEXT not in caplog.text
    assert "zz-4471" not in caplog.text
    assert "user-0" not in caplog.text
    metrics = app.metrics()
    assert metrics[("assay_profile_builds_total", (("outcome", "failed"),))] >= 1
    assert metrics[("assay_profile_builds_total", (("outcome", "ok"),))] >= 2
    assert metrics[("assay_profiles_age_seconds", ())] == 0


def test_stopping_the_app_stops_the_refresher_and_a_restart_catches_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("ASSAY_")]:
        monkeypatch.delenv(name)
    path = tmp_path / "ws"
    keys = _workspace(path, built=True)
    batches = _batches()
    # No background builds (interval 0): the events stay pending until the app stops.
    with TestClient(create_app(path, profile_interval=0)) as client:
        app = App(client, path, keys)
        refresher = app.refresher
        assert app.post(batches["beta"], "beta").status_code == 200
        assert refresher.status().pending
    assert refresher.run_once(force=True) is None  # stopped: builds nothing any more
    assert _stored(path) == {}
    # The next start catches up with what was committed while no refresher ran.
    with TestClient(create_app(path, profile_interval=0.05)) as client:
        again = App(client, path, keys).refresher
        assert again.status().running
        assert again.wait_idle(WAIT)
        assert _stored(path) == _expected(batches["beta"])
    assert not again.status().running


def test_create_app_refuses_a_negative_interval(tmp_path: Path) -> None:
    from assay._errors import UsageError

    with pytest.raises(UsageError, match="profile_interval must be a number of seconds >= 0"):
        create_app(tmp_path / "ws", profile_interval=-1)


def test_parse_only_mode_has_no_refresher(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "ws").close()
    with TestClient(create_app(tmp_path / "ws", parse_only=True)) as client:
        assert client.app.state.assay.profiles is None  # type: ignore[attr-defined]
        assert client.get("/healthz").json()["profiles"] is None
