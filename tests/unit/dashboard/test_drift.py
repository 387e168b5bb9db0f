"""The Drift page on hand-written events: columns ranked, distributions against numpy on the
raw values, the CSV beside the chart, and tenant isolation.

Reference days (2026-03-01..04): 40 turns of tenant acme, latency_ms from REF_LATENCY, locale
en-US except every fourth turn in de-DE. Target days (2026-03-05..06): 20 turns, latency
doubled plus 50 ms, half of them de-DE. Fewer than 200 values a side, so the KLL sketches hold
every value and the shares are exact. Profiles are built with k = 1 (no item folded away).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import assay
from assay.dashboard._drift import Distribution, column_distribution, drift_view, rank_columns
from assay.ingest import ingest_paths
from assay.profiles import build_profiles
from assay.service import create_app

ORIGIN = {"Origin": "http://testserver"}
REF_LATENCY = [100.0, 120.0, 150.0, 180.0, 200.0, 230.0, 260.0, 300.0, 350.0, 400.0]
REF_DAYS = (dt.date(2026, 3, 1), dt.date(2026, 3, 4))
TARGET_DAYS = (dt.date(2026, 3, 5), dt.date(2026, 3, 6))


def _events() -> tuple[list[dict[str, Any]], list[float], list[float]]:
    events: list[dict[str, Any]] = []
    ref: list[float] = []
    cur: list[float] = []
    n = 0
    for day in range(1, 7):
        target = day >= 5
        for i, base in enumerate(REF_LATENCY):
            latency = 2 * base + 50 if target else base
            (cur if target else ref).append(latency)
            de = (i % 2 == 0) if target else (i % 4 == 0)
            n += 1
            events.append(
                {
                    "event_id": f"e{n}",
                    "event_time": f"2026-03-0{day}T10:{i:02d}:00Z",
                    "tenant_id": "acme",
                    "user_id": f"user-{i}",
                    "session_id": f"s{day}-{i}",
                    "event_type": "turn",
                    "turn_index": 0,
                    "locale": "de-DE" if de else "en-US",
                    "latency_ms": latency,
                }
            )
    events.append(
        {
            "event_id": "o1",
            "event_time": "2026-03-05T09:00:00Z",
            "tenant_id": "other-t",
            "user_id": "x",
            "session_id": "o1",
            "event_type": "turn",
            "latency_ms": 1.0,
        }
    )
    return events, ref, cur


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float], list[float]]:
    root = tmp_path_factory.mktemp("drift")
    events, ref, cur = _events()
    (root / "e.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with assay.Workspace.open(root / "ws", create=True) as ws:
        ingest_paths(ws, [root / "e.jsonl"])
        build_profiles(ws, k=1)
    return root / "ws", ref, cur


def _numpy_shares(ref: list[float], values: list[float]) -> list[float]:
    """Right-closed bins whose inner edges are the reference's deciles (inverted CDF)."""
    edges = np.unique(np.quantile(ref, [j / 10 for j in range(1, 10)], method="inverted_cdf"))
    idx = np.searchsorted(edges, values, side="left")  # v <= e_j falls in bin j
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return list(counts / len(values))


def _distribution(path: Path, column: str) -> Distribution:
    with assay.Workspace.open(path) as ws:
        dist = column_distribution(
            ws,
            reference=REF_DAYS,
            target=TARGET_DAYS,
            tenant="acme",
            slice_field="",
            slice_value=None,
            column=column,
        )
    assert dist is not None
    return dist


def test_numeric_distribution_equals_numpy_and_the_hand_worked_bins(
    data: tuple[Path, list[float], list[float]],
) -> None:
    path, ref, cur = data
    dist = _distribution(path, "latency_ms")
    assert (dist.reference_count, dist.target_count) == (40, 20)
    assert dist.reference == pytest.approx(_numpy_shares(ref, ref), abs=1e-12)
    assert dist.target == pytest.approx(_numpy_shares(ref, cur), abs=1e-12)
    # By hand: the reference's deciles are REF_LATENCY[:9] (each value 4 times in 40), so each
    # bin holds a tenth; the target (250, 290, 350, then 410..850, twice each) falls in
    # (230, 260], (260, 300], (300, 350] and > 350.
    assert dist.reference == pytest.approx([0.1] * 10)
    assert dist.target == pytest.approx([0, 0, 0, 0, 0, 0, 0.1, 0.1, 0.1, 0.7])
    assert dist.labels[0] == "≤ 100"
    assert dist.labels[-1] == "> 350"


def test_categorical_distribution_is_the_item_shares(
    data: tuple[Path, list[float], list[float]],
) -> None:
    dist = _distribution(data[0], "locale")
    shares = dict(zip(dist.labels, zip(dist.reference, dist.target, strict=True), strict=True))
    # Reference: i % 4 == 0 for i in 0..9 is 3 of 10 a day; target: 5 of 10.
    assert shares == {"en-US": pytest.approx((0.7, 0.5)), "de-DE": pytest.approx((0.3, 0.5))}


def test_columns_are_ranked_with_the_drifted_latency_first(
    data: tuple[Path, list[float], list[float]],
) -> None:
    path, _, _ = data
    with assay.Workspace.open(path) as ws:
        view = drift_view(ws, reference=REF_DAYS, target=TARGET_DAYS, tenant="acme")
    first = view.columns[0]
    assert (first["column"], first["drift"]) == ("latency_ms", True)
    assert view.distribution is not None
    assert view.distribution.column == "latency_ms"
    drifted = [c["drift"] for c in view.columns]
    assert drifted == sorted(drifted, reverse=True)  # every drifted column before the others


def test_rank_columns_orders_by_verdict_then_distance() -> None:
    rows = [
        {"column": "a", "drift": False, "js_distance": 0.9, "psi": 0.0},
        {"column": "b", "drift": True, "js_distance": 0.2, "psi": 0.1},
        {"column": "c", "drift": True, "js_distance": 0.4, "psi": 0.1},
        {"column": "d", "drift": False, "js_distance": None, "psi": 2.0},
    ]
    assert [r["column"] for r in rank_columns(rows)] == ["c", "b", "a", "d"]


@pytest.fixture(scope="module")
def client(
    data: tuple[Path, list[float], list[float]],
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    path = data[0]
    with assay.Workspace.open(path) as ws:
        keys = {
            "admin": ws.keys.create(tenant_id=None, scopes=("read",))[1],
            "other": ws.keys.create(tenant_id="other-t", scopes=("read",))[1],
        }
    with TestClient(create_app(path), raise_server_exceptions=False) as c:
        yield c, keys


def _sign_in(client: TestClient, key: str) -> None:
    client.cookies.clear()
    r = client.post(
        "/ui/login", data={"api_key": key, "next": "/ui/"}, headers=ORIGIN, follow_redirects=False
    )
    assert r.status_code == 303, r.text


def test_page_chart_table_and_csv_agree(
    client: tuple[TestClient, dict[str, str]], data: tuple[Path, list[float], list[float]]
) -> None:
    c, keys = client
    _, ref, cur = data
    _sign_in(c, keys["admin"])
    params = {
        "tenant": "acme",
        "reference": "2026-03-01..2026-03-04",
        "target": "2026-03-05..2026-03-06",
        "column": "latency_ms",
    }
    page = c.get("/ui/drift", params=params)
    assert page.status_code == 200
    assert 'data-chart="bar"' in page.text
    assert "Distribution of latency_ms in acme" in page.text
    csv = c.get("/ui/drift/distribution.csv", params=params)
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0] == "bin_or_item,reference_share,target_share"
    target = [float(line.rsplit(",", 1)[1]) for line in lines[1:]]
    assert target == pytest.approx(_numpy_shares(ref, cur), abs=1e-12)


def test_a_tenant_key_compares_its_own_tenant_only(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    c, keys = client
    _sign_in(c, keys["other"])
    theirs = c.get("/ui/drift", params={"tenant": "acme"})
    missing = c.get("/ui/drift", params={"tenant": "nope"})
    assert theirs.status_code == missing.status_code == 404
    assert c.get("/ui/drift/distribution.csv", params={"tenant": "acme"}).status_code == 404
    own = c.get(
        "/ui/drift",
        params={"reference": "2026-03-01..2026-03-04", "target": "2026-03-05..2026-03-06"},
    )
    assert own.status_code == 200
    assert "acme" not in own.text


def test_column_links_keep_the_page_state_and_name_the_tenant(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    c, keys = client
    _sign_in(c, keys["admin"])
    page = c.get(
        "/ui/drift",
        params={"reference": "2026-03-01..2026-03-04", "target": "2026-03-05..2026-03-06"},
    )
    assert page.status_code == 200
    assert (
        'href="/ui/drift?reference=2026-03-01..2026-03-04&amp;target=2026-03-05..2026-03-06'
        '&amp;tenant=acme&amp;column=locale"' in page.text
    )
