"""``ws.models`` (WorkspaceModels): train, list, show, promote and predict through the library,
on a small synthetic workspace (module-scoped: training and MLflow take seconds)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import assay
from assay.models import TrainOutcome, WorkspaceModels


@pytest.fixture(scope="module")
def ws_path(synth_workspace: Callable[..., Path]) -> Path:
    return synth_workspace("ws-models", tenants=3, users=80, days=35, seed=8, end="2026-02-28")


@pytest.mark.slow
def test_the_lifecycle_through_ws_models(ws_path: Path) -> None:
    with assay.Workspace.open(ws_path) as ws:
        assert isinstance(ws.models, WorkspaceModels)
        assert ws.models.list().num_rows == 0
        outcome = ws.models.train(model="logistic", n_boot=20)
        assert isinstance(outcome, TrainOutcome)
        assert (outcome.version.name, outcome.version.version) == ("quality", 1)
        listed = ws.models.list()
        assert listed.num_rows == 1
        ws.models.promote("quality", 1)
        shown = ws.models.show("quality@champion")
        assert shown["version"] == 1
        assert "champion" in shown["aliases"]

        # predict runs the ONNX export; the native model on the same features agrees to 1e-5.
        since = dt.date(2026, 2, 27)
        scored = ws.models.predict("quality@champion", since=since)
        features = ws.models.features(since=since)
        assert scored.num_rows == features.num_rows > 0
        native = outcome.model.predict_proba(features)
        by_session = dict(
            zip(features.column("session_id").to_pylist(), native.tolist(), strict=True)
        )
        onnx = dict(
            zip(
                scored.column("session_id").to_pylist(),
                scored.column("score").to_pylist(),
                strict=True,
            )
        )
        assert set(onnx) == set(by_session)
        diff = max(abs(onnx[s] - by_session[s]) for s in onnx)
        assert diff <= 1e-5
        assert pc.all(pc.greater_equal(scored.column("day"), pa.scalar(since))).as_py()
        assert np.all((np.array(list(onnx.values())) >= 0) & (np.array(list(onnx.values())) <= 1))

        # The daily retrain and the monitor through the same namespace, recorded as runs.
        run = ws.models.retrain(model="logistic", days=30, sla_seconds=3600.0)
        assert run.champion == "quality/1"
        assert run.outcome in {"challenger", "rejected"}
        assert run.candidate == "quality/2"
        assert (run.outcome == "challenger") == (
            "challenger" in ws.models.show("quality/2")["aliases"]
        )
        report = ws.models.monitor("quality")
        assert report.model == "quality/1"
        kinds = ws.models.runs().column("kind").to_pylist()
        assert kinds[:2] == ["models.monitor", "models.retrain"]
