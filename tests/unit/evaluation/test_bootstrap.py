"""bootstrap_ci: stratified, vectorised, seeded percentile intervals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st

import assay.evaluation._metrics as metrics_module
from assay._errors import UsageError
from assay.evaluation._metrics import (
    METRICS,
    bootstrap_ci,
    bootstrap_distribution,
    precision_at_recall,
    roc_auc,
)


def _data(n: int, seed: int = 0, *, ties: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Labels and informative probabilities (rounded to two decimals: many ties)."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    p = np.clip(0.3 + 0.25 * (y - 0.3) + 0.2 * rng.standard_normal(n), 0, 1)
    return y, (np.round(p, 2) if ties else p)


def _ece_uniform(y: np.ndarray, p: np.ndarray, sample_weight: np.ndarray | None) -> float:
    w = np.ones_like(p) if sample_weight is None else sample_weight
    bins = np.searchsorted(np.linspace(0, 1, 11)[1:-1], p, side="left")
    gap = np.bincount(bins, weights=w * (y - p), minlength=10)
    return float(np.abs(gap).sum() / w.sum())


#: Independent per-replicate references for each registered metric.
REFERENCES = {
    "roc_auc": lambda y, s, sample_weight: skm.roc_auc_score(y, s, sample_weight=sample_weight),
    "average_precision": lambda y, s, sample_weight: skm.average_precision_score(
        y, s, sample_weight=sample_weight
    ),
    "brier_score": lambda y, s, sample_weight: np.average((s - y) ** 2, weights=sample_weight),
    "log_loss": lambda y, s, sample_weight: skm.log_loss(
        y, s, sample_weight=sample_weight, labels=[0, 1]
    ),
    "ece": _ece_uniform,
}


@pytest.mark.parametrize("name", sorted(METRICS))
@pytest.mark.parametrize("weighted", [False, True])
def test_vectorised_replicates_equal_a_per_replicate_reference(name: str, weighted: bool) -> None:
    # Replicates are defined on the input rows, so the vectorised path and the one-call-per-
    # replicate path see the same resamples for the same seed: each replicate must agree.
    y, p = _data(300, seed=1)
    w = np.random.default_rng(2).uniform(0.2, 3.0, y.size) if weighted else None
    _, point, fast = bootstrap_distribution(name, y, p, sample_weight=w, n_boot=40, seed=7)
    _, ref_point, slow = bootstrap_distribution(
        REFERENCES[name], y, p, sample_weight=w, n_boot=40, seed=7
    )
    np.testing.assert_allclose(point, ref_point, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
    assert np.unique(fast).size > 20  # the replicates really differ from one another


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=2, max_size=30),
    st.integers(0, 2**32 - 1),
)
def test_replicates_match_sklearn_on_tiny_tied_inputs(rows: list[Any], seed: int) -> None:
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows]) / 3
    if y.all() or not y.any():
        assert bootstrap_ci("roc_auc", y, s, n_boot=5) is None
        return
    _, _, fast = bootstrap_distribution("roc_auc", y, s, n_boot=10, seed=seed)
    _, _, slow = bootstrap_distribution(REFERENCES["roc_auc"], y, s, n_boot=10, seed=seed)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_same_seed_same_interval_other_seed_other_interval() -> None:
    y, p = _data(400)
    first = bootstrap_ci("average_precision", y, p, seed=11)
    assert first == bootstrap_ci("average_precision", y, p, seed=11)
    assert first != bootstrap_ci("average_precision", y, p, seed=12)


def test_chunking_does_not_change_the_replicates(monkeypatch: pytest.MonkeyPatch) -> None:
    y, p = _data(200)
    cohort = np.arange(200) % 3
    _, _, whole = bootstrap_distribution("ece", y, p, cohort_id=cohort, n_boot=30, seed=5)
    monkeypatch.setattr(metrics_module, "_BOOT_CELLS", 500)  # chunks of 2 replicates
    _, _, chunked = bootstrap_distribution("ece", y, p, cohort_id=cohort, n_boot=30, seed=5)
    np.testing.assert_array_equal(whole, chunked)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_interval_contains_the_point_estimate(name: str) -> None:
    y, p = _data(600, seed=3)
    low, high = bootstrap_ci(name, y, p, n_boot=300, seed=0)
    point = METRICS[name](y, p)
    assert low < point < high


def test_interval_narrows_with_more_data() -> None:
    widths = []
    for n in (250, 4000):
        y, p = _data(n, seed=4)
        low, high = bootstrap_ci("roc_auc", y, p, n_boot=300, seed=0)
        widths.append(high - low)
    # Width shrinks like 1 / sqrt(n): a factor of about 4 here.
    assert widths[1] < 0.5 * widths[0]


def _slow_stratified(
    metric: Any, y: np.ndarray, p: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float, float]:
    """A textbook stratified bootstrap: resample row indices within each class, in a loop."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    values = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        values.append(metric(y[idx], p[idx], sample_weight=None))
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high), float(np.std(values))


@pytest.mark.parametrize("name", ["roc_auc", "average_precision", "brier_score"])
def test_interval_agrees_with_a_slow_loop_bootstrap(name: str) -> None:
    y, p = _data(800, seed=6, ties=False)
    low, high = bootstrap_ci(name, y, p, n_boot=1000, seed=1)
    _, _, reps = bootstrap_distribution(name, y, p, n_boot=1000, seed=1)
    ref_low, ref_high, ref_sd = _slow_stratified(REFERENCES[name], y, p, 400, seed=2)
    assert (high - low) == pytest.approx(ref_high - ref_low, rel=0.2)
    assert float(np.std(reps)) == pytest.approx(ref_sd, rel=0.15)
    centre, ref_centre = (low + high) / 2, (ref_low + ref_high) / 2
    assert abs(centre - ref_centre) < 0.2 * (ref_high - ref_low)


def test_resampling_keeps_class_counts_per_cohort() -> None:
    # Two positives in 40 rows, one per cohort: an unstratified bootstrap would lose a cohort's
    # positive in about a third of the replicates; stratified, every replicate keeps the data's
    # class counts (overall, and per cohort when cohorts are given).
    y = np.zeros(40, dtype=bool)
    y[[3, 25]] = True
    cohort = np.repeat([0, 1], 20)
    s = np.linspace(0, 1, 40)

    def positives(y: Any, s: Any, sample_weight: Any) -> float:
        return float(np.ones(y.size)[y].sum() if sample_weight is None else sample_weight[y].sum())

    def first_positive(y: Any, s: Any, sample_weight: Any) -> float:
        return 1.0 if sample_weight is None else float(sample_weight[3])

    _, _, reps = bootstrap_distribution(positives, y, s, n_boot=50, seed=0)
    assert (reps == 2).all()
    _, _, reps = bootstrap_distribution(first_positive, y, s, n_boot=50, seed=0)
    assert set(np.unique(reps)) == {0.0, 1.0, 2.0}  # the two positives are resampled
    _, _, auc = bootstrap_distribution("roc_auc", y, s, cohort_id=cohort, n_boot=200, seed=0)
    assert not np.isnan(auc).any()


def test_per_cohort_intervals_match_intervals_of_each_cohort_alone() -> None:
    y, p = _data(1200, seed=8)
    cohort = np.array(["a", "b", "c"])[np.arange(1200) % 3]
    y[cohort == "c"] = False  # a one-class cohort: AUC undefined
    got = bootstrap_ci("roc_auc", y, p, cohort_id=cohort, n_boot=600, seed=0)
    assert got["c"] is None
    for key in ("a", "b"):
        mask = cohort == key
        alone = bootstrap_ci("roc_auc", y[mask], p[mask], n_boot=600, seed=3)
        assert got[key] is not None
        assert alone is not None
        assert got[key][1] - got[key][0] == pytest.approx(alone[1] - alone[0], rel=0.2)
        assert got[key][0] < roc_auc(y[mask], p[mask]) < got[key][1]


def test_metric_options_and_callables() -> None:
    y, p = _data(300, seed=9)
    quantile = bootstrap_ci("ece", y, p, n_boot=50, n_bins=5, strategy="quantile")
    assert quantile != bootstrap_ci("ece", y, p, n_boot=50)
    assert bootstrap_ci(METRICS["ece"], y, p, n_boot=50) == bootstrap_ci("ece", y, p, n_boot=50)
    low, high = bootstrap_ci(precision_at_recall, y, p, n_boot=30, recall=0.5)
    assert 0 < low <= precision_at_recall(y, p, 0.5) <= high <= 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metric": "auc"}, "unknown metric"),
        ({"n_boot": 0}, "n_boot"),
        ({"alpha": 1.0}, "alpha"),
        ({"metric": "roc_auc", "n_bins": 3}, "takes no option"),
        ({"metric": precision_at_recall, "cohort_id": [0, 1, 0, 1], "recall": 0.5}, "cohort_id"),
        ({"metric": "brier_score", "y_score": [0.1, 0.5, 1.5, 0.2]}, r"\[0, 1\]"),
    ],
)
def test_bad_bootstrap_arguments_raise_usage_errors(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {
        "metric": "roc_auc",
        "y_true": [0, 1, 0, 1],
        "y_score": [0.1, 0.5, 0.4, 0.2],
    }
    args.update(kwargs)
    with pytest.raises(UsageError, match=match):
        bootstrap_ci(**args)
