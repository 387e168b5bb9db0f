"""Small cases whose expected numbers were worked out by hand (in the comments)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from metrics_data import MetricsFactory, day, event

D = day


def _col(table: Any, name: str) -> list[Any]:
    return list(table.column(name).to_pylist())


def test_dau_counts_missing_days_as_zero(stored_metrics: MetricsFactory) -> None:
    rows = [
        event("2026-01-01", user="a"),
        event("2026-01-03", user="a"),
        event("2026-01-03", user="b"),
        event("2026-01-03", user="b", hour=18),  # same user twice: still one
    ]
    out = stored_metrics(rows).dau()
    assert _col(out, "day") == [D("2026-01-01"), D("2026-01-02"), D("2026-01-03")]
    assert _col(out, "dau") == [1, 0, 2]


def test_grid_starts_at_each_tenants_first_active_day_and_ends_on_the_last_event_day(
    stored_metrics: MetricsFactory,
) -> None:
    rows = [
        event("2026-01-01", tenant="old", user="a"),
        event("2026-01-03", tenant="new", user="a"),
        # The workspace's last event day is 01-05, set by a non-turn event of another tenant.
        event("2026-01-05", tenant="other", user="z", type="session_start"),
    ]
    out = stored_metrics(rows).dau().to_pylist()
    assert [(r["tenant_id"], r["day"].day, r["dau"]) for r in out] == [
        ("new", 3, 1),
        ("new", 4, 0),
        ("new", 5, 0),
        ("old", 1, 1),
        ("old", 2, 0),
        ("old", 3, 0),
        ("old", 4, 0),
        ("old", 5, 0),
    ]


def test_same_user_id_in_two_tenants_is_two_users(stored_metrics: MetricsFactory) -> None:
    rows = [event("2026-01-01", tenant="x", user="u"), event("2026-01-01", tenant="y", user="u")]
    out = stored_metrics(rows).dau().to_pylist()
    assert [(r["tenant_id"], r["dau"]) for r in out] == [("x", 1), ("y", 1)]


def test_a_tenant_with_only_non_turn_events_has_no_rows(stored_metrics: MetricsFactory) -> None:
    rows = [
        event("2026-01-01", tenant="quiet", type="session_start"),
        event("2026-01-01", tenant="quiet", type="feedback", feedback=1),
        event("2026-01-02", tenant="quiet", type="error"),
    ]
    metrics = stored_metrics(rows)
    assert metrics.dau().num_rows == 0
    assert metrics.sessions().num_rows == 0
    assert metrics.max_active().num_rows == 0
    assert metrics.retention().num_rows == 0


def test_active_event_types_are_configurable(stored_metrics: MetricsFactory) -> None:
    rows = [
        event("2026-01-01", user="a", type="session_start"),
        event("2026-01-02", user="b"),
    ]
    out = stored_metrics(rows, active_event_types=("turn", "session_start")).dau()
    assert _col(out, "dau") == [1, 1]


def test_active_users_counts_distinct_users_in_the_trailing_window(
    stored_metrics: MetricsFactory,
) -> None:
    # Active: a on 01-01 and 01-04, b on 01-03; until 01-07. Window 3 = [d-2, d]:
    # 01-01 {a}=1, 01-02 {a}=1, 01-03 {a,b}=2, 01-04 {b,a}=2, 01-05 {b,a}=2, 01-06 {a}=1, 01-07 0
    rows = [
        event("2026-01-01", user="a"),
        event("2026-01-03", user="b"),
        event("2026-01-04", user="a"),
        event("2026-01-07", user="c", type="session_end"),
    ]
    out = stored_metrics(rows).active_users(window=3)
    assert _col(out, "active_users") == [1, 1, 2, 2, 2, 1, 0]
    assert set(_col(out, "window")) == {3}


def test_active_users_window_reads_days_before_since(stored_metrics: MetricsFactory) -> None:
    rows = [event("2026-01-01", user="a"), event("2026-01-04", user="b")]
    out = stored_metrics(rows).active_users(window=3, since=D("2026-01-03"))
    # 01-03 sees a (01-01) in [01-01, 01-03]; 01-04 sees b only.
    assert _col(out, "day") == [D("2026-01-03"), D("2026-01-04")]
    assert _col(out, "active_users") == [1, 1]


def _users_per_day(counts: list[int], start: str = "2026-01-01") -> list[dict[str, Any]]:
    rows = []
    for offset, count in enumerate(counts):
        on = D(start) + dt.timedelta(days=offset)
        rows += [event(on, user=f"u{i}") for i in range(count)]
    return rows


def test_dau_rolling_flags_a_drop_against_the_prior_window(
    stored_metrics: MetricsFactory,
) -> None:
    # DAU 4, 4, 2, 1, 3; window 2, threshold 0.5.
    # d1: avg (0+4)/2 = 2.0, prev null (no full prior window)   d2: avg 4.0, prev null
    # d3: avg 3.0, prev null (its prior window starts on d0)     d4: avg 1.5, prev (4+4)/2 = 4.0,
    # 1.5 <= 0.5 * 4.0 -> drop   d5: avg 2.0, prev (4+2)/2 = 3.0, 2.0 > 1.5 -> no drop
    out = stored_metrics(_users_per_day([4, 4, 2, 1, 3])).dau_rolling(window=2, threshold=0.5)
    assert _col(out, "dau") == [4, 4, 2, 1, 3]
    assert _col(out, "dau_avg") == [2.0, 4.0, 3.0, 1.5, 2.0]
    assert _col(out, "dau_prev_avg") == [None, None, None, 4.0, 3.0]
    assert _col(out, "drop") == [False, False, False, True, False]


def test_dau_rolling_counts_missing_days_as_zero_and_never_drops_from_zero(
    stored_metrics: MetricsFactory,
) -> None:
    # DAU 2, 0, 0 (empty days up to the last event day); window 1:
    # d2: avg 0, prev 2 -> 0 <= 0.7 * 2 -> drop; d3: avg 0, prev 0 -> no drop from nothing.
    rows = [*_users_per_day([2]), event("2026-01-03", user="z", type="feedback")]
    out = stored_metrics(rows).dau_rolling(window=1, threshold=0.3)
    assert _col(out, "dau_avg") == [2.0, 0.0, 0.0]
    assert _col(out, "dau_prev_avg") == [None, 2.0, 0.0]
    assert _col(out, "drop") == [False, True, False]


def test_dau_rolling_values_do_not_depend_on_since(stored_metrics: MetricsFactory) -> None:
    metrics = stored_metrics(_users_per_day([4, 4, 2, 1, 3]))
    full = metrics.dau_rolling(window=2).to_pylist()
    cut = metrics.dau_rolling(window=2, since=D("2026-01-04")).to_pylist()
    assert cut == full[3:]
    assert cut[0]["dau_prev_avg"] == 4.0  # the prior window lies before `since`


def test_max_active_breaks_ties_to_the_earliest_window(stored_metrics: MetricsFactory) -> None:
    # a on d1, b on d2, nobody on d3, c on d4, d on d5. Window 2:
    # [d1,d2]=2, [d2,d3]=1, [d3,d4]=1, [d4,d5]=2 -> max 2, earliest start d1.
    rows = [
        event("2026-01-01", user="a"),
        event("2026-01-02", user="b"),
        event("2026-01-04", user="c"),
        event("2026-01-05", user="d"),
    ]
    metrics = stored_metrics(rows)
    assert metrics.max_active(window=2).to_pylist() == [
        {"tenant_id": "t1", "window": 2, "max_active": 2, "window_start": D("2026-01-01")}
    ]
    # With since = d2 the windows must lie inside [d2, d5]: [d4,d5] = 2 wins; d1 is not read.
    assert metrics.max_active(window=2, since=D("2026-01-02")).to_pylist() == [
        {"tenant_id": "t1", "window": 2, "max_active": 2, "window_start": D("2026-01-04")}
    ]
    # Every 3-day window holds two users ([d1,d3] a b, [d2,d4] b c, [d3,d5] c d): earliest.
    assert metrics.max_active(window=3).column("window_start").to_pylist() == [D("2026-01-01")]


def test_max_active_is_null_when_the_grid_is_shorter_than_the_window(
    stored_metrics: MetricsFactory,
) -> None:
    rows = [event("2026-01-01", user="a"), event("2026-01-02", user="b")]
    out = stored_metrics(rows).max_active(window=3).to_pylist()
    assert out == [{"tenant_id": "t1", "window": 3, "max_active": None, "window_start": None}]


def test_max_active_is_zero_when_every_window_inside_the_grid_is_empty(
    stored_metrics: MetricsFactory,
) -> None:
    rows = [event("2026-01-01", user="a"), event("2026-01-05", user="z", type="error")]
    out = stored_metrics(rows).max_active(window=2, since=D("2026-01-02")).to_pylist()
    assert out == [
        {"tenant_id": "t1", "window": 2, "max_active": 0, "window_start": D("2026-01-02")}
    ]


def test_retention_follows_iso_week_cohorts(stored_metrics: MetricsFactory) -> None:
    # Mon 2026-01-05 week: a first active Wed 01-07, b first active Sun 01-11 -> cohort of 2.
    # Week 1 (01-12..01-18): a on Tue 01-13 -> 1 of 2. Week 2 (01-19..01-25): b on Sun 01-25.
    # Week 3 (01-26..): nobody, but the last event day 01-26 is in it -> a row with 0.
    # c first active Mon 01-12 -> cohort 01-12 of 1; back on 01-21, its week 1; not in week 2.
    rows = [
        event("2026-01-07", user="a"),
        event("2026-01-11", user="b", hour=23, minute=30),  # Monday already in Kolkata
        event("2026-01-13", user="a"),
        event("2026-01-12", user="c"),
        event("2026-01-21", user="c"),
        event("2026-01-25", user="b"),
        event("2026-01-26", user="z", type="session_start"),
    ]
    out = stored_metrics(rows).retention().to_pylist()
    got = [(r["cohort_week"], r["week"], r["users"], r["retained"], r["rate"]) for r in out]
    assert got == [
        (D("2026-01-05"), 0, 2, 2, 1.0),
        (D("2026-01-05"), 1, 2, 1, 0.5),
        (D("2026-01-05"), 2, 2, 1, 0.5),
        (D("2026-01-05"), 3, 2, 0, 0.0),
        (D("2026-01-12"), 0, 1, 1, 1.0),
        (D("2026-01-12"), 1, 1, 1, 1.0),
        (D("2026-01-12"), 2, 1, 0, 0.0),
    ]


def test_retention_since_and_until_select_cohort_weeks(stored_metrics: MetricsFactory) -> None:
    rows = [
        event("2026-01-07", user="a"),
        event("2026-01-12", user="c"),
        event("2026-01-21", user="c"),
    ]
    metrics = stored_metrics(rows)
    # since on Thu 01-15 keeps the cohort of Mon 01-12 (its week holds 01-15), not 01-05.
    out = metrics.retention(since=D("2026-01-15")).to_pylist()
    assert {r["cohort_week"] for r in out} == {D("2026-01-12")}
    # until on Sun 01-18 ends the weeks there: c's return on 01-21 is not read.
    out = metrics.retention(until=D("2026-01-18")).to_pylist()
    got = [(r["cohort_week"].day, r["week"], r["retained"]) for r in out]
    assert got == [(5, 0, 1), (5, 1, 0), (12, 0, 1)]


def test_sessions_attributes_sessions_to_their_first_day_and_events_to_their_own(
    stored_metrics: MetricsFactory,
) -> None:
    rows = [
        # A session across midnight, handed off after midnight.
        event("2026-01-03", session="night", type="session_start", hour=23, minute=50),
        event(
            "2026-01-03",
            session="night",
            hour=23,
            minute=55,
            latency_ms=100.0,
            tokens_in=1,
            tokens_out=2,
            cost_usd=0.5,
        ),
        event(
            "2026-01-04",
            session="night",
            hour=0,
            minute=5,
            latency_ms=300.0,
            tokens_in=3,
            tokens_out=4,
            cost_usd=0.25,
        ),
        event("2026-01-04", session="night", type="handoff", hour=0, minute=8),
        # A day session on 01-04: two turns, one error, feedback -1, +1 and null.
        event("2026-01-04", session="day", latency_ms=200.0, tokens_in=5),
        event("2026-01-04", session="day", latency_ms=400.0, cost_usd=0.125),
        event("2026-01-04", session="day", type="error"),
        event("2026-01-04", session="day", type="feedback", feedback=-1),
        event("2026-01-04", session="day", type="feedback", feedback=1),
        event("2026-01-04", session="day", type="feedback"),
        # 01-05: errors and no turn at all.
        event("2026-01-05", session="broken", type="error"),
    ]
    out = stored_metrics(rows).sessions().to_pylist()
    first, second, third = out
    assert first == {
        "tenant_id": "t1", "day": D("2026-01-03"), "sessions": 1, "turns": 1,
        "turns_per_session": 1.0, "handoff_rate": 1.0, "thumbs_down_rate": None,
        "error_rate": 0.0, "latency_p50": 100.0, "latency_p95": 100.0, "latency_p99": 100.0,
        "tokens_in": 1, "tokens_out": 2, "cost_usd": 0.5,
    }  # fmt: skip
    # 01-04: latencies 200, 300, 400. p95 rank 0.95 * 2 = 1.9 -> 300 + 0.9 * 100 = 390;
    # p99 rank 1.98 -> 398. One new session ("day"), not handed off.
    assert second["sessions"] == 1
    assert second["turns"] == 3
    assert second["turns_per_session"] == 3.0
    assert second["handoff_rate"] == 0.0
    assert second["thumbs_down_rate"] == 0.5
    assert second["error_rate"] == pytest.approx(1 / 3)
    assert second["latency_p50"] == 300.0
    assert second["latency_p95"] == pytest.approx(390.0)
    assert second["latency_p99"] == pytest.approx(398.0)
    assert (second["tokens_in"], second["tokens_out"], second["cost_usd"]) == (8, 4, 0.375)
    # 01-05: a new session, errors but zero turns -> error_rate and latencies are null.
    assert third["sessions"] == 1
    assert third["turns"] == 0
    assert third["turns_per_session"] == 0.0
    assert third["error_rate"] is None
    assert third["latency_p50"] is None
    assert third["thumbs_down_rate"] is None
    assert (third["tokens_in"], third["tokens_out"], third["cost_usd"]) == (0, 0, 0.0)


def test_sessions_counts_a_handoff_flag_like_a_handoff_event(
    stored_metrics: MetricsFactory,
) -> None:
    rows = [
        event("2026-01-01", session="a", handoff=True),
        event("2026-01-01", session="b", handoff=False),
        event("2026-01-01", session="c"),
        event("2026-01-01", session="d", type="handoff"),
    ]
    out = stored_metrics(rows).sessions().to_pylist()
    assert out[0]["sessions"] == 4
    assert out[0]["handoff_rate"] == 0.5


def test_a_session_in_two_flights_counts_in_both(stored_metrics: MetricsFactory) -> None:
    rows = [
        event("2026-01-01", user="a", session="s", flights=["x", "y"]),
        event("2026-01-01", user="b", session="t", flights=["y", "y"]),  # listed twice: once
        event("2026-01-01", user="c", session="u"),  # in no flight
    ]
    metrics = stored_metrics(rows)
    dau = metrics.dau(by="flight").to_pylist()
    assert [(r["flight"], r["dau"]) for r in dau] == [("x", 1), ("y", 2)]
    sessions = metrics.sessions(by="flight").to_pylist()
    assert [(r["flight"], r["sessions"], r["turns"]) for r in sessions] == [
        ("x", 1, 1),
        ("y", 2, 2),
    ]


def test_a_null_slice_value_is_a_slice_of_its_own(stored_metrics: MetricsFactory) -> None:
    rows = [
        event("2026-01-01", user="a", locale="en"),
        event("2026-01-02", user="b"),
        event("2026-01-02", user="c"),
    ]
    out = stored_metrics(rows).dau(by="locale").to_pylist()
    assert [(r["locale"], r["day"].day, r["dau"]) for r in out] == [
        ("en", 1, 1),
        ("en", 2, 0),
        (None, 2, 2),  # its grid starts on its own first active day
    ]
    assert list(out[0]) == ["tenant_id", "locale", "day", "dau"]


def test_days_are_the_stored_utc_event_date_not_the_local_day(
    stored_metrics: MetricsFactory,
) -> None:
    # 23:30 UTC on 01-01 is already 01-02 in Asia/Kolkata, the test-wide TZ.
    rows = [event("2026-01-01", user="a", hour=23, minute=30)]
    assert _col(stored_metrics(rows).dau(), "day") == [D("2026-01-01")]


def test_an_empty_events_table_gives_empty_tables_with_the_columns(
    duckdb_engine: Any,
) -> None:
    from assay.metrics import Metrics

    metrics = Metrics(lambda: duckdb_engine.events("/nowhere", []))
    out = metrics.sessions(by="flight")
    assert out.num_rows == 0
    assert out.column_names[:3] == ["tenant_id", "flight", "day"]
