"""The Parquet reader: batches of row groups, row numbers as lines, gzip, damaged files."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay._errors import NotFoundError, SchemaError
from assay.ingest import read_batches
from assay.schema._validate import validate


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.text(max_size=5), st.one_of(st.none(), st.integers(-5, 5))),
        min_size=1,
        max_size=60,
    ),
    st.integers(min_value=1, max_value=25),
    st.integers(min_value=1, max_value=25),
    st.booleans(),
)
def test_parquet_round_trip_in_batches_with_row_numbers(
    tmp_path: Path, rows: list[tuple[str, int | None]], batch_rows: int, group: int, gz: bool
) -> None:
    table = pa.table({"event_id": [r[0] for r in rows], "tokens_in": [r[1] for r in rows]})
    path = tmp_path / "e.parquet"
    pq.write_table(table, path, row_group_size=group)
    if gz:
        path = tmp_path / "e.parquet.gz"
        path.write_bytes(gzip.compress((tmp_path / "e.parquet").read_bytes()))
    batches = list(read_batches(path, batch_rows=batch_rows))
    assert all(b.table.num_rows <= batch_rows for b in batches)
    assert all(b.failures == [] for b in batches)
    lines = [line for b in batches for line in b.lines.to_pylist()]
    assert lines == list(range(1, len(rows) + 1))
    got = pa.concat_tables([b.table for b in batches])
    assert got.to_pylist() == table.to_pylist()


def test_parquet_types_reach_validation_intact(tmp_path: Path) -> None:
    table = pa.table(
        {
            "event_id": ["a", "b"],
            "event_time": pa.array(
                [datetime(2026, 1, 1, 23, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)],
                pa.timestamp("ms", tz="UTC"),
            ),
            "tenant_id": pa.array(["t", "t"]).dictionary_encode(),
            "user_id": ["u", "u"],
            "session_id": ["s", "s"],
            "event_type": ["turn", "click"],
            "attributes": pa.array([[("k", "v")], []], pa.map_(pa.string(), pa.string())),
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    [batch] = read_batches(path)
    result = validate(batch.table)
    assert [(r.index, r.field, r.rule) for r in result.rejections] == [(1, "event_type", "choice")]
    [row] = result.valid.to_pylist()
    assert row["event_time"] == datetime(2026, 1, 1, 23, tzinfo=UTC)
    assert row["attributes"] == [("k", "v")]


def test_damaged_parquet_is_a_schema_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(SchemaError, match="not a valid Parquet file"):
        list(read_batches(path))


def test_missing_parquet_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        read_batches(tmp_path / "gone.parquet")


def test_empty_parquet_file_yields_no_batches(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"event_id": pa.array([], pa.string())}), path)
    assert sum(b.table.num_rows for b in read_batches(path)) == 0


def test_a_parquet_schema_nested_too_deeply_is_a_schema_error_not_a_crash(
    tmp_path: Path,
) -> None:
    # 70 lists: over assay's bound of 64 levels (a JSON line's), and 210 Parquet schema levels,
    # over the bound of 100 that some pyarrow releases apply at open.
    depth = 70
    typ: pa.DataType = pa.string()
    value: object = "x"
    for _ in range(depth):
        typ, value = pa.list_(typ), [value]
    path = tmp_path / "deep.parquet"
    pq.write_table(pa.table({"event_id": ["e1"], "attributes": pa.array([value], typ)}), path)
    with pytest.raises(SchemaError, match="nests types too deeply to be read"):
        list(read_batches(path))
