"""The ROC and precision-recall points of the slice report's charts, against references."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_curve

from assay.evaluation._report import pr_points, roc_points


@st.composite
def _curve_data(draw: st.DrawFn) -> tuple[Any, Any, Any]:
    n = draw(st.integers(2, 50))
    y = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    s = np.array(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))) / 6  # ties
    w = np.array(draw(st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.3]), min_size=n, max_size=n)))
    return y, s, w


@settings(max_examples=60, deadline=None)
@given(_curve_data())
def test_roc_points_equal_scikit_learn_roc_curve(data: tuple[Any, Any, Any]) -> None:
    y, s, w = data
    got = roc_points(y, s, w)
    if y.all() or not y.any():
        assert got is None
        return
    assert got is not None
    fpr, tpr, _ = roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    np.testing.assert_allclose(got[0], fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[1], tpr, rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(_curve_data())
def test_pr_points_are_recall_and_precision_at_each_distinct_score(
    data: tuple[Any, Any, Any],
) -> None:
    y, s, w = data
    got = pr_points(y, s, w)
    if y.all() or not y.any():
        assert got is None
        return
    assert got is not None
    recall, precision = [0.0], [1.0]
    for t in sorted(set(s.tolist()), reverse=True):
        at = s >= t
        recall.append(w[at & y].sum() / w[y].sum())
        precision.append(w[at & y].sum() / w[at].sum())
    np.testing.assert_allclose(got[0], recall, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[1], precision, rtol=0, atol=1e-12)
