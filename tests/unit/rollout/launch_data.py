"""A registered model version with a hand-made evaluation report, for the launch gate's tests.

The ONNX graph is a one-node identity (the gate never runs the model); the evaluation report
and the held-out predictions are written by hand, so every expected number is worked out in the
tests themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import assay
from assay.models._lifecycle import registry

#: A quality model's test part: 100 positives, 60 alerts at the operating point, 30 of them hits.
QUALITY_EVALUATION: dict[str, Any] = {
    "metrics": {
        "roc_auc": {"estimate": 0.81, "ci_low": 0.77, "ci_high": 0.85},
        "ece": {"estimate": 0.031, "ci_low": 0.02, "ci_high": 0.045},
        "brier_score": {"estimate": 0.12, "ci_low": 0.11, "ci_high": 0.13},
    },
    "operating_point": {
        "threshold": 0.42,
        "max_alert_rate": 0.05,
        "alerts": 60,
        "hits": 30,
        "alert_rate": 0.06,
        "alert_rate_ci": [0.05, 0.07],
        "precision": 0.5,
        "precision_ci": [0.38, 0.62],
        "recall": 0.3,
        "recall_ci": [0.22, 0.39],
    },
    "settings": {"test_rows": 1000, "test_positive": 100, "n_boot": 0},
    "window": {
        "train_days": ["2026-01-01", "2026-01-02", "2026-01-03"],
        "valid_days": ["2026-01-04"],
        "test_days": ["2026-01-05", "2026-01-06"],
        "rows": {"train": 700, "valid": 150, "test": 1000},
    },
    "slices": [
        {
            "feature": "locale",
            "value": "de-DE",
            "metric": "roc_auc",
            "support": 400,
            "estimate": 0.7,
            "overall": 0.81,
            "flagged": True,
        }
    ],
    "slices_flagged": [
        {
            "feature": "locale",
            "value": "de-DE",
            "metric": "roc_auc",
            "estimate": 0.7,
            "overall": 0.81,
        }
    ],
}


def identity_onnx() -> Any:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])
    y = helper.make_tensor_value_info("score", TensorProto.FLOAT, [None, 1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["score"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def register(
    ws: assay.Workspace,
    name: str,
    evaluation: dict[str, Any],
    tags: dict[str, str] | None = None,
) -> int:
    """Register one version of ``name`` with ``evaluation`` as its report; its version."""
    ref = registry(ws).register(
        name,
        identity_onnx(),
        inputs=(["x"], []),
        params={"kind": "test"},
        metrics={"test_roc_auc": 0.81},
        tags={"assay.kind": "logistic", "assay.label": "thumbs_down", **(tags or {})},
        texts={"evaluation/evaluation.json": json.dumps(evaluation)},
    )
    return ref.version


def new_workspace(root: Path) -> assay.Workspace:
    return assay.Workspace.init(root / "ws")
