"""Fixtures of the dashboard's unit tests: one hand-made workspace served in process.

``ui_site`` (module scope) holds seeded random events of five tenants ``t0``..``t4`` over
2026-03-01..2026-03-20 (the raw list is kept, so tests compute what they expect from it with
their own code), plus 60 one-event tenants ``bulk-00``..``bulk-59`` (for paging), an incident
of ``t3``, and keys: admin (read), ``t0`` (read), ``t1`` (read), ``t0`` (ingest only).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import assay
from assay.ingest import ingest_paths
from assay.service import create_app
from assay.store import NewIncident

FIRST, LAST = dt.date(2026, 3, 1), dt.date(2026, 3, 20)
TENANTS = ("t0", "t1", "t2", "t3", "t4")
ORIGIN = "http://testserver"


def random_events(seed: int = 7) -> list[dict[str, Any]]:
    """Sessions of random shape: start, 1-3 turns (latency, cost), maybe feedback, handoff,
    error; locales and model versions vary (v2 appears on 2026-03-12)."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    n = 0
    for t, tenant in enumerate(TENANTS):
        # t4 starts late: its grid begins on its first active day.
        start = FIRST + dt.timedelta(days=9 if tenant == "t4" else 0)
        day = start
        while day <= LAST:
            for s in range(rng.randint(0 if t == 2 else 1, 4)):
                user = f"user-{tenant}-{rng.randint(0, 6)}"
                session = f"s-{tenant}-{day.isoformat()}-{s}"
                locale = rng.choice(["de-DE", "fr-FR", "en-US", None])
                version = "v2" if day >= dt.date(2026, 3, 12) and rng.random() < 0.5 else "v1"
                base = dt.datetime.combine(day, dt.time(8 + s, rng.randint(0, 50)), dt.UTC)
                kinds = ["session_start"] + ["turn"] * rng.randint(0, 3)
                kinds += rng.choice([[], ["feedback"], ["handoff"], ["error"], ["feedback"]])
                for k, kind in enumerate(kinds):
                    n += 1
                    event: dict[str, Any] = {
                        "event_id": f"e{n}",
                        "event_time": (base + dt.timedelta(seconds=7 * k)).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"
                        ),
                        "tenant_id": tenant,
                        "user_id": user,
                        "session_id": session,
                        "event_type": kind,
                        "model_version": version,
                    }
                    if locale is not None:
                        event["locale"] = locale
                    if kind == "turn":
                        event["latency_ms"] = float(rng.randint(50, 5000))
                        event["cost_usd"] = rng.randint(1, 90) / 1000
                        if rng.random() < 0.1:
                            event["handoff"] = True
                    if kind == "feedback":
                        event["feedback"] = rng.choice([-1, 1, 1])
                    events.append(event)
            day += dt.timedelta(days=1)
    for b in range(60):
        events.append(
            {
                "event_id": f"bulk-{b}",
                "event_time": f"{LAST.isoformat()}T12:00:00Z",
                "tenant_id": f"bulk-{b:02d}",
                "user_id": "u",
                "session_id": "s",
                "event_type": "turn",
            }
        )
    return events


@dataclass
class Site:
    """The app on its workspace, the raw events, and the keys' plaintexts."""

    client: TestClient
    path: Path
    events: list[dict[str, Any]]
    keys: dict[str, str]
    incident_id: int

    def login(self, key: str, client: TestClient | None = None) -> TestClient:
        """``client`` (default: a new one on the same app) signed in with ``key``."""
        c = client or TestClient(self.client.app, raise_server_exceptions=False)
        r = c.post(
            "/ui/login",
            data={"api_key": self.keys[key]},
            headers={"Origin": ORIGIN},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        return c

    def csrf(self, client: TestClient) -> str:
        """The CSRF token in the sign-out form of a page."""
        page = client.get("/ui/").text
        marker = 'name="csrf_token" value="'
        return page.split(marker, 1)[1].split('"', 1)[0]


def get(client: TestClient, url: str, **kw: Any) -> Any:
    return client.get(url, follow_redirects=False, **kw)


@pytest.fixture(scope="module")
def ui_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("ui")
    events = random_events()
    data = base / "events.jsonl"
    data.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    path = base / "ws"
    with assay.Workspace.open(path, create=True) as ws:
        summary = ingest_paths(ws, [data])
        assert sum(f.rejected for f in summary.files) == 0
        keys = {
            "admin": ws.keys.create(tenant_id=None, scopes=("read",))[1],
            "t0": ws.keys.create(tenant_id="t0", scopes=("read",))[1],
            "t1": ws.keys.create(tenant_id="t1", scopes=("read",))[1],
            "t0_ingest": ws.keys.create(tenant_id="t0", scopes=("ingest",))[1],
        }
        incident, _ = ws.incidents.record(
            NewIncident(
                kind="anomaly",
                key="error_rate|tenant=t3",
                tenant_id="t3",
                metric="error_rate",
                slice={},
                start=dt.date(2026, 3, 18),
                end=dt.date(2026, 3, 19),
                direction="up",
                severity="high",
                expected=0.01,
                observed=0.2,
                score=0.001,
                details={},
            )
        )
        assert incident is not None
    with TestClient(create_app(path), raise_server_exceptions=False) as client:
        yield Site(client, path, events, keys, incident.id)
