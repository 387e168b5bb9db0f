"""The JSON Lines reader: round trips, isolation of bad lines, exact line numbers, streaming."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.ingest import jsonl, read_batches
from assay.ingest._readers import RawBatch, union_to_pylist
from assay.schema._validate import validate

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def write(path: Path, data: bytes) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def read_all(path: Path, batch_rows: int = 65536) -> tuple[list[dict[str, Any]], list[int], list]:
    """All rows (as Python values), their lines, and all failures, over every batch."""
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    failures = []
    for batch in read_batches(path, batch_rows=batch_rows):
        assert isinstance(batch, RawBatch)
        assert batch.table.num_rows + len(batch.failures) <= batch_rows
        assert len(batch.lines) == batch.table.num_rows
        assert batch.lines.type == pa.int64()
        columns = {
            name: union_to_pylist(batch.table.column(name)) for name in batch.table.column_names
        }
        for i in range(batch.table.num_rows):
            rows.append({name: values[i] for name, values in columns.items()})
        lines += batch.lines.to_pylist()
        failures += batch.failures
    return rows, lines, failures


def compact(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without their null values (a declared column is null where a record lacks it)."""
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def same(got: Any, want: Any) -> bool:
    """Equal as JSON values; a key with a null value is the same as an absent key."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return False
        keys = {k for k, v in want.items() if v is not None} | {
            k for k, v in got.items() if v is not None
        }
        return all(same(got.get(k), want.get(k)) for k in keys)
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(same(g, w) for g, w in zip(got, want, strict=True))
        )
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return bool(got == want)


names = st.sampled_from(["event_id", "event_time", "text", "tokens_in", "latency_ms", "x_extra"])
leaf = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["2026-01-05", "2026-01-05T10:00:00", "2026-01-05T10:00:00+05:30", "10:00"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
values = st.one_of(
    leaf,
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=4), st.one_of(st.text(max_size=4), st.none()), max_size=3),
)
records = st.dictionaries(
    st.one_of(names, st.sampled_from(["attributes", "flights"])), values, max_size=6
)


@SETTINGS
@given(
    st.lists(records, min_size=1, max_size=40),
    st.integers(min_value=1, max_value=50),
    st.booleans(),
)
def test_jsonl_round_trip_keeps_every_value_and_line(
    tmp_path: Path, rows: list[dict[str, Any]], batch_rows: int, gz: bool
) -> None:
    text = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path = write(tmp_path / ("e.jsonl.gz" if gz else "e.jsonl"), text)
    got, lines, failures = read_all(path, batch_rows)
    assert failures == []
    assert lines == list(range(1, len(rows) + 1))
    assert len(got) == len(rows)
    for g, want in zip(got, rows, strict=True):
        assert same(g, want), (g, want)


GOOD = {"event_id": "e", "event_time": "2026-01-05T10:00:00Z", "tokens_in": 3}
LINE_KINDS: dict[str, tuple[bytes, str | None]] = {
    # kind: (line bytes, failure rule or None for a parsed row, "" for a skipped line)
    "good": (json.dumps(GOOD).encode(), None),
    "good_epoch": (json.dumps({**GOOD, "event_time": 1767607200000}).encode(), None),
    "good_other_types": (json.dumps({**GOOD, "event_id": 5, "tokens_in": "3"}).encode(), None),
    "good_spaces": (b'  {"event_id": "s"}  ', None),
    "empty_object": (b"{}", None),
    "blank": (b"", ""),
    "whitespace": (b" \t ", ""),
    "not_json": (b"not json", "json"),
    "truncated": (b'{"event_id": "e"', "json"),
    "two_values": (b'{"a": 1} {"b": 2}', "json"),
    "duplicate_key": (b'{"a": 1, "a": 2}', "json"),
    "duplicate_key_spaced": (b'{"a" :1, "b": {"c": "x\\":", "c" \t: 2}}', "json"),
    "escaped_quote_colon": (b'{"a": "say \\":\\" ok", "b": "10:00"}', None),
    "array": (b"[1, 2]", "not_object"),
    "string": (b'"event"', "not_object"),
    "null": (b"null", "not_object"),
    "bad_utf8": (b'{"text": "caf\xe9"}', "utf8"),
    "lone_surrogate": (b'{"text": "\\ud800"}', "utf8"),
}


@SETTINGS
@given(
    st.lists(st.sampled_from(sorted(LINE_KINDS)), min_size=1, max_size=60),
    st.integers(min_value=1, max_value=70),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
)
def test_bad_lines_are_isolated_with_exact_line_numbers(
    tmp_path: Path, kinds: list[str], batch_rows: int, newline: bytes, trailing: bool
) -> None:
    data = newline.join(LINE_KINDS[k][0] for k in kinds) + (newline if trailing else b"")
    path = write(tmp_path / "mixed.jsonl", data)
    got, lines, failures = read_all(path, batch_rows)
    expected_rows = [i + 1 for i, k in enumerate(kinds) if LINE_KINDS[k][1] is None]
    expected_failures = [(i + 1, LINE_KINDS[k][1]) for i, k in enumerate(kinds) if LINE_KINDS[k][1]]
    assert lines == expected_rows
    assert [(f.line, f.rule) for f in failures] == expected_failures
    for row, line in zip(got, lines, strict=True):
        want = json.loads(LINE_KINDS[kinds[line - 1]][0])
        assert same(row, want)


def test_failure_carries_raw_text_and_a_message_without_it(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", b'{"ok": 1}\n{"secret": "jane@example.com"\n')
    _, _, [failure] = read_all(path)
    assert failure.line == 2
    assert failure.raw == '{"secret": "jane@example.com"'
    assert failure.rule == "json"
    assert "jane" not in failure.message
    assert "line 2" in failure.message


def test_non_utf8_line_keeps_its_neighbours(tmp_path: Path) -> None:
    data = b'{"event_id": "a"}\n{"event_id": "\xff\xfe"}\n{"event_id": "c"}\n'
    rows, lines, [failure] = read_all(write(tmp_path / "u.jsonl", data))
    assert [r["event_id"] for r in rows] == ["a", "c"]
    assert lines == [1, 3]
    assert (failure.line, failure.rule) == (2, "utf8")
    assert failure.raw == '{"event_id": "\ufffd\ufffd"}'


def test_event_time_strings_and_epoch_ms_mix_in_one_block(tmp_path: Path) -> None:
    base = {"event_id": "e", "tenant_id": "t", "user_id": "u", "session_id": "s"}
    times = ["2026-01-05T10:00:00Z", 1767607200000, 1767607200000, "2026-01-05T10:00:00Z"]
    data = "".join(
        json.dumps({**base, "event_type": "turn", "event_time": t}) + "\n" for t in times
    )
    [batch] = read_batches(write(tmp_path / "t.jsonl", data.encode()))
    assert batch.failures == []
    assert union_to_pylist(batch.table.column("event_time")) == times
    result = validate(batch.table)
    assert result.rejections == []
    assert len(set(result.valid.column("event_time").to_pylist())) == 1


def test_epoch_ms_blocks_are_read_without_failures(tmp_path: Path) -> None:
    data = "".join(json.dumps({"event_time": 1767607200000 + i}) + "\n" for i in range(100))
    batches = list(read_batches(write(tmp_path / "t.jsonl", data.encode()), batch_rows=10))
    assert [b.table.column("event_time").type for b in batches] == [pa.int64()] * 10


def test_date_like_strings_stay_strings(tmp_path: Path) -> None:
    # pyarrow.json alone would read these as timestamps and lose the original text.
    rows = [
        {"event_id": "2026-01-05", "attributes": {"since": "2026-01-05", "at": "2026-01-05 10:00"}},
        {"event_id": "b", "attributes": {"since": "2026-01-06"}, "x_unknown": "2026-01-05"},
        {"event_id": "c", "flights": ["2026-01-05"], "attributes": {"until": "2026-02-01"}},
        {"x_deep": [{"at": "2026-01-05", "n": 1}], "x_obj": {"in": {"at": "2026-01-05"}}},
        {"x_deep": [{"at": "2026-01-06", "m": "2026-01-07"}], "x_obj": {"in": {"b": 2}}},
    ]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    got, _, failures = read_all(write(tmp_path / "d.jsonl", data), batch_rows=1)
    assert failures == []
    for g, want in zip(got, rows, strict=True):
        assert same(g, want), g
    [batch] = read_batches(write(tmp_path / "d2.jsonl", data))
    attributes = batch.table.column("attributes").type
    assert all(pa.types.is_string(attributes.field(i).type) for i in range(attributes.num_fields))


def test_integers_beyond_64_bits_are_read_as_floats(tmp_path: Path) -> None:
    rows, _, failures = read_all(
        write(tmp_path / "b.jsonl", b'{"tokens_in": 123456789012345678901}\n')
    )
    assert failures == []
    assert compact(rows) == [{"tokens_in": 1.2345678901234568e20}]


def test_boolean_is_not_read_as_a_number_when_types_mix(tmp_path: Path) -> None:
    data = b'{"latency_ms": 1.5}\n{"latency_ms": true}\n{"latency_ms": "x"}\n'
    rows, _, _ = read_all(write(tmp_path / "b.jsonl", data))
    assert [r["latency_ms"] for r in rows] == [1.5, True, "x"]


def test_last_line_without_newline_and_bom_are_fine(tmp_path: Path) -> None:
    rows, lines, failures = read_all(write(tmp_path / "n.jsonl", b'\xef\xbb\xbf{"a": 1}\n{"a": 2}'))
    assert (compact(rows), lines, failures) == ([{"a": 1}, {"a": 2}], [1, 2], [])


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\r\n"])
def test_empty_or_blank_file_yields_no_batches(tmp_path: Path, content: bytes) -> None:
    assert list(read_batches(write(tmp_path / "e.jsonl", content))) == []


def test_gzip_is_decompressed_as_a_stream(tmp_path: Path) -> None:
    data = "".join(json.dumps({"event_id": f"e{i}"}) + "\n" for i in range(1000)).encode()
    rows, lines, _ = read_all(write(tmp_path / "e.jsonl.gz", data), batch_rows=300)
    assert [r["event_id"] for r in rows] == [f"e{i}" for i in range(1000)]
    assert lines == list(range(1, 1001))


def test_json_array_file_is_read_element_by_element(tmp_path: Path) -> None:
    data = b'[\n  {"event_id": "a"},\n  7,\n  {"event_id": "b",\n   "n": 1}\n]\n'
    rows, lines, failures = read_all(write(tmp_path / "a.json", data), batch_rows=2)
    assert compact(rows) == [{"event_id": "a"}, {"event_id": "b", "n": 1}]
    assert lines == [2, 4]
    assert [(f.line, f.rule) for f in failures] == [(3, "not_object")]


def test_broken_json_array_reports_the_rest_once(tmp_path: Path) -> None:
    data = b'[{"event_id": "a"},\n {"event_id": }, {"event_id": "c"}]'
    rows, _, failures = read_all(write(tmp_path / "a.json", data))
    assert compact(rows) == [{"event_id": "a"}]
    assert [(f.line, f.rule) for f in failures] == [(2, "json")]
    assert "rest of the file" in failures[0].message


def test_empty_json_array_yields_nothing(tmp_path: Path) -> None:
    assert list(read_batches(write(tmp_path / "a.json", b" [ ] \n"))) == []


def test_over_long_line_is_a_size_failure_and_reading_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(jsonl, "_READ_MIN", 256)
    data = b'{"a": 1}\n{"text": "' + b"x" * 5000 + b'"}\n{"a": 3}\n'
    rows, lines, failures = read_all(write(tmp_path / "l.jsonl", data))
    assert compact(rows) == [{"a": 1}, {"a": 3}]
    assert lines == [1, 3]
    assert [(f.line, f.rule) for f in failures] == [(2, "size")]
    assert len(failures[0].raw) <= 1000


def test_large_file_streams_in_bounded_batches(tmp_path: Path) -> None:
    line = json.dumps({**GOOD, "text": "y" * 400}).encode() + b"\n"
    count = 50 * 1024 * 1024 // len(line)  # ~50 MiB
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as f:
        for _ in range(count // 1000):
            f.write(line * 1000)
    total = count // 1000 * 1000
    sizes = []
    last = 0
    for batch in read_batches(path, batch_rows=20_000):
        sizes.append(batch.table.num_rows)
        lines = batch.lines.to_pylist()
        assert lines == list(range(last + 1, last + 1 + len(lines)))
        last = lines[-1]
    assert max(sizes) <= 20_000
    assert sum(sizes) == total
    assert len(sizes) >= total // 20_000
