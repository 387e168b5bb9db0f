"""Property-based tests: random event sets, every metric against the plain-Python reference.

The rows go into the session's DuckDB connection as a table (a Delta write per example would
dominate the run time); the edge-case tests cover the Delta read path.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import metrics_reference as reference
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metrics_data import MetricsFactory, assert_same_rows, event

from assay import NotFoundError
from assay.schema import EVENT_TYPES

BASE = dt.date(2026, 3, 1)  # a Sunday: cohorts straddle week boundaries from the start
SPAN = 24

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_types = st.sampled_from(EVENT_TYPES) | st.just("turn")  # turns are the most common
_flights = st.sampled_from([None, [], ["x"], ["x", "y"], ["y", "y"], ["y"]])
_latency = st.none() | st.integers(0, 4000).map(lambda ms: ms / 4)
# Doc id lists with duplicates, empty lists and nulls (the RAG counts of health).
_docs = st.none() | st.lists(st.sampled_from(["d1", "d2", "d3"]), max_size=4)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    offset = draw(st.integers(0, SPAN - 1))
    return event(
        BASE + dt.timedelta(days=offset),
        tenant=draw(st.sampled_from(["a", "b"])),
        user=draw(st.sampled_from(["u1", "u2", "u3", "u4", "u5"])),
        session=draw(st.sampled_from(["s1", "s2", "s3", "s4"])),
        type=draw(_types),
        hour=draw(st.integers(0, 23)),
        locale=draw(st.sampled_from([None, "en", "de"])),
        flights=draw(_flights),
        latency_ms=draw(_latency),
        tokens_in=draw(st.none() | st.integers(0, 50)),
        tokens_out=draw(st.none() | st.integers(0, 50)),
        cost_usd=draw(st.none() | st.integers(0, 100).map(lambda c: c / 64)),
        feedback=draw(st.sampled_from([None, None, -1, 1])),
        handoff=draw(st.sampled_from([None, None, False, True])),
        retrieved_doc_ids=draw(_docs),
        cited_doc_ids=draw(_docs),
    )


@st.composite
def scopes(draw: st.DrawFn) -> dict[str, Any]:
    """tenant, since, until, by — each present or not, with since <= until."""
    options: dict[str, Any] = {}
    if draw(st.booleans()):
        options["tenant"] = draw(st.sampled_from(["a", "b", "missing"]))
    bounds = sorted(draw(st.lists(st.integers(-3, SPAN + 3), min_size=2, max_size=2)))
    if draw(st.booleans()):
        options["since"] = BASE + dt.timedelta(days=bounds[0])
    if draw(st.booleans()):
        options["until"] = BASE + dt.timedelta(days=bounds[1])
    options["by"] = draw(st.sampled_from([None, None, "locale", "flight"]))
    return options


event_sets = st.lists(events(), min_size=0, max_size=40)
windows = st.integers(1, 9)


def _check(
    memory_metrics: MetricsFactory, rows: list[dict[str, Any]], metric: str, **options: Any
) -> None:
    metrics = memory_metrics(rows)
    if options.get("tenant") not in (None, *(r["tenant_id"] for r in rows)):
        # A tenant without any event is an error, not an empty table (the reference's answer).
        with pytest.raises(NotFoundError):
            getattr(metrics, metric)(**options)
        return
    got = getattr(metrics, metric)(**options).to_pylist()
    expected = reference.REFERENCES[metric](rows, **options)
    assert_same_rows(got, expected)


@SETTINGS
@given(rows=event_sets, scope=scopes())
def test_dau_matches_reference(
    memory_metrics: MetricsFactory, rows: list[dict[str, Any]], scope: dict[str, Any]
) -> None:
    _check(memory_metrics, rows, "dau", **scope)


@SETTINGS
@given(rows=event_sets, scope=scopes(), window=windows)
def test_active_users_matches_reference(
    memory_metrics: MetricsFactory, rows: list[dict[str, Any]], scope: dict[str, Any], window: int
) -> None:
    _check(memory_metrics, rows, "active_users", window=window, **scope)


@SETTINGS
@given(
    rows=event_sets,
    scope=scopes(),
    window=windows,
    threshold=st.sampled_from([0.0, 0.3, 0.5, 0.75, 0.999]),
)
def test_dau_rolling_matches_reference(
    memory_metrics: MetricsFactory,
    rows: list[dict[str, Any]],
    scope: dict[str, Any],
    window: int,
    threshold: float,
) -> None:
    _check(memory_metrics, rows, "dau_rolling", window=window, threshold=threshold, **scope)


@SETTINGS
@given(rows=event_sets, scope=scopes(), window=windows)
def test_max_active_matches_reference(
    memory_metrics: MetricsFactory, rows: list[dict[str, Any]], scope: dict[str, Any], window: int
) -> None:
    _check(memory_metrics, rows, "max_active", window=window, **scope)


@SETTINGS
@given(rows=event_sets, scope=scopes())
def test_retention_matches_reference(
    memory_metrics: MetricsFactory, rows: list[dict[str, Any]], scope: dict[str, Any]
) -> None:
    _check(memory_metrics, rows, "retention", **scope)


@SETTINGS
@given(rows=event_sets, scope=scopes())
def test_sessions_matches_reference(
    memory_metrics: MetricsFactory, rows: list[dict[str, Any]], scope: dict[str, Any]
) -> None:
    _check(memory_metrics, rows, "sessions", **scope)


@SETTINGS
@given(rows=event_sets, scope=scopes(), window=windows)
def test_health_matches_reference(
    memory_metrics: MetricsFactory, rows: list[dict[str, Any]], scope: dict[str, Any], window: int
) -> None:
    _check(memory_metrics, rows, "health", window=window, **scope)


@settings(SETTINGS, max_examples=15)
@given(rows=event_sets, window=windows, cut=st.integers(0, SPAN))
def test_since_only_trims_rows_of_day_metrics(
    memory_metrics: MetricsFactory, rows: list[dict[str, Any]], window: int, cut: int
) -> None:
    # A metric value for a day never depends on `since`: it may read days before it.
    since = BASE + dt.timedelta(days=cut)
    metrics = memory_metrics(rows)
    for name, options in [
        ("active_users", {"window": window}),
        ("dau_rolling", {"window": window}),
        ("sessions", {}),
    ]:
        full = getattr(metrics, name)(**options).to_pylist()
        cut_rows = getattr(metrics, name)(since=since, **options).to_pylist()
        assert cut_rows == [row for row in full if row["day"] >= since], name
