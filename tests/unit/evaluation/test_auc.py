"""cohort_auc and AUCAccumulator against scikit-learn and a pairwise reference."""

from __future__ import annotations

import itertools
import math
import pickle
import random
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from assay._errors import UsageError
from assay.evaluation._auc import AUCAccumulator, cohort_auc

TOL = 1e-12


# --- data --------------------------------------------------------------------------------------


@st.composite
def cohort_data(draw: st.DrawFn, *, weighted: bool | None = None) -> dict[str, Any]:
    """Small inputs with heavy ties, tiny and one-class cohorts, optional weights with zeros."""
    n = draw(st.integers(1, 60))
    n_cohorts = draw(st.integers(1, 6))
    y = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    tie_heavy = draw(st.booleans())
    if tie_heavy:
        s = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
        scores = [float(v) for v in s]
    else:
        scores = draw(
            st.lists(
                st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
                min_size=n,
                max_size=n,
            )
        )
    cohorts = draw(st.lists(st.integers(0, n_cohorts - 1), min_size=n, max_size=n))
    if weighted is None:
        weighted = draw(st.booleans())
    w = None
    if weighted:
        w = draw(
            st.lists(
                # No subnormals: the float references underflow on them (assay rescales;
                # tiny weights are tested on their own).
                st.one_of(
                    st.sampled_from([0.0, 0.5, 1.0, 3.0]),
                    st.floats(0.0, 10.0, allow_subnormal=False),
                ),
                min_size=n,
                max_size=n,
            )
        )
    return {
        "y": np.array(y, dtype=bool),
        "s": np.array(scores),
        "c": np.array(cohorts),
        "w": None if w is None else np.array(w),
    }


def sklearn_per_cohort(
    y: np.ndarray, s: np.ndarray, c: np.ndarray, w: np.ndarray | None
) -> dict[Any, float | None]:
    """The slow reference: one roc_auc_score call per cohort (None without both classes)."""
    out: dict[Any, float | None] = {}
    for value in np.unique(c).tolist():
        m = c == value
        ww = None if w is None else w[m]
        pos_weight = m.sum() if ww is None else ww[y[m]].sum()
        neg_weight = m.sum() if ww is None else ww[~y[m]].sum()
        if y[m].all() or not y[m].any() or pos_weight == 0 or neg_weight == 0:
            out[value] = None
        else:
            out[value] = float(roc_auc_score(y[m], s[m], sample_weight=ww))
    return out


def pairwise_auc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> float:
    """Independent reference: weighted Mann-Whitney over all pairs, ties count 1/2."""
    sp, wp = s[y], w[y]
    sn, wn = s[~y], w[~y]
    gt = (sp[:, None] > sn[None, :]) + 0.5 * (sp[:, None] == sn[None, :])
    return float((wp[:, None] * wn[None, :] * gt).sum() / (wp.sum() * wn.sum()))


def assert_close(got: dict[Any, float | None], want: dict[Any, float | None]) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        if value is None:
            assert got[key] is None, key
        else:
            assert got[key] is not None, key
            assert abs(got[key] - value) <= TOL, (key, got[key], value)


# --- cohort_auc ---------------------------------------------------------------------------------


def test_cohort_auc_hand_worked_example_with_ties() -> None:
    # Cohort "a": positives 0.9 and 0.5, negatives 0.1 and 0.5: 1 + 1 + 1 + 1/2 of 4 pairs.
    y = [0, 1, 0, 1, 1, 0, 1]
    s = [0.1, 0.9, 0.5, 0.5, 0.3, 0.2, 0.4]
    c = ["a", "a", "a", "a", "b", "b", "c"]
    assert cohort_auc(y, s, c) == {"a": 0.875, "b": 1.0, "c": None}


def test_cohort_auc_is_rank_formula_with_average_ranks() -> None:
    # Scores 1, 2, 2, 3: ranks 1, 2.5, 2.5, 4. Positives are the 2 and the 3: (6.5 - 3) / 4.
    assert cohort_auc([0, 1, 0, 1], [1, 2, 2, 3], [0, 0, 0, 0]) == {0: 0.875}


@settings(max_examples=300, deadline=None)
@given(cohort_data())
def test_cohort_auc_equals_sklearn_per_cohort(data: dict[str, Any]) -> None:
    got = cohort_auc(data["y"], data["s"], data["c"], sample_weight=data["w"])
    assert_close(got, sklearn_per_cohort(data["y"], data["s"], data["c"], data["w"]))


@settings(max_examples=100, deadline=None)
@given(cohort_data(weighted=True))
def test_weighted_cohort_auc_equals_pairwise_mann_whitney(data: dict[str, Any]) -> None:
    y, s, c, w = data["y"], data["s"], data["c"], data["w"]
    got = cohort_auc(y, s, c, sample_weight=w)
    for value in np.unique(c).tolist():
        m = c == value
        if w[m & y].sum() > 0 and w[m & ~y].sum() > 0:
            assert abs(got[value] - pairwise_auc(y[m], s[m], w[m])) <= TOL
        else:
            assert got[value] is None


def test_unit_weights_equal_unweighted() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(5000) < 0.3
    s = rng.integers(0, 20, 5000).astype(float)
    c = rng.integers(0, 50, 5000)
    assert_close(cohort_auc(y, s, c, sample_weight=np.ones(5000)), cohort_auc(y, s, c))


def test_integer_weights_equal_repeated_rows() -> None:
    rng = np.random.default_rng(2)
    y = rng.random(400) < 0.5
    s = rng.integers(0, 5, 400).astype(float)
    c = rng.integers(0, 7, 400)
    w = rng.integers(0, 4, 400)
    repeated = cohort_auc(np.repeat(y, w), np.repeat(s, w), np.repeat(c, w))
    weighted = cohort_auc(y, s, c, sample_weight=w)
    for key, value in repeated.items():
        assert value is not None
        assert abs(weighted[key] - value) <= TOL  # type: ignore[operator]


def test_cohort_auc_many_cohorts_beyond_radix_range() -> None:
    # 70,000 cohorts (more than 2**16) of one positive and one negative each.
    k = 70_000
    rng = np.random.default_rng(3)
    pos = rng.integers(0, 3, k).astype(float)
    neg = rng.integers(0, 3, k).astype(float)
    order = rng.permutation(2 * k)
    y = np.r_[np.ones(k, bool), np.zeros(k, bool)][order]
    s = np.r_[pos, neg][order]
    c = np.r_[np.arange(k), np.arange(k)][order] * 7 + 11
    got = cohort_auc(y, s, c)
    want = np.where(pos > neg, 1.0, np.where(pos == neg, 0.5, 0.0))
    assert np.array_equal(np.array(list(got.values())), want)
    assert list(got) == (np.arange(k) * 7 + 11).tolist()


def test_large_random_input_matches_sklearn_on_sampled_cohorts() -> None:
    rng = np.random.default_rng(4)
    n = 200_000
    c = rng.integers(0, 300, n)
    s = np.round(rng.random(n), 3)
    y = rng.random(n) < s
    w = rng.random(n)
    got = cohort_auc(y, s, c, sample_weight=w)
    for value in (0, 17, 299):
        m = c == value
        want = roc_auc_score(y[m], s[m], sample_weight=w[m])
        assert abs(got[value] - want) <= TOL  # type: ignore[operator]


def test_cohort_auc_keys_sorted_with_null_cohort_last() -> None:
    got = cohort_auc([0, 1, 0, 1, 1, 0], [1, 2, 3, 4, 5, 6], ["z", "z", None, None, "a", "a"])
    assert list(got) == ["a", "z", None]
    assert got == {"a": 0.0, "z": 1.0, None: 1.0}


def test_nan_drop_drops_rows_and_warns_with_count() -> None:
    y = [0, 1, 0, 1, 1]
    s = [0.1, 0.9, float("nan"), float("inf"), 0.3]
    with pytest.warns(UserWarning, match="dropped 2 of 5 rows"):
        got = cohort_auc(y, s, [1, 1, 1, 1, 2], nan="drop")
    assert got == {1: 1.0, 2: None}


def test_nan_drop_of_every_row_raises() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UsageError, match="every y_score"):
            cohort_auc([0, 1], [float("nan")] * 2, [1, 1], nan="drop")


def test_nan_raise_names_count_and_positions() -> None:
    with pytest.raises(UsageError, match=r"2 of 4 values are NaN.*positions \[1, 3\]"):
        cohort_auc([0, 1, 0, 1], [0.1, float("nan"), 0.2, float("-inf")], [0, 0, 0, 0])


# --- AUCAccumulator -----------------------------------------------------------------------------


def _split(n: int, rng: random.Random, parts: int) -> list[slice]:
    cuts = sorted(rng.sample(range(1, n), min(parts - 1, n - 1))) if n > 1 else []
    edges = [0, *cuts, n]
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


@settings(max_examples=150, deadline=None)
@given(cohort_data(), st.integers(1, 5), st.randoms(use_true_random=False))
def test_exact_accumulator_batches_and_merges_equal_cohort_auc(
    data: dict[str, Any], parts: int, rnd: random.Random
) -> None:
    y, s, c, w = data["y"], data["s"], data["c"], data["w"]
    accumulators = []
    for part in _split(len(y), rnd, parts):
        acc = AUCAccumulator()
        # Each partition may itself arrive in two batches.
        for sub in _split(part.stop - part.start, rnd, 2):
            rows = np.arange(part.start, part.stop)[sub]
            acc.update(y[rows], s[rows], c[rows], None if w is None else w[rows])
        accumulators.append(acc)
    rnd.shuffle(accumulators)
    total = accumulators[0]
    for other in accumulators[1:]:
        total.merge(other)
    assert_close(total.result(), cohort_auc(y, s, c, sample_weight=w))
    bounds = total.error_bound()
    for key, value in total.result().items():
        assert (bounds[key] == 0.0) if value is not None else math.isnan(bounds[key])


@settings(max_examples=200, deadline=None)
@given(
    cohort_data(),
    st.integers(1, 12),
    st.lists(st.floats(-0.2, 1.2), min_size=60, max_size=60),
)
def test_binned_accumulator_error_is_within_its_bound(
    data: dict[str, Any], bins: int, raw_scores: list[float]
) -> None:
    y, c, w = data["y"], data["c"], data["w"]
    # Scores spread over [0, 1] and a little outside, to exercise the clipping of the end bins.
    s = np.array(raw_scores[: len(y)])
    exact = cohort_auc(y, s, c, sample_weight=w)
    acc = AUCAccumulator(bins=bins).update(y, s, c, w)
    approx, bound = acc.result(), acc.error_bound()
    assert approx.keys() == exact.keys()
    for key, value in exact.items():
        if value is None:
            assert approx[key] is None
            continue
        got = approx[key]
        assert got is not None
        assert abs(got - value) <= bound[key] + TOL
        # The binned AUC is the exact AUC of the binned scores.
        binned_scores = np.clip(np.floor(s * bins), 0, bins - 1)
        m = c == key
        want = cohort_auc(y[m], binned_scores[m], c[m], sample_weight=None if w is None else w[m])
        assert abs(got - want[key]) <= TOL  # type: ignore[operator]


def test_binned_bound_is_attained_when_ties_are_all_ordered() -> None:
    # bins=2: negatives at 0.1 and 0.6, positives at 0.7 and 0.9. Bin 1 holds 1 negative and
    # 2 positives: 2 tied pairs of 4, each truly won, so the error is 2 * 1/2 / 4 = the bound.
    acc = AUCAccumulator(bins=2).update([0, 1, 0, 1], [0.1, 0.9, 0.6, 0.7], ["x"] * 4)
    assert acc.result() == {"x": 0.75}
    assert acc.error_bound() == {"x": 0.25}
    assert cohort_auc([0, 1, 0, 1], [0.1, 0.9, 0.6, 0.7], ["x"] * 4) == {"x": 1.0}


def test_accumulator_cohort_values_across_batches_and_types() -> None:
    acc = AUCAccumulator()
    acc.update([0, 1], [0.1, 0.2], np.array(["a", "a"]))
    acc.update([1, 0], [0.05, 0.4], ["a", None])
    acc.update([1], [0.3], [None])
    # "a": positives 0.2 and 0.05 against the negative 0.1; None: positive 0.3 below 0.4.
    assert acc.result() == {"a": 0.5, None: 0.0}


def test_accumulator_merge_with_itself_doubles_the_counts() -> None:
    acc = AUCAccumulator().update([0, 1, 1], [0.5, 0.5, 0.9], [1, 1, 1])
    before = acc.result()
    assert acc.merge(acc).result() == before


def test_accumulator_pickles() -> None:
    acc = AUCAccumulator(bins=10).update([0, 1, 1], [0.1, 0.5, 0.9], [1, 1, 1])
    clone = pickle.loads(pickle.dumps(acc))
    assert clone.result() == acc.result() == {1: 1.0}
    assert clone.bins == 10


def test_accumulator_compacts_many_batches() -> None:
    rng = np.random.default_rng(5)
    y = rng.random(300_000) < 0.5
    s = rng.integers(0, 1000, 300_000) / 1000
    c = rng.integers(0, 20, 300_000)
    acc = AUCAccumulator()
    for part in np.array_split(np.arange(300_000), 30):
        acc.update(y[part], s[part], c[part])
    assert_close(acc.result(), cohort_auc(y, s, c))


def test_empty_accumulator_has_no_cohorts() -> None:
    assert AUCAccumulator().result() == {}
    assert AUCAccumulator(bins=4).error_bound() == {}


@pytest.mark.parametrize("bins", [0, -3, 2.5, True, "10"])
def test_accumulator_rejects_bad_bins(bins: Any) -> None:
    with pytest.raises(UsageError, match="bins must be a positive integer"):
        AUCAccumulator(bins=bins)


def test_accumulator_merge_requires_same_bins() -> None:
    with pytest.raises(UsageError, match="different bins"):
        AUCAccumulator(bins=10).merge(AUCAccumulator())
    with pytest.raises(UsageError, match="another AUCAccumulator"):
        AUCAccumulator().merge({})  # type: ignore[arg-type]


def test_accumulator_update_validates_like_cohort_auc() -> None:
    with pytest.raises(UsageError, match="outside"):
        AUCAccumulator().update([0, 2], [0.1, 0.2], [1, 1])
    with pytest.raises(UsageError, match="same length"):
        AUCAccumulator().update([0, 1], [0.1], [1, 1])


@pytest.mark.parametrize("scale", [1e-300, 1e-38, 1e200])
def test_weighted_auc_is_scale_free_for_tiny_and_huge_weights(scale: float) -> None:
    # Another cohort with ordinary weights shares the running sums; it must not swamp this one.
    y = np.array([0, 1, 0, 1, 0, 1, 1, 0], dtype=bool)
    s = np.array([0.1, 0.9, 0.5, 0.5, 0.2, 0.3, 0.8, 0.1])
    c = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    w = np.array([1.0, 2.0, 3.0, 0.5, 1.0, 1.0, 1.0, 1.0])
    scaled = np.where(c == 1, w * scale, w)
    want = {0: pairwise_auc(y[:4], s[:4], w[:4]), 1: pairwise_auc(y[4:], s[4:], w[4:])}
    assert_close(cohort_auc(y, s, c, sample_weight=scaled), want)
    assert_close(AUCAccumulator().update(y, s, c, scaled).result(), want)


def test_accumulator_pickled_with_ascending_runs_loads_right() -> None:
    # Before the shared ranking kernel, a compacted accumulator held its runs in ascending score
    # order; one unpickled now must still give the AUC, not 1 - AUC.
    y = [0, 1, 0, 1, 1, 0]
    s = [0.1, 0.9, 0.6, 0.7, 0.3, 0.3]
    acc = AUCAccumulator().update(y, s, ["a"] * 6)
    runs = acc._compact()
    runs.key, runs.pos, runs.neg = runs.key[::-1], runs.pos[::-1], runs.neg[::-1]
    assert runs.key.tolist() == [0.1, 0.3, 0.6, 0.7, 0.9]  # the old, ascending layout
    clone = pickle.loads(pickle.dumps(acc))
    # By hand: 9 (positive, negative) pairs, 7 won, 1 tied (0.3 / 0.3), 1 lost (0.3 < 0.6).
    assert clone.result() == {"a": 7.5 / 9}
