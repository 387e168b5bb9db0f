"""`assay models train|list|show|promote|predict` through typer's runner, on a small
synthetic workspace (one module-scoped workspace: training and MLflow take seconds)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def ws(synth_workspace: Callable[..., Path]) -> Path:
    return synth_workspace("models-cli", tenants=4, users=100, days=40, seed=3, end="2026-03-31")


def test_list_before_any_training_is_empty_and_show_says_how_to_train(ws: Path) -> None:
    result = runner.invoke(app, ["models", "list", "-w", str(ws), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    result = runner.invoke(app, ["models", "show", "quality", "-w", str(ws)])
    assert result.exit_code == 2
    assert "no model is registered yet" in result.stderr
    assert "assay models train quality" in result.stderr


@pytest.mark.slow
def test_train_show_promote_predict(ws: Path) -> None:
    result = runner.invoke(
        app, ["models", "train", "quality", "--model", "logistic", "-w", str(ws), "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model"] == "quality/1"
    assert summary["kind"] == "logistic"
    assert summary["onnx_max_abs_diff"] <= 1e-5
    assert set(summary["metrics"]) >= {"roc_auc", "average_precision", "brier_score", "ece"}

    result = runner.invoke(app, ["models", "promote", "quality", "1", "-w", str(ws)])
    assert result.exit_code == 0, result.output
    assert "quality@champion -> version 1" in result.stderr

    result = runner.invoke(app, ["models", "show", "quality@champion", "-w", str(ws), "-f", "json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["version"], shown["aliases"]) == (1, ["champion"])
    assert shown["tags"]["assay.label"] == "thumbs_down"
    assert shown["tags"]["assay.data_fingerprint"].startswith("sha256:")
    assert json.loads(shown["tags"]["assay.features_numeric"])[0] == "n_turns"

    result = runner.invoke(
        app, ["models", "predict", "quality", "--since", "2026-03-30", "-w", str(ws), "-f", "csv"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows
    assert set(rows[0]) == {"tenant_id", "session_id", "day", "score"}
    # The last day's sessions are scored too, though their label windows are still open
    # (a training set would leave them out).
    assert {r["day"] for r in rows} == {"2026-03-30", "2026-03-31"}
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)

    result = runner.invoke(app, ["models", "list", "-w", str(ws), "-f", "json"])
    listed = json.loads(result.stdout)
    assert [(r["name"], r["version"], r["aliases"]) for r in listed] == [("quality", 1, "champion")]


def test_bad_references_exit_2_with_a_message(ws: Path) -> None:
    result = runner.invoke(app, ["models", "predict", "quality/x", "-w", str(ws)])
    assert result.exit_code == 2
    assert "NAME, NAME@ALIAS or NAME/VERSION" in result.stderr
    result = runner.invoke(
        app, ["models", "promote", "quality", "1", "--alias", "7", "-w", str(ws)]
    )
    assert result.exit_code == 2
    assert "an alias must be a name" in result.stderr
