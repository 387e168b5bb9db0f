"""The engine seam (assay.store._engines) on DuckDB: reading the stored Delta files."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from metrics_data import event, to_table, write_events

from assay import EngineError, UsageError
from assay.schema import EVENTS_SCHEMA
from assay.store._engines import DuckDBEngine, Engine, connect


def test_duckdb_reads_event_date_from_the_partition_path(
    duckdb_engine: DuckDBEngine, tmp_path: Path
) -> None:
    rows = [
        event("2026-01-01", user="a", hour=23, minute=30),
        event("2026-02-28", user="b", flights=["x", "y"], latency_ms=1.5),
    ]
    root = write_events(tmp_path / "events", rows)
    files = deltalake.DeltaTable(root).file_uris()
    # The partition column lives only in the paths, never inside the Parquet files.
    assert all("event_date=" in f for f in files)
    assert all("event_date" not in pq.read_schema(f).names for f in files)

    table = duckdb_engine.events(root, files)
    out = table.order_by("event_time").to_pyarrow()
    assert out.schema.names == EVENTS_SCHEMA.names
    assert out.column("event_date").type == pa.date32()
    assert out.column("event_date").to_pylist() == [dt.date(2026, 1, 1), dt.date(2026, 2, 28)]
    assert out.column("event_time").to_pylist()[0] == dt.datetime(2026, 1, 1, 23, 30, tzinfo=dt.UTC)
    assert out.column("flights").to_pylist() == [None, ["x", "y"]]


def test_an_empty_file_list_is_an_empty_table_with_the_stored_schema(
    duckdb_engine: DuckDBEngine,
) -> None:
    out = duckdb_engine.events("/nowhere", []).to_pyarrow()
    assert out.num_rows == 0
    assert out.schema.names == EVENTS_SCHEMA.names
    assert out.schema.field("event_date").type == pa.date32()


def test_duckdb_session_is_pinned_to_utc(duckdb_engine: DuckDBEngine) -> None:
    zone = duckdb_engine.backend.raw_sql("SELECT current_setting('TimeZone')").fetchone()[0]
    assert zone == "UTC"


def test_duckdb_engine_satisfies_the_protocol_and_refuses_use_after_close() -> None:
    engine = connect()
    assert isinstance(engine, Engine)
    assert engine.name == "duckdb"
    engine.close()
    engine.close()  # idempotent
    with pytest.raises(EngineError, match="closed"):
        engine.events("/nowhere", [])


def test_unknown_engine_and_misplaced_spark_master_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="engine must be one of duckdb, pyspark"):
        connect("sqlite")
    with pytest.raises(UsageError, match="--spark-master"):
        connect("duckdb", spark_master="local[1]")


def test_missing_pyspark_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "pyspark" or m.startswith("pyspark.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyspark", None)  # makes `import pyspark` fail
    with pytest.raises(EngineError, match=r"pip install 'assay\[spark\]'"):
        connect("pyspark")


def test_files_written_before_a_nullable_column_existed_read_it_as_null(
    duckdb_engine: DuckDBEngine, tmp_path: Path
) -> None:
    root = str(tmp_path / "events")
    old = to_table([event("2026-01-01", user="a")]).drop_columns(["intent"])
    deltalake.write_deltalake(root, old, partition_by=["event_date"])
    new = to_table([event("2026-01-01", user="b", intent="billing")])
    deltalake.write_deltalake(
        root, new, partition_by=["event_date"], mode="append", schema_mode="merge"
    )
    files = deltalake.DeltaTable(root).file_uris()
    out = duckdb_engine.events(root, files).order_by("user_id").to_pyarrow()
    assert out.column("intent").to_pylist() == [None, "billing"]
    assert out.schema.names == EVENTS_SCHEMA.names


def test_one_view_per_table_is_reused_and_replaced_on_a_new_version(tmp_path: Path) -> None:
    engine = connect()
    try:
        root = write_events(tmp_path / "events", [event("2026-01-01", user="a")])
        first_files = deltalake.DeltaTable(root).file_uris()
        first = engine.events(root, first_files)
        assert engine.events(root, list(first_files)) is first

        deltalake.write_deltalake(
            root, to_table([event("2026-01-02", user="b")]), partition_by=["event_date"],
            mode="append",
        )  # fmt: skip
        second = engine.events(root, deltalake.DeltaTable(root).file_uris())
        assert second.count().to_pyarrow().as_py() == 2
        backend = engine.backend  # type: ignore[attr-defined]
        rows = backend.raw_sql("SELECT view_name FROM duckdb_views() WHERE NOT internal")
        views = [name for (name,) in rows.fetchall() if name.startswith("assay_events")]
        assert len(views) == 1  # the first version's view was dropped
    finally:
        engine.close()
