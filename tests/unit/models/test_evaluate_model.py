"""The model evaluation: figures checked against scikit-learn and statsmodels, the
operating point by hand, the report's JSON and HTML."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from statsmodels.stats.proportion import proportion_confint

sys.path.insert(0, str(Path(__file__).parent))

from quality_data import quality_table

from assay.models._evaluate import alert_threshold, evaluate_model, operating_point
from assay.models._train import labels_of, train_quality


def test_alert_threshold_never_exceeds_the_cap_with_ties() -> None:
    s = np.array([0.9, 0.9, 0.8, 0.7, 0.7, 0.7, 0.1, 0.1, 0.1, 0.1])
    assert alert_threshold(s, 0.2) == 0.9  # 2 of 10
    assert alert_threshold(s, 0.55) == 0.8  # 0.7 would alert 6 of 10
    assert alert_threshold(s, 0.1) == float("inf")  # even the top score alerts 2 of 10


def test_operating_point_by_hand_with_wilson_intervals() -> None:
    y = np.array([True, True, False, False, True, False, False, False])
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.3, 0.05, 0.6])
    op = operating_point(y, p, 0.6, 0.5)
    # Alerts: 0.9, 0.8, 0.7, 0.6 (4 of 8); hits 2; positives 3.
    assert (op["alerts"], op["hits"]) == (4, 2)
    assert op["alert_rate"] == 0.5
    assert op["precision"] == 0.5
    assert op["recall"] == pytest.approx(2 / 3)
    assert op["precision_ci"] == pytest.approx(list(proportion_confint(2, 4, method="wilson")))
    assert op["recall_ci"] == pytest.approx(list(proportion_confint(2, 3, method="wilson")))


@pytest.fixture(scope="module")
def evaluated():  # type: ignore[no-untyped-def]
    result = train_quality(quality_table(days=30, rows_per_day=150, seed=4), model="logistic")
    ev = evaluate_model(result.model, result.split.test, result.split.valid, n_boot=50)
    return result, ev


def test_metrics_equal_scikit_learns(evaluated) -> None:  # type: ignore[no-untyped-def]
    result, ev = evaluated
    y = labels_of(result.split.test)
    p = result.model.predict_proba(result.split.test)
    assert ev.metrics["roc_auc"]["estimate"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert ev.metrics["average_precision"]["estimate"] == pytest.approx(
        average_precision_score(y, p), abs=1e-12
    )
    assert ev.metrics["brier_score"]["estimate"] == pytest.approx(brier_score_loss(y, p))
    for values in ev.metrics.values():
        assert values["ci_low"] <= values["estimate"] <= values["ci_high"]
    # The threshold is chosen on validation: at most 5% of validation rows alert.
    p_valid = result.model.predict_proba(result.split.valid)
    assert (p_valid >= ev.operating_point["threshold"]).mean() <= 0.05


def test_report_lists_slices_importance_and_renders(evaluated) -> None:  # type: ignore[no-untyped-def]
    _, ev = evaluated
    data = json.loads(ev.to_json())
    assert {r["feature"] for r in data["slices"]} == {
        "tenant_id",
        "locale",
        "platform",
        "model_version",
        "prompt_template",
    }
    # The label depends on latency most (see quality_data): it leads the importance.
    assert data["importance"][0]["feature"] == "latency_mean_ms"
    page = ev.to_html(title="t")
    assert "<h2>Operating point</h2>" in page
    assert "latency_mean_ms" in page
    flat = ev.flat_metrics()
    assert flat["test_roc_auc"] == ev.metrics["roc_auc"]["estimate"]
    assert "test_roc_auc_ci_low" in flat


@given(
    st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]), min_size=1, max_size=60),
    st.floats(0.0, 1.0),
)
def test_alert_threshold_is_the_lowest_score_within_the_cap(
    scores: list[float], cap: float
) -> None:
    s = np.array(scores)
    t = alert_threshold(s, cap)
    # Reference: walk the distinct scores from the top, written differently (a plain loop).
    expected = float("inf")
    for value in sorted(set(scores), reverse=True):
        if sum(1 for x in scores if x >= value) <= cap * len(scores):
            expected = value
        else:
            break
    assert t == expected
