"""The design effect: tests of category shares that count users, not events."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as st_h

from assay._errors import UsageError
from assay.drift import categorical_stats, design_effect, missingness_change

counts = st_h.dictionaries(
    st_h.sampled_from(["a", "b", "c", "d"]), st_h.integers(0, 500), min_size=1
).filter(lambda d: sum(d.values()) > 0)


@settings(max_examples=100, deadline=None)
@given(counts, counts, st_h.floats(1.0, 50.0))
def test_the_chi_square_is_divided_by_the_design_effect(ref, cur, deff) -> None:
    cats = sorted({k for k, v in ref.items() if v} | {k for k, v in cur.items() if v})
    got = categorical_stats(ref, cur, design_effect=deff)
    if len(cats) < 2:
        assert (got["chi_square"], got["chi_square_p_value"]) == (0.0, 1.0)
        return
    table = np.array([[ref.get(k, 0) for k in cats], [cur.get(k, 0) for k in cats]])
    pearson = st.chi2_contingency(table, correction=False).statistic
    assert got["chi_square"] == pytest.approx(pearson / deff, rel=1e-9, abs=1e-12)
    assert got["chi_square_p_value"] == pytest.approx(
        st.chi2.sf(pearson / deff, len(cats) - 1), rel=1e-6, abs=1e-12
    )
    assert got["design_effect"] == deff


def test_missingness_z_is_divided_by_the_root_of_the_design_effect() -> None:
    # 10 of 100 vs 30 of 100: pooled 0.2, z = 0.2 / sqrt(0.16 * 0.02) = 3.5355 (hand-worked);
    # with deff 4, z = 1.7678 and p = 2 * (1 - Phi(1.7678)) = 0.0771.
    plain = missingness_change(10, 100, 30, 100)
    assert plain.p_value == pytest.approx(2 * st.norm.sf(0.2 / math.sqrt(0.0032)), rel=1e-9)
    clustered = missingness_change(10, 100, 30, 100, design_effect=4.0)
    assert clustered.delta == pytest.approx(0.2)
    assert clustered.p_value == pytest.approx(0.0771, abs=5e-4)


def test_design_effect_is_kishs_for_clusters_of_unequal_size() -> None:
    # sizes 1, 2, 3, 6: sum 12, squares 1 + 4 + 9 + 36 = 50, deff = 50 / 12 (hand-worked)
    assert design_effect(12, 50) == pytest.approx(50 / 12)
    assert design_effect(1000, 1000 * 20) == 20.0  # 50 users of 20 events
    assert design_effect(10, 10) == 1.0  # one event each
    assert design_effect(0, 0) == 1.0
    # a column on a random tenth of the rows: clusters of 2 -> 0.1 * 20 + 0.9
    assert design_effect(1000, 20_000, share=0.1) == pytest.approx(2.9)
    with pytest.raises(UsageError, match="rows must be an integer"):
        design_effect(-1, 5)
    with pytest.raises(UsageError, match="share must be in"):
        design_effect(10, 10, share=0.0)
    # a known intra-user correlation: 1 + rho (deff - 1)
    assert design_effect(1000, 20_000, clustering=0.25) == pytest.approx(1 + 0.25 * 19)
    with pytest.raises(UsageError, match="clustering must be in"):
        design_effect(10, 10, clustering=1.5)
    with pytest.raises(UsageError, match="design_effect must be a finite number >= 1"):
        categorical_stats({"a": 1}, {"a": 1}, design_effect=0.5)


def _week(
    rng: np.random.Generator, shares: np.ndarray, users: int, skewed: bool = False
) -> tuple[dict, np.ndarray]:
    """Events of ``users`` users, each with one fixed category; per-user event counts are
    Poisson (mean 12) or, ``skewed``, geometric (mean 12, squared CV 0.92)."""
    cats = rng.choice(len(shares), size=users, p=shares)
    events = rng.geometric(1 / 12, size=users) if skewed else 1 + rng.poisson(11, size=users)
    out = np.bincount(cats, weights=events, minlength=len(shares)).astype(int)
    return {f"c{i}": int(n) for i, n in enumerate(out) if n}, events


SHARES = np.array([0.5, 0.3, 0.15, 0.05])


def _false_alarms(skewed: bool, kish: bool) -> tuple[float, float]:
    rng = np.random.default_rng(20261127)
    raw = corrected = 0
    trials = 400
    for _ in range(trials):
        ref, e_ref = _week(rng, SHARES, 60, skewed)
        cur, e_cur = _week(rng, SHARES, 60, skewed)
        sizes = np.concatenate([e_ref, e_cur])
        if kish:
            deff = design_effect(int(sizes.sum()), float(np.sum(sizes**2)))
        else:  # events per user: right for equal sizes only
            deff = float(sizes.sum()) / len(sizes)
        raw += categorical_stats(ref, cur)["chi_square_p_value"] < 0.05
        corrected += categorical_stats(ref, cur, design_effect=deff)["chi_square_p_value"] < 0.05
    return raw / trials, corrected / trials


def test_on_clustered_data_without_change_the_corrected_test_holds_its_level() -> None:
    """A per-user attribute (locale): users, not events, are the sample. Without the
    correction the test flags most quiet weeks; with it, about its 5 % level."""
    raw, corrected = _false_alarms(skewed=False, kish=True)
    assert raw > 0.5
    assert corrected <= 0.09


def test_unequal_cluster_sizes_need_the_sum_of_squares() -> None:
    """With skewed activity, events per user understate the design effect by 1 + cv^2 of the
    users' counts; Kish's sum of squares over the sum holds the level."""
    _, mean_only = _false_alarms(skewed=True, kish=False)
    _, kish = _false_alarms(skewed=True, kish=True)
    assert mean_only > 0.12
    assert kish <= 0.09


def test_on_clustered_data_a_real_shift_is_still_found() -> None:
    rng = np.random.default_rng(7)
    found = 0
    for _ in range(100):
        ref, e_ref = _week(rng, SHARES, 200)
        cur, e_cur = _week(rng, np.array([0.2, 0.3, 0.15, 0.35]), 200)
        sizes = np.concatenate([e_ref, e_cur])
        deff = design_effect(int(sizes.sum()), float(np.sum(sizes**2)))
        found += categorical_stats(ref, cur, design_effect=deff)["chi_square_p_value"] < 0.05
    assert found >= 90


def test_the_ams_sketch_estimates_the_sum_of_squares_and_merges_exactly() -> None:
    from assay.profiles._f2 import f2_estimate, f2_sketches, merge_f2

    rng = np.random.default_rng(3)
    users = [f"user-{i}" for i in range(500)]
    day1 = rng.geometric(0.1, size=500)
    day2 = rng.geometric(0.2, size=500)
    one = f2_sketches(np.zeros(500, dtype=int), users, day1, 1)[0]
    two = f2_sketches(np.zeros(500, dtype=int), users, day2, 1)[0]
    both = f2_sketches(np.zeros(500, dtype=int), users, day1 + day2, 1)[0]
    # linear: the merge of the days is the sketch of the summed counts, exactly
    assert merge_f2([one, two]) == both
    exact = float(np.sum((day1 + day2) ** 2))  # a user's days add before they are squared
    assert f2_estimate(both) == pytest.approx(exact, rel=3 * (2 / 128) ** 0.5)
    assert f2_estimate(both) > float(np.sum(day1**2) + np.sum(day2**2))


def _user_days(rng: np.random.Generator, users: int, days: int, per_user: bool, shares):
    """Events of users over days: per user-day a Poisson number of events (mean 6), each
    with the user's own category (``per_user``) or an independent draw. Returns the item
    counts, the items' user-days, the user-days and each user's total events."""
    own = rng.choice(len(shares), size=users, p=shares)
    counts = np.zeros(len(shares), dtype=int)
    item_days = np.zeros(len(shares), dtype=int)
    user_days = 0
    totals = np.zeros(users, dtype=int)
    for _ in range(days):
        for u in range(users):
            if rng.random() < 0.5:
                continue
            m = 1 + rng.poisson(5)
            cats = np.full(m, own[u]) if per_user else rng.choice(len(shares), size=m, p=shares)
            counts += np.bincount(cats, minlength=len(shares))
            item_days += np.bincount(cats, minlength=len(shares)) > 0
            user_days += 1
            totals[u] += m
    names = [f"c{i}" for i in range(len(shares))]
    return (
        {n: int(c) for n, c in zip(names, counts, strict=True) if c},
        {n: int(v) for n, v in zip(names, item_days, strict=True) if v},
        user_days,
        totals[totals > 0],
    )


def test_the_bound_costs_per_event_columns_their_power_a_known_rho_restores_it() -> None:
    """Per-event categories (intent drawn for each event): the bound rho = 1 divides by the
    users' whole design effect and misses the shifts; with their rho = 0 the test keeps its
    power and its level. (The drift report uses the bound: profiles cannot tell rho.)"""
    rng = np.random.default_rng(5)
    before, after = np.array([0.4, 0.3, 0.2, 0.1]), np.array([0.3, 0.3, 0.2, 0.2])
    found_bound = found_known = quiet_alarms = 0
    for _ in range(40):
        c1, _, _, t1 = _user_days(rng, 40, 7, False, before)
        c2, _, _, t2 = _user_days(rng, 40, 7, False, after)
        c3, _, _, _ = _user_days(rng, 40, 7, False, before)
        rows = int(t1.sum() + t2.sum())
        squares = float(np.sum(t1**2) + np.sum(t2**2))
        bound = design_effect(rows, squares)
        known = design_effect(rows, squares, clustering=0.0)
        assert known == 1.0
        found_bound += categorical_stats(c1, c2, design_effect=bound)["chi_square_p_value"] < 0.05
        found_known += categorical_stats(c1, c2, design_effect=known)["chi_square_p_value"] < 0.05
        quiet_alarms += categorical_stats(c1, c3)["chi_square_p_value"] < 0.05
    assert found_known >= 36
    assert found_bound <= 20
    assert quiet_alarms <= 5
