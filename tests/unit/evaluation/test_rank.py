"""The ranking kernel, and the three engines built on it, against scikit-learn and plain loops.

cohort_auc / AUCAccumulator, the metric functions and slice_report share one kernel
(``assay.evaluation._rank``); the last test here runs all of them on the same random data
(continuous scores with repeats, ties across cohorts, fractional and zero weights, empty and
one-class cohorts) and holds each to scikit-learn, cohort by cohort.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from assay.evaluation import (
    AUCAccumulator,
    _metrics,
    average_precision,
    bootstrap_distribution,
    cohort_auc,
    roc_auc,
    slice_report,
)
from assay.evaluation._rank import Counts, rank, score_order

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-12


@st.composite
def ranked_data(draw: st.DrawFn, *, max_n: int = 60) -> dict[str, Any]:
    """Scores with ties within and across cohorts, cohort codes (some unused), weights."""
    n = draw(st.integers(1, max_n))
    k = draw(st.integers(1, 5))
    levels = draw(st.sampled_from([2, 5, 1000]))  # heavy ties, some ties, nearly none
    s = np.array(draw(st.lists(st.integers(0, levels), min_size=n, max_size=n))) / levels
    s = s * draw(st.sampled_from([1.0, -3.5, 1e6]))  # negative and large scores rank too
    y = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    codes = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), np.int64)
    w = None
    if draw(st.booleans()):
        w = np.array(
            draw(st.lists(st.sampled_from([0.0, 0.25, 1.0, 2.0, 3.7]), min_size=n, max_size=n))
        )
    return {"s": s, "y": y, "codes": codes, "k": k, "w": w}


def _sk_auc(y: np.ndarray, s: np.ndarray, w: np.ndarray | None) -> float:
    """scikit-learn's ROC AUC, NaN without weight in both classes."""
    ww = np.ones(y.size) if w is None else w
    if not ww[y].sum() > 0 or not ww[~y].sum() > 0:
        return math.nan
    return float(roc_auc_score(y, s, sample_weight=w))


def _sk_ap(y: np.ndarray, s: np.ndarray, w: np.ndarray | None) -> float:
    """scikit-learn's average precision, NaN without positive weight."""
    ww = np.ones(y.size) if w is None else w
    if not ww[y].sum() > 0:
        return math.nan
    return float(average_precision_score(y, s, sample_weight=w))


def _assert_same(got: Any, want: float, where: object) -> None:
    if math.isnan(want):
        assert got is None or math.isnan(got), where
    else:
        assert got is not None, where
        assert abs(got - want) <= TOL, (where, got, want)


# --- the ranking -------------------------------------------------------------------------------


def test_rank_hand_worked() -> None:
    # Rows: (code, score) = (1, .5) (0, .2) (1, .5) (0, .9) (1, .1) (0, .2); code 2 has no rows.
    s = np.array([0.5, 0.2, 0.5, 0.9, 0.1, 0.2])
    codes = np.array([1, 0, 1, 0, 1, 0])
    r = rank(s, codes, 3)
    # Cohort 0 from the top: .9 (row 3), then .2 twice (rows 1 and 5); cohort 1: .5 .5 .1.
    assert r.order[0] == 3
    assert sorted(r.order[1:3].tolist()) == [1, 5]
    assert sorted(r.order[3:5].tolist()) == [0, 2]
    assert r.order[5] == 4
    assert r.start.tolist() == [0, 1, 3, 5]
    assert r.score.tolist() == [0.9, 0.2, 0.5, 0.1]
    assert r.row_first.tolist() == [0, 3]
    assert r.groups.present.tolist() == [0, 1]
    assert r.groups.first.tolist() == [0, 2]
    assert r.groups.code.tolist() == [0, 0, 1, 1]
    y = np.array([True, False, False, True, False, True])
    pos, neg = r.class_sums(y[r.order])
    assert pos.tolist() == [1, 1, 1, 0]
    assert neg.tolist() == [0, 1, 1, 1]
    counts = Counts(r.groups, pos, neg)
    # Cohort 0: positives .9 and .2, negative .2: 1 win + 1 tie of 2 pairs = 0.75.
    # Cohort 1: positive .5, negatives .5 and .1: 1 tie + 1 win of 2 pairs = 0.75.
    assert r.groups.scatter(counts.roc_auc()).tolist()[:2] == [0.75, 0.75]
    assert math.isnan(r.groups.scatter(counts.roc_auc())[2])
    # Cohort 0 AP: thresholds .9 (P 1, R 1/2) and .2 (P 2/3, R 1): (1/2)(1) + (1/2)(2/3).
    assert counts.average_precision()[0] == pytest.approx(0.5 + 1 / 3, abs=1e-15)


@SETTINGS
@given(ranked_data(), st.booleans())
def test_rank_sorts_by_cohort_then_descending_score_and_groups_ties(
    d: dict[str, Any], shared_sort: bool
) -> None:
    s, codes, k = d["s"], d["codes"], d["k"]
    r = rank(s, codes, k, by_score=score_order(s) if shared_sort else None)
    assert sorted(r.order.tolist()) == list(range(s.size))  # a permutation
    keys = list(zip(codes[r.order].tolist(), (-s[r.order]).tolist(), strict=True))
    assert keys == sorted(keys)
    # A group starts exactly where (cohort, score) changes.
    starts = [i for i in range(s.size) if i == 0 or keys[i] != keys[i - 1]]
    assert r.start.tolist() == starts
    assert r.score.tolist() == [-keys[i][1] for i in starts]
    assert r.groups.present.tolist() == sorted(set(codes.tolist()))
    assert r.groups.code.tolist() == [keys[i][0] for i in starts]


@SETTINGS
@given(ranked_data())
def test_group_and_cohort_sums_equal_plain_loops(d: dict[str, Any]) -> None:
    s, codes, k = d["s"], d["codes"], d["k"]
    x = np.arange(1.0, s.size + 1) ** 2  # distinct values: any misplaced row shows
    r = rank(s, codes, k)
    per_group = r.group_sums(x[r.order])
    g = r.groups
    for j, (code, score) in enumerate(zip(g.code.tolist(), r.score.tolist(), strict=True)):
        assert per_group[j] == x[(codes == code) & (s == score)].sum()
    within = g.within(per_group)
    totals = g.scatter(g.sums(per_group), fill=0.0)
    for code in range(k):
        mask = codes == code
        assert totals[code] == pytest.approx(x[mask].sum(), rel=1e-15)
        for j in np.flatnonzero(g.code == code):
            at_or_above = mask & (s >= r.score[j])
            assert within[j] == pytest.approx(x[at_or_above].sum(), rel=1e-15)


@SETTINGS
@given(ranked_data())
def test_counts_equal_scikit_learn_per_cohort(d: dict[str, Any]) -> None:
    s, y, codes, k, w = d["s"], d["y"], d["codes"], d["k"], d["w"]
    r = rank(s, codes, k)
    pos, neg = r.class_sums(y[r.order], None if w is None else w[r.order])
    if w is None:
        assert pos.dtype == np.int64  # counts stay integers: 2U is exact
    counts = Counts(r.groups, pos, neg)
    auc = r.groups.scatter(counts.roc_auc())
    ap = r.groups.scatter(counts.average_precision())
    for code in range(k):
        m = codes == code
        ww = None if w is None else w[m]
        want_auc = _sk_auc(y[m], s[m], ww) if m.any() else math.nan
        want_ap = _sk_ap(y[m], s[m], ww) if m.any() else math.nan
        _assert_same(float(auc[code]), want_auc, code)
        _assert_same(float(ap[code]), want_ap, code)


@SETTINGS
@given(ranked_data(), st.integers(0, 2**32 - 1))
def test_a_weight_matrix_gives_each_row_its_own_metrics(d: dict[str, Any], seed: int) -> None:
    # Bootstrap replicates are rows of a weight matrix: each row must equal the vector case.
    s, y, codes, k = d["s"], d["y"], d["codes"], d["k"]
    rng = np.random.default_rng(seed)
    wm = rng.integers(0, 4, (3, s.size)).astype(np.float64)
    r = rank(s, codes, k)
    wm_sorted = wm[:, r.order]
    counts = Counts(r.groups, *r.class_sums(y[r.order], wm_sorted))
    auc, ap = counts.roc_auc(), counts.average_precision()
    for b in range(3):
        one = Counts(r.groups, *r.class_sums(y[r.order], wm_sorted[b]))
        np.testing.assert_array_equal(auc[b], one.roc_auc())
        np.testing.assert_array_equal(ap[b], one.average_precision())
        for j, code in enumerate(r.groups.present.tolist()):
            m = codes == code
            _assert_same(float(auc[b, j]), _sk_auc(y[m], s[m], wm[b, m]), (b, code))


# --- the three engines on the same data ---------------------------------------------------------


@st.composite
def engine_data(draw: st.DrawFn) -> dict[str, Any]:
    """Up to 300 rows: continuous probabilities with repeats, 1-4 cohorts, optional weights."""
    n = draw(st.integers(2, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    y = rng.random(n) < draw(st.sampled_from([0.05, 0.3, 0.7]))
    p = np.clip(0.5 + 0.2 * (y - 0.5) + 0.25 * rng.standard_normal(n), 0, 1)
    p = np.round(p, draw(st.sampled_from([1, 2, 6])))  # 1 decimal: ties everywhere
    cohort = rng.choice(np.array(["a", "b", "c", "d"]), n, p=[0.5, 0.3, 0.15, 0.05])
    w = None
    if draw(st.booleans()):
        w = rng.choice(np.array([0.0, 0.3, 1.0, 2.5, 7.1]), n)
    return {"y": y, "p": p, "cohort": cohort, "w": w}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(engine_data())
def test_the_three_engines_equal_scikit_learn_on_the_same_data(d: dict[str, Any]) -> None:
    y, p, cohort, w = d["y"], d["p"], d["cohort"], d["w"]
    want_auc = {c: _sk_auc(y[cohort == c], p[cohort == c], _part(w, cohort == c)) for c in "abcd"}
    want_ap = {c: _sk_ap(y[cohort == c], p[cohort == c], _part(w, cohort == c)) for c in "abcd"}
    present = sorted(set(cohort.tolist()))

    by_cohort_auc = cohort_auc(y, p, cohort, sample_weight=w)
    acc = AUCAccumulator()
    half = y.size // 2
    acc.update(y[:half], p[:half], cohort[:half], _part(w, slice(0, half)))
    acc.update(y[half:], p[half:], cohort[half:], _part(w, slice(half, None)))
    streamed = acc.result()
    metric_auc = roc_auc(y, p, sample_weight=w, cohort_id=cohort)
    metric_ap = average_precision(y, p, sample_weight=w, cohort_id=cohort)
    # n_boot=0: point estimates only; rows are (feature, value, metric).
    report = slice_report(
        y,
        p,
        {"cohort": cohort},
        metrics=("roc_auc", "average_precision"),
        n_boot=0,
        sample_weight=w,
        pairs=False,
    )
    rows = {(r["value"], r["metric"]): r["estimate"] for r in report.to_arrow().to_pylist()}
    assert sorted(by_cohort_auc) == sorted(metric_auc) == present
    for c in present:
        _assert_same(by_cohort_auc[c], want_auc[c], ("cohort_auc", c))
        _assert_same(streamed[c], want_auc[c], ("AUCAccumulator", c))
        _assert_same(metric_auc[c], want_auc[c], ("roc_auc", c))
        _assert_same(metric_ap[c], want_ap[c], ("average_precision", c))
        _assert_same(rows[(c, "roc_auc")], want_auc[c], ("slice_report roc_auc", c))
        _assert_same(rows[(c, "average_precision")], want_ap[c], ("slice_report ap", c))
    _assert_same(roc_auc(y, p, sample_weight=w), _sk_auc(y, p, w), "roc_auc overall")
    _assert_same(average_precision(y, p, sample_weight=w), _sk_ap(y, p, w), "ap overall")


def _part(w: np.ndarray | None, mask: Any) -> np.ndarray | None:
    return None if w is None else w[mask]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(engine_data(), st.integers(0, 2**32 - 1))
def test_bootstrap_replicates_per_cohort_equal_scikit_learn(d: dict[str, Any], seed: int) -> None:
    # A replicate is a vector of row counts; the vectorised kernels evaluate all replicates of
    # all cohorts at once. Each must be scikit-learn's value on the cohort's rows weighted by
    # the replicate's counts (times the data's weights). The counts are redrawn here with the
    # same seed through the bootstrap's own stratified sampler, in input order.
    y, p, cohort, w = d["y"], d["p"], d["cohort"], d["w"]
    n_boot = 4
    keys, _, auc = bootstrap_distribution(
        "roc_auc", y, p, sample_weight=w, cohort_id=cohort, n_boot=n_boot, seed=seed
    )
    _, _, ap = bootstrap_distribution(
        "average_precision", y, p, sample_weight=w, cohort_id=cohort, n_boot=n_boot, seed=seed
    )
    data = _metrics._read(y, p, w, cohort, "raise")
    counts = _metrics._strata_draw(data, np.random.default_rng(seed), None)(n_boot)
    assert keys == sorted(set(cohort.tolist()))
    for j, c in enumerate(keys):
        m = cohort == c
        for b in range(n_boot):
            weight = counts[b, m] * (1.0 if w is None else w[m])
            _assert_same(float(auc[b, j]), _sk_auc(y[m], p[m], weight), ("auc", c, b))
            _assert_same(float(ap[b, j]), _sk_ap(y[m], p[m], weight), ("ap", c, b))
