"""`assay explain` and `assay regressions` give the same answer on Spark as on DuckDB (issue 12
item 4): the same slices, expected and observed values, shares and release events; the same
regression rows. One small synthetic workspace with injected incidents, one Spark session."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assay import Workspace
from assay.anomaly import explain_metric
from assay.cli import app
from assay.drift import find_regressions
from assay.ingest import ingest_paths
from assay.synth import SynthConfig, write

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(
        importlib.util.find_spec("pyspark") is None,
        reason="pyspark is not installed (pip install 'assay[spark]')",
    ),
    pytest.mark.skipif(
        shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
        reason="Spark needs Java 17 on PATH or JAVA_HOME",
    ),
]

END = dt.date(2026, 1, 31)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    base = tmp_path_factory.mktemp("explain-spark")
    out = write(base / "data", SynthConfig(tenants=3, users=40, days=30, seed=4, end=END))
    with Workspace.open(base / "ws", create=True) as ws:
        ingest_paths(ws, [base / "data"])
    return base / "ws", out.truth


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Equal, floats to 1e-9 relative (NaN equal to NaN)."""
    if isinstance(a, dict):
        assert isinstance(b, dict), where
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple), where
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert isinstance(b, float | int), where
        if math.isnan(a):
            assert math.isnan(b), where
        else:
            assert b == pytest.approx(a, rel=1e-9, abs=1e-12), where
    else:
        assert a == b, where


def explanations(ws_path: Path, engine: str, cases: list[tuple[str, str, dt.date]]) -> list[Any]:
    with Workspace.open(ws_path, engine=engine) as ws:  # type: ignore[arg-type]
        out = [
            explain_metric(ws, metric=m, tenant=t, day=d, baseline_days=7).as_dict()
            for m, t, d in cases
        ]
        assert ws.engine.name == engine
    return out


def test_explain_is_the_same_on_spark_and_duckdb(
    spark_engine: object, synthetic: tuple[Path, dict[str, Any]]
) -> None:
    ws_path, truth = synthetic
    cases = [
        (inc["metric"], inc["tenant_id"], dt.date.fromisoformat(inc["start"]))
        for inc in truth["incidents"]
    ]
    injected = len(cases)
    # The other kinds of leaf rows once: a rate of events whose condition can be null, the
    # slow-turn share (an exact p95), a sum of costs.
    largest = min(truth["tenants"], key=lambda t: t["size_rank"])["tenant_id"]
    extra = ("thumbs_down_rate", "latency_p95", "cost_usd")
    cases += [(m, largest, END - dt.timedelta(days=3)) for m in extra]
    duck = explanations(ws_path, "duckdb", cases)
    spark = explanations(ws_path, "pyspark", cases)
    for i, (case, a, b) in enumerate(zip(cases, duck, spark, strict=True)):
        # Something was ranked for each injected incident: the comparison is not vacuous.
        assert a["rows"] or i >= injected, case
        assert a["after"] is not None, case
        assert_same(a, b, str(case))
    # The injected slice leads on both engines (as on DuckDB alone before).
    first = {(c[1], c[0]): d["rows"][0]["slice"] for c, d in zip(cases, spark, strict=True)}
    for inc in truth["incidents"]:
        want = {k: v for k, v in inc["slice"].items()}
        got = first[(inc["tenant_id"], inc["metric"])]
        assert not want or set(want.items()) & set(got.items()), (inc["kind"], got)


def test_regressions_are_the_same_on_spark_and_duckdb(
    spark_engine: object, synthetic: tuple[Path, dict[str, Any]]
) -> None:
    ws_path, _ = synthetic
    since = END - dt.timedelta(days=20)
    reports = []
    for engine in ("duckdb", "pyspark"):
        with Workspace.open(ws_path, engine=engine) as ws:  # type: ignore[arg-type]
            reports.append(find_regressions(ws, since=since, record=False))
    duck, spark = reports
    assert duck.tests > 0
    assert duck.rows
    assert spark.tests == duck.tests
    assert_same(duck.rows, spark.rows, "rows")


def test_cli_explain_and_regressions_take_engine_pyspark(
    spark_engine: object, synthetic: tuple[Path, dict[str, Any]]
) -> None:
    ws_path, truth = synthetic
    inc = truth["incidents"][0]
    runner = CliRunner()
    explain = ["explain", "--metric", inc["metric"], "--tenant", inc["tenant_id"]]
    explain += ["--day", inc["start"], "-w", str(ws_path), "-f", "json"]
    regress = ["regressions", "--dry-run", "-w", str(ws_path), "-f", "json"]
    for args in (explain, regress):
        duck = runner.invoke(app, args)
        spark = runner.invoke(app, [*args, "--engine", "pyspark"])
        assert duck.exit_code in (0, 1), duck.output
        assert spark.exit_code == duck.exit_code, spark.output
        assert_same(json.loads(duck.stdout), json.loads(spark.stdout), args[0])
