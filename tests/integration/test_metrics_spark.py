"""Every metric on Spark equals DuckDB on the same stored Delta table of edge cases."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import deltalake
import pyarrow as pa
import pytest

# The event builders and the edge-case data live with the metrics unit tests.
sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "metrics"))

from metrics_data import assert_same_rows, edge_case_events, event, write_events

from assay.metrics import Metrics
from assay.store._engines import DuckDBEngine, SparkEngine, connect

pytestmark = pytest.mark.spark

D = dt.date.fromisoformat

CASES: list[tuple[str, dict[str, Any]]] = [
    ("dau", {}),
    ("dau", {"by": "flight", "since": D("2026-01-08")}),
    ("active_users", {}),
    ("active_users", {"window": 3, "by": "locale", "until": D("2026-01-18")}),
    ("dau_rolling", {}),
    ("dau_rolling", {"window": 2, "threshold": 0.5, "by": "platform"}),
    ("max_active", {}),
    ("max_active", {"window": 3, "by": "flight", "since": D("2026-01-05")}),
    ("retention", {}),
    ("retention", {"by": "model_version", "since": D("2026-01-08")}),
    ("sessions", {}),
    ("sessions", {"by": "flight", "tenant": "acme"}),
    ("health", {"window": 3, "by": "locale"}),
]


@pytest.fixture(scope="module")
def stored_edge_cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    root = write_events(tmp_path_factory.mktemp("spark") / "events", edge_case_events())
    return root, deltalake.DeltaTable(root).file_uris()


@pytest.fixture(scope="module")
def duckdb_engine() -> Iterator[DuckDBEngine]:
    engine = connect("duckdb")
    assert isinstance(engine, DuckDBEngine)
    yield engine
    engine.close()


@pytest.mark.parametrize(("metric", "options"), CASES, ids=[f"{m}-{o}" for m, o in CASES])
def test_spark_equals_duckdb_on_edge_cases(
    spark_engine: SparkEngine,
    duckdb_engine: DuckDBEngine,
    stored_edge_cases: tuple[str, list[str]],
    metric: str,
    options: dict[str, Any],
) -> None:
    root, files = stored_edge_cases
    on_spark = getattr(Metrics(lambda: spark_engine.events(root, files)), metric)(**options)
    on_duckdb = getattr(Metrics(lambda: duckdb_engine.events(root, files)), metric)(**options)
    assert on_spark.schema == on_duckdb.schema
    assert on_duckdb.num_rows > 0
    assert_same_rows(on_spark.to_pylist(), on_duckdb.to_pylist())


def test_spark_percentiles_are_exact_not_approximate(
    spark_engine: SparkEngine, tmp_path: Path
) -> None:
    # Latencies 200, 300, 400: exact p95 = 300 + 0.9 * 100 = 390 (an approximate percentile
    # returns one of the values, 400).
    rows = [event("2026-01-04", session="s", latency_ms=ms) for ms in (400.0, 200.0, 300.0)]
    root = write_events(tmp_path / "events", rows)
    files = deltalake.DeltaTable(root).file_uris()
    out = Metrics(lambda: spark_engine.events(root, files)).sessions().to_pylist()
    assert out[0]["latency_p50"] == 300.0
    assert out[0]["latency_p95"] == pytest.approx(390.0)
    assert out[0]["latency_p99"] == pytest.approx(398.0)


def test_spark_reads_event_date_from_the_path_as_a_utc_date(
    spark_engine: SparkEngine, tmp_path: Path
) -> None:
    # 23:30 UTC is the next day in Asia/Kolkata (the test-wide TZ): the day must stay UTC.
    rows = [event("2026-01-01", user="a", hour=23, minute=30)]
    root = write_events(tmp_path / "events", rows)
    files = deltalake.DeltaTable(root).file_uris()
    table = spark_engine.events(root, files)
    out = table.select("event_date", "event_time").to_pyarrow()
    assert out.schema.field("event_date").type == pa.date32()
    assert out.column("event_date").to_pylist() == [dt.date(2026, 1, 1)]
    assert out.column("event_time").to_pylist() == [dt.datetime(2026, 1, 1, 23, 30, tzinfo=dt.UTC)]
    assert spark_engine.events(root, []).count().to_pyarrow().as_py() == 0


def test_spark_session_and_jvm_are_pinned_to_utc(spark_engine: SparkEngine) -> None:
    session = spark_engine.session
    assert session.conf.get("spark.sql.session.timeZone") == "UTC"
    jvm_zone = session.sparkContext._jvm.java.util.TimeZone.getDefault().getID()
    assert jvm_zone == "UTC"
