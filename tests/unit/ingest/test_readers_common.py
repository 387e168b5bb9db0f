"""Format detection, dispatch and errors shared by every reader, and the table helpers."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay._errors import NotFoundError, SchemaError, UsageError
from assay.ingest import read_batches
from assay.ingest._readers import (
    FORMATS,
    ParseFailure,
    concat_tables,
    detect_format,
    rows_as_python,
    table_from_records,
    union_to_pylist,
)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.json", "jsonl"),
        ("a.JSONL.GZ", "jsonl"),
        ("events.2026-01-05.json.gz", "jsonl"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.parquet.gz", "parquet"),
        ("a.csv", "csv"),
        ("a.csv.gz", "csv"),
    ],
)
def test_format_is_told_by_extension_without_opening_the_file(name: str, fmt: str) -> None:
    assert detect_format(Path("/nonexistent") / name) == fmt


def test_format_is_sniffed_without_a_known_extension(tmp_path: Path) -> None:
    (tmp_path / "j").write_bytes(b'\n  {"event_id": "e"}\n')
    (tmp_path / "a").write_bytes(b'[{"event_id": "e"}]')
    (tmp_path / "c").write_bytes(b"event_id,event_time\ne,1\n")
    (tmp_path / "g").write_bytes(gzip.compress(b"tenant_id,event_id\nt,e\n"))
    pq.write_table(pa.table({"event_id": ["e"]}), tmp_path / "p")
    assert [detect_format(tmp_path / n) for n in "jacgp"] == [
        "jsonl",
        "jsonl",
        "csv",
        "csv",
        "parquet",
    ]


def test_unknown_format_names_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello world\n")
    with pytest.raises(SchemaError, match=r"JSON Lines.*Parquet.*CSV"):
        detect_format(path)


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        read_batches(tmp_path / "gone.jsonl")
    with pytest.raises(NotFoundError):
        detect_format(tmp_path / "gone")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="not a file"):
        read_batches(tmp_path, format="jsonl")


def test_damaged_gzip_is_a_schema_error(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl.gz"
    lines = b"".join(b'{"event_id": "%d"}\n' % (i * 7919 % 100003) for i in range(5000))
    compressed = gzip.compress(lines)
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(SchemaError, match="could not read"):
        list(read_batches(path))


def test_format_can_be_forced(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    path.write_text('{"event_id": "e"}\n')
    [batch] = read_batches(path, format="jsonl")
    assert batch.table.column("event_id").to_pylist() == ["e"]


@pytest.mark.parametrize("bad", [0, -1])
def test_batch_rows_must_be_positive(tmp_path: Path, bad: int) -> None:
    with pytest.raises(UsageError, match="batch_rows"):
        read_batches(tmp_path / "a.jsonl", batch_rows=bad)


def test_unknown_format_option_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="format"):
        read_batches(tmp_path / "a.jsonl", format="xml")  # type: ignore[arg-type]


def test_formats_are_the_three_documented() -> None:
    assert FORMATS == ("jsonl", "parquet", "csv")


def test_parse_failure_fields() -> None:
    failure = ParseFailure(line=3, raw="x", rule="json", message="m")
    assert (failure.line, failure.raw, failure.rule, failure.message) == (3, "x", "json", "m")


def test_records_of_mixed_types_become_a_union_that_reads_back() -> None:
    records = [
        {"v": "a"},
        {"v": 1},
        {"v": 2.5},
        {"v": True},
        {"v": [1, "x"]},
        {"v": {"k": [1, "y"]}},
        {"v": None},
        {"v": 2**70},
        {},
    ]
    table = table_from_records(records)
    assert pa.types.is_union(table.column("v").type)
    assert union_to_pylist(table.column("v")) == [
        "a",
        1,
        2.5,
        True,
        [1, "x"],
        {"k": [1, "y"]},
        None,
        float(2**70),
        None,
    ]


def test_records_of_one_type_stay_plain() -> None:
    table = table_from_records([{"a": 1, "b": ["x"]}, {"a": 2.5}])
    assert table.column("a").type == pa.float64()
    assert table.column("b").type == pa.list_(pa.string())
    assert table.to_pylist() == [{"a": 1.0, "b": ["x"]}, {"a": 2.5, "b": None}]


def test_records_without_fields_keep_their_count() -> None:
    assert table_from_records([{}, {}, {}]).num_rows == 3
    assert concat_tables([table_from_records([{}]), table_from_records([{}, {}])]).num_rows == 3


def test_concat_promotes_compatible_types_and_unions_clashing_ones() -> None:
    one = pa.table({"a": [1], "b": ["x"], "s": [{"k": "v"}]})
    two = pa.table({"a": [1.5], "b": [2], "s": [{"j": "w"}], "c": [True]})
    out = concat_tables([one, two])
    assert out.column("a").type == pa.float64()
    assert pa.types.is_union(out.column("b").type)
    assert union_to_pylist(out.column("b")) == ["x", 2]
    assert out.column("s").to_pylist() == [{"k": "v", "j": None}, {"k": None, "j": "w"}]
    assert out.column("c").to_pylist() == [None, True]


def test_concat_merges_unions_with_plain_columns_without_losing_values() -> None:
    mixed = table_from_records([{"v": "a"}, {"v": [1, "x"]}, {"v": 2}])
    plain = pa.table({"v": [3.5, None]})
    strings = pa.table({"v": pa.array(["b"], pa.large_string())})
    out = concat_tables([plain, mixed, strings, mixed.slice(1, 1)])
    assert union_to_pylist(out.column("v")) == [3.5, None, "a", [1, "x"], 2, "b", [1, "x"]]


def test_rows_as_python_decodes_unions_and_bad_utf8() -> None:
    table = table_from_records([{"v": "a", "w": 1}, {"v": [1, "x"], "w": 2}, {"v": 3}])
    table = table.append_column(
        "s", pa.array([b"ok", b"bad\xff", None], pa.binary()).view(pa.string())
    )
    assert rows_as_python(table, [1, 2]) == [
        {"v": [1, "x"], "w": 2, "s": "bad\ufffd"},
        {"v": 3, "w": None, "s": None},
    ]
    assert rows_as_python(table_from_records([{}, {}])) == [{}, {}]
