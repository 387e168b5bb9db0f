"""Drift statistics against independent references (plain Python, scipy, statsmodels).

The sketch tolerances checked here are the ones stated in docs/drift.md.
"""

from __future__ import annotations

import itertools
import math
import statistics
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
import scipy.stats as st
from datasketches import kll_doubles_sketch
from hypothesis import given, settings
from hypothesis import strategies as st_h
from scipy.spatial.distance import jensenshannon
from statsmodels.stats.proportion import proportions_ztest

import assay.drift as drift
from assay._errors import UsageError
from assay.drift import (
    DEFAULT_THRESHOLDS,
    categorical_stats,
    chi_square,
    column_verdict,
    js_categorical,
    js_distance,
    js_sketch,
    ks,
    ks_sketch,
    missingness_change,
    numeric_stats,
    numeric_stats_sketch,
    psi,
    psi_categorical,
    psi_sketch,
    sketch_std,
    unseen_categories,
    wasserstein_normed,
    wasserstein_sketch,
)

# --- plain-Python references (written differently from the library) ----------------------------


def ref_shares(reference: list[float], current: list[float], bins: int) -> tuple[list, list]:
    """Bin shares by counting, with edges picked by rank arithmetic on exact fractions."""
    s = sorted(reference)
    n = len(s)
    edges: list[float] = []
    for j in range(1, bins):
        # smallest x with #(ref <= x) / n >= j / bins: the value at 1-based rank ceil(j n / bins)
        rank = math.ceil(Fraction(j * n, bins))
        e = s[rank - 1]
        if e not in edges:
            edges.append(e)
    edges.sort()

    def shares(xs: list[float]) -> list[float]:
        counts = [0] * (len(edges) + 1)
        for x in xs:
            counts[sum(1 for e in edges if e < x)] += 1
        return [c / len(xs) for c in counts]

    return shares(reference), shares(current)


def ref_psi(r: list[float], c: list[float], eps: float = 1e-4) -> float:
    total = 0.0
    for a, b in zip(r, c, strict=True):
        a, b = (a if a > eps else eps), (b if b > eps else eps)
        total += (b - a) * math.log(b / a)
    return total


def ref_js(r: list[float], c: list[float]) -> float:
    div = 0.0
    for a, b in zip(r, c, strict=True):
        m = (a + b) / 2
        if a:
            div += a * math.log2(a / m) / 2
        if b:
            div += b * math.log2(b / m) / 2
    return math.sqrt(max(div, 0.0))


def ref_ecdf_sup(a: list[float], b: list[float]) -> float:
    return max(
        abs(sum(v <= x for v in a) / len(a) - sum(v <= x for v in b) / len(b)) for x in set(a + b)
    )


def ref_w1(a: list[float], b: list[float]) -> float:
    """W1 as the area between the two empirical CDFs."""
    pts = sorted(set(a + b))
    area = 0.0
    for lo, hi in itertools.pairwise(pts):
        fa = sum(v <= lo for v in a) / len(a)
        fb = sum(v <= lo for v in b) / len(b)
        area += abs(fa - fb) * (hi - lo)
    return area


def sketch_of(values: np.ndarray | list[float], k: int = 200) -> kll_doubles_sketch:
    sk = kll_doubles_sketch(k)
    sk.update(np.asarray(values, dtype=np.float64))
    return sk


samples = st_h.lists(
    st_h.one_of(
        st_h.integers(-5, 5).map(float),  # ties
        st_h.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=60,
)
bins_st = st_h.integers(2, 12)


# --- numeric columns ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(samples, samples, bins_st)
def test_psi_and_js_equal_a_plain_python_binning(a: list[float], b: list[float], bins: int) -> None:
    r, c = ref_shares(a, b, bins)
    assert psi(a, b, bins=bins) == pytest.approx(ref_psi(r, c), rel=1e-9, abs=1e-12)
    assert js_distance(a, b, bins=bins) == pytest.approx(ref_js(r, c), abs=1e-7)
    assert js_distance(a, b, bins=bins) == pytest.approx(
        float(np.nan_to_num(jensenshannon(r, c, base=2))), abs=1e-7
    )


def test_psi_hand_worked_deciles() -> None:
    ref = list(range(1, 11))  # deciles: edges 1..9, one value per bin
    cur = [1, 1, 1, 1, 1, 10, 10, 10, 10, 10]
    # bins (-inf,1] and (9,inf) get 0.5 each; the 8 middle bins are empty (floored at 1e-4)
    expected = 2 * (0.4 * math.log(5)) + 8 * ((1e-4 - 0.1) * math.log(1e-4 / 0.1))
    assert psi(ref, cur) == pytest.approx(expected, rel=1e-12)


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation:RuntimeWarning")
@settings(max_examples=150, deadline=None)
@given(samples, samples)
def test_ks_statistic_is_the_largest_ecdf_gap_and_p_value_is_scipys(
    a: list[float], b: list[float]
) -> None:
    res = ks(a, b)
    assert res.statistic == pytest.approx(ref_ecdf_sup(a, b), abs=1e-12)
    assert res.p_value == pytest.approx(st.ks_2samp(a, b).pvalue, rel=1e-12)


@settings(max_examples=150, deadline=None)
@given(samples, samples)
def test_wasserstein_normed_is_the_cdf_area_over_the_reference_std(
    a: list[float], b: list[float]
) -> None:
    expected = ref_w1(a, b) / max(statistics.pstdev(a), 1e-3)
    assert wasserstein_normed(a, b) == pytest.approx(expected, rel=1e-7, abs=1e-9)
    assert wasserstein_normed(a, b) == pytest.approx(
        st.wasserstein_distance(a, b) / max(np.std(a), 1e-3), rel=1e-9, abs=1e-12
    )


def test_wasserstein_normed_hand_worked() -> None:
    # every unit moves by 1; std of [0, 2] is 1
    assert wasserstein_normed([0, 2], [1, 3]) == 1.0
    # different constants: std floored at 0.001 (Evidently)
    assert wasserstein_normed([5, 5], [6, 6]) == pytest.approx(1000.0)


@pytest.mark.parametrize("fn", [psi, js_distance, wasserstein_normed])
def test_identical_samples_have_zero_distance(fn) -> None:
    x = np.random.default_rng(3).normal(size=500)
    assert fn(x, x.copy()) == 0.0


def test_identical_samples_ks_is_zero_with_p_value_one() -> None:
    x = np.random.default_rng(4).normal(size=300)
    assert tuple(ks(x, x[::-1])) == (0.0, 1.0)


def test_constant_columns() -> None:
    assert psi([3.0] * 5, [3.0] * 7) == 0.0
    assert js_distance([3.0] * 5, [3.0] * 7) == 0.0
    assert wasserstein_normed([3.0] * 5, [3.0] * 7) == 0.0
    # a constant reference gives one edge: (-inf, 3] and (3, inf)
    assert psi([3.0] * 4, [3.0, 3.0, 9.0, 9.0]) == pytest.approx(
        (0.5 - 1) * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    )


def test_nan_and_null_are_dropped_and_counted_as_missing() -> None:
    ref = [1.0, 2.0, float("nan"), 3.0, None]
    cur = pa.array([1.0, None, 2.0, 3.0])
    assert psi(ref, cur) == psi([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert ks(ref, cur) == ks([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    s = numeric_stats(ref, cur)
    assert (s["n_reference"], s["missing_reference"]) == (3, 2)
    assert (s["n_current"], s["missing_current"]) == (3, 1)
    assert s["missing_delta"] == pytest.approx(1 / 4 - 2 / 5)


@pytest.mark.parametrize(
    ("ref", "cur", "fragment"),
    [
        ([], [1.0], "reference has no values"),
        ([1.0], [float("nan"), None], "current has no values"),
        ([1.0, math.inf], [1.0], "infinite"),
        (["a", "b"], [1.0], "numbers"),
    ],
)
@pytest.mark.parametrize("fn", [psi, js_distance, wasserstein_normed, ks, numeric_stats])
def test_bad_numeric_input_is_a_usage_error(fn, ref, cur, fragment) -> None:
    with pytest.raises(UsageError, match=fragment):
        fn(ref, cur)


@pytest.mark.parametrize(("kw", "fragment"), [({"bins": 1}, "bins"), ({"eps": 0.0}, "eps")])
def test_bad_psi_options_are_usage_errors(kw, fragment) -> None:
    with pytest.raises(UsageError, match=fragment):
        psi([1, 2], [1, 2], **kw)


# --- categorical columns ------------------------------------------------------------------------

counts_st = st_h.dictionaries(
    st_h.sampled_from(["a", "b", "c", "d", "e", "<OTHER>"]), st_h.integers(0, 50), min_size=1
).filter(lambda d: sum(d.values()) > 0)


@settings(max_examples=200, deadline=None)
@given(counts_st, counts_st)
def test_chi_square_is_pearsons_homogeneity_test(r: dict, c: dict) -> None:
    cats = sorted(k for k in set(r) | set(c) if r.get(k, 0) + c.get(k, 0) > 0)
    nr, nc = sum(r.values()), sum(c.values())
    stat = 0.0
    for k in cats:
        col = r.get(k, 0) + c.get(k, 0)
        for obs, row in ((r.get(k, 0), nr), (c.get(k, 0), nc)):
            exp = row * col / (nr + nc)
            stat += (obs - exp) ** 2 / exp
    res = chi_square(r, c)
    assert res.statistic == pytest.approx(stat, rel=1e-9, abs=1e-9)
    if len(cats) < 2:
        assert res.p_value == 1.0
    else:
        assert res.p_value == pytest.approx(st.chi2.sf(stat, len(cats) - 1), rel=1e-6, abs=1e-12)
        table = [[r.get(k, 0) for k in cats], [c.get(k, 0) for k in cats]]
        sc = st.chi2_contingency(table, correction=False)
        assert res.p_value == pytest.approx(sc.pvalue, rel=1e-9, abs=1e-15)


@settings(max_examples=200, deadline=None)
@given(counts_st, counts_st)
def test_categorical_psi_and_js_equal_plain_python(r: dict, c: dict) -> None:
    cats = sorted(set(r) | set(c))
    pr = [r.get(k, 0) / sum(r.values()) for k in cats]
    pc = [c.get(k, 0) / sum(c.values()) for k in cats]
    assert psi_categorical(r, c) == pytest.approx(ref_psi(pr, pc), rel=1e-9, abs=1e-12)
    assert js_categorical(r, c) == pytest.approx(ref_js(pr, pc), abs=1e-7)


def test_categorical_hand_worked() -> None:
    # 2 x 2 table [[30, 10], [10, 30]]: every expected count is 20, chi2 = 4 * 100 / 20
    assert chi_square({"a": 30, "b": 10}, {"a": 10, "b": 30}).statistic == pytest.approx(20.0)
    assert psi_categorical({"a": 3, "b": 1}, {"a": 1, "b": 3}) == pytest.approx(math.log(3))
    assert js_categorical({"a": 1}, {"b": 1}) == 1.0
    assert js_categorical({"a": 2, "b": 2}, {"b": 5, "a": 5}) == 0.0
    u = unseen_categories({"a": 5, "b": 0}, {"a": 1, "b": 1, "c": 2, "d": 0})
    assert u == (("c", "b"), 3, 0.75)


def test_two_category_chi_square_is_the_squared_pooled_z() -> None:
    res = chi_square({"null": 10, "value": 90}, {"null": 30, "value": 70})
    z, p = proportions_ztest([30, 10], [100, 100])
    assert res.statistic == pytest.approx(z**2)
    assert missingness_change(10, 100, 30, 100).p_value == pytest.approx(p)


@settings(max_examples=200, deadline=None)
@given(
    st_h.integers(1, 10_000).flatmap(lambda n: st_h.tuples(st_h.integers(0, n), st_h.just(n))),
    st_h.integers(1, 10_000).flatmap(lambda n: st_h.tuples(st_h.integers(0, n), st_h.just(n))),
)
def test_missingness_change_matches_statsmodels(ref, cur) -> None:
    res = missingness_change(ref[0], ref[1], cur[0], cur[1])
    assert res.delta == pytest.approx(cur[0] / cur[1] - ref[0] / ref[1], abs=1e-15)
    if ref[0] + cur[0] in (0, ref[1] + cur[1]):
        assert res.p_value == 1.0
    else:
        _, p = proportions_ztest([cur[0], ref[0]], [cur[1], ref[1]])
        assert res.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: chi_square({}, {"a": 1}), "ref_counts holds no observations"),
        (lambda: chi_square({"a": -1}, {"a": 1}), "integer >= 0"),
        (lambda: js_categorical({"a": 1.5}, {"a": 1}), "whole counts"),
        (lambda: psi_categorical([1, 2], {"a": 1}), "mapping"),
        (lambda: missingness_change(5, 4, 0, 1), "cannot exceed"),
        (lambda: missingness_change(0, 0, 0, 1), ">= 1"),
    ],
)
def test_bad_categorical_input_is_a_usage_error(call, fragment) -> None:
    with pytest.raises(UsageError, match=fragment):
        call()


# --- sketches -----------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    st_h.lists(st_h.integers(-20, 20).map(float), min_size=1, max_size=150),
    st_h.lists(st_h.integers(-20, 20).map(float), min_size=1, max_size=150),
    bins_st,
)
def test_small_sketches_hold_every_value_and_equal_the_exact_statistics(a, b, bins) -> None:
    sa, sb = sketch_of(a), sketch_of(b)
    assert not sa.is_estimation_mode()
    assert psi_sketch(sa, sb, bins=bins) == pytest.approx(psi(a, b, bins=bins), abs=1e-12)
    assert js_sketch(sa, sb, bins=bins) == pytest.approx(js_distance(a, b, bins=bins), abs=1e-7)
    assert ks_sketch(sa, sb).statistic == pytest.approx(ks(a, b).statistic, abs=1e-12)
    assert wasserstein_sketch(sa, sb) == pytest.approx(wasserstein_normed(a, b), rel=1e-9)
    assert sketch_std(sa) == pytest.approx(statistics.pstdev(a), abs=1e-9)


def _pair(seed: int, family: str, shift: float, n: int, m: int):
    rng = np.random.default_rng(seed)
    if family == "normal":
        return rng.normal(size=n), rng.normal(shift, 1 + shift / 2, size=m)
    if family == "exponential":
        return rng.exponential(size=n), rng.exponential(1 + shift, size=m)
    return rng.lognormal(size=n), rng.lognormal(shift, 1, size=m)


large = st_h.tuples(
    st_h.integers(0, 2**32 - 1),
    st_h.sampled_from(["normal", "exponential", "lognormal"]),
    st_h.sampled_from([0.0, 0.0, 0.05, 0.2, 0.5, 1.0]),
    st_h.sampled_from([10_000, 30_000, 100_000]),
    st_h.sampled_from([10_000, 30_000, 100_000]),
)


@settings(max_examples=12, deadline=None)
@given(large)
def test_sketch_statistics_agree_with_exact_within_the_stated_tolerances(case) -> None:
    seed, family, shift, n, m = case
    a, b = _pair(seed, family, shift, n, m)
    sa, sb = sketch_of(a), sketch_of(b)
    eps = sa.normalized_rank_error(False) + sb.normalized_rank_error(False)

    assert abs(ks_sketch(sa, sb).statistic - ks(a, b).statistic) <= eps
    exact_psi = psi(a, b)
    # KLL compacts at random, so the reference's upper edges move between runs: on a heavy
    # tail far from the reference (lognormal, shift 1, PSI 0.89) a sketch was 17% off once.
    assert abs(psi_sketch(sa, sb) - exact_psi) <= 0.03 + 0.2 * exact_psi
    assert abs(js_sketch(sa, sb) - js_distance(a, b)) <= 0.04
    # W1 itself: within (eps_ref + eps_cur) * range, with the exact reference std
    std = float(np.std(a))
    span = max(a.max(), b.max()) - min(a.min(), b.min())
    w_exact_std = wasserstein_sketch(sa, sb, reference_std=std)
    assert abs(w_exact_std - wasserstein_normed(a, b)) <= eps * span / std
    if family != "lognormal":  # heavy tails: the sketch's std estimate is not reliable
        exact_w = wasserstein_normed(a, b)
        assert abs(wasserstein_sketch(sa, sb) - exact_w) <= 0.05 + 0.1 * exact_w


def test_ks_sketch_p_value_up_to_en_1000_is_kolmogorovs_distribution() -> None:
    a, b = _pair(7, "normal", 0.05, 1_500, 1_500)
    sa, sb = sketch_of(a), sketch_of(b)
    assert sa.is_estimation_mode()
    d = ks_sketch(sa, sb)
    assert d.p_value == pytest.approx(st.kstwo.sf(d.statistic, 750), rel=1e-9)
    exact = st.ks_2samp(a, b, method="asymp")
    assert abs(d.statistic - exact.statistic) < 0.027


@settings(max_examples=200, deadline=None)
@given(
    st_h.integers(1_001, 200_000),
    st_h.integers(1_001, 200_000),
    st_h.floats(0.2, 2.5),
)
def test_ks_p_value_above_en_1000_is_within_3_percent_of_kolmogorovs(n, m, scaled) -> None:
    from assay.drift._stats import _ks_p_value

    en = round(n * m / (n + m))
    if en <= 1_000:
        return
    d = scaled / math.sqrt(en)
    exact = float(st.kstwo.sf(d, en))
    if exact < 1e-4:
        return
    assert _ks_p_value(d, float(n), float(m)) == pytest.approx(exact, rel=0.03)


def test_ks_sketch_p_value_above_en_1000_matches_ks_2samp_asymp() -> None:
    a, b = _pair(3, "normal", 0.03, 20_000, 20_000)
    d = ks_sketch(sketch_of(a), sketch_of(b))
    assert d.p_value == pytest.approx(st.kstwo.sf(d.statistic, 10_000), rel=0.03)


def test_sketch_inputs_are_checked() -> None:
    with pytest.raises(UsageError, match="kll_doubles_sketch"):
        psi_sketch([1.0], sketch_of([1.0]))
    with pytest.raises(UsageError, match="empty sketch"):
        ks_sketch(kll_doubles_sketch(200), sketch_of([1.0]))
    with pytest.raises(UsageError, match="reference_std"):
        wasserstein_sketch(sketch_of([1.0]), sketch_of([1.0]), reference_std=-1.0)


def test_identical_sketches_show_no_drift() -> None:
    x = np.random.default_rng(11).normal(size=50_000)
    one = sketch_of(x)
    same = numeric_stats_sketch(one, one)
    assert (same["ks_statistic"], same["ks_p_value"]) == (0.0, 1.0)
    assert (same["psi"], same["js_distance"], same["wasserstein_normed"]) == (0.0, 0.0, 0.0)
    # two sketches of the same data differ by their (randomised) compaction only
    two = sketch_of(x)
    s = numeric_stats_sketch(one, two)
    assert s["ks_statistic"] <= one.normalized_rank_error(False) * 2
    assert not column_verdict(s, "numeric")


# --- verdicts -----------------------------------------------------------------------------------


def test_verdict_uses_a_test_for_small_samples_and_a_distance_for_large_ones() -> None:
    small = {"n_reference": 1000, "n_current": 50_000, "ks_p_value": 0.049}
    assert column_verdict(small, "numeric")
    assert not column_verdict({**small, "ks_p_value": 0.05}, "numeric")
    big = {"n_reference": 1001, "n_current": 1001, "ks_p_value": 1e-9, "wasserstein_normed": 0.099}
    assert not column_verdict(big, "numeric")
    assert column_verdict({**big, "wasserstein_normed": 0.1}, "numeric")
    assert column_verdict({**big, "psi": 0.25}, "numeric")
    cat = {"n_reference": 5000, "n_current": 5000, "js_distance": 0.05, "chi_square_p_value": 0}
    assert not column_verdict(cat, "categorical")
    assert column_verdict({**cat, "js_distance": 0.1}, "categorical")
    assert column_verdict({**cat, "n_current": 20, "chi_square_p_value": 0.01}, "categorical")


def test_verdict_flags_a_missingness_jump_only_when_large_and_significant() -> None:
    base = {"n_reference": 5000, "n_current": 5000, "wasserstein_normed": 0.0}
    assert column_verdict({**base, "missing_delta": -0.12, "missing_p_value": 0.001}, "numeric")
    assert not column_verdict({**base, "missing_delta": 0.09, "missing_p_value": 1e-9}, "numeric")
    assert not column_verdict({**base, "missing_delta": 0.5, "missing_p_value": 0.2}, "numeric")


def test_verdict_thresholds_can_be_overridden_and_are_checked() -> None:
    s = {"n_reference": 5000, "n_current": 5000, "wasserstein_normed": 0.06}
    assert not column_verdict(s, "numeric")
    assert column_verdict(s, "numeric", thresholds={"wasserstein_normed": 0.05})
    with pytest.raises(UsageError, match="unknown thresholds"):
        column_verdict(s, "numeric", thresholds={"wasserstein": 0.05})
    with pytest.raises(UsageError, match="js_distance"):
        column_verdict(s, "categorical")
    with pytest.raises(UsageError, match="kind"):
        column_verdict(s, "text")  # type: ignore[arg-type]
    assert DEFAULT_THRESHOLDS["wasserstein_normed"] == 0.1  # the copy was not changed


def test_no_drift_between_two_samples_of_one_distribution() -> None:
    rng = np.random.default_rng(5)
    flagged = 0
    shares = [0.4, 0.3, 0.2, 0.1]
    for _ in range(20):
        a, b = rng.gamma(2.0, size=5000), rng.gamma(2.0, size=5000)
        flagged += column_verdict(numeric_stats(a, b), "numeric")
        ca = {k: int(v) for k, v in zip("abcd", rng.multinomial(5000, shares), strict=True)}
        cb = {k: int(v) for k, v in zip("abcd", rng.multinomial(5000, shares), strict=True)}
        flagged += column_verdict(categorical_stats(ca, cb), "categorical")
    assert flagged == 0


def test_a_shift_of_a_fifth_of_a_std_is_drift() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=20_000), rng.normal(0.2, 1.0, size=20_000)
    assert column_verdict(numeric_stats_sketch(sketch_of(a), sketch_of(b)), "numeric")
    assert column_verdict(numeric_stats(a, b), "numeric")


def test_public_names() -> None:
    for name in drift.__all__:
        assert hasattr(drift, name)
