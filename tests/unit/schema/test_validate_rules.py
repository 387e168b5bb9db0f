"""Hand-worked examples of every validation rule of event schema v1."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pytest

from assay._errors import SchemaError
from assay.ingest._readers import table_from_records
from assay.schema._fields import EVENTS_SCHEMA, FIELD_NAMES, MAX_TEXT_BYTES
from assay.schema._validate import CANONICAL_SCHEMA, RULES, validate

GOOD: dict[str, Any] = {
    "event_id": "e1",
    "event_time": "2026-01-05T10:00:00Z",
    "tenant_id": "acme",
    "user_id": "u-42",
    "session_id": "s-1",
    "event_type": "turn",
}


def row(**changes: Any) -> dict[str, Any]:
    out = dict(GOOD)
    out.update(changes)
    return out


def reject(record: dict[str, Any], *, lenient: bool = False) -> tuple[str | None, str, str]:
    """Validate one record; return (field, rule, message) of its rejection."""
    result = validate(table_from_records([record]), lenient_strings=lenient)
    assert result.valid.num_rows == 0, result.valid.to_pylist()
    [rejection] = result.rejections
    assert rejection.index == 0
    return rejection.field, rejection.rule, rejection.message


def accept(record: dict[str, Any], *, lenient: bool = False) -> dict[str, Any]:
    result = validate(table_from_records([record]), lenient_strings=lenient)
    assert result.rejections == []
    [out] = result.valid.to_pylist()
    return out


def test_canonical_schema_is_fields_in_order_then_event_date() -> None:
    assert CANONICAL_SCHEMA.names == [*FIELD_NAMES, "event_date"]
    assert CANONICAL_SCHEMA.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert CANONICAL_SCHEMA.field("text").type == pa.string()
    shared = [name for name in CANONICAL_SCHEMA.names if name != "text"]
    for name in shared:
        assert CANONICAL_SCHEMA.field(name) == EVENTS_SCHEMA.field(name)


def test_valid_row_is_stored_in_utc_with_its_utc_day() -> None:
    out = accept(row(event_time="2026-01-02T03:00:00+05:30"))
    assert out["event_time"] == datetime(2026, 1, 1, 21, 30, tzinfo=UTC)
    assert out["event_date"] == date(2026, 1, 1)
    assert out["user_id"] == "u-42"  # raw here; pseudonymised later by the pipeline


def test_result_keeps_input_order_and_indices() -> None:
    records = [row(event_id="a"), row(event_type="click"), row(event_id="c")]
    result = validate(table_from_records(records))
    assert result.valid.column("event_id").to_pylist() == ["a", "c"]
    assert result.valid_index.to_pylist() == [0, 2]
    assert result.valid_index.type == pa.int64()
    assert [(r.index, r.rule) for r in result.rejections] == [(1, "choice")]


def test_every_documented_rule_name_is_listed() -> None:
    assert set(RULES) >= {
        "required",
        "type",
        "min_length",
        "max_length",
        "choice",
        "minimum",
        "maximum",
        "time_format",
        "timezone",
        "unknown_field",
        "size",
        "utf8",
        "future",
        "late",
    }


@pytest.mark.parametrize("name", ["event_id", "event_time", "tenant_id", "user_id", "event_type"])
def test_missing_required_field_is_rejected(name: str) -> None:
    record = row()
    del record[name]
    assert reject(record)[:2] == (name, "required")


def test_null_required_field_is_rejected() -> None:
    field, rule, message = reject(row(session_id=None))
    assert (field, rule) == ("session_id", "required")
    assert "session_id is required" in message


def test_absent_column_in_a_table_rejects_every_row() -> None:
    table = pa.table({"event_id": ["a", "b"]})
    result = validate(table)
    assert [(r.index, r.field, r.rule) for r in result.rejections] == [
        (0, "event_time", "required"),
        (1, "event_time", "required"),
    ]


def test_number_where_a_string_is_expected_is_a_type_error() -> None:
    field, rule, message = reject(row(event_id=12345))
    assert (field, rule) == ("event_id", "type")
    assert "must be a string (got a number)" in message


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tokens_in": True}, "tokens_in"),
        ({"tokens_in": "12"}, "tokens_in"),
        ({"latency_ms": "12.5"}, "latency_ms"),
        ({"handoff": 1}, "handoff"),
        ({"handoff": "true"}, "handoff"),
        ({"flights": "a;b"}, "flights"),
        ({"attributes": "k=v"}, "attributes"),
        ({"text": ["a"]}, "text"),
        ({"event_time": True}, "event_time"),
        ({"event_time": ["2026-01-05T10:00:00Z"]}, "event_time"),
    ],
)
def test_wrong_json_types_are_type_errors_in_strict_mode(
    changes: dict[str, Any], field: str
) -> None:
    assert reject(row(**changes))[:2] == (field, "type")


def test_int_field_accepts_integral_floats_and_rejects_fractions() -> None:
    assert accept(row(tokens_in=3.0))["tokens_in"] == 3
    field, rule, message = reject(row(tokens_in=3.5))
    assert (field, rule) == ("tokens_in", "type")
    assert "got 3.5" in message


def test_float_field_accepts_ints() -> None:
    out = accept(row(latency_ms=12, cost_usd=0))
    assert out["latency_ms"] == 12.0
    assert isinstance(out["latency_ms"], float)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_rejected(value: float) -> None:
    field, rule, message = reject(row(intent_confidence=value))
    assert (field, rule) == ("intent_confidence", "type")
    assert "finite" in message


def test_empty_required_string_is_min_length() -> None:
    assert reject(row(event_id=""))[:2] == ("event_id", "min_length")


def test_string_bounds_are_inclusive_and_in_characters() -> None:
    assert accept(row(tenant_id="t" * 128))["tenant_id"] == "t" * 128
    assert reject(row(tenant_id="t" * 129))[:2] == ("tenant_id", "max_length")
    # 256 characters of 4 bytes each: the bound counts characters, not bytes.
    assert accept(row(user_id="\N{GRINNING FACE}" * 256))["user_id"] == "\N{GRINNING FACE}" * 256
    assert reject(row(locale="x" * 257))[:2] == ("locale", "max_length")


def test_text_is_bounded_in_utf8_bytes() -> None:
    euro = "\N{EURO SIGN}"  # 3 bytes in UTF-8
    fits = euro * (MAX_TEXT_BYTES // 3)
    assert accept(row(text=fits))["text"] == fits
    field, rule, message = reject(row(text=euro * (MAX_TEXT_BYTES // 3 + 1)))
    assert (field, rule) == ("text", "size")
    assert f"got {(MAX_TEXT_BYTES // 3 + 1) * 3} bytes" in message


def test_event_type_outside_the_choices_lists_the_allowed_values() -> None:
    field, rule, message = reject(row(event_type="click"))
    assert (field, rule) == ("event_type", "choice")
    assert "session_start, turn, feedback, handoff, error, session_end" in message
    assert "'click'" in message


@pytest.mark.parametrize(("value", "ok"), [(-1, True), (1, True), (0, False), (2, False)])
def test_feedback_is_minus_one_or_one(value: int, ok: bool) -> None:
    if ok:
        assert accept(row(feedback=value))["feedback"] == value
    else:
        assert reject(row(feedback=value))[:2] == ("feedback", "choice")


def test_null_optional_fields_pass_their_checks() -> None:
    out = accept(row(feedback=None, rating=None, intent_confidence=None, flights=None))
    assert out["feedback"] is None
    assert out["flights"] is None


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"rating": 0}, "rating", "minimum"),
        ({"rating": 6}, "rating", "maximum"),
        ({"turn_index": -1}, "turn_index", "minimum"),
        ({"tokens_out": -5}, "tokens_out", "minimum"),
        ({"latency_ms": -0.001}, "latency_ms", "minimum"),
        ({"cost_usd": -1}, "cost_usd", "minimum"),
        ({"intent_confidence": 1.0000001}, "intent_confidence", "maximum"),
        ({"intent_confidence": -0.1}, "intent_confidence", "minimum"),
    ],
)
def test_numeric_bounds(changes: dict[str, Any], field: str, rule: str) -> None:
    assert reject(row(**changes))[:2] == (field, rule)


def test_numeric_bounds_are_inclusive() -> None:
    out = accept(row(rating=5, intent_confidence=1.0, turn_index=0, latency_ms=0.0))
    assert (out["rating"], out["intent_confidence"], out["turn_index"]) == (5, 1.0, 0)
    assert accept(row(rating=1, intent_confidence=0.0))["rating"] == 1


def test_rejected_number_is_quoted_in_the_message() -> None:
    assert reject(row(rating=7))[2] == "rating must be at most 5 (got 7)"


def test_unknown_field_names_the_closest_known_field() -> None:
    field, rule, message = reject(row(evnt_type="turn"))
    assert (field, rule) == ("evnt_type", "unknown_field")
    assert "did you mean 'event_type'" in message


def test_unknown_field_with_null_value_is_ignored() -> None:
    assert accept(row(extra=None))["event_id"] == "e1"


def test_unknown_field_is_reported_before_other_rules() -> None:
    assert reject(row(zzz=1, event_id=""))[:2] == ("zzz", "unknown_field")


def test_first_broken_rule_follows_field_order() -> None:
    # event_id comes before rating in schema v1.
    assert reject(row(event_id="", rating=9))[:2] == ("event_id", "min_length")
    assert reject(row(rating=9, text="x" * (MAX_TEXT_BYTES + 1)))[:2] == ("rating", "maximum")


def test_attributes_object_becomes_a_map_and_null_values_are_absent() -> None:
    records = [row(attributes={"channel": "chat", "region": None}), row(attributes={})]
    result = validate(table_from_records(records))
    assert result.rejections == []
    assert result.valid.column("attributes").to_pylist() == [[("channel", "chat")], []]
    assert result.valid.schema.field("attributes").type == pa.map_(pa.string(), pa.string())


def test_attributes_non_string_value_is_a_type_error() -> None:
    assert reject(row(attributes={"n": 1}))[:2] == ("attributes", "type")
    assert reject(row(attributes={"n": {"nested": "x"}}))[:2] == ("attributes", "type")
    assert reject(row(attributes={"n": ["x"]}))[:2] == ("attributes", "type")


def test_attributes_bounds() -> None:
    assert accept(row(attributes={f"k{i}": "v" for i in range(64)}))["attributes"]
    assert reject(row(attributes={f"k{i}": "v" for i in range(65)}))[:2] == (
        "attributes",
        "size",
    )
    assert accept(row(attributes={"k": "v" * 1024}))["attributes"] == [("k", "v" * 1024)]
    assert reject(row(attributes={"k": "v" * 1025}))[:2] == ("attributes", "max_length")
    assert reject(row(attributes={"k" * 1025: "v"}))[:2] == ("attributes", "max_length")


def test_parquet_map_attributes_are_accepted() -> None:
    table = table_from_records([row(), row()]).append_column(
        "attributes",
        pa.array([[("a", "1"), ("b", None)], None], pa.map_(pa.string(), pa.string())),
    )
    result = validate(table)
    assert result.rejections == []
    assert result.valid.column("attributes").to_pylist() == [[("a", "1")], None]


def test_list_fields() -> None:
    assert accept(row(flights=["a", "b"], cited_doc_ids=[]))["flights"] == ["a", "b"]
    assert reject(row(flights=["a", None]))[:2] == ("flights", "type")
    assert reject(row(retrieved_doc_ids=[1, 2]))[:2] == ("retrieved_doc_ids", "type")
    assert accept(row(flights=["f"] * 256))["flights"] == ["f"] * 256
    assert reject(row(flights=["f"] * 257))[:2] == ("flights", "size")
    assert reject(row(cited_doc_ids=["d" * 1025]))[:2] == ("cited_doc_ids", "max_length")


def test_list_of_mixed_json_types_is_a_type_error() -> None:
    records = [row(flights=["a"]), row(flights=[1, "a"])]
    result = validate(table_from_records(records))
    assert result.valid_index.to_pylist() == [0]
    [rejection] = result.rejections
    assert (rejection.index, rejection.field, rejection.rule) == (1, "flights", "type")


def test_column_mixing_json_types_is_checked_per_row() -> None:
    records = [row(event_id="a"), row(event_id=7), row(event_id="c", tokens_in="x")]
    result = validate(table_from_records(records))
    assert result.valid.column("event_id").to_pylist() == ["a"]
    assert [(r.index, r.field, r.rule) for r in result.rejections] == [
        (1, "event_id", "type"),
        (2, "tokens_in", "type"),
    ]


def test_invalid_utf8_string_is_rejected_with_utf8_rule() -> None:
    table = table_from_records([row(), row()]).drop_columns(["user_id"])
    raw = pa.array([b"ok", b"bad\xff"], pa.binary())
    result = validate(table.append_column("user_id", raw))
    assert result.valid.column("user_id").to_pylist() == ["ok"]
    assert [(r.index, r.field, r.rule) for r in result.rejections] == [(1, "user_id", "utf8")]


def test_messages_never_hold_raw_text_ids_or_attributes() -> None:
    secret = "SECRET-jane@example.com"
    records = [
        row(user_id=secret * 20),
        row(text=secret * 2000),
        row(event_id=secret * 10),
        row(attributes={secret: secret * 100}),
        row(attributes={"k": 1, secret: "x"}),
        row(flights=[secret * 100]),
        row(locale=secret * 20),
        row(tokens_in=secret),
        row(handoff=secret),
        row(extra=secret),
    ]
    result = validate(table_from_records(records))
    assert len(result.rejections) == len(records)
    for rejection in result.rejections:
        assert "jane" not in rejection.message
        assert "SECRET" not in rejection.message


def test_lenient_strings_parse_csv_cells() -> None:
    record = row(
        event_time="1767607200000",
        tokens_in=" 12 ",
        turn_index="+3",
        rating="4.0",
        latency_ms="1e3",
        handoff="TRUE",
        flights='["a","b"]',
        attributes='{"k":"v","gone":null}',
    )
    out = accept(record, lenient=True)
    assert out["event_time"] == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert (out["tokens_in"], out["turn_index"], out["rating"]) == (12, 3, 4)
    assert out["latency_ms"] == 1000.0
    assert out["handoff"] is True
    assert out["flights"] == ["a", "b"]
    assert out["attributes"] == [("k", "v")]


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"tokens_in": "twelve"}, "tokens_in", "type"),
        ({"tokens_in": "1.5"}, "tokens_in", "type"),
        ({"latency_ms": "nan"}, "latency_ms", "type"),
        ({"latency_ms": "1e999"}, "latency_ms", "type"),
        ({"handoff": "yes"}, "handoff", "type"),
        ({"flights": "a;b"}, "flights", "type"),
        ({"flights": "[1]"}, "flights", "type"),
        ({"attributes": '{"k": 1}'}, "attributes", "type"),
        ({"attributes": "[]"}, "attributes", "type"),
        ({"rating": "6"}, "rating", "maximum"),
        ({"event_time": "2026-01-05 10:00:00"}, "event_time", "timezone"),
    ],
)
def test_lenient_strings_reject_unparseable_cells(
    changes: dict[str, Any], field: str, rule: str
) -> None:
    assert reject(row(**changes), lenient=True)[:2] == (field, rule)


def test_parquet_types_are_coerced() -> None:
    n = 2
    table = pa.table(
        {
            "event_id": pa.array(["a", "b"], pa.large_string()),
            "event_time": pa.array(
                [datetime(2026, 1, 1, 23, 0, tzinfo=UTC), None], pa.timestamp("ns", tz="+05:30")
            ),
            "tenant_id": pa.array(["t", "t"]).dictionary_encode(),
            "user_id": ["u"] * n,
            "session_id": ["s"] * n,
            "event_type": ["turn"] * n,
            "tokens_in": pa.array([5, 6], pa.uint64()),
            "rating": pa.array([3, 4], pa.int8()),
            "latency_ms": pa.array([1.5, 2], pa.float32()),
        }
    )
    result = validate(table)
    assert [(r.index, r.rule) for r in result.rejections] == [(1, "required")]
    [out] = result.valid.to_pylist()
    assert out["event_time"] == datetime(2026, 1, 1, 23, 0, tzinfo=UTC)
    assert out["event_date"] == date(2026, 1, 1)
    assert (out["event_id"], out["tenant_id"], out["tokens_in"], out["rating"]) == ("a", "t", 5, 3)


def test_naive_parquet_timestamp_is_a_timezone_error() -> None:
    table = table_from_records([row()]).drop_columns(["event_time"])
    naive = pa.array([datetime(2026, 1, 1)], pa.timestamp("us"))
    assert [r.rule for r in validate(table.append_column("event_time", naive)).rejections] == [
        "timezone"
    ]


def test_duplicate_column_names_are_a_schema_error() -> None:
    table = pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])], names=["event_id"] * 2)
    with pytest.raises(SchemaError, match="event_id"):
        validate(table)


def test_empty_table_gives_empty_result() -> None:
    result = validate(pa.table({}))
    assert result.valid.num_rows == 0
    assert result.valid.schema == CANONICAL_SCHEMA
    assert result.rejections == []


def test_chunked_columns_are_validated_as_one() -> None:
    one = table_from_records([row(event_id="a"), row(event_id="")])
    two = table_from_records([row(event_id="c", rating=9), row(event_id="d")])
    result = validate(pa.concat_tables([one, two], promote_options="permissive"))
    assert result.valid.column("event_id").to_pylist() == ["a", "d"]
    assert [(r.index, r.rule) for r in result.rejections] == [(1, "min_length"), (2, "maximum")]


def test_a_sliced_table_validates_like_a_fresh_one() -> None:
    records = [
        row(event_id="a", flights=["x"], attributes={"k": "1"}),
        row(event_id="b", flights=None, attributes=None, event_time=1767607200000),
        row(event_id="c", flights=["y", "z"], attributes={"j": "2"}, tokens_in="bad"),
        row(event_id="d", flights=[], attributes={}, event_time="2026-01-05 10:00"),
        row(event_id="e", flights=["w"], attributes={"k": None, "j": "3"}),
    ]
    sliced = validate(table_from_records(records).slice(1, 4))
    fresh = validate(table_from_records(records[1:]))
    assert sliced.valid.to_pylist() == fresh.valid.to_pylist()
    assert sliced.valid_index.to_pylist() == fresh.valid_index.to_pylist() == [0, 3]
    assert sliced.rejections == fresh.rejections
    assert [(r.index, r.rule) for r in sliced.rejections] == [(1, "type"), (2, "timezone")]
