"""Merging: two days merged equal both days profiled at once (counts exact, quantiles within
the KLL error), slices merge into their tenant, two workspaces' profiles into one; rare items
are undercounted after a merge, as documented."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from profiles_data import D1, stored_events

from assay._errors import UsageError
from assay.profiles import (
    OTHER,
    ColumnProfile,
    column_profile,
    merge_profiles,
    profile_events,
    slice_profiles,
)

D2 = D1 + dt.timedelta(days=1)


def _day_rows(day: dt.date, seed: int, n: int = 3000) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "event_date": day,
            "tenant_id": "t",
            "user_id": f"u{i % 40}",
            "latency_ms": float(v),
            "intent": ["book", "cancel", "oos"][i % 3],
            "model_version": ["m1", "m2"][i % 2],
            "intent_confidence": float(c),
        }
        for i, (v, c) in enumerate(
            zip(rng.gamma(2.0, 300.0 + 50 * seed, n), rng.beta(5, 2, n), strict=True)
        )
    ]


def _whole(table: pa.Table) -> dict[str, ColumnProfile]:
    return {
        r["column"]: column_profile(r)
        for r in table.to_pylist()
        if r["slice_field"] == "" and r["tenant_id"] == "t"
    }


def test_two_days_merged_equal_both_days_profiled_at_once() -> None:
    rows1, rows2 = _day_rows(D1, 1), _day_rows(D2, 2)
    per_day = profile_events(stored_events(rows1 + rows2), slices=())
    [merged] = slice_profiles(per_day)
    assert (merged.first_day, merged.last_day, merged.days) == (D1, D2, 2)
    # The same events on one day: one sketch of all values.
    at_once = _whole(
        profile_events(stored_events([{**r, "event_date": D1} for r in rows1 + rows2]), slices=())
    )
    for name, exact in at_once.items():
        got = merged.columns[name]
        assert (got.count, got.nulls) == (exact.count, exact.nulls), name
        assert dict(got.items) == dict(exact.items), name
        assert (got.min, got.max) == (exact.min, exact.max), name
        assert got.distinct == exact.distinct, name
    for name in ("latency_ms", "intent_confidence"):
        values = np.sort([r[name] for r in rows1 + rows2])
        got = merged.columns[name]
        eps = max(got.rank_error, at_once[name].rank_error)
        assert eps > 0
        qs = [0.05, 0.25, 0.5, 0.75, 0.95]
        for q, a, b in zip(qs, got.quantiles(qs), at_once[name].quantiles(qs), strict=True):
            lo = np.quantile(values, q - eps, method="inverted_cdf")
            hi = np.quantile(values, q + eps, method="inverted_cdf")
            assert lo <= a <= hi, (name, q)
            assert lo <= b <= hi, (name, q)


def test_slices_merge_into_their_tenant() -> None:
    table = profile_events(stored_events(_day_rows(D1, 3, n=600)), slices=("model_version",))
    rows = table.to_pylist()
    sliced = [column_profile(r) for r in rows if r["slice_field"] == "model_version"]
    whole = _whole(table)
    merged = merge_profiles(sliced)
    for name in ("latency_ms", "intent", "user_id"):
        assert merged[name].count == whole[name].count == 600
        assert dict(merged[name].items) == dict(whole[name].items)
        assert (merged[name].min, merged[name].max) == (whole[name].min, whole[name].max)


def test_profiles_of_two_workspaces_merge_like_days() -> None:
    rows_a, rows_b = _day_rows(D1, 4, n=500), _day_rows(D1, 5, n=700)
    a = profile_events(stored_events(rows_a), slices=())
    b = profile_events(stored_events(rows_b), slices=())
    [one] = slice_profiles(pa.concat_tables([a, b]))
    assert one.days == 1
    assert one.columns["latency_ms"].count == 1200
    latencies = [r["latency_ms"] for r in rows_a + rows_b]
    assert (one.columns["latency_ms"].min, one.columns["latency_ms"].max) == (
        min(latencies),
        max(latencies),
    )
    # 500 rows cycle book, cancel, oos: 167, 167, 166; 700 rows: 234, 233, 233.
    assert dict(one.columns["intent"].items) == {"book": 401, "cancel": 400, "oos": 399}


def test_a_merge_undercounts_items_folded_on_each_day() -> None:
    # "rare" has 6 users a day (k = 10): folded each day, though 12 users over both days.
    rows = [
        {"event_date": day, "tenant_id": "t", "user_id": f"{day}-{u}", "intent": "rare"}
        for day in (D1, D2)
        for u in range(6)
    ]
    rows += [
        {"event_date": day, "tenant_id": "t", "user_id": f"c{u}", "intent": "common"}
        for day in (D1, D2)
        for u in range(10)
    ]
    [merged] = slice_profiles(profile_events(stored_events(rows), slices=()))
    assert dict(merged.columns["intent"].items) == {"common": 20, OTHER: 12}
    at_once = _whole(
        profile_events(stored_events([{**r, "event_date": D1} for r in rows]), slices=())
    )
    assert dict(at_once["intent"].items) == {"common": 20, "rare": 12}


def test_merge_rejects_one_column_with_two_kinds() -> None:
    a = ColumnProfile("intent", "categorical", count=1, nulls=0, items={"x": 1})
    b = ColumnProfile("intent", "numeric", count=1, nulls=1)
    with pytest.raises(UsageError, match="different kinds"):
        merge_profiles([a, b])


def test_merge_of_null_only_profiles_keeps_no_sketch() -> None:
    a = ColumnProfile("latency_ms", "numeric", count=2, nulls=2)
    m = a.merge(ColumnProfile("latency_ms", "numeric", count=3, nulls=3))
    assert (m.count, m.nulls, m.kll, m.min, m.null_fraction) == (5, 5, None, None, 1.0)
    with pytest.raises(UsageError, match="no values"):
        m.quantiles([0.5])
