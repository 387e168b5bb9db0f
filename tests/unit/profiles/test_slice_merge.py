"""slice_profiles (vectorised) against a plain row-by-row reference: counts, nulls, min, max,
item counts (and their order), days, column order and sketch contents on random stored rows
with several tenants, slices, null slice values, chunked tables and one-row groups."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from datasketches import hll_sketch, hll_union, kll_doubles_sketch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay._errors import UsageError
from assay.profiles import (
    CATEGORICAL_COLUMNS,
    COUNT_COLUMNS,
    HLL_LG_K,
    KLL_K,
    NUMERIC_COLUMNS,
    OTHER,
    PROFILE_SCHEMA,
    slice_profiles,
)

DAY0 = dt.date(2026, 3, 1)
COLUMNS = (NUMERIC_COLUMNS[0], NUMERIC_COLUMNS[1], CATEGORICAL_COLUMNS[0], COUNT_COLUMNS[0])
KINDS = ("numeric", "numeric", "categorical", "count")
ITEMS = ("b", "a", OTHER, "zz", "é")


def _kll(values: list[float]) -> bytes:
    sk = kll_doubles_sketch(KLL_K)
    for v in values:
        sk.update(v)
    return bytes(sk.serialize())


def _hll(values: list[str]) -> bytes:
    sk = hll_sketch(HLL_LG_K)
    for v in values:
        sk.update(v)
    return bytes(sk.serialize_compact())


@st.composite
def stored_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    keys = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["t1", "t2", "t10"]),
                st.sampled_from([("", ""), ("locale", None), ("locale", "de"), ("locale", "en")]),
                st.integers(0, 3),  # day
                st.integers(0, len(COLUMNS) - 1),
            ),
            min_size=1,
            max_size=40,
            unique=True,
        )
    )
    rows = []
    for tenant, (field, value), day, c in keys:
        kind = KINDS[c]
        count = draw(st.integers(0, 30))
        nulls = draw(st.integers(0, count))
        row: dict[str, Any] = {
            "event_date": DAY0 + dt.timedelta(days=day),
            "tenant_id": tenant,
            "slice_field": field,
            "slice_value": value,
            "column": COLUMNS[c],
            "kind": kind,
            "count": count,
            "nulls": nulls,
            "min": None,
            "max": None,
            "kll": None,
            "hll": None,
            "items": None,
        }
        n = count - nulls
        if kind == "numeric" and n:
            values = draw(st.lists(st.integers(-50, 50).map(float), min_size=n, max_size=n))
            row.update(min=min(values), max=max(values), kll=_kll(values))
        if kind == "categorical" and n:
            names = draw(st.lists(st.sampled_from(ITEMS), min_size=1, max_size=n, unique=True))
            counts = [1] * len(names)
            counts[0] += n - len(names)  # unsorted names, counts summing to n
            row.update(
                items=[{"value": v, "count": k} for v, k in zip(names, counts, strict=True)],
                hll=_hll(names),
            )
        rows.append(row)
    return rows


def _reference(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Row by row: per (tenant, field, value), the days and per column the plain sums."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        key = (r["tenant_id"], r["slice_field"], r["slice_value"])
        s = out.setdefault(key, {"days": set(), "columns": {}})
        s["days"].add(r["event_date"])
        c = s["columns"].setdefault(
            r["column"],
            {"rows": 0, "count": 0, "nulls": 0, "values": [], "items": {}, "kll": [], "hll": []},
        )
        c["rows"] += 1
        c["count"] += r["count"]
        c["nulls"] += r["nulls"]
        c["values"] += [x for x in (r["min"], r["max"]) if x is not None]
        for i in r["items"] or []:
            c["items"][i["value"]] = c["items"].get(i["value"], 0) + i["count"]
        c["kll"] += [r["kll"]] if r["kll"] is not None else []
        c["hll"] += [r["hll"]] if r["hll"] is not None else []
    return out


def _chunked(rows: list[dict[str, Any]], cut: int) -> pa.Table:
    parts = [rows[:cut], rows[cut:]]
    return pa.concat_tables([pa.Table.from_pylist(p, schema=PROFILE_SCHEMA) for p in parts])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=stored_rows(), cut=st.integers(0, 40))
def test_slice_profiles_equal_a_row_by_row_reference(rows: list[dict[str, Any]], cut: int) -> None:
    got = slice_profiles(_chunked(rows, cut))
    ref = _reference(rows)
    want_keys = sorted(ref, key=lambda k: (k[0], k[1], k[2] is not None, k[2] or ""))
    assert [(s.tenant_id, s.slice_field, s.slice_value) for s in got] == want_keys
    for s in got:
        r = ref[(s.tenant_id, s.slice_field, s.slice_value)]
        assert (s.first_day, s.last_day, s.days) == (min(r["days"]), max(r["days"]), len(r["days"]))
        # Columns in the order the stored rows first name them.
        assert list(s.columns) == list(r["columns"])
        for name, p in s.columns.items():
            c = r["columns"][name]
            assert (p.column, p.kind) == (name, KINDS[COLUMNS.index(name)])
            assert (p.count, p.nulls) == (c["count"], c["nulls"])
            assert (p.min, p.max) == (
                (min(c["values"]), max(c["values"])) if c["values"] else (None, None)
            )
            if c["rows"] > 1:
                assert list(p.items.items()) == sorted(c["items"].items())
            else:  # a lone row is kept as stored, items in their stored order
                assert list(p.items.items()) == list(c["items"].items())
            assert sum(p.items.values()) == (p.count - p.nulls if p.kind == "categorical" else 0)
            if c["kll"]:
                assert p.kll is not None
                sk = kll_doubles_sketch.deserialize(p.kll)
                assert sk.n == sum(kll_doubles_sketch.deserialize(b).n for b in c["kll"])
                assert (sk.get_min_value(), sk.get_max_value()) == (p.min, p.max)
                if len(c["kll"]) == 1:  # fewer than k values: exact, whatever the path
                    assert sk.get_quantiles([0.0, 0.5, 1.0]) == kll_doubles_sketch.deserialize(
                        c["kll"][0]
                    ).get_quantiles([0.0, 0.5, 1.0])
            else:
                assert p.kll is None
            if c["hll"]:
                union = hll_union(HLL_LG_K)
                for b in c["hll"]:
                    union.update(hll_sketch.deserialize(b))
                assert p.distinct == union.get_result().get_estimate()
            else:
                assert p.hll is None


def test_slice_profiles_of_no_rows_is_empty() -> None:
    assert slice_profiles(PROFILE_SCHEMA.empty_table()) == []


def test_slice_profiles_rejects_a_row_of_the_wrong_kind() -> None:
    row = {
        "event_date": DAY0,
        "tenant_id": "t",
        "slice_field": "",
        "slice_value": "",
        "column": NUMERIC_COLUMNS[0],
        "kind": "categorical",
        "count": 1,
        "nulls": 1,
    }
    with pytest.raises(UsageError, match="rebuild the profiles"):
        slice_profiles(pa.Table.from_pylist([row], schema=PROFILE_SCHEMA))


def test_one_column_of_one_slice_merges_its_days_in_a_hand_worked_example() -> None:
    rows = [
        {
            "event_date": DAY0 + dt.timedelta(days=d),
            "tenant_id": "t",
            "slice_field": "",
            "slice_value": "",
            "column": CATEGORICAL_COLUMNS[0],
            "kind": "categorical",
            "count": n,
            "nulls": 1,
            "items": items,
        }
        for d, n, items in [
            (2, 4, [{"value": "x", "count": 2}, {"value": OTHER, "count": 1}]),
            (0, 3, [{"value": "y", "count": 1}, {"value": "x", "count": 1}]),
        ]
    ]
    [s] = slice_profiles(pa.Table.from_pylist(rows, schema=PROFILE_SCHEMA))
    assert (s.first_day, s.last_day, s.days) == (DAY0, DAY0 + dt.timedelta(days=2), 2)
    p = s.columns[CATEGORICAL_COLUMNS[0]]
    assert (p.count, p.nulls, list(p.items.items())) == (7, 2, [(OTHER, 1), ("x", 3), ("y", 1)])
