"""``validate`` against an independent row-by-row reference on generated rows.

Rows mix good and bad values of every field, and of several JSON types in one column (which
reach validation as a dense union), so that every rule and every coercion path is exercised.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from validate_reference import EPOCH, reference_row

from assay.ingest._readers import table_from_records
from assay.schema._fields import EVENT_TYPES, FIELD_NAMES
from assay.schema._validate import validate

short_text = st.text(max_size=6)
good_times = st.one_of(
    st.sampled_from(
        [
            "2026-01-05T10:00:00Z",
            "2026-01-02T03:00:00+05:30",
            "2026-01-05t23:59:59.999999999z",
            "2026-01-05 10:00:00.5-08:00",
            "2024-02-29T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ]
    ),
    st.integers(min_value=-(10**13), max_value=10**13),
    st.just(1767607200000.0),
)
bad_times = st.one_of(
    st.sampled_from(
        [
            "2026-02-29T00:00:00Z",
            "2026-01-05 10:00",
            "2026-01-05T10:00:00",
            "2026-01-05",
            "0001-01-01T00:00:00+01:00",
            "2026-01-05T25:00:00Z",
            "1767607200000",
            "",
        ]
    ),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)


def ints(lo: int, hi: int) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    good = st.one_of(st.integers(lo, hi), st.integers(lo, hi).map(float))
    bad = st.one_of(
        st.integers(),
        st.floats(min_value=lo - 2, max_value=hi + 2),
        st.sampled_from([math.nan, math.inf, float(2**64)]),
        st.booleans(),
        short_text,
    )
    return good, bad


def floats(lo: float, hi: float) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    good = st.one_of(st.floats(min_value=lo, max_value=hi), st.integers(int(lo), int(hi)))
    bad = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        short_text,
        st.lists(st.integers(), max_size=1),
    )
    return good, bad


def strings(lo: int, hi: int) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    good = st.text(min_size=lo, max_size=min(hi, 8)) | st.just("\N{GRINNING FACE}" * hi)
    bad = st.one_of(
        st.just("x" * (hi + 1)),
        st.integers(-3, 3),
        st.booleans(),
        st.lists(short_text, max_size=1),
        st.dictionaries(short_text, short_text, max_size=1),
    )
    if lo:
        bad = bad | st.just("")
    return good, bad


good_lists = st.lists(short_text, max_size=3)
bad_lists = st.one_of(
    st.just(["y" * 1025]),
    st.just(["x"] * 257),
    st.lists(st.one_of(short_text, st.none(), st.integers()), min_size=1, max_size=3),
    short_text,
    st.integers(),
)
good_attributes = st.dictionaries(short_text, st.one_of(short_text, st.none()), max_size=3)
bad_attributes = st.one_of(
    st.dictionaries(
        st.sampled_from("abc"), st.one_of(short_text, st.integers()), min_size=1, max_size=3
    ),
    st.just({f"k{i}": "v" for i in range(65)}),
    st.just({"k": "v" * 1025}),
    st.dictionaries(
        st.sampled_from("ab"), st.lists(short_text, max_size=1), min_size=1, max_size=1
    ),
    short_text,
    st.lists(short_text, max_size=1),
)

FIELD_VALUES: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "event_id": strings(1, 128),
    "event_time": (good_times, bad_times),
    "tenant_id": strings(1, 128),
    "user_id": strings(1, 256),
    "session_id": strings(1, 256),
    "event_type": (
        st.sampled_from(EVENT_TYPES),
        st.one_of(st.sampled_from(["click", "", "TURN"]), st.integers(0, 2)),
    ),
    "turn_index": ints(0, 10**6),
    "locale": strings(0, 256),
    "platform": strings(0, 256),
    "flights": (good_lists, bad_lists),
    "latency_ms": floats(0, 1e6),
    "cost_usd": floats(0, 10),
    "tokens_in": ints(0, 10**6),
    "intent_confidence": floats(0, 1),
    "feedback": (st.sampled_from([-1, 1, -1.0, 1.0]), st.sampled_from([0, 2, -2, 0.5, True, "1"])),
    "rating": ints(1, 5),
    "handoff": (st.booleans(), st.one_of(st.integers(0, 1), short_text)),
    "cited_doc_ids": (good_lists, bad_lists),
    "text": (
        st.text(max_size=20) | st.just("\N{EURO SIGN}" * 10922),
        st.sampled_from(["\N{EURO SIGN}" * 10923, "x" * 32769, 5]),
    ),
    "attributes": (good_attributes, bad_attributes),
}
REQUIRED = ("event_id", "event_time", "tenant_id", "user_id", "session_id", "event_type")


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, (good, bad) in FIELD_VALUES.items():
        # Required fields are mostly present, optional ones often absent or null; a value is
        # good nine times in ten, so that rows are valid about half the time.
        if draw(st.integers(0, 99)) < (98 if name in REQUIRED else 40):
            record[name] = draw(bad if draw(st.integers(0, 99)) < 6 else good)
        elif draw(st.booleans()):
            record[name] = None
    if draw(st.integers(0, 99)) < 3:
        record["extra_field"] = draw(st.one_of(st.integers(), short_text))
    elif draw(st.booleans()):
        record["extra_field"] = None
    return record


def _norm(value: Any) -> Any:
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        return sorted(value)
    return value


def check(rows: list[dict[str, Any]], *, lenient: bool) -> None:
    table = table_from_records(rows)
    result = validate(table, lenient_strings=lenient)
    got_rejected = {r.index: (r.field, r.rule) for r in result.rejections}
    assert len(got_rejected) == len(result.rejections)
    valid = result.valid.to_pylist()
    valid_index = result.valid_index.to_pylist()
    assert sorted([*got_rejected, *valid_index]) == list(range(len(rows)))
    by_index = dict(zip(valid_index, valid, strict=True))
    for i, record in enumerate(rows):
        expected = reference_row(record, table.column_names, lenient=lenient)
        if isinstance(expected, tuple):
            assert got_rejected.get(i) == expected, (i, record)
            continue
        assert i in by_index, (i, record, got_rejected.get(i))
        got = by_index[i]
        for name in FIELD_NAMES:
            want = expected[name]
            have = got[name]
            if name == "event_time":
                have = (have - EPOCH) // timedelta(microseconds=1)
            assert _norm(have) == _norm(want), (name, record)
        assert got["event_date"] == expected["event_date"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), min_size=1, max_size=12))
def test_validate_matches_reference_on_json_rows(rows: list[dict[str, Any]]) -> None:
    check(rows, lenient=False)


CELL_TEXT: dict[str, tuple[list[str], list[str]]] = {
    # field: (good cells, bad cells)
    "event_time": (
        ["2026-01-05T10:00:00Z", "1767607200000", "+12", "-1"],
        ["2026-01-05 10:00", "12.5", "x", "99999999999999999999"],
    ),
    "tokens_in": (["1", " 2 ", "+3", "5.0", "1e3", "0"], ["-4", "5.5", "x", "9" * 19]),
    "rating": (["1", "5", "3.0"], ["6", "0", ".5", "nan"]),
    "latency_ms": (["1.5", "7", ".25", "0"], ["-1", "1e999", "inf", "nan", "abc"]),
    "intent_confidence": (["0", "1", "0.5", "-0"], ["1.5", "x"]),
    "feedback": (["-1", "1", "+1", "-1.0"], ["0", "2"]),
    "handoff": (["true", "FALSE", " True "], ["yes", "1", "t"]),
    "flights": (['["a","b"]', "[]"], ["[1]", '"a"', "a;b", "[", '["x",null]']),
    "attributes": (
        ['{"k":"v"}', "{}", '{"k":null}', '{"a":"b","c":"d"}'],
        ['{"k":1}', "[]", "{"],
    ),
    "event_id": (["e1"], ["e" * 129]),
}


@st.composite
def csv_rows(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": "e",
        "tenant_id": "t",
        "user_id": "u",
        "session_id": "s",
        "event_type": "turn",
        "event_time": "2026-01-05T10:00:00Z",
    }
    for name, (good, bad) in CELL_TEXT.items():
        if draw(st.booleans()):
            record[name] = draw(st.sampled_from(bad if draw(st.integers(0, 9)) == 0 else good))
        elif draw(st.integers(0, 9)) == 0:
            record[name] = None  # an empty CSV cell
    return record


@settings(max_examples=200, deadline=None)
@given(st.lists(csv_rows(), min_size=1, max_size=8))
def test_validate_matches_reference_on_csv_text_cells(rows: list[dict[str, Any]]) -> None:
    # CSV cells are all text: build the table as string columns, as the CSV reader does.
    check(rows, lenient=True)
