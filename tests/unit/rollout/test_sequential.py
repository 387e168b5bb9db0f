"""The sequential gates: hand-worked values, independent references, properties, error rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from assay._errors import UsageError
from assay.rollout._sequential import (
    Moments,
    compare_means,
    compare_rates,
    compare_tail,
    fixed_horizon_rates,
)


def _waudby_smith_halfwidth(sigma: float, t: float, rho: float, alpha: float) -> float:
    """Waudby-Smith et al. (2021), eq. of the asymptotic CS: written in their form, not ours.

    ``sigma * sqrt(2 (t rho^2 + 1) / (t^2 rho^2) * log(sqrt(t rho^2 + 1) / alpha))`` with ``t``
    the effective number of observations.
    """
    a = t * rho * rho + 1.0
    return sigma * math.sqrt(2.0 * a / (t * t * rho * rho) * math.log(math.sqrt(a) / alpha))


def _mixture_lr_by_quadrature(estimate: float, variance: float, tau: float) -> float:
    """The mixture likelihood ratio as the integral it is defined by (numerical quadrature).

    ``int exp(theta S - theta^2 I / 2) N(theta; 0, tau^2) dtheta`` with ``I = 1/V`` and
    ``S = estimate / V``.
    """
    info, score = 1.0 / variance, estimate / variance

    def integrand(theta: float) -> float:
        return math.exp(theta * score - theta * theta * info / 2.0) * stats.norm.pdf(
            theta, scale=tau
        )

    value, _ = integrate.quad(integrand, -20 * tau, 20 * tau, points=[estimate], limit=200)
    return float(value)


def test_rate_difference_by_hand() -> None:
    # 20 handoffs in 1,000 stable sessions, 40 in 1,000 candidate sessions.
    p_s, p_c = 20.5 / 1001, 40.5 / 1001  # smoothed (x + 0.5) / (n + 1), inside the variance only
    pooled = 60.5 / 2001
    floor = pooled * (1 - pooled)  # no arm's p (1 - p) below the pooled one
    v = max(p_s * (1 - p_s), floor) / 1000 + max(p_c * (1 - p_c), floor) / 1000
    sigma = math.sqrt(floor)
    t = sigma * sigma / v  # the variance V written as sigma^2 / t
    half = _waudby_smith_halfwidth(sigma, t, 0.1, 0.05)
    r = compare_rates(20, 1000, 40, 1000, min_sample=100)
    assert r.estimate == pytest.approx(0.02, abs=1e-15)
    assert (r.low, r.high) == pytest.approx((0.02 - half, 0.02 + half), rel=1e-12)
    # Worked on paper: stable p (1 - p) = 0.020480 * 0.979520 = 0.020061, below the pooled
    # 0.030235 * 0.969765 = 0.029321, so 0.029321; candidate 0.040460 * 0.959540 = 0.038823;
    # V = (0.029321 + 0.038823) / 1000 = 6.8144e-5; sigma = 0.17123, t = 0.029321 / V = 430.28;
    # t rho^2 + 1 = 5.3028, 2 * 5.3028 / (430.28^2 * 0.01) = 0.0057284,
    # log(sqrt(5.3028) / 0.05) = 3.8299, half = 0.17123 * sqrt(0.0057284 * 3.8299) = 0.025363.
    assert v == pytest.approx(6.8144e-5, rel=1e-4)
    assert half == pytest.approx(0.025363, rel=1e-4)
    # 0.02 - 0.025363 < 0: the interval still holds 0, so no decision yet.
    assert r.decision == "continue"
    lam = _mixture_lr_by_quadrature(0.02, v, 0.1 * sigma)
    assert r.p_value == pytest.approx(1.0 / lam, rel=1e-7)
    assert r.p_value > 0.05


def test_a_rare_outcome_in_a_small_arm_is_not_taken_as_certain() -> None:
    # 0 handoffs in 200 candidate sessions against 1.2% of 100,000 stable ones: with its own
    # smoothed variance, (0.5 / 201)(1 - 0.5 / 201) / 200 = 1.24e-5, the candidate would look
    # significantly better; the pooled floor (about 0.0119 * 0.9881 / 200 = 5.9e-5) says no.
    assert compare_rates(1200, 100_000, 0, 200, min_sample=200).decision == "continue"
    own = (0.5 / 201) * (1 - 0.5 / 201) / 200 + (1200.5 / 100_001) * (1 - 1200.5 / 100_001) / 1e5
    pooled = 1200.5 / 100_201
    sigma = math.sqrt(pooled * (1 - pooled))
    without_floor = _waudby_smith_halfwidth(sigma, sigma * sigma / own, 0.1, 0.05)
    assert -0.012 + without_floor < 0  # what the floor prevents: a "promote"


def test_a_clear_worsening_rolls_back_with_reason() -> None:
    r = compare_rates(120, 10_000, 350, 10_000)
    assert r.decision == "rollback"
    assert r.low > 0
    assert "worse" in r.reason
    assert "0.035" in r.reason
    assert "0.012" in r.reason
    assert r.statistic == "msprt-rate-difference"


def test_lower_is_worse_reverses_the_decision() -> None:
    # A thumbs-up rate falling from 3.5% to 1.2% is the regression when lower is worse.
    assert compare_rates(350, 10_000, 120, 10_000).decision == "promote"
    assert compare_rates(350, 10_000, 120, 10_000, direction="lower_is_worse").decision == (
        "rollback"
    )


def test_margin_tolerates_a_small_worsening() -> None:
    # +0.5 points on 20,000 sessions per arm: significant, but within a 1-point margin.
    assert compare_rates(400, 20_000, 500, 20_000).decision == "rollback"
    assert compare_rates(400, 20_000, 500, 20_000, margin=0.01).decision == "promote"


@pytest.mark.parametrize(("stable_n", "cand_n"), [(499, 100_000), (100_000, 499)])
def test_hold_below_the_minimum_sample_in_either_arm(stable_n: int, cand_n: int) -> None:
    # Half of the small arm has the outcome: a huge difference, but too little data.
    events = (stable_n // 2, 0) if stable_n < cand_n else (0, cand_n // 2)
    r = compare_rates(events[0], stable_n, events[1], cand_n, min_sample=500)
    assert r.decision == "hold"
    assert "499" in r.reason
    assert "500 needed" in r.reason
    assert (r.low, r.high, r.p_value) == (-math.inf, math.inf, 1.0)


def test_bad_counts_say_what_came_and_what_to_do() -> None:
    with pytest.raises(UsageError, match=r"0 <= events <= n \(got events=11, n=10\)"):
        compare_rates(1, 10, 11, 10)
    with pytest.raises(UsageError, match="direction must be one of"):
        compare_rates(1, 10, 1, 10, direction="up")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="alpha must be in"):
        compare_rates(1, 10, 1, 10, alpha=1.5)


def test_fixed_horizon_z_matches_pearson_chi_square() -> None:
    # The pooled z-test's two-sided p-value is that of Pearson's chi-square without correction.
    table = [[60, 5000 - 60], [85, 5000 - 85]]
    _chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    r = fixed_horizon_rates(60, 5000, 85, 5000)
    assert r.p_value == pytest.approx(p, rel=1e-10)
    assert r.decision == "rollback"
    # The same data is not enough for the always-valid test: the price of peeking freely.
    assert compare_rates(60, 5000, 85, 5000).decision == "continue"
    # Wald interval by hand: 0.005 +- 1.96 * sqrt(.012 * .988 / 5000 + .017 * .983 / 5000).
    se = math.sqrt(0.012 * 0.988 / 5000 + 0.017 * 0.983 / 5000)
    assert (r.low, r.high) == pytest.approx((0.005 - 1.959964 * se, 0.005 + 1.959964 * se))


def test_means_from_moments_equal_means_from_arrays() -> None:
    rng = np.random.default_rng(3)
    stable, cand = rng.gamma(2.0, 0.01, 800), rng.gamma(2.0, 0.012, 700)
    from_arrays = compare_means(stable, cand)
    from_moments = compare_means(
        Moments(800, float(stable.sum()), float((stable**2).sum())),
        Moments(700, float(cand.sum()), float((cand**2).sum())),
    )
    assert from_arrays.low == pytest.approx(from_moments.low, rel=1e-9)
    assert from_arrays.high == pytest.approx(from_moments.high, rel=1e-9)
    # The Welch variance of the difference, by numpy's ddof=1 variances, in Waudby-Smith's form.
    v = stable.var(ddof=1) / 800 + cand.var(ddof=1) / 700
    sigma = float(np.concatenate([stable, cand]).std(ddof=1))
    half = _waudby_smith_halfwidth(sigma, sigma * sigma / v, 0.1, 0.05)
    d = cand.mean() - stable.mean()
    assert (from_arrays.low, from_arrays.high) == pytest.approx((d - half, d + half), rel=1e-9)


def test_mean_by_hand() -> None:
    # Stable: 1000 sessions costing 1.0 on average with sample variance (2000 - 1000) / 999.
    r = compare_means(Moments(1000, 1000.0, 2000.0), Moments(1000, 1200.0, 2640.0))
    v = (1000 / 999) / 1000 + ((2640 - 1440) / 999) / 1000
    assert r.estimate == pytest.approx(0.2)
    assert r.stable_value == 1.0
    assert r.candidate_value == pytest.approx(1.2)
    sigma2 = (4640 - 2200**2 / 2000) / 1999
    half = _waudby_smith_halfwidth(math.sqrt(sigma2), sigma2 / v, 0.1, 0.05)
    assert (r.low, r.high) == pytest.approx((0.2 - half, 0.2 + half), rel=1e-12)
    assert r.decision == "rollback"


def test_tail_counts_requests_above_the_stable_quantile() -> None:
    stable = np.arange(1, 1001, dtype=float)  # p95 by linear interpolation: 950.05
    cand = np.concatenate([np.full(800, 10.0), np.full(200, 2000.0)])  # 20% above it
    r = compare_tail(stable, cand, quantile=0.95, min_sample=100)
    # Stable: 951..1000 are above 950.05, 50 of 1000; candidate: 200 of 1000.
    reference = compare_rates(50, 1000, 200, 1000, min_sample=100)
    assert r.estimate == pytest.approx(0.15)
    assert (r.low, r.high, r.p_value) == (reference.low, reference.high, reference.p_value)
    assert r.decision == "rollback"
    assert r.statistic == "msprt-tail-exceedance"
    assert "p95 (950.05)" in r.reason


def test_previous_result_narrows_the_interval_and_keeps_the_smallest_p() -> None:
    first = compare_rates(120, 10_000, 160, 10_000)
    second = compare_rates(250, 20_000, 290, 20_000, previous=first)
    alone = compare_rates(250, 20_000, 290, 20_000)
    assert second.low == max(alone.low, first.low)
    assert second.high == min(alone.high, first.high)
    assert second.p_value == min(alone.p_value, first.p_value)


_counts = st.tuples(st.integers(500, 50_000), st.floats(0.0, 1.0)).map(
    lambda t: (round(t[0] * t[1]), t[0])
)


@settings(max_examples=200, deadline=None)
@given(stable=_counts, cand=_counts)
def test_swapping_the_arms_mirrors_the_result(
    stable: tuple[int, int], cand: tuple[int, int]
) -> None:
    r = compare_rates(*stable, *cand)
    s = compare_rates(*cand, *stable)
    assert s.estimate == pytest.approx(-r.estimate, abs=1e-15)
    assert (s.low, s.high) == pytest.approx((-r.high, -r.low), abs=1e-12)
    assert s.p_value == pytest.approx(r.p_value, rel=1e-9)
    mirrored = {"rollback": "promote", "promote": "rollback", "continue": "continue"}
    assert s.decision == mirrored[r.decision]
    # Lower-is-worse on the swapped arms is the same question as higher-is-worse here.
    assert compare_rates(*cand, *stable, direction="lower_is_worse").decision == r.decision
    assert r.low <= r.estimate <= r.high


@settings(max_examples=200, deadline=None)
@given(stable=_counts, cand=_counts, k=st.integers(2, 20))
def test_more_data_at_the_same_rates_narrows_the_interval(
    stable: tuple[int, int], cand: tuple[int, int], k: int
) -> None:
    r = compare_rates(*stable, *cand)
    big = compare_rates(k * stable[0], k * stable[1], k * cand[0], k * cand[1])
    assert big.estimate == pytest.approx(r.estimate, abs=1e-12)
    assert big.high - big.low < r.high - r.low


@settings(max_examples=100, deadline=None)
@given(stable=_counts, cand=_counts, a=st.floats(0.001, 0.2), b=st.floats(0.001, 0.2))
def test_a_smaller_alpha_gives_a_wider_interval(
    stable: tuple[int, int], cand: tuple[int, int], a: float, b: float
) -> None:
    lo_alpha, hi_alpha = sorted((a, b))
    strict = compare_rates(*stable, *cand, alpha=lo_alpha)
    loose = compare_rates(*stable, *cand, alpha=hi_alpha)
    assert strict.low <= loose.low
    assert strict.high >= loose.high


def _null_rollouts(
    runs: int, looks: int, per_look: int, rate: float, seed: int
) -> tuple[float, float]:
    """Share of rollouts of two equal arms rolled back at some look: (sequential, z peeked)."""
    rng = np.random.default_rng(seed)
    x = rng.binomial(per_look, rate, size=(runs, looks, 2)).cumsum(axis=1)
    seq = fixed = 0
    for run in range(runs):
        seq_hit = fixed_hit = False
        previous = None
        for look in range(looks):
            n = per_look * (look + 1)
            xs, xc = int(x[run, look, 0]), int(x[run, look, 1])
            previous = compare_rates(xs, n, xc, n, min_sample=per_look, previous=previous)
            seq_hit |= previous.decision == "rollback"
            fixed_hit |= fixed_horizon_rates(xs, n, xc, n, min_sample=per_look).decision == (
                "rollback"
            )
        seq += seq_hit
        fixed += fixed_hit
    return seq / runs, fixed / runs


def test_false_rollback_rate_by_simulation_stays_under_alpha_while_peeking() -> None:
    # 300 seeded null rollouts, 20 looks of 200 sessions per arm, a 10% rate in both arms.
    seq, fixed = _null_rollouts(runs=300, looks=20, per_look=200, rate=0.10, seed=15)
    slack = 2 * math.sqrt(0.05 * 0.95 / 300)  # two binomial standard errors at 5%
    assert seq <= 0.05 + slack
    # Armitage et al. (1969): 20 looks at a two-sided 5% test reject about 25% of the time,
    # half of that on the "worse" side; one look alone would be 2.5%.
    assert fixed >= 0.08
    assert fixed >= seq + 0.05


def test_a_real_worsening_is_caught_by_simulation() -> None:
    rng = np.random.default_rng(7)
    caught = 0
    for _ in range(100):
        xs = xc = n = 0
        for _ in range(20):
            n += 500
            xs += int(rng.binomial(500, 0.012))
            xc += int(rng.binomial(500, 0.035))
            if compare_rates(xs, n, xc, n).decision == "rollback":
                caught += 1
                break
    assert caught >= 95


def test_rare_outcome_small_candidate_arm_by_simulation_keeps_both_errors_under_alpha() -> None:
    # A canary: 1.2% handoffs in both arms, 30 candidate and 3,000 stable sessions per look,
    # 16 looks, decisions from 200 sessions per arm (the gates' default): neither a roll-back nor
    # a promotion of this equal candidate may happen in more than 5% (+ slack) of 1,000 runs.
    # Without the pooled variance floor, about 8% were wrongly promoted.
    rng = np.random.default_rng(12)
    wrong = 0
    for _ in range(1000):
        xs = xc = ns = nc = 0
        previous = None
        for _ in range(16):
            ns, nc = ns + 3000, nc + 30
            xs += int(rng.binomial(3000, 0.012))
            xc += int(rng.binomial(30, 0.012))
            previous = compare_rates(xs, ns, xc, nc, min_sample=200, previous=previous)
            if previous.decision in ("rollback", "promote"):
                wrong += 1
                break
    assert wrong / 1000 <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 1000)


def test_skewed_costs_by_simulation_keep_errors_under_alpha_and_catch_a_rise() -> None:
    # Cost per session: gamma with shape 0.5 (heavily skewed, as costs are), mean 0.01 in both
    # arms, 400 stable and 100 candidate sessions per look, 20 looks, arms kept as Moments.
    rng = np.random.default_rng(5)

    def run(candidate_mean: float) -> str:
        s = c = Moments(0, 0.0, 0.0)
        previous = None
        for _ in range(20):
            a, b = rng.gamma(0.5, 0.02, 400), rng.gamma(0.5, 2 * candidate_mean, 100)
            s = Moments(s.n + 400, s.total + float(a.sum()), s.total_sq + float(a @ a))
            c = Moments(c.n + 100, c.total + float(b.sum()), c.total_sq + float(b @ b))
            previous = compare_means(s, c, min_sample=200, previous=previous)
            if previous.decision in ("rollback", "promote"):
                return previous.decision
        return "continue"

    null = [run(0.01) for _ in range(300)]
    assert sum(d != "continue" for d in null) / 300 <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 300)
    # 50% dearer: the standardised effect is 0.005 / (0.01 * sqrt(2)) = 0.35 per session.
    dear = [run(0.015) for _ in range(100)]
    assert dear.count("rollback") >= 90
