"""`assay evaluate` through typer's runner: formats, exit codes, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from assay.cli import app

runner = CliRunner()


def _predictions(bad_web: bool) -> pa.Table:
    rng = np.random.default_rng(0)
    n = 3000
    y = rng.random(n) < 0.3
    s = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)
    device = rng.choice(["ios", "android", "web"], n)
    if bad_web:
        s[device == "web"] = rng.random(int((device == "web").sum()))
    return pa.table({"label": y.astype(int), "score": s, "device": device})


@pytest.fixture
def bad_parquet(tmp_path: Path) -> Path:
    path = tmp_path / "preds.parquet"
    pq.write_table(_predictions(bad_web=True), path)
    return path


def _args(path: Path, *extra: str) -> list[str]:
    return [
        "evaluate",
        str(path),
        "--label",
        "label",
        "--score",
        "score",
        "--slice",
        "device",
        "--n-boot",
        "40",
        *extra,
    ]


def test_json_output_has_the_report_columns_and_exit_1_when_a_slice_is_flagged(
    bad_parquet: Path,
) -> None:
    result = runner.invoke(app, _args(bad_parquet, "--format", "json"))
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)
    assert list(rows[0]) == [
        "feature",
        "value",
        "metric",
        "support",
        "estimate",
        "ci_low",
        "ci_high",
        "overall",
        "gap",
        "p_value",
        "flagged",
    ]
    flagged = {(r["value"], r["metric"]) for r in rows if r["flagged"]}
    assert ("web", "roc_auc") in flagged
    assert all(v == "web" for v, _ in flagged)


def test_csv_file_without_findings_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "preds.csv"
    pacsv.write_csv(_predictions(bad_web=False), path)
    result = runner.invoke(app, _args(path, "--format", "csv"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert (
        lines[0]
        == "feature,value,metric,support,estimate,ci_low,ci_high,overall,gap,p_value,flagged"
    )
    assert len(lines) == 1 + 3 * 3


def test_html_report_is_written_to_out(bad_parquet: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = runner.invoke(app, _args(bad_parquet, "--format", "html", "--out", str(out)))
    assert result.exit_code == 1, result.output
    page = out.read_text(encoding="utf-8")
    assert page.count("<svg") == 3
    assert "http://" not in page
    assert "https://" not in page
    assert result.stdout == ""


def test_missing_column_and_missing_file_are_usage_errors(bad_parquet: Path) -> None:
    result = runner.invoke(
        app,
        ["evaluate", str(bad_parquet), "--label", "label", "--score", "nope", "--slice", "device"],
    )
    assert result.exit_code == 2
    assert "'nope' is not a column" in result.stderr
    assert "Traceback" not in result.output
    result = runner.invoke(
        app, ["evaluate", "/no/such.parquet", "--label", "a", "--score", "b", "--slice", "c"]
    )
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_no_slice_is_a_usage_error(bad_parquet: Path) -> None:
    result = runner.invoke(
        app, ["evaluate", str(bad_parquet), "--label", "label", "--score", "score"]
    )
    assert result.exit_code == 2
    assert "--slice" in result.stderr
