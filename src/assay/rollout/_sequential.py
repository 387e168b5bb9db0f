"""Sequential tests for rollout gates: look at every evaluation, keep false alarms bounded.

A canary is evaluated again and again (every few minutes, at every traffic step). A fixed-horizon
test (the two-proportion z-test, a t-test) controls its error rate only if it is looked at
**once**; looked at after every batch, "p < 0.05 at some look" happens far more often than 5% of
the time when nothing is wrong (Armitage, McPherson and Rowe 1969: about 25% two-sided after 20
looks). :func:`fixed_horizon_rates` is that peeked test, kept for comparison.

The statistic: a normal-mixture sequential test on the difference
------------------------------------------------------------------
Every gate compares one number between the candidate and the stable version: the difference
``d = candidate - stable`` of two rates (handoffs per session, thumbs-down per rated answer,
errors per request: counts over counts, never averages of per-tenant averages) or of two means
(cost per session, latency). With cumulative data at an evaluation:

- ``d_hat`` is the observed difference and ``V = s_c^2 / n_c + s_s^2 / n_s`` its variance, with the
  plug-in per-observation variances (``p(1 - p)`` for a rate, the sample variance for a mean);
  the rates in ``V`` are smoothed as ``(x + 0.5) / (n + 1)`` so that zero events never give a zero
  variance, and each arm's ``p(1 - p)`` is at least the pooled one of both arms. That floor
  matters for rare outcomes in a small arm (a 1.2% handoff rate in 200 candidate sessions is 2.4
  handoffs): an arm that by chance saw few events would otherwise get a too-small variance, and
  a good-looking but equal candidate was "promoted" 7.6% of the time at ``min_sample=200`` in
  ``benchmarks/rollout_sequential.py``; with the floor, 0.1%.
- Under a true difference ``theta``, ``S = (d_hat - theta) / V`` behaves like a Brownian motion run
  in *information time* ``I = 1 / V`` (the "canonical joint distribution" of group-sequential
  statistics, Jennison and Turnbull 2000, ch. 3; it holds with unequal and changing arm sizes, as
  long as the split does not depend on the outcomes). ``exp(lambda S - lambda^2 I / 2)`` is then a
  martingale for every ``lambda``, and so is its average over ``lambda ~ N(0, 1 / tau^2)``-scaled
  alternatives: the **mixture likelihood ratio** (Robbins 1970; the mSPRT of Johari, Koomen,
  Pekelis and Walsh 2017/2022, "Always valid inference", used by Optimizely)::

      Lambda(theta) = sqrt(V / (V + tau^2)) * exp(tau^2 (d_hat - theta)^2 / (2 V (V + tau^2)))

- Ville's inequality bounds the chance that this ever exceeds ``1 / alpha``, **over all looks at
  once**, by ``alpha``. So:

  - the **always-valid p-value** of ``theta`` is ``min(1, 1 / Lambda(theta))`` (and its running
    minimum over the looks, when the previous result is passed in);
  - the **confidence sequence** is every ``theta`` with ``Lambda(theta) < 1 / alpha``::

        d_hat +- sqrt(V (V + tau^2) / tau^2 * (2 log(1 / alpha) + log((V + tau^2) / V)))

    which covers the true difference at every look simultaneously with probability at least
    ``1 - alpha``. With ``tau = rho * sigma`` this is the asymptotic confidence sequence of
    Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas 2021 ("Time-uniform central limit theory and
    asymptotic confidence sequences"), who prove it valid with plug-in variances as the samples
    grow; the normal-mixture boundary itself is Howard, Ramdas, McAuliffe and Sekhon 2021
    ("Time-uniform, nonparametric, nonasymptotic confidence sequences"), eq. (14).

- ``tau`` sets where the test is most sensitive: here ``tau = rho * sigma``, with ``sigma`` the
  pooled per-observation standard deviation of both arms and ``rho`` (default
  :data:`DEFAULT_RHO`) a standardised effect size. Any fixed ``rho`` keeps the guarantee; a
  ``rho`` near the effect you expect to see makes decisions sooner.

Decisions
---------
``margin`` is the worsening you tolerate (0 by default), in the metric's units; ``direction`` says
whether higher is worse (handoff, errors, latency, cost) or lower is worse.

- ``hold``: fewer than ``min_sample`` observations in either arm; no decision is made, whatever the
  numbers (the asymptotics need a minimum sample, and one early unlucky batch must not decide).
- ``rollback``: the whole interval is worse than ``margin``: the candidate is worse than the stable
  version by more than the tolerated amount, at confidence ``1 - alpha`` across all looks.
- ``promote``: the whole interval is better than ``margin``: the candidate is not worse by more
  than the tolerated amount (non-inferiority). With ``margin = 0`` this asks for a significant
  improvement; set a margin for a guardrail whose aim is "not worse".
- ``continue``: neither yet.

The p-value tests ``theta = margin`` (on the worse side), so ``p < alpha`` exactly when the
decision is ``rollback`` or ``promote``. The chance of any wrong decision (either side) over the
whole rollout is at most ``alpha``, asymptotically; ``benchmarks/rollout_sequential.py`` measures
it on realistic canary traffic.

Latency percentiles
-------------------
:func:`compare_tail` turns "is the candidate's p95 worse?" into a rate: ``q`` is the stable
version's 95th percentile, and the gate compares the share of candidate requests slower than
``q`` with the share of stable requests slower than ``q`` (5% by construction) through
:func:`compare_rates`. This is valid because the sampling error of an estimated quantile is that
of a proportion (Bahadur's representation: ``F(q_hat) - 0.95`` is asymptotically the mean of
``n_s`` Bernoulli(0.05) deviations), so the stable arm's count carries exactly the variance the
estimated threshold adds. A slower candidate puts more than 5% of its requests above ``q``.

Examples
--------
>>> r = compare_rates(60, 5000, 175, 5000)
>>> r.decision, round(r.estimate, 3)
('rollback', 0.023)
>>> compare_rates(1, 100, 3, 100).decision
'hold'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import stats

from assay._errors import UsageError

Decision: TypeAlias = Literal["rollback", "promote", "continue", "hold"]
Direction: TypeAlias = Literal["higher_is_worse", "lower_is_worse"]

#: Default level: the chance of a wrong roll-back (or promotion) over the whole rollout.
DEFAULT_ALPHA = 0.05
#: Default minimum number of observations (sessions, requests) in each arm before any decision.
DEFAULT_MIN_SAMPLE = 500
#: Default standardised mixture scale: ``tau = rho * sigma``; tuned for effects of about a
#: tenth of a standard deviation (a handoff rate from 1.2% to 2.3% is 0.1 sigma).
DEFAULT_RHO = 0.1

_DIRECTIONS = ("higher_is_worse", "lower_is_worse")
# The smoothing of rates inside the variance only: (x + 0.5) / (n + 1).
_SMOOTH = 0.5


@dataclass(frozen=True)
class SequentialResult:
    """One gate's evidence at one evaluation.

    Attributes
    ----------
    statistic : str
        The test, e.g. ``"msprt-rate-difference"``.
    estimate : float
        ``candidate - stable`` (rates, means, or tail shares).
    low, high : float
        The always-valid interval of the difference (for the fixed-horizon test, the ordinary
        95%-style Wald interval, valid at one look only).
    p_value : float
        The always-valid p-value of "difference = margin" (fixed-horizon: the ordinary one).
    decision : {"rollback", "promote", "continue", "hold"}
    reason : str
        The decision in plain words, with the numbers.
    stable_n, candidate_n : int
        Observations in each arm.
    stable_value, candidate_value : float
        Each arm's rate or mean.
    """

    statistic: str
    estimate: float
    low: float
    high: float
    p_value: float
    decision: Decision
    reason: str
    stable_n: int
    candidate_n: int
    stable_value: float
    candidate_value: float


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squares of one arm: what a query can return for a mean.

    Examples
    --------
    >>> Moments.of([1.0, 2.0, 3.0])
    Moments(n=3, total=6.0, total_sq=14.0)
    """

    n: int
    total: float
    total_sq: float

    @classmethod
    def of(cls, values: npt.ArrayLike) -> Moments:
        """The moments of an array of observations (non-finite values are an error)."""
        x = np.asarray(values, dtype=np.float64).ravel()
        if not np.all(np.isfinite(x)):
            raise UsageError(
                f"values must be finite (got {int(np.sum(~np.isfinite(x)))} NaN or infinite "
                "of {x.size}); drop them before comparing"
            )
        return cls(int(x.size), float(x.sum()), float(np.dot(x, x)))

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Sample variance (``n - 1`` denominator), 0 below two observations, never negative."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))


# --- the mixture boundary ---------------------------------------------------------------------


def mixture_halfwidth(variance: float, tau2: float, alpha: float) -> float:
    """Half-width of the normal-mixture confidence sequence at variance ``V`` of the estimate.

    ``sqrt(V (V + tau^2) / tau^2 * (2 log(1/alpha) + log((V + tau^2) / V)))``; infinite when
    ``V`` is infinite, 0 when ``V`` is 0.

    Examples
    --------
    >>> round(mixture_halfwidth(1.0, 1.0, 0.05), 4)
    3.6564
    """
    if variance <= 0.0:
        return 0.0
    if not math.isfinite(variance):
        return math.inf
    return math.sqrt(
        variance
        * (variance + tau2)
        / tau2
        * (2.0 * math.log(1.0 / alpha) + math.log1p(tau2 / variance))
    )


def mixture_p_value(difference: float, variance: float, tau2: float) -> float:
    """``min(1, 1 / Lambda)``: the always-valid p-value of a difference from the null value.

    Examples
    --------
    >>> round(mixture_p_value(3.6564, 1.0, 1.0), 4)
    0.05
    """
    if variance <= 0.0:
        return 1.0 if difference == 0.0 else 0.0
    log_lambda = 0.5 * math.log(variance / (variance + tau2)) + tau2 * difference**2 / (
        2.0 * variance * (variance + tau2)
    )
    return 1.0 if log_lambda <= 0.0 else math.exp(-log_lambda)


# --- inputs and decisions ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Setup:
    """One comparison's arms (count, rate or mean) and options, validated."""

    statistic: str
    stable: tuple[int, float]
    candidate: tuple[int, float]
    alpha: float
    min_sample: int
    margin: float
    direction: str

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise UsageError(f"alpha must be in (0, 1) (got {self.alpha!r}); 0.05 is usual")
        if self.min_sample < 1:
            raise UsageError(f"min_sample must be at least 1 (got {self.min_sample!r})")
        if not (math.isfinite(self.margin) and self.margin >= 0.0):
            raise UsageError(
                f"margin must be a finite tolerated worsening >= 0 (got {self.margin!r}); the "
                "direction argument says which way is worse"
            )
        if self.direction not in _DIRECTIONS:
            raise UsageError(f"direction must be one of {_DIRECTIONS} (got {self.direction!r})")

    @classmethod
    def of_counts(
        cls,
        statistic: str,
        counts: tuple[int, int, int, int],
        alpha: float,
        min_sample: int,
        margin: float,
        direction: str,
    ) -> _Setup:
        """The setup of a rate comparison: counts (stable events, n, candidate events, n)."""
        arms = []
        for events, n, arm in ((*counts[:2], "stable"), (*counts[2:], "candidate")):
            if n < 0 or events < 0 or events > n:
                raise UsageError(
                    f"{arm} counts must satisfy 0 <= events <= n (got events={events}, n={n}); "
                    "pass counts of sessions with the event, not of events per session"
                )
            arms.append((n, events / n if n else math.nan))
        return cls(statistic, arms[0], arms[1], alpha, min_sample, margin, direction)

    @property
    def sign(self) -> float:
        """+1 when higher is worse, -1 when lower is worse."""
        return 1.0 if self.direction == "higher_is_worse" else -1.0

    @property
    def enough(self) -> bool:
        return min(self.stable[0], self.candidate[0]) >= self.min_sample

    @property
    def estimate(self) -> float:
        return self.candidate[1] - self.stable[1]

    def hold(self) -> SequentialResult:
        """The answer below the minimum sample: no interval, no decision."""
        return self.decide(low=-math.inf, high=math.inf, p_value=1.0, interval_name="interval")

    def decide(
        self,
        *,
        low: float,
        high: float,
        p_value: float,
        interval_name: str,
        proven: tuple[bool, bool] | None = None,
    ) -> SequentialResult:
        """The decision from the interval, or from ``proven`` = (worse, not worse) when given."""
        (n_s, v_s), (n_c, v_c) = self.stable, self.candidate
        bound = self.sign * self.margin  # the worse-side edge of the tolerated region
        if proven is None:
            above, below = low > bound, high < bound
            proven = (above, below) if self.sign > 0 else (below, above)
        estimate, margin = self.estimate, self.margin
        span = f"{interval_name} [{low:.6g}, {high:.6g}]"
        numbers = f"candidate {v_c:.6g} vs stable {v_s:.6g} (difference {estimate:+.6g}; {span})"
        decision: Decision
        if not self.enough:
            decision = "hold"
            reason = (
                f"not enough data: {n_c} candidate and {n_s} stable observations, "
                f"{self.min_sample} needed in each before deciding"
            )
        elif proven[0]:
            decision = "rollback"
            reason = f"candidate worse than stable by more than {margin:g}: {numbers}"
        elif proven[1]:
            decision = "promote"
            reason = f"candidate not worse than stable by more than {margin:g}: {numbers}"
        else:
            decision = "continue"
            reason = f"no decision yet: the interval still contains {bound:g}: {numbers}"
        return SequentialResult(
            statistic=self.statistic,
            estimate=estimate,
            low=low,
            high=high,
            p_value=p_value,
            decision=decision,
            reason=reason,
            stable_n=n_s,
            candidate_n=n_c,
            stable_value=v_s,
            candidate_value=v_c,
        )

    def sequential(
        self, *, variance: float, sigma2: float, rho: float, previous: SequentialResult | None
    ) -> SequentialResult:
        """The normal-mixture interval and p-value of the module docstring, then the decision."""
        if not (math.isfinite(rho) and rho > 0.0):
            raise UsageError(
                f"rho must be a finite positive effect size (got {rho!r}); 0.1 is usual"
            )
        # A zero pooled variance (every observation equal in both arms) leaves nothing to mix
        # over; the tiny floor keeps the formulas finite, the interval collapses on the estimate.
        tau2 = rho * rho * max(sigma2, 1e-300)
        half = mixture_halfwidth(variance, tau2, self.alpha)
        low, high = self.estimate - half, self.estimate + half
        p_value = mixture_p_value(self.estimate - self.sign * self.margin, variance, tau2)
        if previous is not None and previous.decision != "hold":
            # The running intersection and running minimum stay valid: every look's interval
            # covers at once. An empty intersection means the model is off (the data drifted);
            # the current interval is kept rather than inventing one.
            if max(low, previous.low) <= min(high, previous.high):
                low, high = max(low, previous.low), min(high, previous.high)
            p_value = min(p_value, previous.p_value)
        return self.decide(
            low=low,
            high=high,
            p_value=p_value,
            interval_name=f"always-valid {_percent(1 - self.alpha)} interval",
        )


def _rate_variance(events: int, n: int) -> float:
    p = (events + _SMOOTH) / (n + 2 * _SMOOTH)
    return p * (1.0 - p)


# --- public tests -----------------------------------------------------------------------------


def compare_rates(
    stable_events: int,
    stable_n: int,
    cand_events: int,
    cand_n: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_sample: int = DEFAULT_MIN_SAMPLE,
    margin: float = 0.0,
    direction: Direction = "higher_is_worse",
    rho: float = DEFAULT_RHO,
    previous: SequentialResult | None = None,
) -> SequentialResult:
    """Always-valid comparison of two rates (candidate minus stable), decided at any look.

    Parameters
    ----------
    stable_events, stable_n, cand_events, cand_n : int
        Cumulative counts since the rollout started: observations with the outcome (sessions
        with a handoff, rated answers with a thumbs-down, requests with an error) and
        observations in all, per arm.
    alpha : float
        Chance of a wrong roll-back over the whole rollout, however often it is evaluated.
    min_sample : int
        Observations needed in each arm before any decision (``hold`` before).
    margin : float
        Tolerated worsening, in rate units (0.005 = half a percentage point).
    direction : {"higher_is_worse", "lower_is_worse"}
    rho : float
        Mixture scale in standard deviations (see the module docstring).
    previous : SequentialResult, optional
        This gate's result at the previous evaluation, to carry the running intersection of
        intervals and the running minimum p-value.

    Returns
    -------
    SequentialResult
        ``statistic="msprt-rate-difference"``.

    Examples
    --------
    >>> r = compare_rates(60, 5000, 61, 5000)
    >>> r.decision, round(r.low, 4), round(r.high, 4)
    ('continue', -0.0066, 0.007)
    """
    counts = (stable_events, stable_n, cand_events, cand_n)
    setup = _Setup.of_counts("msprt-rate-difference", counts, alpha, min_sample, margin, direction)
    if not setup.enough:
        return setup.hold()
    pooled = _rate_variance(stable_events + cand_events, stable_n + cand_n)
    return setup.sequential(
        variance=max(_rate_variance(stable_events, stable_n), pooled) / stable_n
        + max(_rate_variance(cand_events, cand_n), pooled) / cand_n,
        sigma2=pooled,
        rho=rho,
        previous=previous,
    )


def compare_means(
    stable: Moments | npt.ArrayLike,
    candidate: Moments | npt.ArrayLike,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_sample: int = DEFAULT_MIN_SAMPLE,
    margin: float = 0.0,
    direction: Direction = "higher_is_worse",
    rho: float = DEFAULT_RHO,
    previous: SequentialResult | None = None,
) -> SequentialResult:
    """Always-valid comparison of two means (cost per session, mean latency).

    Each arm is either its :class:`Moments` (count, sum, sum of squares: what a SQL query
    returns) or an array of its observations. Options as in :func:`compare_rates`; ``margin``
    is in the metric's units. At least two observations per arm are needed (a variance).

    Examples
    --------
    >>> r = compare_means(Moments(1000, 1000.0, 2000.0), Moments(1000, 1200.0, 2640.0))
    >>> r.decision, round(r.estimate, 3)
    ('rollback', 0.2)
    """
    s = stable if isinstance(stable, Moments) else Moments.of(stable)
    c = candidate if isinstance(candidate, Moments) else Moments.of(candidate)
    for m, arm in ((s, "stable"), (c, "candidate")):
        if m.n < 0 or m.total_sq < 0 or not (math.isfinite(m.total) and math.isfinite(m.total_sq)):
            raise UsageError(
                f"{arm} moments must have n >= 0, finite sums and a sum of squares >= 0 "
                f"(got n={m.n}, total={m.total!r}, total_sq={m.total_sq!r})"
            )
    setup = _Setup(
        statistic="msprt-mean-difference",
        stable=(s.n, s.mean),
        candidate=(c.n, c.mean),
        alpha=alpha,
        min_sample=max(min_sample, 2),
        margin=margin,
        direction=direction,
    )
    if not setup.enough:
        return setup.hold()
    pooled = Moments(s.n + c.n, s.total + c.total, s.total_sq + c.total_sq)
    return setup.sequential(
        variance=s.variance / s.n + c.variance / c.n,
        sigma2=pooled.variance,
        rho=rho,
        previous=previous,
    )


def compare_tail(
    stable_values: npt.ArrayLike,
    candidate_values: npt.ArrayLike,
    *,
    quantile: float = 0.95,
    alpha: float = DEFAULT_ALPHA,
    min_sample: int = DEFAULT_MIN_SAMPLE,
    margin: float = 0.0,
    rho: float = DEFAULT_RHO,
    previous: SequentialResult | None = None,
) -> SequentialResult:
    """Always-valid test that the candidate's tail (p95, p99 latency) is worse than stable's.

    ``q`` is the stable sample's ``quantile`` (numpy's default, linear interpolation); the
    result is :func:`compare_rates` of the stable and candidate counts of values strictly above
    ``q`` (statistic ``"msprt-tail-exceedance"``); its estimate is the candidate's share above
    ``q`` minus the stable share (about ``1 - quantile``). Why this is valid: module docstring.
    Higher values are worse; ``margin`` is in share units (0.01: one point more than 5%).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> stable = rng.lognormal(5.0, 0.5, 4000)
    >>> compare_tail(stable, 1.3 * rng.lognormal(5.0, 0.5, 4000)).decision
    'rollback'
    """
    if not 0.0 < quantile < 1.0:
        raise UsageError(f"quantile must be in (0, 1) (got {quantile!r}); 0.95 for p95")
    s = np.asarray(stable_values, dtype=np.float64).ravel()
    c = np.asarray(candidate_values, dtype=np.float64).ravel()
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(c))):
        raise UsageError("latencies must be finite; drop NaN or infinite values before comparing")
    q = float(np.quantile(s, quantile)) if s.size else math.inf
    result = compare_rates(
        int(np.sum(s > q)),
        int(s.size),
        int(np.sum(c > q)),
        int(c.size),
        alpha=alpha,
        min_sample=min_sample,
        margin=margin,
        rho=rho,
        previous=previous,
    )
    return SequentialResult(
        **{
            **result.__dict__,
            "statistic": "msprt-tail-exceedance",
            "reason": f"share above the stable p{quantile * 100:g} ({q:.6g}): {result.reason}",
        }
    )


def fixed_horizon_rates(
    stable_events: int,
    stable_n: int,
    cand_events: int,
    cand_n: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_sample: int = DEFAULT_MIN_SAMPLE,
    margin: float = 0.0,
    direction: Direction = "higher_is_worse",
) -> SequentialResult:
    """The classic two-proportion z-test, for comparison only: valid at **one** look.

    ``z = (d_hat - m) / se``: with ``margin = 0`` the pooled standard error
    ``sqrt(p (1 - p) (1/n_s + 1/n_c))`` of the usual test (its ``z^2`` is Pearson's chi-square of
    the 2x2 table), else the unpooled one. Two-sided ``p``; ``rollback`` when ``p < alpha`` on
    the worse side, ``promote`` on the better side. The interval is the Wald interval at the same
    level. Evaluated after every batch, its false roll-back rate grows with the number of looks.

    Examples
    --------
    >>> r = fixed_horizon_rates(60, 5000, 85, 5000)
    >>> r.decision, round(r.p_value, 4)
    ('rollback', 0.0365)
    """
    counts = (stable_events, stable_n, cand_events, cand_n)
    setup = _Setup.of_counts("fixed-horizon-z", counts, alpha, min_sample, margin, direction)
    if not setup.enough:
        return setup.hold()
    p_s, p_c = setup.stable[1], setup.candidate[1]
    diff = setup.estimate - setup.sign * margin
    unpooled = math.sqrt(p_s * (1 - p_s) / stable_n + p_c * (1 - p_c) / cand_n)
    pooled_p = (stable_events + cand_events) / (stable_n + cand_n)
    pooled = math.sqrt(pooled_p * (1 - pooled_p) * (1 / stable_n + 1 / cand_n))
    se = pooled if margin == 0.0 else unpooled
    # No variance at all (no events, or all events, in both arms): p is 1 exactly at the null.
    p_value = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0.0 else float(diff == 0.0)
    zc = float(stats.norm.isf(alpha / 2))
    significant = p_value < alpha
    return setup.decide(
        low=setup.estimate - zc * unpooled,
        high=setup.estimate + zc * unpooled,
        p_value=p_value,
        interval_name=f"Wald {_percent(1 - alpha)} interval (one look)",
        # The decision follows the test (pooled under margin 0), not the Wald interval.
        proven=(significant and setup.sign * diff > 0, significant and setup.sign * diff < 0),
    )


__all__: Sequence[str] = (
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_SAMPLE",
    "DEFAULT_RHO",
    "Decision",
    "Direction",
    "Moments",
    "SequentialResult",
    "compare_means",
    "compare_rates",
    "compare_tail",
    "fixed_horizon_rates",
    "mixture_halfwidth",
    "mixture_p_value",
)


def _percent(level: float) -> str:
    """A confidence level as a percentage with the digits it needs (``99.9%``, not ``100%``).

    >>> _percent(0.95), _percent(0.999), _percent(1 - 0.05 / 12), _percent(0.99999)
    ('95%', '99.9%', '99.58%', '99.999%')
    """
    text = f"{level * 100:.4g}"
    if float(text) >= 100 and level < 1:
        text = f"{level * 100:.8g}"
    return f"{text}%"
