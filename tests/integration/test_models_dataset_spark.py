"""After a real ingest, ``ws.models.dataset`` is the same table on DuckDB and on Spark."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from assay import Workspace
from assay.ingest import ingest_paths
from assay.models import LABELS, feature_columns
from assay.store._engines import SparkEngine
from assay.synth import SynthConfig, write

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("models_spark")
    write(base / "data", SynthConfig(tenants=2, users=25, days=20, seed=7))
    with Workspace.open(base / "ws", create=True) as ws:
        ingest_paths(ws, [base / "data"])
    return base / "ws"


@pytest.mark.parametrize("label", LABELS)
def test_dataset_is_the_same_on_both_engines(
    spark_engine: SparkEngine, ingested: Path, label: str
) -> None:
    options = {"attributes": ["channel", "referrer"]}
    pairs = []
    with Workspace.open(ingested) as duck, Workspace.open(ingested, engine="pyspark") as spark:
        a = duck.models.dataset(label, **options)  # type: ignore[arg-type]
        b = spark.models.dataset(label, **options)  # type: ignore[arg-type]
        pairs.append((a, b))
        if label == "thumbs_down":
            # until cuts the data (and the horizon) short: the same on both engines too.
            until = max(a.column("day").to_pylist()) - dt.timedelta(days=3)
            pairs.append((duck.models.dataset(until=until), spark.models.dataset(until=until)))
        assert spark.engine.name == "pyspark"
    assert a.schema == b.schema
    assert a.schema.metadata == b.schema.metadata
    assert a.num_rows > 100
    assert 0 < sum(a.column("label").to_pylist()) < a.num_rows
    assert a.column("attr_channel").null_count < a.num_rows
    numeric, _ = feature_columns(a)
    for table_a, table_b in pairs:
        assert table_a.num_rows == table_b.num_rows
        for ra, rb in zip(table_a.to_pylist(), table_b.to_pylist(), strict=True):
            for key, value in ra.items():
                if key in numeric and value is not None:
                    assert rb[key] is not None, key
                    assert math.isclose(rb[key], value, rel_tol=1e-9, abs_tol=1e-9), key
                else:
                    assert rb[key] == value, key
