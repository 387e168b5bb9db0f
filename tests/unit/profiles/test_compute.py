"""Profile rows against exact computations on the raw events: counts, nulls, folded item
counts (plain-Python reference), KLL quantiles within the sketch's rank error of numpy's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from datasketches import kll_doubles_sketch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profiles_data import D1, reference, stored_events

from assay._errors import UsageError
from assay.profiles import (
    KLL_K,
    OTHER,
    PROFILE_SCHEMA,
    column_profile,
    profile_events,
)


def _rows_by_key(table: pa.Table) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {
        (r["event_date"], r["tenant_id"], r["slice_field"], r["slice_value"], r["column"]): r
        for r in table.to_pylist()
    }


def _within_rank_error(values: list[float], q: float, x: float, eps: float) -> bool:
    """Whether x is a q-quantile of values up to rank error eps (numpy's inverted CDF)."""
    lo = np.quantile(values, max(q - eps, 0.0), method="inverted_cdf")
    hi = np.quantile(values, min(q + eps, 1.0), method="inverted_cdf")
    return bool(lo <= x <= hi)


def test_hand_worked_day_counts_items_and_fold() -> None:
    # 3 users say "book" (k = 3 keeps it), 2 say "rare" (folded), one event has no intent.
    rows = [
        {"tenant_id": "t", "user_id": "a", "intent": "book", "latency_ms": 10.0},
        {"tenant_id": "t", "user_id": "a", "intent": "book", "latency_ms": 30.0},
        {"tenant_id": "t", "user_id": "b", "intent": "book", "latency_ms": 20.0},
        {"tenant_id": "t", "user_id": "c", "intent": "book"},
        {"tenant_id": "t", "user_id": "d", "intent": "rare", "latency_ms": 40.0},
        {"tenant_id": "t", "user_id": "e", "intent": "rare", "has_text": True},
        {"tenant_id": "t", "user_id": "e"},
    ]
    got = _rows_by_key(profile_events(stored_events(rows), slices=(), k=3))
    intent = column_profile(got[(D1, "t", "", "", "intent")])
    assert (intent.count, intent.nulls) == (7, 1)
    assert dict(intent.items) == {"book": 4, OTHER: 2}
    assert intent.distinct == pytest.approx(2.0)
    latency = column_profile(got[(D1, "t", "", "", "latency_ms")])
    assert (latency.count, latency.nulls, latency.min, latency.max) == (7, 3, 10.0, 40.0)
    sk = latency.sketch()
    assert sk is not None
    assert sk.n == 4
    assert latency.quantiles([0.0, 1.0]) == [10.0, 40.0]
    text = column_profile(got[(D1, "t", "", "", "text")])
    assert (text.kind, text.count, text.nulls, text.kll, text.items) == ("count", 7, 6, None, {})
    user = column_profile(got[(D1, "t", "", "", "user_id")])
    assert (user.count, user.nulls) == (7, 0)


def test_rare_slice_values_become_the_other_slice() -> None:
    rows = [{"tenant_id": "t", "user_id": f"u{i}", "model_version": "m1"} for i in range(4)]
    rows += [{"tenant_id": "t", "user_id": "x", "model_version": "m-rare"}]
    rows += [{"tenant_id": "t", "user_id": "y"}]
    got = profile_events(stored_events(rows), slices=("model_version",), k=4)
    keys = {(r["slice_field"], r["slice_value"]) for r in got.to_pylist()}
    assert keys == {
        ("", ""),
        ("model_version", "m1"),
        ("model_version", OTHER),
        ("model_version", None),
    }
    assert "m-rare" not in str(got.to_pylist())


def test_schema_and_one_row_per_group_and_column() -> None:
    rows = [
        {"tenant_id": t, "user_id": "u", "event_date": D1 + dt.timedelta(days=d)}
        for t in ("a", "b")
        for d in range(3)
    ]
    got = profile_events(stored_events(rows), slices=("locale",), k=1)
    assert got.schema == PROFILE_SCHEMA
    # 2 tenants x 3 days x (whole tenant + locale=null) x 25 columns.
    assert got.num_rows == 2 * 3 * 2 * 25


def test_empty_events_give_no_rows() -> None:
    assert profile_events(stored_events([])).num_rows == 0


_tenants = st.sampled_from(["t1", "t2"])
_row = st.fixed_dictionaries(
    {
        "tenant_id": _tenants,
        "user_id": st.sampled_from([f"u{i}" for i in range(6)]),
        "event_date": st.sampled_from([D1, D1 + dt.timedelta(days=1)]),
        "model_version": st.sampled_from([None, "m1", "m2", "m3"]),
        "locale": st.sampled_from([None, "en", "fr"]),
        "intent": st.sampled_from([None, "a", "b", "c", "d"]),
        "handoff": st.sampled_from([None, True, False]),
        "feedback": st.sampled_from([None, -1, 1]),
        "latency_ms": st.one_of(st.none(), st.floats(0, 1e4, allow_nan=False)),
        "tokens_in": st.one_of(st.none(), st.integers(0, 5000)),
        "has_text": st.booleans(),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(_row, min_size=1, max_size=60),
    k=st.integers(1, 4),
    slices=st.sampled_from([(), ("model_version",), ("model_version", "locale")]),
)
def test_profiles_match_the_exact_reference(
    rows: list[dict[str, Any]], k: int, slices: tuple[str, ...]
) -> None:
    events = stored_events(rows)
    got = _rows_by_key(profile_events(events, slices=slices, k=k))
    want = reference(events.to_pylist(), slices, k)
    assert set(got) == set(want)
    for key, exact in want.items():
        p = column_profile(got[key])
        assert (p.count, p.nulls) == (exact["count"], exact["nulls"]), key
        if "items" in exact:
            assert dict(p.items) == exact["items"], key
            assert sum(p.items.values()) == p.non_null
        if "values" in exact:
            values = exact["values"]
            if not values:
                assert p.kll is None
                assert p.min is None
                continue
            assert (p.min, p.max) == (values[0], values[-1])
            eps = kll_doubles_sketch(KLL_K).normalized_rank_error(False)
            for q, x in zip((0.1, 0.5, 0.9), p.quantiles([0.1, 0.5, 0.9]), strict=True):
                assert _within_rank_error(values, q, x, eps), (key, q)


def test_kll_quantiles_within_rank_error_of_numpy_in_estimation_mode() -> None:
    rng = np.random.default_rng(7)
    latency = rng.lognormal(5, 1, size=20_000)
    rows = [
        {"tenant_id": "t", "user_id": f"u{i % 50}", "latency_ms": float(v)}
        for i, v in enumerate(latency)
    ]
    got = _rows_by_key(profile_events(stored_events(rows), slices=()))
    p = column_profile(got[(D1, "t", "", "", "latency_ms")])
    assert p.rank_error > 0  # the sketch compacted: the bound is what is tested
    values = sorted(latency.tolist())
    qs = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
    for q, x in zip(qs, p.quantiles(qs), strict=True):
        assert _within_rank_error(values, q, x, p.rank_error), q
    assert (p.min, p.max) == (values[0], values[-1])


def test_bad_options_are_usage_errors() -> None:
    events = stored_events([{"tenant_id": "t", "user_id": "u"}])
    with pytest.raises(UsageError, match="cannot slice profiles by"):
        profile_events(events, slices=("user_id",))
    with pytest.raises(UsageError, match="not one string"):
        profile_events(events, slices="locale")
    with pytest.raises(UsageError, match="integer >= 1"):
        profile_events(events, k=0)
    with pytest.raises(UsageError, match="missing"):
        profile_events(events.drop_columns(["intent"]))


def test_user_rows_sketch_the_distinct_users_of_each_slice_over_merged_days() -> None:
    """Each day's user_id row holds an HLL sketch of that day and slice's users; merged over
    days it estimates the distinct users of the range (exact-ish: a few hundred users)."""
    from assay.profiles import slice_profiles

    rng = np.random.default_rng(5)
    rows = []
    for day in range(3):
        for i in range(400):
            user = f"u{int(rng.integers(0, 300))}"
            rows.append(
                {
                    "tenant_id": "t",
                    "user_id": user,
                    "locale": "de-DE" if int(user[1:]) % 3 else "en-US",
                    "event_date": D1 + dt.timedelta(days=day),
                    "event_id": f"e{day}-{i}",
                }
            )
    table = profile_events(stored_events(rows), slices=("locale",), k=1)
    expected_users = {"": len({r["user_id"] for r in rows})}
    for loc in ("de-DE", "en-US"):
        expected_users[loc] = len({r["user_id"] for r in rows if r["locale"] == loc})
    got = {p.slice_value: p.users for p in slice_profiles(table)}
    assert set(got) == set(expected_users)
    for key, exact in expected_users.items():
        assert got[key] == pytest.approx(exact, rel=0.03)
    # the AMS sketch: sum over users of their events (over the 3 days) squared
    squares = {p.slice_value: p.user_sum_squares for p in slice_profiles(table)}
    for key in expected_users:
        per_user: dict[str, int] = {}
        for r in rows:
            if key in ("", r["locale"]):
                per_user[r["user_id"]] = per_user.get(r["user_id"], 0) + 1
        exact_sq = sum(v * v for v in per_user.values())
        assert squares[key] == pytest.approx(exact_sq, rel=0.375)  # 3 standard errors
    # a day on its own: that day's users
    day1 = table.filter(pa.compute.equal(table["event_date"], D1))
    whole = next(p for p in slice_profiles(day1) if p.slice_field == "")
    exact_day1 = len({r["user_id"] for r in rows if r["event_date"] == D1})
    assert whole.users == pytest.approx(exact_day1, rel=0.03)
