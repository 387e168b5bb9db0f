"""The fleet scan's statistics (``assay.anomaly._scan``), against hand-worked cases and peers."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from assay._errors import UsageError
from assay.anomaly._scan import (
    ScanConfig,
    _betabinom_p,
    _count_p,
    benjamini_hochberg,
    betabinom_tails,
    scan_table,
    score_amounts,
    score_rates,
)

START = dt.date(2026, 1, 5)  # a Monday
WEEK = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.6, 0.5])


def health_table(series: dict[str, dict[str, np.ndarray]], days: int) -> pa.Table:
    """A ``Metrics.health``-shaped table: one row per tenant and day."""
    rows: list[dict[str, Any]] = []
    for tenant, cols in series.items():
        for d in range(days):
            row: dict[str, Any] = {"tenant_id": tenant, "day": START + dt.timedelta(days=d)}
            for name in (
                "dau",
                "active_users",
                "sessions",
                "handoff_sessions",
                "turns",
                "errors",
                "feedback",
                "thumbs_down",
                "latency_p95",
                "cost_usd",
            ):
                v = cols.get(name)
                row[name] = None if v is None or np.isnan(v[d]) else float(v[d])
            rows.append(row)
    return pa.Table.from_pylist(rows)


def quiet_tenant(rng: np.random.Generator, days: int, size: float) -> dict[str, np.ndarray]:
    season = np.resize(WEEK, days)
    dau = rng.poisson(size * season).astype(float)
    sessions = rng.poisson(1.3 * size * season).astype(float)
    turns = rng.poisson(4 * size * season).astype(float)
    feedback = rng.poisson(0.5 * size * season).astype(float)
    return {
        "dau": dau,
        "active_users": np.round(size * 2.5 + rng.normal(0, 0.02 * size, days)),
        "sessions": sessions,
        "handoff_sessions": rng.binomial(sessions.astype(int), 0.05).astype(float),
        "turns": turns,
        "errors": rng.binomial(turns.astype(int), 0.01).astype(float),
        "feedback": feedback,
        "thumbs_down": rng.binomial(feedback.astype(int), 0.15).astype(float),
        "latency_p95": np.exp(rng.normal(np.log(2500), 0.05, days)),
        "cost_usd": np.exp(rng.normal(np.log(0.02 * size), 0.05, days)) * season,
    }


# -- Benjamini-Hochberg -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
def test_benjamini_hochberg_equals_scipy(p: list[float]) -> None:
    expected = stats.false_discovery_control(np.array(p), method="bh")
    assert np.allclose(benjamini_hochberg(np.array(p)), expected, rtol=1e-12, atol=1e-15)


def test_benjamini_hochberg_by_hand_with_missing_values() -> None:
    # sorted present p: 0.01, 0.03, 0.04 (m = 3): 0.03, 0.045 -> min(0.045, 0.04), 0.04
    q = benjamini_hochberg(np.array([[0.04, np.nan], [0.01, 0.03]]))
    assert q[0, 1] != q[0, 1]  # NaN stays NaN
    assert q[1, 0] == pytest.approx(0.03)
    assert q[1, 1] == pytest.approx(0.04)
    assert q[0, 0] == pytest.approx(0.04)


# -- tail probabilities -----------------------------------------------------------------------


@pytest.mark.parametrize(("x", "mu"), [(0.0, 18.0), (30.0, 12.0), (1.0, 12.0), (45.0, 20.0)])
def test_count_p_is_a_poisson_tail_when_variance_is_the_mean(x: float, mu: float) -> None:
    lower = sum(math.exp(-mu) * mu**k / math.factorial(k) for k in range(int(x) + 1))
    upper = 1 - sum(math.exp(-mu) * mu**k / math.factorial(k) for k in range(int(x)))
    got = _count_p(np.array([x]), np.array([mu]), np.array([mu]))[0]
    assert got == pytest.approx(min(1.0, 2 * min(lower, upper)), rel=1e-9)


@settings(max_examples=80, deadline=None)
@given(
    mu=st.floats(1.0, 500.0),
    ratio=st.floats(1.0, 5.0),
    x=st.integers(0, 2000),
)
def test_count_p_matches_scipy_where_it_can_alert(mu: float, ratio: float, x: int) -> None:
    var = mu * ratio
    got = _count_p(np.array([float(x)]), np.array([mu]), np.array([var]))[0]
    if var <= mu * (1 + 1e-9):
        lo, hi = stats.poisson.cdf(x, mu), stats.poisson.sf(x - 1, mu)
    else:
        size, prob = mu * mu / (var - mu), mu / var
        lo, hi = stats.nbinom.cdf(x, size, prob), stats.nbinom.sf(x - 1, size, prob)
    exact = min(1.0, 2 * min(lo, hi))
    if abs(x - mu) >= 2 * math.sqrt(var):  # the tails that alerts rest on: exact
        assert got == pytest.approx(exact, rel=1e-6, abs=1e-300)
    else:  # near the mean: the normal approximation, never small enough to alert
        assert got > 0.04
        assert exact > 0.01


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 3000),
    rate=st.floats(0.001, 0.5),
    history=st.integers(30, 20_000),
    lift=st.floats(0.2, 4.0),
    phi=st.floats(1.0, 3.0),
)
def test_betabinom_tails_match_scipy(
    n: int, rate: float, history: int, lift: float, phi: float
) -> None:
    a = (history * rate + 0.5) / phi
    b = (history * (1 - rate) + 0.5) / phi
    k = float(min(n, round(n * rate * lift)))
    lo, hi = betabinom_tails(np.array([k]), np.array([float(n)]), np.array([a]), np.array([b]))
    ref_lo = stats.betabinom.cdf(k, n, a, b)
    ref_hi = stats.betabinom.sf(k - 1, n, a, b)
    if min(ref_lo, ref_hi) < 0.02:  # a tail an alert could rest on: exact
        # (to 1e-9 absolute: below that, p times any fleet's test count is still tiny)
        assert min(lo[0], hi[0]) == pytest.approx(min(ref_lo, ref_hi), rel=1e-6, abs=1e-9)
    else:  # near the mean: approximate, but never at a level an alert could rest on
        assert min(lo[0], hi[0]) > 0.005


def test_count_p_is_wider_with_overdispersion() -> None:
    poisson = _count_p(np.array([5.0]), np.array([20.0]), np.array([20.0]))[0]
    negbin = _count_p(np.array([5.0]), np.array([20.0]), np.array([60.0]))[0]
    assert negbin > 10 * poisson


def test_betabinom_p_equals_the_integral_of_binomial_over_the_beta_posterior() -> None:
    # phi = 1: P(X >= k) = integral of Binom(n, r).sf(k - 1) Beta(K + 1/2, N - K + 1/2)(r) dr
    k, n, big_k, big_n = 9.0, 54.0, 40.0, 1000.0
    a, b = big_k + 0.5, big_n - big_k + 0.5
    upper = integrate.quad(
        lambda r: stats.binom.sf(k - 1, n, r) * stats.beta.pdf(r, a, b), 0, 1, limit=200
    )[0]
    lower = integrate.quad(
        lambda r: stats.binom.cdf(k, n, r) * stats.beta.pdf(r, a, b), 0, 1, limit=200
    )[0]
    got = _betabinom_p(
        np.array([k]),
        np.array([n]),
        np.array([big_k]),
        np.array([big_n]),
        np.array([1.0]),
        np.array([True]),
    )[0]
    assert got == pytest.approx(2 * min(upper, lower), rel=1e-6)


# -- the expectation --------------------------------------------------------------------------


def test_expectation_follows_a_weekly_season_on_a_linear_trend_exactly() -> None:
    days = 70
    t = np.arange(days)
    x = 100 + 0.8 * t + 20 * np.resize(WEEK, days)
    r = score_amounts(x[None, :], kind="count", config=ScanConfig())
    # Both terms see the trend through the same geometry: the forecast is exact once the
    # weeks it compares are whole (t >= 21), whatever the number of cycles.
    assert np.allclose(r.expected[0, 21:], x[21:], atol=1e-9)
    # Before that the earliest week is partial (its mean is centred elsewhere): close only.
    assert np.allclose(r.expected[0, 14:21], x[14:21], rtol=0.05)


def test_rates_expect_the_pooled_rate_of_the_history() -> None:
    k = np.array([[1.0, 2.0, 3.0, 0.0, 4.0]])
    n = np.array([[10.0, 20.0, 30.0, 0.0, 40.0]])
    r = score_rates(k, n, config=ScanConfig(history_days=28))
    # Day 4 sees days 0-3: K = 6 of N = 60, with Jeffreys' half: (6 + 0.5) / (60 + 1).
    assert r.expected[0, 4] == pytest.approx(6.5 / 61)
    assert r.value[0, 3] != r.value[0, 3]  # no trials: no value


# -- the scan ---------------------------------------------------------------------------------


def test_an_outage_is_one_incident_with_its_days_direction_and_severity() -> None:
    rng = np.random.default_rng(1)
    days = 70
    tenants = {f"t{i:02d}": quiet_tenant(rng, days, 200.0) for i in range(10)}
    hit = tenants["t03"]
    hit["dau"][50:53] = np.round(hit["dau"][50:53] * 0.15)
    result = scan_table(health_table(tenants, days), metrics=["dau"])
    dau = [c for c in result.candidates if c.metric == "dau"]
    assert [(c.tenant_id, c.start, c.end, c.direction) for c in dau] == [
        ("t03", START + dt.timedelta(days=50), START + dt.timedelta(days=52), "down")
    ]
    assert dau[0].severity == "high"
    assert dau[0].observed < 0.3 * dau[0].expected


@pytest.mark.parametrize(
    ("down", "expected"),
    [
        # An episode of 4 days: one incident at its onset, not one per day.
        ([43, 44, 45, 46], [(43, 46, 4)]),
        # Two quiet days inside (merge_gap = 2): still one episode, its means over 6 days.
        ([50, 51, 54, 55], [(50, 55, 4)]),
        # Three quiet days close the episode (the series alerts' quiet rule): two.
        ([50, 51, 55, 56], [(50, 51, 2), (55, 56, 2)]),
    ],
)
def test_an_anomalous_episode_is_one_candidate_at_its_onset(
    down: list[int], expected: list[tuple[int, int, int]]
) -> None:
    rng = np.random.default_rng(1)
    days = 70
    tenants = {f"t{i:02d}": quiet_tenant(rng, days, 200.0) for i in range(10)}
    hit = tenants["t03"]
    hit["dau"][down] = np.round(hit["dau"][down] * 0.15)
    result = scan_table(health_table(tenants, days), metrics=["dau"])
    got = [
        ((c.start - START).days, (c.end - START).days, c.details["anomalous_days"])
        for c in result.candidates
    ]
    assert sorted(got) == expected
    assert {(c.tenant_id, c.direction) for c in result.candidates} == {("t03", "down")}


def test_the_recovery_after_an_outage_is_not_a_rise() -> None:
    rng = np.random.default_rng(2)
    days = 80
    tenants = {f"t{i}": quiet_tenant(rng, days, 300.0) for i in range(5)}
    tenants["t1"]["dau"][40:45] = 0.0
    result = scan_table(health_table(tenants, days), metrics=["dau"])
    assert {c.direction for c in result.candidates} == {"down"}


def test_a_permanent_step_alerts_for_about_a_week_not_forever() -> None:
    rng = np.random.default_rng(3)
    days = 90
    tenants = {f"t{i}": quiet_tenant(rng, days, 300.0) for i in range(5)}
    tenants["t2"]["latency_p95"][40:] *= 2.0
    result = scan_table(health_table(tenants, days), metrics=["latency_p95"])
    runs = [c for c in result.candidates if c.tenant_id == "t2"]
    assert runs
    assert runs[0].start == START + dt.timedelta(days=40)
    flagged = pc.sum(result.points.column("anomaly")).as_py()
    assert 1 <= flagged <= 14


def test_a_tiny_tenant_does_not_alert_where_a_large_one_does() -> None:
    rng = np.random.default_rng(4)
    days = 70
    tenants = {f"t{i}": quiet_tenant(rng, days, 300.0) for i in range(8)}
    tiny = quiet_tenant(rng, days, 12.0)
    tiny["sessions"][:] = 12.0
    tiny["handoff_sessions"][:] = rng.binomial(12, 0.05, days)
    tiny["handoff_sessions"][60] = 3.0  # 25% on a day of 12 sessions: 5x the usual rate
    tenants["tiny"] = tiny
    big = tenants["t5"]
    big["handoff_sessions"][60] = 0.25 * big["sessions"][60]
    result = scan_table(health_table(tenants, days), metrics=["handoff_rate"])
    flagged = {c.tenant_id for c in result.candidates}
    assert "t5" in flagged
    assert "tiny" not in flagged


def test_a_quiet_fleet_keeps_false_alarms_within_the_daily_guarantee() -> None:
    # With no change anywhere, Benjamini-Hochberg per day and metric at level fdr raises a
    # false alarm on a given day and metric with probability at most fdr.
    days, tenants_n, runs = 70, 40, 3
    alarms = 0
    tested_days = 0
    for seed in range(runs):
        rng = np.random.default_rng(100 + seed)
        tenants = {
            f"t{i:02d}": quiet_tenant(rng, days, float(rng.integers(20, 400)))
            for i in range(tenants_n)
        }
        result = scan_table(health_table(tenants, days))
        assert result.series == tenants_n * 7
        points = result.points
        flagged = points.filter(points.column("anomaly"))
        alarms += len(
            {
                (m, d)
                for m, d in zip(
                    *flagged.select(["metric", "day"]).to_pydict().values(), strict=True
                )
            }
        )
        tested_days += len(
            set(zip(*points.select(["metric", "day"]).to_pydict().values(), strict=True))
        )
    assert alarms <= ScanConfig().fdr * tested_days


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(20, 60))
def test_scanning_a_prefix_gives_the_prefix_of_the_verdicts(seed: int, cut: int) -> None:
    rng = np.random.default_rng(seed)
    days = 64
    tenants = {f"t{i}": quiet_tenant(rng, days, float(rng.integers(10, 300))) for i in range(4)}
    tenants["t0"]["dau"][rng.integers(30, 60)] = 0.0
    tenants["t1"]["errors"][rng.integers(30, 60) :] *= 4
    full = scan_table(health_table(tenants, days)).points
    prefix = scan_table(health_table(tenants, cut)).points
    last = START + dt.timedelta(days=cut - 1)
    kept = full.filter(pc.less_equal(full.column("day"), pa.scalar(last, pa.date32())))
    order = [("tenant_id", "ascending"), ("metric", "ascending"), ("day", "ascending")]
    a, b = kept.sort_by(order), prefix.sort_by(order)
    assert a.column("day").equals(b.column("day"))
    for name in ("value", "expected", "p_value", "q_value", "anomaly"):
        x = np.asarray(a.column(name).to_numpy(zero_copy_only=False), dtype=float)
        y = np.asarray(b.column(name).to_numpy(zero_copy_only=False), dtype=float)
        assert np.allclose(x, y, equal_nan=True, rtol=1e-12), name


def test_missing_days_are_missing_values_not_zeros() -> None:
    rng = np.random.default_rng(6)
    days = 70
    tenants = {f"t{i}": quiet_tenant(rng, days, 200.0) for i in range(5)}
    table = health_table(tenants, days)
    gone = pc.and_(
        pc.equal(table.column("tenant_id"), "t1"),
        pc.equal(table.column("day"), pa.scalar(START + dt.timedelta(days=50), pa.date32())),
    )
    result = scan_table(table.filter(pc.invert(gone)), metrics=["dau", "active_users"])
    assert not [c for c in result.candidates if c.tenant_id == "t1"]


def test_since_limits_the_days_reported() -> None:
    rng = np.random.default_rng(7)
    days = 70
    tenants = {"a": quiet_tenant(rng, days, 100.0), "b": quiet_tenant(rng, days, 100.0)}
    since = START + dt.timedelta(days=60)
    points = scan_table(health_table(tenants, days), since=since).points
    assert pc.min(points.column("day")).as_py() == since


def test_sliced_scan_keys_series_by_the_slice() -> None:
    rng = np.random.default_rng(8)
    days = 70
    base = health_table({"a": quiet_tenant(rng, days, 200.0)}, days)
    other = health_table({"a": quiet_tenant(rng, days, 200.0)}, days)
    fr = other.column("dau").to_numpy().copy()
    fr[55:58] = 0
    other = other.set_column(other.schema.get_field_index("dau"), "dau", pa.array(fr))
    table = pa.concat_tables(
        [
            base.append_column("locale", pa.array(["en"] * days)),
            other.append_column("locale", pa.array(["fr"] * days)),
        ]
    )
    result = scan_table(table, by="locale", metrics=["dau"])
    drops = [c for c in result.candidates if c.direction == "down"]
    assert [(c.slice, c.key, c.start, c.end) for c in drops] == [
        (
            {"locale": "fr"},
            "dau|tenant=a|locale=fr",
            START + dt.timedelta(days=55),
            START + dt.timedelta(days=57),
        )
    ]


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="lacks column"):
        scan_table(pa.table({"tenant_id": ["a"], "day": [START]}), metrics=["dau"])
    with pytest.raises(UsageError, match="metrics must be"):
        scan_table(pa.table({"tenant_id": ["a"], "day": [START]}), metrics=["revenue"])
    with pytest.raises(UsageError, match="fdr"):
        ScanConfig(fdr=0.0)
    with pytest.raises(UsageError, match="history_days"):
        ScanConfig(history_days=3)
    assert scan_table(pa.table({"tenant_id": pa.array([], pa.string())})).candidates == []
