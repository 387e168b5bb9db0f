"""The tenant page (``assay.dashboard._tenant``): series, splits, releases, retention, access.

Expected values are computed here from the raw events of the ``ui_site`` fixture in plain Python.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import defaultdict
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

Site = Any  # the fixture ``ui_site`` of conftest.py
RANGE = "since=2026-03-08&until=2026-03-20"
DAYS = [(dt.date(2026, 3, 8) + dt.timedelta(days=k)).isoformat() for k in range(13)]


def get(client: TestClient, url: str) -> Any:
    return client.get(url, follow_redirects=False)


def rows_of(client: TestClient, url: str) -> list[dict[str, str]]:
    r = get(client, url)
    assert r.status_code == 200, r.text
    return list(csv.DictReader(io.StringIO(r.text)))


def _day(e: dict[str, Any]) -> str:
    return str(e["event_time"][:10])


def test_the_dau_series_equals_distinct_active_users_per_day(ui_site: Site) -> None:
    c = ui_site.login("t0")
    users: dict[str, set[str]] = defaultdict(set)
    for e in ui_site.events:
        if e["tenant_id"] == "t0" and e["event_type"] == "turn":
            users[_day(e)].add(e["user_id"])
    rows = rows_of(c, f"/ui/tenants/t0/data.csv?metric=dau&{RANGE}")
    assert [r["day"] for r in rows] == DAYS
    assert [float(r["observed"]) for r in rows] == [len(users[d]) for d in DAYS]
    assert {"expected", "band low", "band high", "anomalous"} <= set(rows[0])


def test_a_by_split_gives_each_values_rate_from_its_own_counts(ui_site: Site) -> None:
    c = ui_site.login("admin")
    turns: dict[tuple[str, str], int] = defaultdict(int)
    errors: dict[tuple[str, str], int] = defaultdict(int)
    for e in ui_site.events:
        if e["tenant_id"] != "t1":
            continue
        locale = e.get("locale", "(none)")
        turns[(locale, _day(e))] += e["event_type"] == "turn"
        errors[(locale, _day(e))] += e["event_type"] == "error"
    rows = rows_of(c, f"/ui/tenants/t1/data.csv?metric=error_rate&by=locale&{RANGE}")
    locales = [name for name in rows[0] if name != "day"]
    assert sorted(locales) == sorted({"de-DE", "fr-FR", "en-US", "(none)"})
    for row in rows:
        for locale in locales:
            n = turns[(locale, row["day"])]
            want = errors[(locale, row["day"])] / n if n else None
            got = float(row[locale]) if row[locale] else None
            assert got == pytest.approx(want) if want is not None else got is None


def test_release_events_are_on_the_time_axis(ui_site: Site) -> None:
    first_v2 = min(
        _day(e) for e in ui_site.events if e["tenant_id"] == "t0" and e.get("model_version") == "v2"
    )
    page = get(ui_site.login("t0"), f"/ui/tenants/t0?{RANGE}").text
    specs = re.findall(r'<script type="application/json">(.*?)</script>', page, re.S)
    assert len(specs) == 7  # six metrics and the retention heat map
    dau = json.loads(specs[0])
    assert {"x": first_v2, "label": "model_version v2"} in dau["events"]
    assert dau["x"] == DAYS
    assert "model_version" in page


def test_retention_cohorts_start_at_one(ui_site: Site) -> None:
    rows = rows_of(ui_site.login("t0"), f"/ui/tenants/t0/data.csv?metric=retention&{RANGE}")
    week0 = [r for r in rows if r["week"] == "0"]
    assert week0
    assert all(float(r["rate"]) == 1.0 for r in week0)


def test_the_page_links_the_tenants_incidents(ui_site: Site) -> None:
    page = get(ui_site.login("admin"), "/ui/tenants/t3").text
    assert f'href="/ui/incidents/{ui_site.incident_id}"' in page


def test_the_page_keeps_its_state_in_the_url(ui_site: Site) -> None:
    page = get(ui_site.login("admin"), f"/ui/tenants/t1?{RANGE}&by=platform&metric=dau").text
    assert '<option value="platform" selected>' in page
    assert '<option value="dau" selected>' in page
    assert page.count('class="chart"') == 2  # the one metric and retention
    assert "data.csv?since=2026-03-08&amp;until=2026-03-20&amp;by=platform&amp;metric=dau" in page


def _main(page: str) -> str:
    return page.split("<main", 1)[1].split("</main>", 1)[0]


def test_another_tenants_page_is_the_same_404_as_a_missing_one(ui_site: Site) -> None:
    c = ui_site.login("t0")
    other = get(c, "/ui/tenants/t1")
    missing = get(c, "/ui/tenants/no-such-tenant")
    assert other.status_code == missing.status_code == 404
    assert _main(other.text) == _main(missing.text)
    assert "t1" not in _main(other.text)
    for url in ("/ui/tenants/t1/data.csv?metric=dau", "/ui/tenants/t1/data.csv?metric=retention"):
        assert get(c, url).status_code == 404
    assert get(ui_site.login("admin"), "/ui/tenants/t1").status_code == 200


@pytest.mark.parametrize(
    "query", ["by=colour", "metric=happiness", "since=03/08/2026", "until=2026-02-30"]
)
def test_a_bad_query_answers_a_400_page(ui_site: Site, query: str) -> None:
    r = get(ui_site.login("admin"), f"/ui/tenants/t0?{query}")
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")


def test_a_spike_is_flagged_on_its_day_and_inside_no_band() -> None:
    from assay.dashboard._tenant import tenant_scan, whole_series

    days = [dt.date(2026, 1, 1) + dt.timedelta(days=k) for k in range(40)]
    n = len(days)
    # 1,000 turns a day with 10 errors (1%), and 400 errors (40%) on the last day.
    errors = [10.0] * (n - 1) + [400.0]
    table = pa.table(
        {
            "tenant_id": ["t"] * n,
            "day": pa.array(days, pa.date32()),
            "dau": [50.0] * n,
            "sessions": [300.0] * n,
            "handoff_sessions": [15.0] * n,
            "turns": [1000.0] * n,
            "errors": errors,
            "feedback": [100.0] * n,
            "thumbs_down": [10.0] * n,
            "latency_p95": [900.0] * n,
            "cost_usd": [3.0] * n,
        }
    )
    band = tenant_scan(table)
    charts = whole_series(table, days[-10], days[-1], band)
    errs = charts["error_rate"]
    assert errs.flags == (days[-1].isoformat(),)
    assert errs.series[0][1][-1] == pytest.approx(0.4)
    assert errs.upper is not None
    assert errs.upper[-1] is not None
    assert errs.upper[-1] < 0.4
    # The band surrounds the expectation (1% here), not the observed 40%.
    assert errs.expected is not None
    assert errs.expected[-1] == pytest.approx(0.01, rel=0.3)
    assert errs.lower is not None
    assert errs.lower[-1] is not None
    assert errs.lower[-1] < errs.expected[-1] < errs.upper[-1]
    assert charts["dau"].flags == ()


@pytest.mark.parametrize(
    "query", [RANGE, f"{RANGE}&by=locale", "since=2026-03-15&until=2026-04-02"]
)
def test_every_chart_follows_the_data_convention(ui_site: Site, query: str) -> None:
    # _render.py's docstring: x, series of equal length, band lower/upper of that length or
    # null, flags and events on x values, a known format; heat: a row per y, a cell per x.
    page = get(ui_site.login("admin"), f"/ui/tenants/t0?{query}").text
    specs = [
        json.loads(s)
        for s in re.findall(r'<script type="application/json">(.*?)</script>', page, re.S)
    ]
    kinds = re.findall(r'<figure class="chart" data-chart="(\w+)"', page)
    assert len(kinds) == len(specs)
    # Six metrics, and the retention heat map when the range holds a cohort.
    assert set(kinds[:6]) <= {"band", "line"}  # band where the scan scored the series
    assert kinds[6:] in ([], ["heat"])
    for kind, spec in zip(kinds, specs, strict=True):
        assert spec["format"] in {"number", "percent", "ms", "usd"}
        if kind == "heat":
            assert len(spec["values"]) == len(spec["y"])
            assert all(len(row) == len(spec["x"]) for row in spec["values"])
            continue
        n = len(spec["x"])
        assert n > 0
        assert all(len(s["values"]) == n for s in spec["series"])
        if spec["band"] is not None:
            assert len(spec["band"]["lower"]) == len(spec["band"]["upper"]) == n
            assert all(v is None or v >= 0 for v in spec["band"]["lower"])
        assert set(spec["flags"]) <= set(spec["x"])
        assert all(e["x"] in spec["x"] for e in spec["events"])
