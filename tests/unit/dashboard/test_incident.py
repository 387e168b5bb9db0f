"""The Incident page: its numbers against the stored events and the stored incident, the
root-cause links to sessions, acknowledge and resolve (and their CSRF check), and tenant
isolation.

The workspace is synthetic telemetry (3 tenants, 42 days) scanned once, so that the incidents
are the scan's own; one more incident with a hand-written explanation is recorded by hand.
The observed series is checked against pandas over the stored events (not the metrics code).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import assay
from assay.anomaly import scan_workspace
from assay.ingest import ingest_paths
from assay.service import create_app
from assay.store import Incident, NewIncident
from assay.synth import SynthConfig, write

START = dt.date(2026, 1, 1)
ORIGIN = {"Origin": "http://testserver"}
HAND_DAY = dt.date(2026, 2, 3)


@pytest.fixture(scope="module")
def ws_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("incident")
    write(root / "data", SynthConfig(tenants=3, users=60, days=42, seed=3, start=START))
    with assay.Workspace.open(root / "ws", create=True) as ws:
        ingest_paths(ws, [root / "data"])
        scan_workspace(ws, since=START)
        ws.incidents.record(
            NewIncident(
                kind="anomaly",
                key="dau|tenant=tenant-002|hand",
                tenant_id="tenant-002",
                metric="dau",
                slice={},
                start=HAND_DAY,
                end=HAND_DAY + dt.timedelta(days=1),
                direction="down",
                severity="high",
                expected=20.0,
                observed=4.0,
                score=1e-6,
                details={
                    "explanation": [
                        {
                            "slice": {"locale": "de-DE"},
                            "root_cause": True,
                            "share": 0.8,
                            "before": 10.0,
                            "after": 2.0,
                            "score": 3.0,
                            "support": 5,
                        },
                        {
                            "slice": {"platform": "web"},
                            "root_cause": False,
                            "share": 0.1,
                            "before": 5.0,
                            "after": 4.5,
                            "score": 0.2,
                            "support": 9,
                        },
                    ]
                },
            )
        )
        ws.incidents.record(
            NewIncident(
                kind="anomaly",
                key="release|prompt_template=rag-x",
                tenant_id=None,
                metric="latency_p95",
                slice={"prompt_template": "rag-x"},
                start=HAND_DAY,
                end=HAND_DAY,
                direction="up",
                severity="high",
                expected=1000.0,
                observed=2000.0,
                score=1e-6,
                details={
                    "cause": {"field": "prompt_template", "value": "rag-x"},
                    "seen_in": [
                        {
                            "key": "k0",
                            "tenant_id": "tenant-000",
                            "metric": "latency_p95",
                            "slice": {"prompt_template": "rag-x"},
                            "start": "2026-02-03",
                            "end": "2026-02-04",
                            "direction": "up",
                            "expected": 1000.0,
                            "observed": 2000.0,
                            "root_cause": [{"prompt_template": "rag-x"}],
                        },
                        {
                            "key": "k1",
                            "tenant_id": "tenant-001",
                            "metric": "latency_p95",
                            "slice": {},
                            "start": "2026-02-03",
                            "end": "2026-02-03",
                            "direction": "up",
                            "expected": 900.0,
                            "observed": 1500.0,
                        },
                    ],
                },
            )
        )
    return root / "ws"


@pytest.fixture(scope="module")
def keys(ws_path: Path) -> dict[str, str]:
    with assay.Workspace.open(ws_path) as ws:
        return {
            name: ws.keys.create(tenant_id=tenant, scopes=("read",))[1]
            for name, tenant in (("admin", None), ("t0", "tenant-000"), ("t1", "tenant-001"))
        }


@pytest.fixture(scope="module")
def client(ws_path: Path, keys: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(ws_path), raise_server_exceptions=False) as c:
        yield c


def _sign_in(client: TestClient, key: str) -> None:
    client.cookies.clear()
    r = client.post(
        "/ui/login", data={"api_key": key, "next": "/ui/"}, headers=ORIGIN, follow_redirects=False
    )
    assert r.status_code == 303, r.text


def _incidents(ws_path: Path, **filters: Any) -> list[Incident]:
    with assay.Workspace.open(ws_path) as ws:
        return ws.incidents.list(state="all", **filters)


def _get(ws_path: Path, incident_id: int) -> Incident:
    with assay.Workspace.open(ws_path) as ws:
        return ws.incidents.get(incident_id)


def _handoff_incident(ws_path: Path) -> Incident:
    found = _incidents(ws_path, tenant="tenant-000", metric="handoff_rate")
    assert found, "the scan found no handoff_rate incident of tenant-000 (the synth's jump)"
    return found[0]


def _hand_incident(ws_path: Path) -> Incident:
    [found] = [i for i in _incidents(ws_path, tenant="tenant-002") if i.start == HAND_DAY]
    return found


def _csv_rows(text: str) -> dict[str, list[str]]:
    lines = text.strip().splitlines()
    assert lines[0] == "day,value,expected,low,high,anomalous"
    return {line.split(",")[0]: line.split(",")[1:] for line in lines[1:]}


def _handoff_rate_by_day(ws_path: Path, tenant: str) -> dict[str, float]:
    """handoff_rate per day with pandas over the stored events: sessions counted on the day of
    their first event; a session hands off when any of its events is a handoff event or has
    handoff = true (docs/metrics.md)."""
    with assay.Workspace.open(ws_path) as ws:
        events = ws.read("events").to_pandas()
    events = events[events["tenant_id"] == tenant]
    events = events.assign(h=(events["event_type"] == "handoff") | (events["handoff"] == True))  # noqa: E712
    per = events.groupby("session_id").agg(day=("event_date", "min"), h=("h", "any"))
    rate = per.groupby("day")["h"].mean()
    return {pd.Timestamp(d).date().isoformat(): float(v) for d, v in rate.items()}


def test_observed_series_is_the_handoff_rate_of_the_stored_events(
    client: TestClient, keys: dict[str, str], ws_path: Path
) -> None:
    inc = _handoff_incident(ws_path)
    _sign_in(client, keys["admin"])
    csv = client.get(f"/ui/incidents/{inc.id}/series.csv")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    rows = _csv_rows(csv.text)
    reference = _handoff_rate_by_day(ws_path, "tenant-000")
    assert len(rows) >= 14
    for day, (value, *_rest) in rows.items():
        assert float(value) == pytest.approx(reference[day], abs=1e-12), day
    # The band of the first day is the scan's: its expected value is the incident's, and the
    # day is flagged; for a rate the band is the observed rate's 95% interval, which leaves
    # out the expectation.
    first = rows[inc.start.isoformat()]
    value, expected, low, high, flagged = first
    assert float(expected) == pytest.approx(inc.expected, rel=1e-9)
    assert float(value) == pytest.approx(inc.observed, rel=1e-9)
    assert flagged == "yes"
    assert float(low) <= float(value) <= float(high)
    assert not float(low) <= float(expected) <= float(high)
    page = client.get(f"/ui/incidents/{inc.id}")
    assert page.status_code == 200
    assert 'data-chart="band"' in page.text
    assert "/ui/static/charts.js" in page.text
    spec = page.text.split('<script type="application/json">')[1].split("</script>")[0]
    assert f'"flags": ["{inc.start.isoformat()}"]' in spec


def test_root_cause_slices_are_ranked_with_share_and_link_to_their_sessions(
    client: TestClient, keys: dict[str, str], ws_path: Path
) -> None:
    inc = _hand_incident(ws_path)
    _sign_in(client, keys["admin"])
    page = client.get(f"/ui/incidents/{inc.id}")
    assert page.status_code == 200
    table = page.text.split('id="root-causes"')[1].split("</table>")[0]
    cells = [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", table, re.S)
    ]
    assert cells[:6] == ["locale=de-DE", "★ yes", "80.0%", "10", "2", "5"]
    assert cells[7:13] == ["platform=web", "no", "10.0%", "5", "4.5000", "9"]
    link = (
        "/ui/sessions?tenant=tenant-002&amp;since=2026-02-03&amp;until=2026-02-04&amp;locale=de-DE"
    )
    assert f'href="{link}"' in table
    # ... and that link lists the sessions of de-DE on those days (the three-click path).
    listing = client.get(link.replace("&amp;", "&"))
    assert listing.status_code == 200
    assert "in locale=de-DE" in listing.text


def _csrf(page_text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page_text)
    assert found, "no CSRF token on the page"
    return found.group(1)


def test_acknowledge_and_resolve_change_the_stored_incident_and_need_the_token(
    client: TestClient, keys: dict[str, str], ws_path: Path
) -> None:
    inc = _hand_incident(ws_path)
    assert inc.state == "open"
    _sign_in(client, keys["admin"])
    token = _csrf(client.get(f"/ui/incidents/{inc.id}").text)
    refused = [
        client.post(f"/ui/incidents/{inc.id}/acknowledge", data={}, headers=ORIGIN),
        client.post(
            f"/ui/incidents/{inc.id}/acknowledge", data={"csrf_token": "x" * 20}, headers=ORIGIN
        ),
        client.post(
            f"/ui/incidents/{inc.id}/resolve",
            data={"csrf_token": token},
            headers={"Origin": "http://elsewhere.example"},
        ),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert _get(ws_path, inc.id).state == "open"
    ack = client.post(
        f"/ui/incidents/{inc.id}/acknowledge",
        data={"csrf_token": token},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert (ack.status_code, ack.headers["location"]) == (303, f"/ui/incidents/{inc.id}")
    stored = _get(ws_path, inc.id)
    assert (stored.state, stored.acknowledged_at is not None) == ("acknowledged", True)
    page = client.get(f"/ui/incidents/{inc.id}")
    assert 'id="incident-state">acknowledged<' in page.text
    assert "/acknowledge" not in page.text  # no second acknowledge form
    done = client.post(
        f"/ui/incidents/{inc.id}/resolve",
        data={"csrf_token": token},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert _get(ws_path, inc.id).state == "resolved"


def test_a_tenant_key_sees_and_changes_its_own_incidents_only(
    client: TestClient, keys: dict[str, str], ws_path: Path
) -> None:
    other = _handoff_incident(ws_path)  # tenant-000's
    cross = [i for i in _incidents(ws_path) if i.tenant_id is None]
    assert cross, "the hand-made incident across tenants is missing"
    _sign_in(client, keys["t1"])
    missing = client.get("/ui/incidents/987654")
    theirs = client.get(f"/ui/incidents/{other.id}")
    shared = client.get(f"/ui/incidents/{cross[0].id}")
    assert missing.status_code == theirs.status_code == shared.status_code == 404
    assert theirs.text == missing.text  # nothing tells an existing incident from a missing one
    assert client.get(f"/ui/incidents/{other.id}/series.csv").status_code == 404
    own = [i for i in _incidents(ws_path, tenant="tenant-001") if i.tenant_id == "tenant-001"]
    assert own, "the scan found no incident of tenant-001"
    assert client.get(f"/ui/incidents/{own[0].id}").status_code == 200
    token = _csrf(client.get("/ui/sessions").text)
    before = _get(ws_path, other.id).state
    r = client.post(
        f"/ui/incidents/{other.id}/acknowledge", data={"csrf_token": token}, headers=ORIGIN
    )
    assert r.status_code == 404
    assert _get(ws_path, other.id).state == before
    _sign_in(client, keys["t0"])
    assert client.get(f"/ui/incidents/{other.id}").status_code == 200


def test_an_incident_across_tenants_links_each_series_to_its_sessions(
    client: TestClient, keys: dict[str, str], ws_path: Path
) -> None:
    [cross] = [i for i in _incidents(ws_path) if i.tenant_id is None]
    _sign_in(client, keys["admin"])
    page = client.get(f"/ui/incidents/{cross.id}")
    assert page.status_code == 200
    table = page.text.split('id="seen-in"')[1].split("</table>")[0]
    assert (
        'href="/ui/sessions?tenant=tenant-000&amp;since=2026-02-03&amp;until=2026-02-04'
        '&amp;prompt_template=rag-x"' in table
    )
    assert (
        'href="/ui/sessions?tenant=tenant-001&amp;since=2026-02-03&amp;until=2026-02-03"' in table
    )
    assert "prompt_template=rag-x" in table  # the first series' root cause, as text


def _incident(**over: Any) -> Incident:
    fields: dict[str, Any] = {
        "id": 1,
        "kind": "anomaly",
        "key": "release|prompt_template=rag-v3",
        "tenant_id": "acme",
        "metric": "cost_usd",
        "slice": {"prompt_template": "rag-v3"},
        "start": HAND_DAY,
        "end": HAND_DAY,
        "direction": "up",
        "severity": "high",
        "expected": 1.0,
        "observed": 2.0,
        "score": 0.001,
        "details": {},
        "state": "open",
        "created_at": "",
        "updated_at": "",
        "acknowledged_at": None,
        "resolved_at": None,
    }
    fields.update(over)
    return Incident(**fields)


def test_the_chart_follows_the_series_the_scan_saw() -> None:
    from assay.dashboard._incident import _scanned_slice

    seen = [
        {"tenant_id": "other", "metric": "cost_usd", "slice": {"locale": "fr"}},
        {"tenant_id": "acme", "metric": "dau", "slice": {"locale": "de"}},
        {"tenant_id": "acme", "metric": "cost_usd", "slice": {}},
    ]
    # Grouped under a release cause, but seen on acme's whole-tenant cost series.
    assert _scanned_slice(_incident(details={"seen_in": seen})) == {}
    # Without members, the incident's own slice.
    assert _scanned_slice(_incident()) == {"prompt_template": "rag-v3"}


def test_other_facts_leave_out_what_has_its_own_section() -> None:
    from assay.dashboard._incident import other_facts

    inc = _incident(
        details={
            "explanation": [],
            "seen_in": [],
            "q_value": 0.01,
            "cause": None,
            "before": {"rate": 0.1, "n": 20},
        }
    )
    assert other_facts(inc) == [("before", '{"n": 20, "rate": 0.1}'), ("q_value", "0.01")]
