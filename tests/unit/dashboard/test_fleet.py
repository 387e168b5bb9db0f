"""The fleet page and its summary (``assay.dashboard._fleet``) against a reference written here.

The reference reads the raw event dicts of the ``ui_site`` fixture with plain Python and numpy's
percentile (the definitions of docs/metrics.md: a day grid from a tenant's first active day, a
session on the day of its first event, rates as ratios of the range's counts).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import shutil
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

import assay
from assay.dashboard._fleet import daily_summary, fleet_rows

Site = Any  # the fixture ``ui_site`` of conftest.py
SINCE, UNTIL = dt.date(2026, 3, 8), dt.date(2026, 3, 20)


def _day(event: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(event["event_time"][:10])


def reference(
    events: list[dict[str, Any]], since: dt.date, until: dt.date
) -> dict[str, dict[str, Any]]:
    """Per tenant: the headline metrics over ``since..until``, computed from the raw events."""
    by_tenant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_tenant[e["tenant_id"]].append(e)
    out: dict[str, dict[str, Any]] = {}
    for tenant, evs in by_tenant.items():
        first_active = min(_day(e) for e in evs if e["event_type"] == "turn")
        start = max(since, first_active)
        if start > until:
            continue
        grid = [start + dt.timedelta(days=k) for k in range((until - start).days + 1)]
        in_grid = [e for e in evs if start <= _day(e) <= until]
        dau = [
            len({e["user_id"] for e in evs if _day(e) == d and e["event_type"] == "turn"})
            for d in grid
        ]
        first_of_session: dict[str, dt.date] = {}
        handed: dict[str, bool] = defaultdict(bool)
        for e in evs:
            s = e["session_id"]
            first_of_session[s] = min(first_of_session.get(s, _day(e)), _day(e))
            handed[s] |= e["event_type"] == "handoff" or bool(e.get("handoff"))
        sessions = [s for s, d in first_of_session.items() if start <= d <= until]
        turns = [e for e in in_grid if e["event_type"] == "turn"]
        errors = [e for e in in_grid if e["event_type"] == "error"]
        rated = [e for e in in_grid if e.get("feedback") is not None]
        p95s = []
        for d in grid:
            lat = [e["latency_ms"] for e in turns if _day(e) == d and "latency_ms" in e]
            if lat:
                p95s.append(float(np.percentile(lat, 95, method="linear")))
        cost = sum(e.get("cost_usd", 0.0) for e in in_grid)
        out[tenant] = {
            "days": len(grid),
            "dau": sum(dau) / len(grid),
            "handoff_rate": sum(handed[s] for s in sessions) / len(sessions) if sessions else None,
            "thumbs_down_rate": (
                sum(e["feedback"] == -1 for e in rated) / len(rated) if rated else None
            ),
            "error_rate": len(errors) / len(turns) if turns else None,
            "latency_p95": sum(p95s) / len(p95s) if p95s else None,
            "cost_per_session": cost / len(sessions) if sessions else None,
            # DAU of every day of the range; None before the tenant's first active day.
            "spark": [None] * (start - since).days + [float(x) for x in dau],
        }
    return out


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def get(client: TestClient, url: str) -> Any:
    return client.get(url, follow_redirects=False)


def test_fleet_rows_equal_the_reference(ui_site: Site) -> None:
    expected = reference(ui_site.events, SINCE, UNTIL)
    with assay.Workspace.open(ui_site.path) as ws:
        summary = daily_summary(ws)
    rows = {r.tenant_id: r for r in fleet_rows(summary, since=SINCE, until=UNTIL)}
    assert set(rows) == set(expected)
    for tenant, want in expected.items():
        row = rows[tenant]
        assert row.days == want["days"], tenant
        for metric in (
            "dau",
            "handoff_rate",
            "thumbs_down_rate",
            "error_rate",
            "latency_p95",
            "cost_per_session",
        ):
            assert close(row.value(metric), want[metric]), (
                tenant,
                metric,
                row.value(metric),
                want[metric],
            )
        assert list(row.spark) == want["spark"], tenant


def test_a_tenant_starting_late_is_averaged_over_its_own_days(ui_site: Site) -> None:
    # t4's first event is on 2026-03-10: over 03-08..03-20 it has 11 grid days, not 13.
    with assay.Workspace.open(ui_site.path) as ws:
        rows = {r.tenant_id: r for r in fleet_rows(daily_summary(ws), since=SINCE, until=UNTIL)}
    assert rows["t4"].days == 11
    assert rows["t0"].days == 13


def test_the_summary_is_cached_until_new_events_are_committed(ui_site: Site, tmp_path: Any) -> None:
    # A copy of the workspace: the other tests share the fixture's.
    path = tmp_path / "ws"
    shutil.copytree(ui_site.path, path)
    with assay.Workspace.open(path) as ws:
        first = daily_summary(ws)
        assert daily_summary(ws) is first
    # A new commit (a new Delta version) makes a new summary, with the new tenant in it.
    from assay.ingest import ingest_paths

    extra = tmp_path / "more.jsonl"
    extra.write_text(
        '{"event_id": "late-1", "event_time": "2026-03-20T13:00:00Z", "tenant_id": "zz-new", '
        '"user_id": "u", "session_id": "s", "event_type": "turn"}\n',
        encoding="utf-8",
    )
    with assay.Workspace.open(path) as ws:
        ingest_paths(ws, [extra])
        # Pages accept a summary up to max_age seconds old, whatever was committed since.
        assert daily_summary(ws, max_age=3600.0) is first
        second = daily_summary(ws)
    assert second is not first
    assert second.version == first.version + 1
    assert "zz-new" in second.tenants
    assert "zz-new" not in first.tenants


def _csv(client: TestClient, url: str) -> list[dict[str, str]]:
    r = get(client, url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


def test_the_csv_holds_the_reference_numbers_for_the_range(ui_site: Site) -> None:
    c = ui_site.login("admin")
    rows = {r["tenant_id"]: r for r in _csv(c, "/ui/fleet.csv?since=2026-03-08&until=2026-03-20")}
    expected = reference(ui_site.events, SINCE, UNTIL)
    for tenant in ("t0", "t1", "t2", "t3", "t4"):
        for metric in ("dau", "error_rate", "cost_per_session"):
            got = rows[tenant][metric]
            assert close(float(got) if got else None, expected[tenant][metric]), (tenant, metric)


def test_default_range_is_the_last_28_days_with_events(ui_site: Site) -> None:
    c = ui_site.login("admin")
    page = get(c, "/ui/").text
    # Events end on 2026-03-20; the 28 days up to it start on 2026-02-21 (February has 28).
    assert "from 2026-02-21 to 2026-03-20" in page


def test_attention_order_puts_open_incidents_first(ui_site: Site) -> None:
    c = ui_site.login("admin")
    rows = _csv(c, "/ui/fleet.csv")
    assert rows[0]["tenant_id"] == "t3"
    assert rows[0]["incidents"] == "1"
    changes = [float(r["change"]) if r["change"] else 0.0 for r in rows[1:]]
    assert changes == sorted(changes, reverse=True)


@pytest.mark.parametrize("metric", ["dau", "error_rate", "latency_p95"])
def test_sort_by_a_metric_both_ways(ui_site: Site, metric: str) -> None:
    c = ui_site.login("admin")
    expected = reference(ui_site.events, SINCE, UNTIL)
    for sort, reverse in ((metric, False), (f"-{metric}", True)):
        rows = _csv(c, f"/ui/fleet.csv?since=2026-03-08&until=2026-03-20&sort={sort}")
        present = [r["tenant_id"] for r in rows if r[metric] != ""]
        want = sorted(
            (t for t in expected if expected[t][metric] is not None),
            key=lambda t: (expected[t][metric], t),
            reverse=reverse,
        )
        assert present == want


def test_paging_shows_50_tenants_a_page(ui_site: Site) -> None:
    c = ui_site.login("admin")
    names = sorted(t for t in {e["tenant_id"] for e in ui_site.events})
    assert len(names) == 65
    first = get(c, "/ui/?sort=tenant").text
    second = get(c, "/ui/?sort=tenant&page=2").text
    assert "Page 1 of 2" in first
    assert "Page 2 of 2" in second
    shown_first = [n for n in names if f">{n}</a></th>" in first]
    shown_second = [n for n in names if f">{n}</a></th>" in second]
    assert shown_first == names[:50]
    assert shown_second == names[50:]
    assert 'rel="next"' in first
    assert 'rel="prev"' in second


def test_search_filters_by_tenant_id(ui_site: Site) -> None:
    c = ui_site.login("admin")
    rows = _csv(c, "/ui/fleet.csv?q=BULK-0")
    assert sorted(r["tenant_id"] for r in rows) == [f"bulk-0{k}" for k in range(10)]


def test_a_tenant_key_sees_its_own_tenant_only(ui_site: Site) -> None:
    c = ui_site.login("t0")
    assert [r["tenant_id"] for r in _csv(c, "/ui/fleet.csv")] == ["t0"]
    assert _csv(c, "/ui/fleet.csv?q=t1") == []
    page = get(c, "/ui/?q=bulk").text
    assert "bulk-" not in page
    assert ">t1<" not in page


@pytest.mark.parametrize(
    "query",
    ["since=2026-13-01", "until=yesterday", "since=2026-03-10&until=2026-03-01", "sort=rank"],
)
def test_a_bad_query_answers_a_400_page(ui_site: Site, query: str) -> None:
    c = ui_site.login("admin")
    r = get(c, f"/ui/?{query}")
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")


_COLS = ("dau", "sessions", "handoff_sessions", "turns", "errors", "feedback", "thumbs_down")


@st.composite
def summaries(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int, int]:
    """Rows of a daily summary (each tenant a run of consecutive days), and a range."""
    rows: list[dict[str, Any]] = []
    for t in range(draw(st.integers(1, 4))):
        first = draw(st.integers(0, 20))
        for d in range(first, first + draw(st.integers(1, 15))):
            counts = {c: float(draw(st.integers(0, 9))) for c in _COLS}
            lat = draw(st.one_of(st.none(), st.floats(1, 5000)))
            rows.append(
                {
                    "t": f"t{t}",
                    "day": 20_000 + d,
                    **counts,
                    "lat": lat,
                    "cost": draw(st.floats(0, 3)),
                }
            )
    lo = 20_000 + draw(st.integers(0, 30))
    return rows, lo, lo + draw(st.integers(0, 12))


@given(summaries())
@settings(max_examples=150, deadline=None)
def test_fleet_rows_match_sums_over_the_range(case: tuple[list[dict[str, Any]], int, int]) -> None:
    from assay.dashboard._fleet import DailySummary

    rows, lo, hi = case
    names = sorted({r["t"] for r in rows})
    summary = DailySummary(
        1,
        tuple(names),
        np.array([names.index(r["t"]) for r in rows], np.int64),
        np.array([r["day"] for r in rows], np.int64),
        {
            **{c: np.array([r[c] for r in rows]) for c in _COLS},
            "latency_p95": np.array([np.nan if r["lat"] is None else r["lat"] for r in rows]),
            "cost_usd": np.array([r["cost"] for r in rows]),
        },
    )
    day = dt.date(1970, 1, 1)
    got = {
        r.tenant_id: r
        for r in fleet_rows(summary, since=day + dt.timedelta(lo), until=day + dt.timedelta(hi))
    }

    def ratio(a: float, b: float) -> float | None:
        return a / b if b > 0 else None

    for name in names:
        mine = [r for r in rows if r["t"] == name and lo <= r["day"] <= hi]
        if not mine:
            assert name not in got
            continue
        row = got[name]
        total = {c: sum(r[c] for r in mine) for c in _COLS}
        lats = [r["lat"] for r in mine if r["lat"] is not None]
        assert row.days == len(mine)
        assert close(row.dau, total["dau"] / len(mine))
        assert close(row.handoff_rate, ratio(total["handoff_sessions"], total["sessions"]))
        assert close(row.thumbs_down_rate, ratio(total["thumbs_down"], total["feedback"]))
        assert close(row.error_rate, ratio(total["errors"], total["turns"]))
        assert close(row.latency_p95, sum(lats) / len(lats) if lats else None)
        assert close(row.cost_per_session, ratio(sum(r["cost"] for r in mine), total["sessions"]))
        by_day = {r["day"]: r["dau"] for r in mine}
        assert list(row.spark) == [by_day.get(d) for d in range(lo, hi + 1)]


def test_the_incident_badge_links_to_the_tenants_incidents(ui_site: Site) -> None:
    page = get(ui_site.login("admin"), "/ui/").text
    assert '<a class="badge bad" href="/ui/tenants/t3#incidents-h">1 unresolved</a>' in page
