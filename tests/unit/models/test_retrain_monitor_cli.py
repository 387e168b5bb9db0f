"""`assay models retrain|runs|monitor` through typer's runner on a small synthetic workspace:
the first retrain makes a champion, monitoring it reports the realised metrics that scikit-learn
computes from `predict`'s scores and the dataset's labels, and both runs are listed."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from assay._api import Workspace
from assay.cli import app

runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(synth_workspace: Callable[..., Path]) -> Path:
    return synth_workspace(
        "models-retrain-cli", tenants=4, users=120, days=40, seed=5, end="2026-03-31"
    )


def test_retrain_then_monitor_then_runs(ws: Path) -> None:
    w = ["-w", str(ws)]
    result = runner.invoke(
        app,
        ["models", "retrain", "quality", "--model", "logistic", "--days", "40", *w, "-f", "json"],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["outcome"] == "champion"
    assert out["candidate"] == "quality/1"
    assert out["champion"] is None
    assert not out["sla_exceeded"]

    result = runner.invoke(
        app, ["models", "monitor", "quality", "--since", "2026-03-18", *w, "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == "quality/1"
    assert report["days"] == ["2026-03-18", "2026-03-31"]

    # Independently: predict's scores of the same days, the dataset's labels, scikit-learn.
    result = runner.invoke(
        app, ["models", "predict", "quality", "--since", "2026-03-18", *w, "-f", "csv"]
    )
    assert result.exit_code == 0, result.output
    scores = {
        (r["tenant_id"], r["session_id"]): float(r["score"])
        for r in csv.DictReader(io.StringIO(result.stdout))
    }
    assert report["estimated"]["rows"] == len(scores)
    assert report["estimated"]["expected_positives"] == pytest.approx(sum(scores.values()))
    with Workspace.open(ws) as opened:
        table = opened.models.dataset("thumbs_down", since=dt.date(2026, 3, 18))
    keys = zip(
        table.column("tenant_id").to_pylist(), table.column("session_id").to_pylist(), strict=True
    )
    y = table.column("label").to_pylist()
    p = [scores[k] for k in keys]
    realised = report["labelled"]["realised"]
    assert realised["rows"] == len(y)
    assert realised["positives"] == sum(y)
    assert realised["roc_auc"] == pytest.approx(roc_auc_score(y, p))

    result = runner.invoke(app, ["models", "runs", *w, "-f", "json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    assert [r["kind"] for r in runs[:2]] == ["models.monitor", "models.retrain"]
    assert [r["status"] for r in runs[:2]] == ["ok", "champion"]
    assert runs[1]["candidate"] == "quality/1"
