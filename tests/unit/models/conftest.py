"""Fixtures for the models tests: stored events held in one DuckDB connection.

Event rows come from the metrics tests' builder (``metrics_data``), loaded from its folder:
one definition of a stored event row for every test area.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "metrics"))

from metrics_data import to_table
from models_data import ModelsFactory

from assay.models import Models
from assay.store._engines import DuckDBEngine, connect


@pytest.fixture(scope="session")
def duckdb_engine() -> Iterator[DuckDBEngine]:
    engine = connect("duckdb")
    assert isinstance(engine, DuckDBEngine)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def models_over(duckdb_engine: DuckDBEngine) -> ModelsFactory:
    """Models over rows held in the engine's connection (fast enough for hypothesis)."""

    def make(rows: Sequence[dict[str, Any]]) -> Models:
        table = duckdb_engine.backend.create_table(
            f"events_{uuid.uuid4().hex}", obj=to_table(rows), temp=True
        )
        return Models(lambda: table)

    return make
