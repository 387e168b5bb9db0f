"""After a real ingest, `--engine pyspark` gives the numbers DuckDB gives (Spark reads the
table's current Parquet files; no Delta jar)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay import Workspace
from assay.cli import app
from assay.ingest import ingest_paths
from assay.store._engines import SparkEngine
from assay.synth import SynthConfig, write

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wsspark")
    write(base / "data", SynthConfig(tenants=3, users=30, days=30, seed=4))
    with Workspace.open(base / "ws", create=True) as ws:
        ingest_paths(ws, [base / "data"])
        # A second commit (a replay adds nothing) and a forget rewrite some files.
        ingest_paths(ws, [base / "data"])
        ws.forget("tenant-002")
    return base / "ws"


@pytest.mark.parametrize(
    ("metric", "kwargs"),
    [
        ("dau", {}),
        ("active_users", {"window": 7}),
        ("dau_rolling", {"window": 3, "by": "locale"}),
        ("max_active", {"window": 10}),
        ("retention", {}),
        ("sessions", {"by": "model_version"}),
    ],
)
def test_workspace_metrics_agree_on_both_engines(
    spark_engine: SparkEngine, ingested: Path, metric: str, kwargs: dict[str, object]
) -> None:
    with Workspace.open(ingested) as duck, Workspace.open(ingested, engine="pyspark") as spark:
        a = getattr(duck.metrics, metric)(**kwargs)
        b = getattr(spark.metrics, metric)(**kwargs)
        assert spark.engine.name == "pyspark"
    assert a.schema == b.schema
    assert a.num_rows > 0
    rows_a, rows_b = a.to_pylist(), b.to_pylist()
    assert len(rows_a) == len(rows_b)
    for ra, rb in zip(rows_a, rows_b, strict=True):
        assert ra.keys() == rb.keys()
        for k in ra:
            if isinstance(ra[k], float):
                assert rb[k] == pytest.approx(ra[k], rel=1e-9, abs=1e-12)
            else:
                assert ra[k] == rb[k], (metric, k)
    assert {r["tenant_id"] for r in rows_a} == {"tenant-000", "tenant-001"}


def test_cli_engine_option_runs_spark(spark_engine: SparkEngine, ingested: Path) -> None:
    runner = CliRunner()
    args = ["metrics", "dau", "--workspace", str(ingested), "--format", "json"]
    duck = runner.invoke(app, args)
    spark = runner.invoke(app, [*args, "--engine", "pyspark"])
    assert duck.exit_code == 0, duck.output
    assert spark.exit_code == 0, spark.output
    assert json.loads(spark.stdout) == json.loads(duck.stdout)
