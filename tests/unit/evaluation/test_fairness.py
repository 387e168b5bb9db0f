"""Group fairness metrics against Fairlearn's MetricFrame on the same inputs."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import precision_score

from assay._errors import UsageError
from assay.evaluation._fairness import FAIRNESS_METRICS, fairness_gaps, group_metrics


def _precision(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
    return float(precision_score(y_true, y_pred, zero_division=0, sample_weight=sample_weight))


FAIRLEARN = {
    "selection_rate": selection_rate,
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
    "precision": _precision,
}


def _frame(y: Any, p: Any, g: Any, w: Any) -> MetricFrame:
    params = None if w is None else {m: {"sample_weight": w} for m in FAIRLEARN}
    with warnings.catch_warnings():
        # Fairlearn's selection_rate divides 0 by 0 for a group of zero weight (NaN, as ours).
        warnings.simplefilter("ignore", RuntimeWarning)
        return MetricFrame(
            metrics=FAIRLEARN,
            y_true=y,
            y_pred=p,
            sensitive_features=pd.Series(g, name="g"),
            sample_params=params,
        )


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-12


def _check(y: Any, p: Any, g: Any, w: Any) -> None:
    mf = _frame(y, p, g, w)
    ours = group_metrics(y, p, g, sample_weight=w).to_pylist()
    by_group = mf.by_group
    assert [r["group"] for r in ours] == list(by_group.index)
    for row in ours:
        assert row["support"] == int(np.sum(np.asarray(g) == row["group"]))
        for m in FAIRNESS_METRICS:
            assert _close(row[m], float(by_group.loc[row["group"], m])), (m, row)
    for method in ("between_groups", "to_overall"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            diff, ratio = mf.difference(method=method), mf.ratio(method=method)
        gaps = {
            r["metric"]: r
            for r in fairness_gaps(y, p, g, sample_weight=w, method=method).to_pylist()
        }
        for m in FAIRNESS_METRICS:
            assert _close(gaps[m]["difference"], float(diff[m])), (method, m, gaps[m], diff[m])
            assert _close(gaps[m]["ratio"], float(ratio[m])), (method, m, gaps[m], ratio[m])
            assert _close(gaps[m]["overall"], float(mf.overall[m]))


@st.composite
def _inputs(draw: st.DrawFn) -> tuple[Any, Any, Any, Any]:
    n = draw(st.integers(1, 30))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    p = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    g = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=n, max_size=n))
    # scikit-learn refuses a group whose weights are all 0, so weights here are positive; a
    # zero weight inside a group is covered by the seeded test.
    w = draw(st.none() | st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.25]), min_size=n, max_size=n))
    return y, p, g, w


@settings(max_examples=25, deadline=None)
@given(_inputs())
def test_group_metrics_and_gaps_equal_fairlearn_metricframe(
    data: tuple[Any, Any, Any, Any],
) -> None:
    _check(*data)


def test_groups_without_positives_or_predictions_match_fairlearn() -> None:
    # Group b has no positives (TPR 0/0) and nothing predicted positive (precision 0/0);
    # group c has no negatives (FPR 0/0).
    y = np.array([1, 0, 1, 0, 0, 0, 1, 1])
    p = np.array([1, 1, 0, 0, 0, 0, 1, 0])
    g = np.array(["a", "a", "a", "b", "b", "b", "c", "c"])
    _check(y, p, g, None)
    rows = {r["group"]: r for r in group_metrics(y, p, g).to_pylist()}
    assert rows["b"]["true_positive_rate"] == 0.0
    assert rows["b"]["precision"] == 0.0
    assert rows["c"]["false_positive_rate"] == 0.0
    assert rows["a"]["precision"] == 0.5


def test_large_seeded_inputs_with_weights_match_fairlearn() -> None:
    rng = np.random.default_rng(4)
    n = 5000
    g = rng.integers(0, 30, n)
    y = rng.random(n) < 0.2 + 0.01 * g
    p = rng.random(n) < 0.3
    w = rng.exponential(size=n) * (rng.random(n) < 0.9)
    _check(y.astype(int), p.astype(int), g, w)


def test_ratio_between_groups_is_nan_when_every_group_is_zero() -> None:
    gaps = {
        r["metric"]: r for r in fairness_gaps([1, 1, 0, 0], [0, 0, 0, 0], [1, 2, 1, 2]).to_pylist()
    }
    assert gaps["selection_rate"]["difference"] == 0.0
    assert math.isnan(gaps["selection_rate"]["ratio"])


def test_bad_method_and_bad_labels_raise_usage_errors() -> None:
    with pytest.raises(UsageError, match="between_groups"):
        fairness_gaps([1, 0], [1, 0], ["a", "b"], method="max")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        group_metrics([1, 2], [1, 0], ["a", "b"])
    with pytest.raises(UsageError):
        group_metrics([1, 0, 1], [1, 0], ["a", "b", "c"])
