"""The RAG counts of health and explain on Spark equal DuckDB's, on doc id lists with
duplicates, empty and null lists, a citation never retrieved, a null slice and flights."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import deltalake
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "metrics"))

from metrics_data import event, write_events

from assay.metrics import Metrics, leaf_counts
from assay.store._engines import DuckDBEngine, SparkEngine, connect

pytestmark = pytest.mark.spark

ROWS = [
    event("2026-01-05", user="u1", session="s1", locale="en",
          retrieved_doc_ids=["a", "b", "a"], cited_doc_ids=["a", "z", "a"]),
    event("2026-01-05", user="u2", session="s2", locale=None,
          retrieved_doc_ids=["c"], cited_doc_ids=None),
    event("2026-01-05", user="u3", session="s3", locale="fr",
          retrieved_doc_ids=[], cited_doc_ids=["q"]),
    event("2026-01-05", user="u4", session="s4", locale="fr",
          retrieved_doc_ids=None, cited_doc_ids=None),
    event("2026-01-06", user="u1", session="s5", locale="en",
          retrieved_doc_ids=["a", "b"], cited_doc_ids=[], flights=["f1", "f1"]),
]  # fmt: skip


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    root = write_events(tmp_path_factory.mktemp("rag") / "events", ROWS)
    return root, deltalake.DeltaTable(root).file_uris()


@pytest.fixture(scope="module")
def duckdb_engine() -> Iterator[DuckDBEngine]:
    engine = connect("duckdb")
    assert isinstance(engine, DuckDBEngine)
    yield engine
    engine.close()


@pytest.mark.parametrize("by", [None, "locale", "flight"])
def test_health_rag_counts_on_spark_equal_duckdb(
    spark_engine: SparkEngine,
    duckdb_engine: DuckDBEngine,
    stored: tuple[str, list[str]],
    by: str | None,
) -> None:
    root, files = stored
    on_spark = Metrics(lambda: spark_engine.events(root, files)).health(by=by)
    on_duckdb = Metrics(lambda: duckdb_engine.events(root, files)).health(by=by)
    assert on_spark.to_pylist() == on_duckdb.to_pylist()
    if by is None:
        first = on_duckdb.to_pylist()[0]
        # e1: {a, b} retrieved, {a, z} cited; e2: {c}, nothing cited.
        counts = [first[k] for k in ("answers", "cited_answers", "citations", "retrieved")]
        assert counts == [2, 1, 2, 3]
        assert first["uncited_retrieved"] == 2


@pytest.mark.parametrize("measure", ["cited_rate", "uncited_retrieved_share"])
def test_rag_leaves_on_spark_equal_duckdb(
    spark_engine: SparkEngine,
    duckdb_engine: DuckDBEngine,
    stored: tuple[str, list[str]],
    measure: str,
) -> None:
    root, files = stored
    day = dt.date(2026, 1, 5)

    def leaves(events: Any) -> list[dict[str, Any]]:
        return leaf_counts(
            events,
            measure,
            tenant="t1",
            start=day,
            end=day,
            dims=["locale"],
        ).to_pylist()

    assert leaves(spark_engine.events(root, files)) == leaves(duckdb_engine.events(root, files))
