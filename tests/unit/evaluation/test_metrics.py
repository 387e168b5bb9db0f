"""The metric functions of assay.evaluation against scikit-learn and slow hand references."""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay._errors import UsageError
from assay.evaluation._metrics import (
    METRICS,
    average_precision,
    brier_score,
    expected_calibration_error,
    log_loss,
    precision_at_recall,
    recall_at_precision,
    roc_auc,
    threshold_for_precision,
    threshold_max_fbeta,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-12


@st.composite
def binary_data(draw: Any, *, integer_weights: bool = False, max_n: int = 40) -> dict[str, Any]:
    """Labels, heavily tied probabilities in [0, 1], optional weights (zeros included), cohorts."""
    n = draw(st.integers(1, max_n))
    y = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    levels = draw(st.integers(1, 6))  # few distinct scores: heavy ties
    s = np.array(draw(st.lists(st.integers(0, levels), min_size=n, max_size=n))) / levels
    w = None
    if draw(st.booleans()):
        if integer_weights:
            w = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), float)
        else:
            w = np.array(
                draw(st.lists(st.sampled_from([0.0, 0.3, 1.0, 2.5, 7.1]), min_size=n, max_size=n))
            )
    c = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    return {"y": y, "s": s, "w": w, "c": c}


def _weight_of(y: np.ndarray, w: np.ndarray | None, label: bool) -> float:
    sel = y == label
    return float(sel.sum() if w is None else w[sel].sum())


def _sub(d: dict[str, Any], mask: np.ndarray) -> tuple[Any, Any, Any]:
    return d["y"][mask], d["s"][mask], None if d["w"] is None else d["w"][mask]


# --- ROC AUC and average precision ------------------------------------------------------------


def _ref_auc(y: np.ndarray, s: np.ndarray, w: np.ndarray | None) -> float | None:
    if _weight_of(y, w, True) == 0 or _weight_of(y, w, False) == 0:
        return None
    return float(skm.roc_auc_score(y, s, sample_weight=w))


def _ref_ap(y: np.ndarray, s: np.ndarray, w: np.ndarray | None) -> float | None:
    if _weight_of(y, w, True) == 0:
        return None
    return float(skm.average_precision_score(y, s, sample_weight=w))


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= TOL


@SETTINGS
@given(binary_data())
def test_roc_auc_equals_sklearn_overall_and_per_cohort(d: dict[str, Any]) -> None:
    assert _close(roc_auc(d["y"], d["s"], sample_weight=d["w"]), _ref_auc(d["y"], d["s"], d["w"]))
    per = roc_auc(d["y"], d["s"], sample_weight=d["w"], cohort_id=d["c"])
    assert sorted(per) == sorted(set(d["c"].tolist()))
    for key, value in per.items():
        assert _close(value, _ref_auc(*_sub(d, d["c"] == key))), key


@SETTINGS
@given(binary_data())
def test_average_precision_equals_sklearn_overall_and_per_cohort(d: dict[str, Any]) -> None:
    got = average_precision(d["y"], d["s"], sample_weight=d["w"])
    assert _close(got, _ref_ap(d["y"], d["s"], d["w"]))
    per = average_precision(d["y"], d["s"], sample_weight=d["w"], cohort_id=d["c"])
    for key, value in per.items():
        assert _close(value, _ref_ap(*_sub(d, d["c"] == key))), key


def test_roc_auc_is_the_rank_statistic_with_half_ties() -> None:
    # Pairs (pos, neg): (0.8, 0.1) win, (0.8, 0.4) win, (0.4, 0.1) win, (0.4, 0.4) tie -> 3.5 / 4.
    assert roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == 0.875
    # A weight of 3 on the tied negative: wins 1 + 3 + 1, tie 1.5, over 2 * 4 pairs.
    assert roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1], sample_weight=[1, 1, 3, 1]) == 6.5 / 8


def test_undefined_ranking_metrics_are_none() -> None:
    assert roc_auc([1, 1], [0.2, 0.3]) is None
    assert roc_auc([1, 0], [0.2, 0.3], sample_weight=[1, 0]) is None
    assert average_precision([0, 0], [0.2, 0.3]) is None
    assert average_precision([1, 1], [0.2, 0.3]) == 1.0
    assert precision_at_recall([0, 0], [0.2, 0.3], 0.5) is None
    assert threshold_max_fbeta([0, 0], [0.2, 0.3]) is None


def test_per_cohort_accepts_string_and_null_cohorts() -> None:
    y = [0, 1, 0, 1, 1, 0]
    s = [0.1, 0.9, 0.8, 0.2, 0.5, 0.5]
    got = roc_auc(y, s, cohort_id=["x", "x", "y", "y", None, None])
    assert got == {"x": 1.0, "y": 0.0, None: 0.5}


# --- losses ------------------------------------------------------------------------------------


@SETTINGS
@given(binary_data())
def test_brier_and_log_loss_equal_sklearn(d: dict[str, Any]) -> None:
    y, s, w = d["y"], d["s"], d["w"]
    if w is not None and w.sum() == 0:
        with pytest.raises(UsageError, match="sums to zero"):
            brier_score(y, s, sample_weight=w)
        return
    ref_b = float(np.average((s - y) ** 2, weights=w))
    if y.any() and not y.all():  # sklearn's brier_score_loss needs both labels to be known
        ref_b = float(skm.brier_score_loss(y, s, sample_weight=w))
    assert abs(brier_score(y, s, sample_weight=w) - ref_b) <= TOL
    ref_l = float(skm.log_loss(y, s, sample_weight=w, labels=[0, 1]))
    assert abs(log_loss(y, s, sample_weight=w) - ref_l) <= 1e-12 * max(1.0, ref_l)
    for name, fn, ref in [
        ("brier", brier_score, lambda y, s, w: np.average((s - y) ** 2, weights=w)),
        ("log", log_loss, lambda y, s, w: skm.log_loss(y, s, sample_weight=w, labels=[0, 1])),
    ]:
        per = fn(y, s, sample_weight=w, cohort_id=d["c"])
        for key, value in per.items():
            yy, ss, ww = _sub(d, d["c"] == key)
            if ww is not None and ww.sum() == 0:
                assert value is None
            else:
                assert abs(value - float(ref(yy, ss, ww))) <= 1e-12 * max(1.0, value), name


def test_log_loss_clips_with_machine_epsilon() -> None:
    eps = float(np.finfo(np.float64).eps)
    assert log_loss([1, 0], [0.0, 1.0]) == pytest.approx(-math.log(eps), rel=1e-15)
    assert log_loss([1], [0.0], eps=1e-3) == pytest.approx(-math.log(1e-3), rel=1e-15)


# --- calibration -------------------------------------------------------------------------------


def _slow_ece(
    y: np.ndarray, p: np.ndarray, w: np.ndarray | None, n_bins: int, strategy: str
) -> float:
    """ECE by its definition, one row at a time, quantile edges in exact rational arithmetic."""
    wts = [1 if w is None else Fraction(float(v)) for v in (w if w is not None else y)]
    if strategy == "uniform":
        edges = [b / n_bins for b in range(1, n_bins)]
    else:
        total = sum(wts)
        edges = []
        for b in range(1, n_bins):
            qualifying = [
                float(t)
                for t in sorted(set(p.tolist()))
                if sum(wi for wi, pi in zip(wts, p, strict=True) if pi <= t)
                >= Fraction(b, n_bins) * total
            ]
            edges.append(min(qualifying))
    sums: dict[int, list[float]] = {}
    for yi, pi, wi in zip(y, p, wts, strict=True):
        b = sum(1 for e in edges if e < pi)  # right-closed bins
        acc = sums.setdefault(b, [0.0, 0.0, 0.0])
        acc[0] += float(wi)
        acc[1] += float(wi) * float(yi)
        acc[2] += float(wi) * float(pi)
    total_w = sum(v[0] for v in sums.values())
    return sum(v[0] / total_w * abs(v[1] / v[0] - v[2] / v[0]) for v in sums.values() if v[0] > 0)


@SETTINGS
@given(
    binary_data(integer_weights=True), st.integers(1, 7), st.sampled_from(["uniform", "quantile"])
)
def test_ece_equals_slow_reference(d: dict[str, Any], n_bins: int, strategy: str) -> None:
    y, s, w = d["y"], d["s"], d["w"]
    if w is not None and w.sum() == 0:
        return
    got = expected_calibration_error(y, s, n_bins=n_bins, strategy=strategy, sample_weight=w)
    assert abs(got - _slow_ece(y, s, w, n_bins, strategy)) <= TOL
    per = expected_calibration_error(
        y, s, n_bins=n_bins, strategy=strategy, sample_weight=w, cohort_id=d["c"]
    )
    for key, value in per.items():
        yy, ss, ww = _sub(d, d["c"] == key)
        if ww is not None and ww.sum() == 0:
            assert value is None
        else:
            assert abs(value - _slow_ece(yy, ss, ww, n_bins, strategy)) <= TOL


@SETTINGS
@given(binary_data(integer_weights=True), st.sampled_from([2, 4, 8]))
def test_quantile_edges_are_numpy_inverted_cdf_quantiles(d: dict[str, Any], n_bins: int) -> None:
    # With power-of-two bin counts q = b / K is exact, so numpy's weighted quantile is a fair
    # independent reference for the edges; the ECE from those edges must match.
    y, s, w = d["y"], d["s"], d["w"]
    if w is not None and w.sum() == 0:
        return
    q = np.arange(1, n_bins) / n_bins
    edges = np.quantile(s, q, weights=w, method="inverted_cdf")
    bins = np.searchsorted(edges, s, side="left")
    ww = np.ones_like(s) if w is None else w
    gap = np.bincount(bins, weights=ww * (y - s), minlength=n_bins)
    ref = float(np.abs(gap).sum() / ww.sum())
    got = expected_calibration_error(y, s, n_bins=n_bins, strategy="quantile", sample_weight=w)
    assert abs(got - ref) <= TOL


def test_ece_uniform_bins_are_closed_on_the_right() -> None:
    # Edges 0, 0.5, 1: 0.5 belongs to the first bin with 0.1; 0.6 is alone in the second.
    # Bin 1: mean p 0.3, mean y 0.5 -> gap 0.2, weight 2/3; bin 2: gap |0 - 0.6|, weight 1/3.
    got = expected_calibration_error([0, 1, 0], [0.1, 0.5, 0.6], n_bins=2)
    assert got == pytest.approx(2 / 3 * 0.2 + 1 / 3 * 0.6, abs=1e-15)


def test_ece_quantile_bins_hand_worked() -> None:
    # p = 0.1, 0.2, 0.2, 0.7 (weights 1); K = 2: F(0.1) = 1/4, F(0.2) = 3/4 >= 1/2, so the edge
    # is 0.2 and the ties at 0.2 stay together in the lower bin: {0.1, 0.2, 0.2} and {0.7}.
    # Lower bin: y = 0, 1, 0 -> mean 1/3, mean p 1/6 -> gap 1/6, weight 3/4.
    # Upper bin: y = 1, p = 0.7 -> gap 0.3, weight 1/4. ECE = 1/8 + 0.075 = 0.2.
    got = expected_calibration_error(
        [0, 1, 0, 1], [0.1, 0.2, 0.2, 0.7], n_bins=2, strategy="quantile"
    )
    assert got == pytest.approx(0.2, abs=1e-15)
    # Weight 3 on 0.1 moves the edge down: F(0.1) = 3/6 >= 1/2, bins {0.1} and {0.2, 0.2, 0.7}.
    # Lower: y 0, p 0.1 -> gap 0.1, weight 1/2; upper: mean y 2/3, mean p 1.1/3 -> gap 0.9/3.
    got = expected_calibration_error(
        [0, 1, 0, 1],
        [0.1, 0.2, 0.2, 0.7],
        n_bins=2,
        strategy="quantile",
        sample_weight=[3, 1, 1, 1],
    )
    assert got == pytest.approx(0.5 * 0.1 + 0.5 * 0.3, abs=1e-15)


def test_ece_of_calibrated_bins_is_zero_and_of_overconfident_bins_is_their_gap() -> None:
    p = [0.25] * 4 + [0.75] * 4
    assert expected_calibration_error([1, 0, 0, 0, 1, 1, 1, 0], p, n_bins=4) == 0.0
    # Every row off by 0.25 in the same direction within its bin: ECE 0.25.
    assert expected_calibration_error([0, 0, 0, 0, 1, 1, 1, 1], p, n_bins=4) == 0.25


# --- operating points and thresholds ----------------------------------------------------------


def _sk_curve(y: np.ndarray, s: np.ndarray, w: np.ndarray | None) -> tuple[Any, Any, Any]:
    precision, recall, thresholds = skm.precision_recall_curve(y, s, sample_weight=w)
    return precision[:-1], recall[:-1], thresholds  # drop the (recall 0, precision 1) sentinel


def _has_positive(y: np.ndarray, w: np.ndarray | None) -> bool:
    return _weight_of(y, w, True) > 0


@SETTINGS
@given(binary_data(integer_weights=True), st.sampled_from([0.0, 0.25, 0.5, 0.6, 0.9, 1.0]))
def test_operating_points_equal_sklearn_curve(d: dict[str, Any], target: float) -> None:
    # Integer weights keep every precision and recall exact, so comparisons at a target are too.
    y, s, w = d["y"], d["s"], d["w"]
    got_p = precision_at_recall(y, s, target, sample_weight=w)
    got_r = recall_at_precision(y, s, target, sample_weight=w)
    got_t = threshold_for_precision(y, s, target, sample_weight=w)
    if not _has_positive(y, w):
        assert (got_p, got_r, got_t) == (None, None, None)
        return
    precision, recall, thresholds = _sk_curve(y, s, w)
    assert got_p == pytest.approx(precision[recall >= target].max(), abs=TOL)
    ok = precision >= target
    assert got_r == pytest.approx(recall[ok].max() if ok.any() else 0.0, abs=TOL)
    if ok.any():
        assert got_t == thresholds[ok].min()
        assert recall_at_precision(y, s, target, sample_weight=w) == pytest.approx(
            recall[thresholds == got_t][0], abs=TOL
        )
    else:
        assert got_t is None


def _fbeta_at(y: np.ndarray, s: np.ndarray, w: np.ndarray | None, t: float, beta: float) -> float:
    return float(skm.fbeta_score(y, s >= t, beta=beta, sample_weight=w, zero_division=0.0))


@SETTINGS
@given(binary_data(integer_weights=True), st.sampled_from([0.5, 1.0, 2.0]))
def test_threshold_max_fbeta_is_the_best_threshold(d: dict[str, Any], beta: float) -> None:
    y, s, w = d["y"], d["s"], d["w"]
    got = threshold_max_fbeta(y, s, beta=beta, sample_weight=w)
    if not _has_positive(y, w):
        assert got is None
        return
    assert got is not None
    threshold, fbeta = got
    candidates = np.unique(s if w is None else s[w > 0])
    values = np.array([_fbeta_at(y, s, w, t, beta) for t in candidates])
    best = values.max()
    assert fbeta == pytest.approx(best, abs=TOL)
    assert _fbeta_at(y, s, w, threshold, beta) == pytest.approx(best, abs=TOL)
    # The largest of the maximising thresholds.
    assert threshold == candidates[values >= best - TOL].max()


def test_thresholds_hand_worked() -> None:
    y = [1, 0, 1, 1, 0, 0]
    s = [0.9, 0.8, 0.7, 0.7, 0.3, 0.1]
    # Thresholds 0.9: P 1, R 1/3; 0.8: P 1/2, R 1/3; 0.7: P 3/4, R 1; 0.3: 3/5; 0.1: 1/2.
    assert threshold_for_precision(y, s, 0.75) == 0.7
    assert threshold_for_precision(y, s, 0.76) == 0.9
    assert threshold_for_precision(y, s, 0.5) == 0.1
    assert recall_at_precision(y, s, 0.76) == pytest.approx(1 / 3)
    assert precision_at_recall(y, s, 0.5) == 0.75
    assert precision_at_recall(y, s, 0.0) == 1.0
    # F1: 0.9 -> 2/(1+0+3) = 0.5; 0.8 -> 2/5; 0.7 -> 6/(3+1+3) = 6/7; 0.3 -> 6/8; 0.1 -> 6/9.
    assert threshold_max_fbeta(y, s) == (0.7, pytest.approx(6 / 7))
    # With weight 0 on the row at 0.8 it is not a threshold and costs no precision.
    w = [1, 0, 1, 1, 1, 1]
    assert threshold_for_precision(y, s, 1.0, sample_weight=w) == 0.7
    # Rows of weight zero are not thresholds at all (as in scikit-learn), even the lowest.
    assert threshold_for_precision([1, 0], [0.9, 0.1], 0.5, sample_weight=[1, 0]) == 0.9
    assert threshold_max_fbeta([0, 1], [0.9, 0.1], sample_weight=[0, 1]) == (0.1, 1.0)


# --- inputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: roc_auc([0, 2], [0.1, 0.2]), "outside"),
        (lambda: roc_auc([0, 1], [0.1, float("nan")]), "NaN"),
        (lambda: roc_auc([0, 1], [0.1]), "length|one value per row"),
        (lambda: roc_auc([], []), "empty"),
        (lambda: roc_auc([0, 1], [0.1, 0.2], sample_weight=[1, -1]), "negative"),
        (lambda: brier_score([0, 1], [0.1, 1.2]), r"\[0, 1\]"),
        (lambda: log_loss([0, 1], [-0.1, 0.5]), r"\[0, 1\]"),
        (lambda: log_loss([0, 1], [0.1, 0.5], eps=0.7), "eps"),
        (lambda: expected_calibration_error([0, 1], [0.1, 0.2], n_bins=0), "n_bins"),
        (lambda: expected_calibration_error([0, 1], [0.1, 0.2], strategy="x"), "strategy"),
        (lambda: brier_score([0, 1], [0.1, 0.2], sample_weight=[0, 0]), "sums to zero"),
        (lambda: precision_at_recall([0, 1], [0.1, 0.2], 1.5), "recall"),
        (lambda: recall_at_precision([0, 1], [0.1, 0.2], -0.1), "precision"),
        (lambda: threshold_max_fbeta([0, 1], [0.1, 0.2], beta=0), "beta"),
        (lambda: roc_auc([0, 1], [float("nan")] * 2, nan="drop"), "no finite"),
    ],
)
def test_bad_inputs_raise_usage_errors(call: Any, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        call()


def test_nan_drop_drops_rows_and_logs_the_count(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="assay.evaluation"):
        got = roc_auc([0, 1, 1, 0], [0.1, 0.9, float("nan"), float("inf")], nan="drop")
    assert got == 1.0
    assert any("dropped 2 of 4" in r.getMessage() for r in caplog.records)
    per = roc_auc([0, 1, 1], [0.1, 0.9, float("nan")], cohort_id=["a", "a", "b"], nan="drop")
    assert per == {"a": 1.0, "b": None}


def test_inputs_of_other_libraries_are_accepted() -> None:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    y, s = [0, 1, 1, 0], [0.2, 0.8, 0.3, 0.4]
    want = roc_auc(y, s)
    assert roc_auc(pd.Series(y), pd.Series(s)) == want
    assert roc_auc(pl.Series(y), pl.Series(s)) == want
    assert roc_auc(pa.chunked_array([y[:2], y[2:]]), pa.array(s)) == want
    assert roc_auc(np.array(y, dtype=bool), np.array(s, dtype=np.float32)) == want


def test_registry_names_the_scalar_metrics() -> None:
    assert set(METRICS) == {"roc_auc", "average_precision", "brier_score", "log_loss", "ece"}
    y, p = [0, 1, 1, 0], [0.2, 0.8, 0.3, 0.4]
    assert METRICS["ece"](y, p) == expected_calibration_error(y, p, n_bins=10)
    assert METRICS["roc_auc"](y, p) == 0.75
