"""Paired comparison of two runs: the randomisation test against scipy's permutation test, the
paired bootstrap, Cohen's d_z by hand, and per-slice rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from assay._errors import UsageError
from assay.rag import Qrels, Run, cohens_dz, compare_runs, sign_flip_test

pytest.importorskip("ir_measures")


def _scipy_p(d: list[float]) -> float:
    res = stats.permutation_test(
        (np.asarray(d), np.zeros(len(d))),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        n_resamples=np.inf,
        alternative="two-sided",
        vectorized=True,
    )
    return float(res.pvalue)


# Binary fractions: every sum is exact, so rounding cannot split ties differently.
@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.25, -0.25, 0.5, -0.75, 1.0, -1.0]), min_size=2, max_size=9))
def test_exact_sign_flip_p_value_equals_scipy_permutation_test(d: list[float]) -> None:
    assert sign_flip_test(d, n_permutations=1024)[0] == pytest.approx(_scipy_p(d), abs=1e-12)


def test_means_equal_but_for_rounding_count_as_ties() -> None:
    # The mean is 0 in exact arithmetic (-1.4e-17 in floats): every pattern is at least as
    # extreme on one side, p = 1. scipy's tolerance, relative to the mean alone, gives 0.906.
    assert sign_flip_test([-0.1, 0.1, -0.1, -1.0, 1.0, 0.1])[0] == 1.0


def test_monte_carlo_sign_flip_is_close_to_the_exact_p_value() -> None:
    rng = np.random.default_rng(5)
    d = rng.normal(0.15, 1.0, size=12)
    exact = _scipy_p(d.tolist())
    approx = sign_flip_test(d, n_permutations=4000, seed=1)[0]  # 2**12 > 4000: Monte Carlo
    assert approx == pytest.approx(exact, abs=0.03)


def test_sign_flip_columns_are_tested_separately() -> None:
    d = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    # All 8 sign patterns: only +++ reaches a mean of 2 (p = 2/8); all-zero differences: p = 1.
    assert sign_flip_test(d).tolist() == [0.25, 1.0]


def test_sign_flip_rejects_a_bad_number_of_permutations() -> None:
    with pytest.raises(UsageError, match="n_permutations must be a positive integer"):
        sign_flip_test([1.0], n_permutations=0)


def test_cohens_dz_by_hand() -> None:
    # d = 1, 2, 3, 6: mean 3, sample variance (4 + 1 + 0 + 9) / 3.
    assert cohens_dz([1.0, 2.0, 3.0, 6.0])[0] == pytest.approx(3 / np.sqrt(14 / 3))
    assert np.isnan(cohens_dz([0.5, 0.5])[0])  # every query moved the same: undefined
    assert np.isnan(cohens_dz([0.5])[0])
    assert cohens_dz([0.0, 0.0])[0] == 0.0


QRELS = Qrels(
    {f"q{i}": {"rel": 1} for i in range(6)},
    {f"q{i}": {"locale": "de" if i < 3 else "fr"} for i in range(6)},
)
# A: the relevant document second everywhere (RR 1/2). B: first in "de", third in "fr".
RUN_A = Run({f"q{i}": {"x": 2.0, "rel": 1.0} for i in range(6)}, "a")
RUN_B = Run(
    {
        **{f"q{i}": {"rel": 3.0} for i in range(3)},
        **{f"q{i}": {"x": 3.0, "y": 2.0, "rel": 1.0} for i in range(3, 6)},
    },
    "b",
)


def test_compare_runs_reports_the_difference_and_its_test_per_slice() -> None:
    rep = compare_runs(QRELS, RUN_A, RUN_B, ["RR"], by="locale", n_boot=500)
    rows = {(r["by"], r["slice"]): r for r in rep.summary}
    de, fr, overall = rows[("locale", "de")], rows[("locale", "fr")], rows[(None, None)]
    assert (de["mean_a"], de["mean_b"]) == (pytest.approx(0.5), pytest.approx(1.0))
    assert de["diff"] == pytest.approx(0.5)
    # Three equal differences: the interval is the point, exact p = 2 * (1/8).
    assert (de["ci_low"], de["ci_high"]) == (pytest.approx(0.5), pytest.approx(0.5))
    assert de["p_value"] == pytest.approx(0.25)
    assert np.isnan(de["effect_size"])
    assert fr["diff"] == pytest.approx(1 / 3 - 1 / 2)
    assert overall["n_queries"] == 6
    assert overall["diff"] == pytest.approx((0.5 * 3 - 1 / 6 * 3) / 6)
    d = np.array([0.5] * 3 + [-1 / 6] * 3)
    assert overall["effect_size"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert overall["p_value"] == pytest.approx(_scipy_p(d.tolist()))
    assert overall["ci_low"] <= overall["diff"] <= overall["ci_high"]


def test_a_run_compared_with_itself_shows_no_difference() -> None:
    rep = compare_runs(QRELS, RUN_A, RUN_A, ["RR", "AP"], n_boot=100)
    for row in rep.summary:
        assert (row["diff"], row["ci_low"], row["ci_high"]) == (0.0, 0.0, 0.0)
        assert (row["p_value"], row["effect_size"]) == (1.0, 0.0)


def test_skip_compares_only_queries_both_runs_answer() -> None:
    partial = Run({"q0": {"rel": 1.0}, "q1": {"rel": 1.0}}, "partial")
    zero = compare_runs(QRELS, RUN_A, partial, ["RR"], n_boot=50).summary[0]
    skip = compare_runs(QRELS, RUN_A, partial, ["RR"], n_boot=50, missing="skip").summary[0]
    assert (zero["n_queries"], zero["mean_b"]) == (6, pytest.approx(2 / 6))
    assert (skip["n_queries"], skip["mean_b"], skip["mean_a"]) == (2, 1.0, 0.5)
