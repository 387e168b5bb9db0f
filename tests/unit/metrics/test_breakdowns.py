"""The breakdowns behind `assay explain` and `assay regressions` (``assay.metrics.leaf_counts``,
``release_counts``, ...), against hand-worked tables and a plain-Python reference written from
the raw rows (no Ibis, no SQL), on random event sets (hypothesis)."""

from __future__ import annotations

import datetime as dt
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from metrics_data import event, to_table

from assay._errors import UsageError
from assay.metrics import (
    first_event_day,
    first_seen,
    latency_quantile,
    leaf_counts,
    release_counts,
    release_latencies,
)

D0 = dt.date(2026, 1, 1)
D = [D0 + dt.timedelta(days=i) for i in range(8)]


def events_of(rows: Sequence[dict[str, Any]]) -> ibis.Table:
    return ibis.memtable(to_table(rows))


def as_map(table: Any, dims: Sequence[str]) -> dict[tuple[Any, ...], tuple[float, ...]]:
    out = {}
    for r in table.to_pylist():
        key = (r["day"], *(r[d] for d in dims))
        out[key] = (r["value"], r["total"]) if "total" in r else (r["value"],)
    return out


# -- hand-worked -------------------------------------------------------------------------------


def hand_rows() -> list[dict[str, Any]]:
    """Tenant t1 on D[1] and D[2], one event of t2 (never read for t1)."""
    return [
        # s0 starts before the window (D[0]) and goes on inside it: never counted.
        event(D[0], session="s0", type="turn", locale="en", latency_ms=10.0),
        event(D[1], session="s0", type="turn", locale="en", latency_ms=20.0),
        # s1: first event D[1] 09:00 in locale en, flights b, a, b -> "a+b"; a handoff on D[2].
        event(D[1], session="s1", hour=9, locale="en", flights=["b", "a", "b"], latency_ms=30.0),
        event(D[1], session="s1", hour=10, locale="fr", type="error", feedback=-1),
        event(D[2], session="s1", hour=1, locale="fr", type="handoff", cost_usd=0.5),
        # s2: first event in fr, user u2; thumbs up; a flag handoff = false.
        event(D[1], user="u2", session="s2", locale="fr", handoff=False, feedback=1,
              latency_ms=40.0, cost_usd=0.25),
        event(D[2], user="u2", session="s3", locale="fr", handoff=True, latency_ms=50.0),
        event(D[2], tenant="t2", user="u9", session="s9", locale="en", latency_ms=999.0),
    ]  # fmt: skip


def test_sessions_and_handoffs_count_first_events_inside_the_window_only() -> None:
    ev = events_of(hand_rows())
    got = leaf_counts(
        ev, "handoff_rate", tenant="t1", start=D[1], end=D[2], dims=["locale"]
    ).to_pylist()
    # s0 started on D[0] (before the window): not counted. s1 (en, D[1]) is handed off on
    # D[2]; s2 (fr, D[1]) is not; s3 (fr, D[2]) is, by its flag.
    assert got == [
        {"day": D[1], "locale": "en", "value": 1.0, "total": 1.0},
        {"day": D[1], "locale": "fr", "value": 0.0, "total": 1.0},
        {"day": D[2], "locale": "fr", "value": 1.0, "total": 1.0},
    ]


def test_flight_leaf_is_the_sorted_set_of_an_events_flights() -> None:
    ev = events_of(hand_rows())
    got = leaf_counts(ev, "dau", tenant="t1", start=D[1], end=D[1], dims=["flight"])
    # Turns on D[1]: s0 (u1, no flight), s1 (u1, flights b, a, b), s2 (u2, no flight).
    assert as_map(got, ["flight"]) == {(D[1], None): (2.0,), (D[1], "a+b"): (1.0,)}


def test_rates_cost_and_slow_turns_by_hand() -> None:
    ev = events_of(hand_rows())
    kw: dict[str, Any] = {"tenant": "t1", "start": D[1], "end": D[2], "dims": ["locale"]}
    assert as_map(leaf_counts(ev, "thumbs_down_rate", **kw), ["locale"]) == {
        (D[1], "en"): (0.0, 0.0),
        (D[1], "fr"): (1.0, 2.0),
        (D[2], "fr"): (0.0, 0.0),
    }
    assert as_map(leaf_counts(ev, "error_rate", **kw), ["locale"]) == {
        (D[1], "en"): (0.0, 2.0),
        (D[1], "fr"): (1.0, 1.0),
        (D[2], "fr"): (0.0, 1.0),
    }
    assert as_map(leaf_counts(ev, "slow_turns", slow_ms=30.0, **kw), ["locale"]) == {
        (D[1], "en"): (0.0, 2.0),  # 20 and 30 ms: not above 30
        (D[1], "fr"): (1.0, 1.0),  # 40 ms
        (D[2], "fr"): (1.0, 1.0),  # 50 ms
    }
    assert as_map(leaf_counts(ev, "cost_usd", **kw), ["locale"]) == {
        (D[1], "en"): (0.0,),
        (D[1], "fr"): (0.25,),
        (D[2], "fr"): (0.5,),
    }


def test_latency_quantile_is_exact_linear_interpolation() -> None:
    ev = events_of(hand_rows())
    # t1's turn latencies on D[1], D[2]: 20, 30, 40, 50 -> p95 at rank 0.95 * 3 = 2.85:
    # 40 + 0.85 * 10 = 48.5.
    got = latency_quantile(ev, 0.95, tenant="t1", start=D[1], end=D[2])
    assert got == pytest.approx(48.5, rel=1e-12)
    assert latency_quantile(ev, 0.95, tenant="t1", start=D[5], end=D[6]) is None


def test_first_days_and_first_seen_by_hand() -> None:
    rows = [
        *hand_rows(),
        event(D[3], type="feedback", model_version="m2", flights=["c"]),
        event(D[4], model_version="m1", prompt_template="p1"),
    ]
    ev = events_of(rows)
    assert first_event_day(ev) == D[0]
    assert first_event_day(ev, tenant="t2") == D[2]
    assert first_event_day(ev, tenant="t1", event_types=["handoff"]) == D[2]
    assert first_event_day(ev, tenant="nobody") is None
    got = first_seen(ev, ["model_version", "prompt_template", "flight"], tenant="t1", until=D[3])
    assert got.to_pylist() == [
        {"field": "flight", "value": "a", "first_seen": D[1]},
        {"field": "flight", "value": "b", "first_seen": D[1]},
        {"field": "flight", "value": "c", "first_seen": D[3]},
        {"field": "model_version", "value": "m2", "first_seen": D[3]},
    ]


def test_release_counts_by_hand() -> None:
    rows = [
        # Session a: m1 on D[0] then m2 on D[1]; handed off on D[1] by an event without a value.
        event(D[0], session="a", model_version="m1", feedback=-1),
        event(D[1], session="a", model_version="m2", type="error"),
        event(D[1], session="a", type="handoff"),
        # Session b: m1 only, on D[1]; a handoff after `until` does not count.
        event(D[1], session="b", model_version="m1", feedback=1),
        event(D[3], session="b", model_version="m1", type="handoff"),
    ]
    got = release_counts(events_of(rows), "model_version", until=D[2]).to_pylist()
    # No answer retrieves a doc: the RAG counts are 0 (tests/unit/drift/test_regressions_rag.py).
    rag = dict(answers=0, uncited_answers=0, retrieved=0, uncited_retrieved=0)
    base = {"tenant_id": "t1", **rag}
    assert got == [
        base | dict(value="m1", day=D[0], sessions=1, handoffs=1, turns=1, errors=0,
                    feedback=1, thumbs_down=1),
        base | dict(value="m1", day=D[1], sessions=1, handoffs=0, turns=1, errors=0,
                    feedback=1, thumbs_down=0),
        base | dict(value="m2", day=D[1], sessions=1, handoffs=1, turns=0, errors=1,
                    feedback=0, thumbs_down=0),
    ]  # fmt: skip


# -- random event sets against a plain-Python reference ---------------------------------------

FLIGHTS = [None, [], ["a"], ["b", "a"], ["a", "a"], ["b"]]
LATENCIES = [None, 10.0, 20.0, 20.0, 35.5, 100.0, 250.25]

row_st = st.fixed_dictionaries(
    {
        "tenant": st.sampled_from(["t1", "t2"]),
        "day": st.integers(0, 6),
        "hour": st.integers(0, 2),
        "user": st.sampled_from(["u1", "u2", "u3"]),
        "session": st.sampled_from(["s1", "s2", "s3", "s4"]),
        "type": st.sampled_from(["turn", "turn", "error", "handoff", "feedback", "session_end"]),
        "locale": st.sampled_from([None, "en", "fr"]),
        "platform": st.sampled_from(["web", "ios"]),
        "model_version": st.sampled_from([None, "m1", "m2"]),
        "flights": st.sampled_from(FLIGHTS),
        "latency_ms": st.sampled_from(LATENCIES),
        "feedback": st.sampled_from([None, -1, 1]),
        "handoff": st.sampled_from([None, True, False]),
        "cost_usd": st.sampled_from([None, 0.1, 0.25, 1.5]),
    }
)


def build(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for s in specs:
        fields = {
            k: v
            for k, v in s.items()
            if k not in ("tenant", "day", "hour", "user", "session", "type")
        }
        rows.append(
            event(
                D[s["day"]],
                tenant=s["tenant"],
                user=s["user"],
                session=s["session"],
                type=s["type"],
                hour=s["hour"],
                **fields,
            )
        )
    return rows  # fmt: skip


def leaf_key(row: dict[str, Any], dims: Sequence[str]) -> tuple[Any, ...]:
    key = []
    for d in dims:
        if d == "flight":
            names = sorted({f for f in row["flights"] or [] if f is not None})
            key.append("+".join(names) if names else None)
        else:
            key.append(row[d])
    return tuple(key)


def reference_leaves(
    rows: list[dict[str, Any]],
    measure: str,
    *,
    tenant: str,
    start: dt.date,
    end: dt.date,
    dims: Sequence[str],
    slow_ms: float = 0.0,
) -> dict[tuple[Any, ...], tuple[float, ...]]:
    own = [r for r in rows if r["tenant_id"] == tenant]
    window = [r for r in own if start <= r["event_date"] <= end]
    cells: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in window:
        cells[(r["event_date"], *leaf_key(r, dims))].append(r)
    if measure == "dau":
        users = {
            k: {r["user_id"] for r in v if r["event_type"] == "turn"} for k, v in cells.items()
        }
        return {k: (float(len(u)),) for k, u in users.items() if u}
    if measure in ("sessions", "handoff_rate"):
        earlier = {r["session_id"] for r in own if r["event_date"] < start}
        handed = {
            r["session_id"]
            for r in own
            if r["event_date"] >= start and (r["event_type"] == "handoff" or r["handoff"])
        }
        firsts: dict[str, dict[str, Any]] = {}
        for r in sorted(window, key=lambda r: (r["event_time"], r["event_id"])):
            firsts.setdefault(r["session_id"], r)
        out: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for sid, r in firsts.items():
            if sid in earlier:
                continue
            cell = out[(r["event_date"], *leaf_key(r, dims))]
            cell[0] += sid in handed
            cell[1] += 1
        if measure == "sessions":
            return {k: (v[1],) for k, v in out.items()}
        return {k: (v[0], v[1]) for k, v in out.items()}
    if measure == "thumbs_down_rate":
        return {
            k: (
                float(sum(r["feedback"] == -1 for r in v)),
                float(sum(r["feedback"] is not None for r in v)),
            )
            for k, v in cells.items()
        }
    if measure == "error_rate":
        out2 = {
            k: (
                float(sum(r["event_type"] == "error" for r in v)),
                float(sum(r["event_type"] == "turn" for r in v)),
            )
            for k, v in cells.items()
        }
        return {k: v for k, v in out2.items() if v != (0.0, 0.0)}
    if measure == "slow_turns":
        timed = {
            k: [r["latency_ms"] for r in v if r["event_type"] == "turn" and r["latency_ms"]]
            for k, v in cells.items()
        }
        return {
            k: (float(sum(x > slow_ms for x in v)), float(len(v))) for k, v in timed.items() if v
        }
    assert measure == "cost_usd"
    return {k: (sum(r["cost_usd"] or 0.0 for r in v),) for k, v in cells.items()}


DIM_SETS = [["locale"], ["flight"], ["locale", "platform"], ["model_version", "flight"]]
MEASURES = ["dau", "sessions", "handoff_rate", "thumbs_down_rate", "error_rate", "slow_turns",
            "cost_usd"]  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(row_st, min_size=1, max_size=40),
    dims=st.sampled_from(DIM_SETS),
    window=st.tuples(st.integers(0, 6), st.integers(0, 3)),
)
def test_leaf_counts_match_a_plain_python_reference(
    specs: list[dict[str, Any]], dims: list[str], window: tuple[int, int]
) -> None:
    rows = build(specs)
    ev = events_of(rows)
    start, end = D[window[0]], D[min(window[0] + window[1], 6)]
    for measure in MEASURES:
        got = leaf_counts(
            ev,
            measure,
            tenant="t1",
            start=start,
            end=end,
            dims=dims,
            slow_ms=20.0,  # type: ignore[arg-type]
        )
        want = reference_leaves(
            rows, measure, tenant="t1", start=start, end=end, dims=dims, slow_ms=20.0
        )
        got_map = as_map(got, dims)
        assert got_map.keys() == want.keys(), measure
        for k, v in want.items():
            assert got_map[k] == pytest.approx(v, rel=1e-12, abs=1e-12), (measure, k)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(row_st, min_size=1, max_size=40), until=st.integers(0, 6))
def test_release_counts_and_latencies_match_a_plain_python_reference(
    specs: list[dict[str, Any]], until: int
) -> None:
    rows = build(specs)
    ev = events_of(rows)
    last = D[until]
    upto = [r for r in rows if r["event_date"] <= last]
    handed = {
        (r["tenant_id"], r["session_id"])
        for r in upto
        if r["event_type"] == "handoff" or r["handoff"]
    }
    starts: dict[tuple[str, str, str], dt.date] = {}
    want: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * 6)
    for r in upto:
        if r["model_version"] is None:
            continue
        k = (r["tenant_id"], r["session_id"], r["model_version"])
        starts[k] = min(starts.get(k, r["event_date"]), r["event_date"])
        cell = want[(r["tenant_id"], r["model_version"], r["event_date"])]
        cell[2] += r["event_type"] == "turn"
        cell[3] += r["event_type"] == "error"
        cell[4] += r["feedback"] is not None
        cell[5] += r["feedback"] == -1
    for (tenant, session, value), first in starts.items():
        want[(tenant, value, first)][0] += 1
        want[(tenant, value, first)][1] += (tenant, session) in handed
    got = release_counts(ev, "model_version", until=last).to_pylist()
    names = ["sessions", "handoffs", "turns", "errors", "feedback", "thumbs_down"]
    assert {(r["tenant_id"], r["value"], r["day"]): [r[n] for n in names] for r in got} == want

    since = D[max(until - 2, 0)]
    lat = release_latencies(ev, "model_version", since=since, until=last).to_pylist()
    want_lat = sorted(
        (r["tenant_id"], r["model_version"], r["event_date"], r["latency_ms"])
        for r in upto
        if r["event_date"] >= since
        and r["event_type"] == "turn"
        and r["latency_ms"] is not None
        and r["model_version"] is not None
    )
    assert [(r["tenant_id"], r["value"], r["day"], r["latency_ms"]) for r in lat] == want_lat

    turns = [
        r["latency_ms"]
        for r in upto
        if r["tenant_id"] == "t1" and r["event_type"] == "turn" and r["latency_ms"] is not None
    ]
    q = latency_quantile(ev, 0.95, tenant="t1", start=D[0], end=last)
    if turns:
        assert q == pytest.approx(float(np.percentile(turns, 95)), rel=1e-12)
    else:
        assert q is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ev: leaf_counts(ev, "p95", tenant="t1", start=D[0], end=D[1], dims=["locale"]),
         "measure must be one of"),
        (lambda ev: leaf_counts(ev, "slow_turns", tenant="t1", start=D[0], end=D[1],
                                dims=["locale"]), "needs slow_ms"),
        (lambda ev: leaf_counts(ev, "dau", tenant="t1", start=D[0], end=D[1], dims=["user_id"]),
         "dims must be distinct slice fields"),
        (lambda ev: leaf_counts(ev, "dau", tenant="t1", start=D[0], end=D[1], dims=[]),
         "dims must be distinct slice fields"),
        (lambda ev: release_counts(ev, "flight", until=D[1]), "field must be one of"),
        (lambda ev: release_latencies(ev, "text", since=None, until=D[1]), "field must be one of"),
    ],
)  # fmt: skip
def test_bad_arguments_are_usage_errors_that_say_what_to_pass(call: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        call(events_of(hand_rows()))
