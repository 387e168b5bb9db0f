"""``first_event_day``, ``first_seen`` and ``leaf_counts`` keep answers per events table:
asked again on the same table (any tenant, any event types, any earlier ``until``, other
windows and dimensions) they must give what a fresh computation gives, and a new table (a new
Delta version) must not be answered from the old one. Checked against a plain-Python reference
over the raw rows."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from metrics_data import event
from test_breakdowns import (
    DIM_SETS,
    MEASURES,
    D,
    as_map,
    build,
    events_of,
    reference_leaves,
    row_st,
)

from assay.metrics import first_event_day, first_seen, leaf_counts

FIELDS = ["model_version", "prompt_template", "flight"]
TYPES = ["turn", "error", "handoff", "feedback", "session_end"]


def reference_first_seen(rows: list[dict[str, Any]], tenant: str, until: dt.date) -> list[Any]:
    firsts: dict[tuple[str, str], dt.date] = {}
    for r in rows:
        if r["tenant_id"] != tenant or r["event_date"] > until:
            continue
        pairs = [("model_version", r["model_version"]), ("prompt_template", r["prompt_template"])]
        pairs += [("flight", f) for f in r["flights"] or []]
        for field, value in pairs:
            if value is not None:
                key = (field, value)
                firsts[key] = min(firsts.get(key, r["event_date"]), r["event_date"])
    return sorted((day, field, value) for (field, value), day in firsts.items())


def reference_first_day(
    rows: list[dict[str, Any]], tenant: str | None, types: list[str] | None
) -> dt.date | None:
    days = [
        r["event_date"]
        for r in rows
        if (tenant is None or r["tenant_id"] == tenant)
        and (types is None or r["event_type"] in types)
    ]
    return min(days, default=None)


def triples(table: Any) -> list[Any]:
    return [(r["first_seen"], r["field"], r["value"]) for r in table.to_pylist()]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(row_st, min_size=1, max_size=40),
    untils=st.lists(st.integers(0, 7), min_size=1, max_size=5),
    asks=st.lists(
        st.tuples(
            st.sampled_from([None, "t1", "t2", "t3"]),
            st.one_of(st.none(), st.lists(st.sampled_from(TYPES), max_size=3)),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_answers_asked_again_on_one_table_match_a_plain_python_reference(
    specs: list[dict[str, Any]],
    untils: list[int],
    asks: list[tuple[str | None, list[str] | None]],
) -> None:
    rows = build(specs)
    ev = events_of(rows)
    for tenant, types in asks:
        assert first_event_day(ev, tenant=tenant, event_types=types) == reference_first_day(
            rows, tenant, types
        )
    for tenant in ("t1", "t2"):
        for until in untils:
            got = first_seen(ev, FIELDS, tenant=tenant, until=D[until])
            assert triples(got) == reference_first_seen(rows, tenant, D[until])


def test_a_new_table_is_not_answered_from_the_old_one() -> None:
    rows = [
        event(D[3], type="turn", model_version="m1"),
        event(D[5], type="error", model_version="m2", flights=["x"]),
    ]
    old = events_of(rows)
    assert first_event_day(old, tenant="t1") == D[3]
    assert first_event_day(old, tenant="t1", event_types=["error"]) == D[5]
    assert triples(first_seen(old, FIELDS, tenant="t1", until=D[6])) == [
        (D[3], "model_version", "m1"),
        (D[5], "flight", "x"),
        (D[5], "model_version", "m2"),
    ]
    # The same rows and an earlier error carrying m2 and x: a newer version of the table.
    new = events_of([*rows, event(D[1], type="error", model_version="m2", flights=["x"])])
    assert first_event_day(new, tenant="t1") == D[1]
    assert first_event_day(new, tenant="t1", event_types=["turn"]) == D[3]
    assert triples(first_seen(new, FIELDS, tenant="t1", until=D[6])) == [
        (D[1], "flight", "x"),
        (D[1], "model_version", "m2"),
        (D[3], "model_version", "m1"),
    ]
    # Asked with an earlier until, the kept answer is cut at that day.
    assert triples(first_seen(new, FIELDS, tenant="t1", until=D[2])) == [
        (D[1], "flight", "x"),
        (D[1], "model_version", "m2"),
    ]
    # And the old table still gives its own answers.
    assert first_event_day(old, tenant="t1") == D[3]


# Windows that share an end or a start, so a key that dropped either would answer wrongly.
WINDOWS = [(1, 3), (2, 3), (1, 4)]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(row_st, min_size=1, max_size=40), tenant=st.sampled_from(["t1", "t2"]))
def test_leaf_counts_asked_again_on_one_table_match_a_plain_python_reference(
    specs: list[dict[str, Any]], tenant: str
) -> None:
    rows = build(specs)
    ev = events_of(rows)
    asks = [
        (measure, dims, D[first], D[last])
        for measure in MEASURES
        for dims in DIM_SETS[:2]
        for first, last in WINDOWS
    ]
    # Every ask twice: the second is answered from what the first kept.
    for measure, dims, start, end in asks + asks:
        got = leaf_counts(
            ev,
            measure,  # type: ignore[arg-type]
            tenant=tenant,
            start=start,
            end=end,
            dims=dims,
            slow_ms=20.0,
        )
        want = reference_leaves(
            rows, measure, tenant=tenant, start=start, end=end, dims=dims, slow_ms=20.0
        )
        got_map = as_map(got, dims)
        assert got_map.keys() == want.keys(), measure
        for k, v in want.items():
            assert got_map[k] == pytest.approx(v, rel=1e-12, abs=1e-12), (measure, k)
