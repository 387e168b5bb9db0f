"""Fixtures for the metrics tests: one DuckDB engine, stored events in temp Delta tables.

The suite runs with ``--import-mode=importlib``, so this folder is put on ``sys.path`` for its
helper modules (``metrics_data``, ``metrics_reference``); the Spark tests load them the same way.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import deltalake
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from metrics_data import MetricsFactory, edge_case_events, to_table, write_events

from assay.metrics import Metrics
from assay.store._engines import DuckDBEngine, connect


@pytest.fixture(scope="session")
def duckdb_engine() -> Iterator[DuckDBEngine]:
    engine = connect("duckdb")
    assert isinstance(engine, DuckDBEngine)
    yield engine
    engine.close()


@pytest.fixture
def stored_metrics(duckdb_engine: DuckDBEngine, tmp_path: Path) -> MetricsFactory:
    """Write rows as a Delta table and return Metrics over it, read the way a workspace does."""

    def make(rows: Sequence[dict[str, Any]], **options: Any) -> Metrics:
        root = write_events(tmp_path / f"events-{uuid.uuid4().hex}", rows)
        files = deltalake.DeltaTable(root).file_uris()
        return Metrics(lambda: duckdb_engine.events(root, files), **options)

    return make


@pytest.fixture(scope="session")
def memory_metrics(duckdb_engine: DuckDBEngine) -> MetricsFactory:
    """Metrics over rows held in the engine's connection: fast enough for hypothesis."""

    def make(rows: Sequence[dict[str, Any]], **options: Any) -> Metrics:
        table = duckdb_engine.backend.create_table(
            f"events_{uuid.uuid4().hex}", obj=to_table(rows), temp=True
        )
        return Metrics(lambda: table, **options)

    return make


@pytest.fixture(scope="session")
def edge_rows() -> list[dict[str, Any]]:
    return edge_case_events()


@pytest.fixture(scope="session")
def edge_metrics(
    duckdb_engine: DuckDBEngine,
    edge_rows: list[dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Metrics:
    root = write_events(tmp_path_factory.mktemp("edge") / "events", edge_rows)
    files = deltalake.DeltaTable(root).file_uris()
    return Metrics(lambda: duckdb_engine.events(root, files))
