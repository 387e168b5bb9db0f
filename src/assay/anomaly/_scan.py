"""The fleet scan: every tenant x metric (x slice) at once, with false discoveries controlled.

Each series is one tenant's (or one slice's) daily value of a watched metric. The statistics
(``docs/scan.md`` has the reasoning and the references):

- **Online.** The expectation for day ``t`` uses only days before ``t``, so a scan of a
  prefix gives the prefix of the results, and a day's verdict does not change when later
  days arrive (a scan run every morning says what the full history would say).
- **Counts and amounts** (``dau``, ``active_users``, ``latency_p95``, ``cost_usd``): the
  expectation is a seasonal-naive forecast with its level adjusted,
  ``mean(x[t-7..t-1]) + median_k(x[t-7k] - mean(x[t-7k-7..t-7k-1]))`` for k = 1..4 (the
  weekday's usual distance from the week before it; a linear trend cancels), the residual is
  scored against the robust scale (1.4826 MAD) of the last 28 residuals, with a Poisson floor
  ``sqrt(expected)`` for counts of users, and a p-value from Student's t.
- **Rates** (``handoff_rate``, ``thumbs_down_rate``, ``error_rate``) use their counts: the
  expected rate is the pooled rate of the last 28 days, the day's count of successes is
  compared with it by a binomial score test (continuity-corrected), the variance inflated by
  the over-dispersion the last 28 days show (quasi-binomial) and by the uncertainty of the
  pooled rate. A day with 12 sessions is judged as 12 trials, so it cannot alert on noise.
- **Cleaning.** A day the online model calls clearly anomalous (``|z| >= clean_z``) is
  replaced by its expectation in the history later days see, so an outage does not drag the
  baseline down and the recovery is not flagged as a rise. After ``max_clean_run`` such days in
  a row the change is accepted as the new normal and the history follows the data again.
- **False discoveries.** For each metric and day, the p-values of every series scored that day
  form one family that goes through the Benjamini-Hochberg procedure at level ``fdr`` (default
  1%; see docs/scan.md for why one family per metric and day); a day is
  anomalous when its q-value is at most ``fdr`` and it moves the metric by at least
  ``min_effect`` (default 10%) of the expectation.
- **Episodes.** The anomalous days of one series go through the series alerts' episode rule
  (:func:`assay.anomaly.alert_scores`): an episode opens on an anomalous day and closes after
  ``merge_gap + 1`` quiet days in a row, so one candidate (one incident) is raised at the
  onset of each episode, not one per anomalous day. Each has its severity (the relative change:
  >= 50% high, >= 25% medium, else low), direction (its first day's), and expected versus
  observed value (means over the episode's days).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from scipy.stats import norm
from scipy.stats import t as student_t

from assay._errors import UsageError
from assay.anomaly._alerts import episodes
from assay.anomaly._detectors import MAD_TO_SD, MEAN_AD_TO_SD
from assay.evaluation import benjamini_hochberg, wilson_interval

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: The metrics the scan watches, in report order.
WATCHED_METRICS: tuple[str, ...] = (
    "dau",
    "active_users",
    "handoff_rate",
    "thumbs_down_rate",
    "error_rate",
    "latency_p95",
    "cost_usd",
    "cited_rate",
    "uncited_retrieved_share",
)
#: Rates and the (successes, trials) columns of ``Metrics.health`` they are computed from.
#: The RAG rates rest on answers (turns with retrieved doc ids): a tenant without any has 0
#: trials every day, so its series is never scored and never alerts.
RATE_COUNTS: dict[str, tuple[str, str]] = {
    "handoff_rate": ("handoff_sessions", "sessions"),
    "thumbs_down_rate": ("thumbs_down", "feedback"),
    "error_rate": ("errors", "turns"),
    "cited_rate": ("cited_answers", "answers"),
    "uncited_retrieved_share": ("uncited_retrieved", "retrieved"),
}
#: The RAG rates: left out of a default scan of a table without their counts.
RAG_RATES: frozenset[str] = frozenset({"cited_rate", "uncited_retrieved_share"})
#: Counts of users: their noise is at least Poisson.
_USER_COUNTS = frozenset({"dau", "active_users"})

Kind = Literal["count", "amount", "rate"]
Direction = Literal["up", "down"]
Severity = Literal["low", "medium", "high"]

_SEASON = 7
_SEASON_CYCLES = 4
_MAD_EFFICIENCY = 0.37
# Two-sided p-value of |z| = 1.
_ONE_SD = 0.31731050786291415
# ... and of |z| = 1.96.
_TWO_SD = 0.05
# Amounts are scored as log(x / unit + offset): a log for typical values, finite at 0.
_LOG_OFFSET = 0.05


def metric_kind(metric: str) -> Kind:
    """``rate`` for a rate with counts, ``count`` for users, ``amount`` otherwise."""
    if metric in RATE_COUNTS:
        return "rate"
    return "count" if metric in _USER_COUNTS else "amount"


@dataclass(frozen=True)
class ScanConfig:
    """The scan's statistical settings (defaults and their reasons: ``docs/scan.md``).

    Attributes
    ----------
    fdr : float, default 0.01
        Benjamini-Hochberg level, one family per metric and day (every series scored that day).
    min_effect : float, default 0.1
        Smallest relative change from the expectation that can be anomalous.
    history_days : int, default 28
        Days of history behind a rate's pooled expectation and a residual's scale.
    min_history : int, default 14
        Days a series needs before its first scored day.
    min_trials : int, default 30
        Trials (sessions, turns, rated events) a rate's history needs to be scored.
    clean_z : float, default 3.5
        |z| at which a day is replaced by its expectation in the history later days see.
    max_clean_run : int, default 7
        Consecutive cleaned days after which a change is taken as the new normal.
    min_users : int, default 5
        A user count (``dau``, ``active_users``) is anomalous only where its expected or
        observed value is at least this: a tenant of three users cannot page anyone.
    min_turns : int, default 20
        Turns a day needs for its ``latency_p95`` and ``cost_usd`` to be scored (when the
        table has ``turns``).
    merge_gap : int, default 2
        Anomalous days of one series separated by at most this many quiet days are one
        episode (the episode rule of the series alerts, closed by ``merge_gap + 1`` quiet days).
    """

    fdr: float = 0.01
    min_effect: float = 0.1
    history_days: int = 28
    min_history: int = 14
    min_trials: int = 30
    min_users: int = 5
    min_turns: int = 20
    clean_z: float = 3.5
    max_clean_run: int = 7
    merge_gap: int = 2

    def __post_init__(self) -> None:
        checks: list[tuple[str, float, float, float]] = [
            ("fdr", self.fdr, 0.0, 1.0),
            ("min_effect", self.min_effect, 0.0, math.inf),
            ("clean_z", self.clean_z, 0.0, math.inf),
        ]
        for name, value, low, high in checks:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (low < value <= high if name == "fdr" else low <= value < high)
            ):
                raise UsageError(
                    f"{name} must be a number in {'(0, 1]' if name == 'fdr' else '[0, inf)'} "
                    f"(got {value!r})"
                )
        for name, count, least in [
            ("history_days", self.history_days, 7),
            ("min_history", self.min_history, 7),
            ("min_trials", self.min_trials, 1),
            ("min_users", self.min_users, 0),
            ("min_turns", self.min_turns, 0),
            ("max_clean_run", self.max_clean_run, 0),
            ("merge_gap", self.merge_gap, 0),
        ]:
            if isinstance(count, bool) or not isinstance(count, int) or count < least:
                raise UsageError(f"{name} must be an integer >= {least} (got {count!r})")


@dataclass(frozen=True)
class SeriesScores:
    """Per-day results for a block of series of one metric; arrays are (series, days).

    ``value`` is the observed value (a rate for rates), ``expected`` the online expectation,
    ``z`` the standardised deviation, ``p_value`` its two-sided p-value (NaN where the day is
    not scored), ``low`` and ``high`` the 95% interval of the observed value (Wilson's score
    interval for rates; the expectation plus or minus 1.96 scales otherwise), ``change`` the
    signed relative change ``(value - expected) / base`` (the base is the expectation, for an
    amount at least half its series' typical value).
    """

    value: FloatArray
    expected: FloatArray
    z: FloatArray
    p_value: FloatArray
    low: FloatArray
    high: FloatArray
    change: FloatArray


# -- vectorised helpers ------------------------------------------------------------------------


def _row_nanmedian(m: FloatArray, min_count: int = 1) -> FloatArray:
    """Median of each row over its non-NaN values; NaN below ``min_count`` values.

    Sorting puts NaN last, so the median of the ``n`` present values sits at ``(n - 1) // 2``
    and ``n // 2``: no Python loop over rows (``np.nanmedian`` loops for wide inputs).
    """
    if m.shape[1] == 0:
        return np.full(m.shape[0], np.nan)
    s = np.sort(m, axis=1)
    n = np.sum(~np.isnan(m), axis=1)
    last = m.shape[1] - 1
    lo = np.clip((n - 1) // 2, 0, last)
    hi = np.clip(n // 2, 0, last)
    rows = np.arange(m.shape[0])
    med = (s[rows, lo] + s[rows, hi]) / 2.0
    med[n < max(min_count, 1)] = np.nan
    return np.asarray(med, dtype=np.float64)


def _row_nanmean(m: FloatArray, min_count: int = 1) -> FloatArray:
    n = np.sum(~np.isnan(m), axis=1)
    total = np.nansum(m, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / n
    out[n < max(min_count, 1)] = np.nan
    return np.asarray(out, dtype=np.float64)


def _robust_sd_rows(m: FloatArray, min_count: int) -> FloatArray:
    """1.4826 MAD per row (1.2533 mean absolute deviation when the MAD is 0)."""
    med = _row_nanmedian(m, min_count)
    dev = np.abs(m - med[:, None])
    mad = _row_nanmedian(dev, min_count)
    mean_ad = _row_nanmean(dev, min_count)
    return np.where(mad > 0, MAD_TO_SD * mad, MEAN_AD_TO_SD * mean_ad)


def _two_sided_t(z: FloatArray, dof: FloatArray) -> FloatArray:
    out = np.full(z.shape, np.nan)
    ok = ~np.isnan(z) & (dof >= 1)
    out[ok] = 2.0 * student_t.sf(np.abs(z[ok]), dof[ok])
    inf = ok & np.isinf(z)
    out[inf] = 0.0
    return out


# -- the online models -------------------------------------------------------------------------


def _count_p(x: FloatArray, mu: FloatArray, var: FloatArray) -> FloatArray:
    """Two-sided tail probability of count ``x`` under a negative binomial of mean ``mu`` and
    variance ``var`` (Poisson when ``var <= mu``): ``min(1, 2 min(P(X <= x), P(X >= x)))``.

    Within 2 standard deviations of the mean the normal approximation (continuity-corrected)
    is used. Beyond, the tails are regularised incomplete gamma and beta functions
    (scipy.special), what ``scipy.stats.poisson`` and ``nbinom`` compute, without their
    per-call overhead:
    Poisson ``P(X <= x) = Q(x + 1, mu)`` and ``P(X >= x) = P(x, mu)``; negative binomial of
    size r and probability p: ``P(X <= x) = I_p(r, x + 1)`` and ``P(X >= x) = I_{1-p}(x, r)``.
    """
    from scipy.special import betainc, gammainc, gammaincc

    out = np.full(x.shape, np.nan)
    ok = ~(np.isnan(x) | np.isnan(mu) | np.isnan(var))
    xr = np.maximum(np.round(x), 0.0)
    # An expectation of 0 users still allows one now and then: the mean is at least 1, so a
    # sparse slice's handful of users is not a discovery.
    mu = np.maximum(np.nan_to_num(mu), 1.0)
    var = np.maximum(np.nan_to_num(var), mu)
    # Within 2 standard deviations of the mean (a p-value of about 0.05 or more, which no
    # alert rests on) the normal approximation with a continuity correction is enough, and
    # saves the special functions for the tails that matter.
    sd = np.sqrt(var)
    near = ok & (np.abs(xr - mu) < 2.0 * sd)
    out[near] = np.minimum(1.0, 2 * norm.sf(np.maximum(np.abs(xr - mu)[near] - 0.5, 0) / sd[near]))
    ok &= ~near
    pois = ok & (var <= mu * (1 + 1e-9))
    nb = ok & ~pois
    if pois.any():
        xp, mp = xr[pois], mu[pois]
        lo = gammaincc(xp + 1, mp)
        hi = np.where(xp > 0, gammainc(np.maximum(xp, 1e-300), mp), 1.0)
        out[pois] = np.minimum(1.0, 2 * np.minimum(lo, hi))
    if nb.any():
        xn, m, v = xr[nb], mu[nb], var[nb]
        size = m * m / (v - m)
        prob = m / v
        lo = betainc(size, xn + 1, prob)
        hi = np.where(xn > 0, betainc(np.maximum(xn, 1e-300), size, 1 - prob), 1.0)
        out[nb] = np.minimum(1.0, 2 * np.minimum(lo, hi))
    return out


def _signed_z(p: FloatArray, sign: FloatArray) -> FloatArray:
    """The normal z with two-sided p-value ``p`` and the sign of the deviation."""
    with np.errstate(invalid="ignore"):
        return np.asarray(np.sign(sign) * norm.isf(np.clip(p, 1e-300, 1.0) / 2), np.float64)


def score_amounts(values: FloatArray, *, kind: Kind, config: ScanConfig) -> SeriesScores:
    """Online scores of a block of count or amount series, shape (series, days).

    NaN marks a day without a value (before a tenant's first day, or a day without a
    latency). ``kind="count"`` (users): the p-value is a negative-binomial tail with the
    expectation as mean and the larger of the expectation and the squared robust scale as
    variance; ``kind="amount"``: Student's t of the residual over the robust scale, on the log
    scale when ``log`` (latencies). See the module docstring for the model.
    """
    raw = np.asarray(values, dtype=np.float64)
    log = kind == "amount"
    unit = _early_median(raw, config.min_history) if log else np.ones(raw.shape[0])
    x = np.log(np.maximum(raw, 0.0) / unit[:, None] + _LOG_OFFSET) if log else raw
    s, n_days = x.shape
    hist = x.copy()  # the history later days see: cleaned of clear anomalies
    resid = np.full_like(x, np.nan)  # residuals of the history: clear anomalies left out
    raw_resid = np.full_like(x, np.nan)
    expected = np.full_like(x, np.nan)
    p = np.full_like(x, np.nan)
    sd = np.full_like(x, np.nan)
    dof = np.full_like(x, np.nan)
    single = np.full_like(x, np.nan)  # one-day p-values
    run = np.zeros(s, dtype=np.int64)
    seen = np.cumsum(~np.isnan(x), axis=1)
    h = config.history_days
    clean_p = float(2 * norm.sf(config.clean_z))
    for t in range(_SEASON, n_days):
        level = _row_nanmean(hist[:, t - _SEASON : t], min_count=4)
        diffs = []
        for k in range(1, _SEASON_CYCLES + 1):
            at = t - _SEASON * k
            if at - 4 < 0:  # the week before needs 4 of its days
                break
            week = hist[:, max(0, at - _SEASON) : at]
            diffs.append(hist[:, at] - _row_nanmean(week, min_count=4))
        season = (
            np.nan_to_num(_row_nanmedian(np.stack(diffs, axis=1), min_count=1))
            if diffs
            else np.zeros(s)
        )
        exp_t = level + season
        if kind == "count":
            exp_t = np.maximum(exp_t, 0.0)
        expected[:, t] = exp_t
        window = resid[:, max(0, t - h) : t]
        n_res = np.sum(~np.isnan(window), axis=1)
        scale = _robust_sd_rows(window, min_count=7)
        scale = np.fmax(scale, 0.01 * np.abs(exp_t) if not log else 0.005)
        e = x[:, t] - exp_t
        resid[:, t] = e
        raw_resid[:, t] = e
        history_ok = (seen[:, t - 1] >= config.min_history) & (n_res >= 7)
        if log:
            # A zero-inflated amount (a slice that costs nothing most days) has no scale to
            # speak of: it is scored only when three quarters of its history is positive.
            recent = raw[:, max(0, t - h) : t]
            history_ok &= np.sum(recent > 0, axis=1) >= 0.75 * np.sum(~np.isnan(recent), axis=1)
        # A MAD is 37% as efficient as a standard deviation on normal data: its t has about
        # 0.37 (m - 1) degrees of freedom, which keeps young series quiet.
        dof[:, t] = np.maximum(_MAD_EFFICIENCY * (n_res - 1), 1.0)
        if kind == "count":
            # The expectation is itself noisy: a 7-day mean plus a median of n_season weekly
            # differences, each about (1 + 1/7) Poisson variances. So the variance is at least
            # the Poisson one times (1 + 1/7 + 1.2 (1 + 1/7) / n_season), whatever few
            # residuals say.
            inflate = 1.0 + 1.0 / 7.0 + 1.2 * (1.0 + 1.0 / 7.0) / max(len(diffs), 1)
            sd[:, t] = np.sqrt(np.fmax(scale * scale, inflate * np.maximum(exp_t, 1.0)))
            p1 = _count_p(x[:, t], exp_t, sd[:, t] ** 2)
            # Two days against their two expectations: a shift one day cannot show is seen
            # on its second day (Bonferroni over the two scales).
            p2 = _count_p(
                x[:, t - 1] + x[:, t],
                expected[:, t - 1] + exp_t,
                sd[:, t - 1] ** 2 + sd[:, t] ** 2,
            )
        else:
            sd[:, t] = np.where(scale > 0, scale, 1e-12)
            p1 = _two_sided_t(e / sd[:, t], dof[:, t])
            e2 = raw_resid[:, t - 1] + e
            p2 = _two_sided_t(e2 / np.sqrt(sd[:, t - 1] ** 2 + sd[:, t] ** 2), dof[:, t])
        # The pair counts only when both days lean the same way, the first by one standard
        # deviation and the day itself by two (else a normal day after an outage would
        # inherit the outage).
        same = (np.sign(raw_resid[:, t - 1]) == np.sign(e)) & (single[:, t - 1] <= _ONE_SD)
        same &= p1 <= _TWO_SD
        p2 = np.where(same, p2, np.nan)
        p_t = np.where(np.isnan(p2), p1, np.minimum(1.0, 2 * np.fmin(p1, p2)))
        p_t[~history_ok | np.isnan(p1)] = np.nan
        single[:, t] = np.where(history_ok, p1, np.nan)
        p[:, t] = p_t
        exp_raw = _back(exp_t, log, unit)
        rel = np.abs(raw[:, t] - exp_raw) / _effect_base(exp_raw, unit if log else None)
        clear = (p_t <= clean_p) & (rel >= config.min_effect)
        run = np.where(clear, run + 1, 0)
        clean = clear & (run <= config.max_clean_run)
        accept = clear & (run == config.max_clean_run + 1)
        if accept.any():
            # The change has lasted: it is the new normal, and the history is the data again.
            back = slice(t - config.max_clean_run, t)
            hist[accept, back] = x[accept, back]
        hist[clean, t] = exp_t[clean]
        resid[clean, t] = np.nan  # a clear anomaly does not widen the scale of later days
    z = _signed_z(p, x - expected)
    low = expected - 1.959963984540054 * sd
    high = expected + 1.959963984540054 * sd
    exp_raw = _back(expected, log, unit[:, None])
    base = _effect_base(exp_raw, unit[:, None] if log else None)
    return SeriesScores(
        value=raw,
        expected=exp_raw,
        z=z,
        p_value=p,
        low=_back(low, log, unit[:, None]),
        high=_back(high, log, unit[:, None]),
        change=(raw - exp_raw) / base,
    )


def _early_median(raw: FloatArray, days: int) -> FloatArray:
    """Per row, the median of its first ``days`` present values (1 when it is not positive).

    Amounts are scored as ``log(x / unit + 0.05)`` with this unit: multiplicative noise becomes
    additive and a zero stays finite. The unit comes from the first days only, so the
    transform, like the rest of the model, never reads ahead of the days it scores.
    """
    present = ~np.isnan(raw)
    early = np.where(present & (np.cumsum(present, axis=1) <= days), raw, np.nan)
    unit = _row_nanmedian(early)
    mean = _row_nanmean(early)
    unit = np.where(np.isfinite(unit) & (unit > 0), unit, mean)
    return np.where(np.isfinite(unit) & (unit > 0), unit, 1.0)


def _effect_base(expected: FloatArray, unit: FloatArray | None) -> FloatArray:
    """What a relative change is relative to: the expectation, and for an amount at least
    half its series' typical value (so a near-zero expectation does not make every cent a
    100% change)."""
    base = np.abs(expected)
    if unit is not None:
        base = np.fmax(base, 0.5 * np.broadcast_to(unit, base.shape))
    return np.maximum(base, 1e-12)


def _back(x: FloatArray, log: bool, unit: FloatArray | None = None) -> FloatArray:
    if not log:
        return x
    scale = 1.0 if unit is None else unit
    return np.asarray((np.exp(x) - _LOG_OFFSET) * scale, dtype=np.float64)


def _dispersion(wk: FloatArray, wn: FloatArray, p0: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Pearson over-dispersion of each row's days against ``p0``, and the days it rests on."""
    days = np.sum(~np.isnan(wn), axis=1)
    var_day = wn * (p0 * (1 - p0))[:, None]
    chi = np.nansum((wk - wn * p0[:, None]) ** 2 / var_day, axis=1)
    phi = np.where(days >= 3, np.maximum(1.0, chi / np.maximum(days - 1, 1)), np.nan)
    return phi, days


def _history(
    hk: FloatArray, hn: FloatArray, active_days: NDArray[Any], t: int, config: ScanConfig
) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
    """Successes, trials and over-dispersion of the history before day ``t``, and whether each
    series is too young to be judged by it."""
    h = config.history_days
    wk = hk[:, max(0, t - h) : t]
    wn = hn[:, max(0, t - h) : t]
    big_k = np.nansum(wk, axis=1)
    big_n = np.nansum(wn, axis=1)
    phi, days = _dispersion(wk, wn, (big_k + 0.5) / (big_n + 1.0))
    fleet = np.nanmedian(phi[days >= 7]) if np.any(days >= 7) else 1.0
    phi = np.fmax(np.nan_to_num(phi, nan=1.0), fleet if np.isfinite(fleet) else 1.0)
    young = active_days[:, t - 1] < min(config.min_history, h)
    return big_k, big_n, phi, young


def _betabinom_p(
    kt: FloatArray,
    nt: FloatArray,
    big_k: FloatArray,
    big_n: FloatArray,
    phi: FloatArray,
    ok: BoolArray,
) -> FloatArray:
    """Two-sided beta-binomial predictive p-value of ``kt`` successes in ``nt`` trials given
    ``big_k`` of ``big_n`` in the history, counts divided by the over-dispersion ``phi``."""
    n_e = np.round(nt / phi)
    k_e = np.round(np.nan_to_num(kt) / phi)
    a = (big_k + 0.5) / phi
    b = (big_n - big_k + 0.5) / phi
    out = np.full(kt.shape, np.nan)
    valid = ok & (nt > 0)
    use = valid & (n_e >= 1)
    if use.any():
        lo, hi = betabinom_tails(k_e[use], n_e[use], a[use], b[use])
        out[use] = np.minimum(1.0, 2 * np.minimum(lo, hi))
    out[valid & (n_e < 1)] = 1.0
    return out


def betabinom_tails(
    k: FloatArray, n: FloatArray, a: FloatArray, b: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``P(X <= k)`` and ``P(X >= k)`` for X ~ BetaBinomial(n, a, b), elementwise.

    scipy's ``betabinom.cdf`` sums the mass one element at a time in Python, too slow for a
    fleet. Near the mean, where no alert rests, the tails are the normal approximation with
    the beta-binomial's mean and variance and a continuity correction: within 2 standard
    deviations for a near-normal distribution (both shape parameters and both expected counts
    at least 20), within 1.5 otherwise. Beyond, a near-normal distribution's smaller tail is
    summed exactly, vectorised, over the counts from ``k`` away from the mean up to 12
    standard deviations (plus 10) past it, the other tail being one minus it plus the mass at
    ``k``; a skewed one (rare events, short histories) uses scipy. A test checks them against
    scipy.

    Examples
    --------
    >>> one = lambda v: np.array([v])
    >>> lo, hi = betabinom_tails(one(5.0), one(5.0), one(1.0), one(9.0))
    >>> float(lo[0]), round(float(hi[0]), 10)  # P(X = 5) = B(6, 9) / B(1, 9) = 1 / 2002
    (1.0, 0.0004995005)
    """
    n = np.asarray(n, dtype=np.float64)
    k = np.clip(np.asarray(k, dtype=np.float64), 0.0, n)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    s = a + b
    mean = n * a / s
    sd = np.sqrt(n * a * b * (s + n) / (s * s * (s + 1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.asarray(norm.cdf((k + 0.5 - mean) / sd), dtype=np.float64)
        hi = np.asarray(norm.sf((k - 0.5 - mean) / sd), dtype=np.float64)
        z = np.abs(k - mean) / sd
    # Near-normal: both shapes and both expected counts at least 20. Its tails decay like a
    # normal's, so 12 standard deviations past k hold all the mass that double precision sees.
    normal = (np.minimum(a, b) >= 20) & (np.minimum(mean, n - mean) >= 20)
    idx = np.flatnonzero(normal & ~(z < 2.0))
    if idx.size:
        # Exact sums, in chunks of similar width so that no chunk pads to the widest.
        width = np.minimum(np.ceil(12 * sd[idx]) + 10, n[idx])
        order = idx[np.argsort(width, kind="stable")]
        for chunk in np.array_split(order, max(1, len(order) // 2048)):
            lo[chunk], hi[chunk] = _exact_tails(
                k[chunk], n[chunk], a[chunk], b[chunk], mean[chunk], sd[chunk]
            )
    # Skewed (rare events, short histories): scipy's exact tails, where an alert could rest.
    skewed = np.flatnonzero(~normal & ~(z < 1.5))
    if skewed.size:
        from scipy.stats import betabinom

        lo[skewed] = betabinom.cdf(k[skewed], n[skewed], a[skewed], b[skewed])
        hi[skewed] = betabinom.sf(k[skewed] - 1, n[skewed], a[skewed], b[skewed])
    return lo, hi


def _exact_tails(
    k: FloatArray, n: FloatArray, a: FloatArray, b: FloatArray, mean: FloatArray, sd: FloatArray
) -> tuple[FloatArray, FloatArray]:
    from scipy.special import betaln, gammaln

    upper = k >= mean  # the smaller tail is P(X >= k)
    width = np.minimum(np.ceil(12 * sd) + 10, n)
    step = np.arange(int(width.max()) + 1, dtype=np.float64)[None, :]
    grid = np.where(upper[:, None], k[:, None] + step, k[:, None] - step)
    inside = (step <= width[:, None]) & (grid >= 0) & (grid <= n[:, None])
    g = np.clip(grid, 0.0, n[:, None])
    rest = n[:, None] - g
    logpmf = (
        gammaln(n + 1)[:, None]
        - gammaln(g + 1)
        - gammaln(rest + 1)
        + betaln(g + a[:, None], rest + b[:, None])
        - betaln(a, b)[:, None]
    )
    pmf = np.where(inside, np.exp(logpmf), 0.0)
    tail = np.minimum(1.0, pmf.sum(axis=1))
    other = np.clip(1.0 - tail + pmf[:, 0], 0.0, 1.0)
    return np.where(upper, other, tail), np.where(upper, tail, other)


def score_rates(
    successes: FloatArray,
    trials: FloatArray,
    *,
    config: ScanConfig,
    parent: tuple[FloatArray, FloatArray] | None = None,
) -> SeriesScores:
    """Online scores of a block of rate series from their counts, shape (series, days).

    The day's successes are judged by their beta-binomial posterior predictive: the rate is
    Beta(K + 1/2, N - K + 1/2) given the K successes of N trials of the last ``history_days``
    (Jeffreys prior), and the day's count is binomial given the rate. Every count is first
    divided by the over-dispersion ``phi`` (Pearson's chi-square per degree of freedom of the
    history's days, at least 1, and at least the median over the block's series, since days
    of one series are few): quasi-binomial effective counts. ``trials`` of 0 or NaN means no
    trials that day (not scored, and not history).

    ``parent`` (successes, trials of the same shape) is each series' parent: for a slice, its
    tenant as a whole. A series too young or too thin to have a history of its own (a
    model_version on the day it is rolled out) is judged against its parent's history
    instead: a new version that hands off twice as often as the tenant did is a discovery on
    its first days.
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    n = np.where(np.isnan(n), 0.0, n)
    k = np.where(n > 0, np.nan_to_num(k), np.nan)
    s, n_days = k.shape
    hk = np.where(n > 0, k, np.nan)
    hn = np.where(n > 0, n, np.nan)
    expected = np.full((s, n_days), np.nan)
    p = np.full((s, n_days), np.nan)
    run = np.zeros(s, dtype=np.int64)
    active_days = np.cumsum(n > 0, axis=1)
    clean_p = float(2 * norm.sf(config.clean_z))
    prev: tuple[FloatArray, FloatArray, FloatArray, BoolArray, FloatArray, FloatArray] | None = None
    if parent is not None:
        par_n = np.where(np.isnan(parent[1]), 0.0, parent[1])
        par_k = np.where(par_n > 0, np.nan_to_num(parent[0]), np.nan)
        par_n = np.where(par_n > 0, par_n, np.nan)
        par_days = np.cumsum(par_n > 0, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(n > 0, k / n, np.nan)
        for t in range(1, n_days):
            big_k, big_n, phi, young = _history(hk, hn, active_days, t, config)
            ok = (big_n >= config.min_trials) & ~young
            if parent is not None:
                pbk, pbn, pphi_, pyoung = _history(par_k, par_n, par_days, t, config)
                borrow = ~ok & (pbn >= config.min_trials) & ~pyoung
                big_k = np.where(borrow, pbk, big_k)
                big_n = np.where(borrow, pbn, big_n)
                phi = np.where(borrow, pphi_, phi)
                ok |= borrow
            p0 = (big_k + 0.5) / (big_n + 1.0)
            p1 = _betabinom_p(k[:, t], n[:, t], big_k, big_n, phi, ok)
            if prev is not None:
                # Two days against the history before both: a shift that one day's counts
                # cannot show is seen on its second day (Bonferroni over the two scales). The
                # pair counts only when both days lean the same way, the first by one standard
                # deviation, the day itself by two.
                pk, pn, pphi, pok, p_prev, p1_prev = prev
                same = np.sign(value[:, t - 1] - p_prev) == np.sign(value[:, t] - p0)
                same &= (p1_prev <= _ONE_SD) & (p1 <= _TWO_SD)
                p2 = _betabinom_p(
                    k[:, t - 1] + k[:, t],
                    n[:, t - 1] + n[:, t],
                    pk,
                    pn,
                    pphi,
                    pok & ok & same,
                )
                p_t = np.where(np.isnan(p2), p1, np.minimum(1.0, 2 * np.fmin(p1, p2)))
            else:
                p_t = p1
            prev = (big_k, big_n, phi, ok, p0, p1)
            exp_t = np.where(big_n > 0, p0, np.nan)
            expected[:, t] = exp_t
            p[:, t] = p_t
            rel = np.abs(value[:, t] - exp_t) / np.maximum(exp_t, 1e-12)
            clear = (p_t <= clean_p) & (rel >= config.min_effect)
            run = np.where(clear, run + 1, 0)
            clean = clear & (run <= config.max_clean_run)
            accept = clear & (run == config.max_clean_run + 1)
            if accept.any():
                back = slice(max(0, t - config.max_clean_run), t)
                hk[accept, back] = np.where(n[accept, back] > 0, k[accept, back], np.nan)
                hn[accept, back] = np.where(n[accept, back] > 0, n[accept, back], np.nan)
            hk[clean, t] = np.nan
            hn[clean, t] = np.nan
    z = _signed_z(p, value - expected)
    low, high = wilson_interval(k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = (value - expected) / np.maximum(expected, 1e-12)
    return SeriesScores(
        value=value, expected=expected, z=z, p_value=p, low=low, high=high, change=change
    )


# -- the scan over a table of daily series -----------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One episode of anomalous days of one series: what becomes (part of) an incident.

    Attributes
    ----------
    tenant_id, metric : the series.
    slice : ``{field: value}`` of a sliced scan, ``{}`` for a whole tenant.
    start, end : the first and last anomalous day (inclusive).
    direction : ``up`` or ``down``.
    severity : ``high`` (|relative change| >= 50%), ``medium`` (>= 25%) or ``low``.
    expected, observed : means over the run's days of the expectation and the value.
    q_value : the smallest Benjamini-Hochberg q-value of the run.
    details : ``per_day`` figures (day, value, expected, low, high, z, q_value),
        ``anomalous_days`` and ``relative_change``.
    """

    tenant_id: str
    metric: str
    slice: dict[str, Any]
    start: dt.date
    end: dt.date
    direction: Direction
    severity: Severity
    expected: float
    observed: float
    q_value: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The series identity: ``metric|tenant=T[|field=value]``."""
        parts = [self.metric, f"tenant={self.tenant_id}"]
        parts += [f"{k}={'' if v is None else v}" for k, v in self.slice.items()]
        return "|".join(parts)


@dataclass(frozen=True)
class ScanResult:
    """What a scan found.

    Attributes
    ----------
    points : pyarrow.Table
        One row per scored day in the window: ``tenant_id, [slice], metric, day, value,
        expected, low, high, z, p_value, q_value, anomaly``.
    candidates : list of Candidate
        The runs of anomalous days, most severe first.
    series : int
        Series scanned (tenant [x slice] x metric).
    tests : int
        Days tested (the Benjamini-Hochberg family size).
    """

    points: pa.Table
    candidates: list[Candidate]
    series: int
    tests: int


def _severity(rel: float) -> Severity:
    if rel >= 0.5:
        return "high"
    return "medium" if rel >= 0.25 else "low"


def _day_index(days: pa.ChunkedArray) -> tuple[NDArray[np.int64], int, int]:
    ints = np.asarray(days.cast(pa.int32()).to_numpy(zero_copy_only=False), dtype=np.int64)
    first = int(ints.min())
    last = int(ints.max())
    return ints - first, first, last - first + 1


def scan_table(
    table: pa.Table,
    *,
    since: dt.date | None = None,
    metrics: Sequence[str] | None = None,
    by: str | None = None,
    config: ScanConfig | None = None,
    active_window: int = 7,
    progress: Callable[[str], None] | None = None,
) -> ScanResult:
    """Scan a table of daily series (the columns of ``Metrics.health``) for anomalies.

    Parameters
    ----------
    table : pyarrow.Table
        ``tenant_id, [by], day`` (date32) and, per watched metric, its column (``dau``,
        ``active_users``, ``latency_p95``, ``cost_usd``) or its counts (``RATE_COUNTS``). One
        row per series and day; a missing day is a missing value.
    since : date or None
        First day whose verdict is reported (and tested); earlier days are history only.
        None: every day.
    metrics : the metrics to watch. Default: every metric of ``WATCHED_METRICS``, the RAG
        rates only when the table has their counts (a table made before them is scanned
        without them); a metric named here whose columns are missing is an error.
    by : the slice column, or None.
    config : the statistical settings (``ScanConfig()``).
    active_window : the window of the ``active_users`` column; its first ``active_window - 1``
        days per series (the window filling up) are not scored.
    progress : called with each metric's name as it starts.

    Returns
    -------
    ScanResult
    """
    cfg = config or ScanConfig()
    if metrics is None:
        metrics = [
            m
            for m in WATCHED_METRICS
            if m not in RAG_RATES or set(RATE_COUNTS[m]) <= set(table.column_names)
        ]
    unknown = [m for m in metrics if m not in WATCHED_METRICS]
    if unknown or not metrics:
        raise UsageError(
            f"metrics must be a non-empty list of {', '.join(WATCHED_METRICS)} "
            f"(got {', '.join(map(str, unknown)) or 'none'})"
        )
    keys = ["tenant_id"] if by is None else ["tenant_id", by]
    if table.num_rows == 0:
        return ScanResult(_empty_points(keys), [], 0, 0)
    needed = set(keys) | {"day"}
    for m in metrics:
        needed |= set(RATE_COUNTS.get(m, (m,)))
    missing = sorted(needed - set(table.column_names))
    if missing:
        raise UsageError(
            f"the series table lacks column(s) {', '.join(missing)}; it needs tenant_id, the "
            "slice column if any, day, and the columns of Metrics.health"
        )
    schema_cols = [*keys, "metric", "day", "value", "expected", "low", "high", "z"]

    # Series index: one row per distinct key tuple, in sorted order.
    key_table = table.select(keys)
    combined = (
        pc.binary_join_element_wise(
            *[pc.fill_null(pc.cast(key_table.column(k), pa.string()), "\x00") for k in keys], "\x1f"
        )
        if len(keys) > 1
        else pc.cast(key_table.column("tenant_id"), pa.string())
    )
    uniq, codes = np.unique(
        np.asarray(combined.to_numpy(zero_copy_only=False), dtype=object), return_inverse=True
    )
    first_rows = np.zeros(len(uniq), dtype=np.int64)
    first_rows[codes[::-1]] = np.arange(len(codes))[::-1]
    key_values = {k: key_table.column(k).take(pa.array(first_rows)) for k in keys}
    day_idx, day0, n_days = _day_index(table.column("day"))
    n_series = len(uniq)
    start = 0 if since is None else max(0, (since - _EPOCH).days - day0)

    def matrix(column: str) -> FloatArray:
        out = np.full((n_series, n_days), np.nan)
        vals = pc.cast(table.column(column), pa.float64()).to_numpy(zero_copy_only=False)
        out[codes, day_idx] = np.asarray(vals, dtype=np.float64)
        if column == "active_users":
            # Until a trailing window is full it only fills up: those days are not values.
            present = ~np.isnan(out)
            out[present & (np.cumsum(present, axis=1) < active_window)] = np.nan
        if column in ("latency_p95", "cost_usd") and "turns" in table.column_names:
            # A 95th percentile, or a cost, of a handful of turns is noise (one long answer
            # doubles it): such days are missing values.
            out[matrix("turns") < cfg.min_turns] = np.nan
        return out

    tenant_codes = np.unique(
        np.asarray(key_values["tenant_id"].to_numpy(zero_copy_only=False), dtype=object),
        return_inverse=True,
    )[1].reshape(-1)

    def by_tenant(m: FloatArray) -> FloatArray:
        """Each series' tenant total (the sum over its slices), per day."""
        totals = np.zeros((int(tenant_codes.max()) + 1, m.shape[1]))
        np.add.at(totals, tenant_codes, np.nan_to_num(m))
        return totals[tenant_codes]

    results: dict[str, SeriesScores] = {}
    for m in metrics:
        if progress is not None:
            progress(m)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if m in RATE_COUNTS:
                num, den = RATE_COUNTS[m]
                k_m, n_m = matrix(num), matrix(den)
                parent = None
                if by is not None:
                    parent = (by_tenant(k_m), by_tenant(n_m))
                results[m] = score_rates(k_m, n_m, config=cfg, parent=parent)
            else:
                results[m] = score_amounts(matrix(m), kind=metric_kind(m), config=cfg)

    # One Benjamini-Hochberg family per metric and day: every series scored that day. A day's
    # verdict then depends on that day and the days before it only, so it never changes as
    # later days arrive, and the guarantee is the on-call one: of the alerts one day raises,
    # at most a share fdr is expected to be false.
    window = slice(start, n_days)
    p_all = np.stack([results[m].p_value[:, window] for m in metrics])
    q_all = np.full_like(p_all, np.nan)
    for i in range(p_all.shape[0]):
        for d in range(p_all.shape[2]):
            q_all[i, :, d] = benjamini_hochberg(p_all[i, :, d])
    tests = int(np.sum(~np.isnan(p_all)))

    columns: dict[str, list[Any]] = {c: [] for c in [*schema_cols, "p_value", "q_value"]}
    flags: list[BoolArray] = []
    candidates: list[Candidate] = []
    for i, m in enumerate(metrics):
        r = results[m]
        q = q_all[i]
        val = r.value[:, window]
        exp = r.expected[:, window]
        rel = r.change[:, window]
        anomalous = (q <= cfg.fdr) & (np.abs(rel) >= cfg.min_effect)
        if metric_kind(m) == "count":
            anomalous &= np.fmax(val, exp) >= cfg.min_users
        scored = ~np.isnan(q)
        rows, cols = np.nonzero(scored)
        for k in keys:
            columns[k].append(key_values[k].take(pa.array(rows)))
        columns["metric"].append(pa.array([m] * len(rows), pa.string()))
        columns["day"].append(
            pa.array((cols + start + day0).astype(np.int32), pa.int32()).cast(pa.date32())
        )
        for name, arr in [
            ("value", val),
            ("expected", exp),
            ("low", r.low[:, window]),
            ("high", r.high[:, window]),
            ("z", r.z[:, window]),
            ("p_value", r.p_value[:, window]),
            ("q_value", q),
        ]:
            columns[name].append(pa.array(arr[rows, cols], pa.float64()))
        flags.append(anomalous[rows, cols])
        candidates += _runs(m, anomalous, rel, r, q, start, day0, key_values, by, cfg.merge_gap)

    points = pa.table(
        {
            name: pa.concat_arrays(
                [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in parts]
            )
            for name, parts in columns.items()
        }
    ).append_column("anomaly", pa.array(np.concatenate(flags) if flags else [], pa.bool_()))
    order = {"high": 0, "medium": 1, "low": 2}
    candidates.sort(key=lambda c: (order[c.severity], c.q_value, c.start, c.key))
    return ScanResult(points, candidates, n_series * len(metrics), tests)


_EPOCH = dt.date(1970, 1, 1)


def _empty_points(keys: list[str]) -> pa.Table:
    fields = [pa.field(k, pa.string()) for k in keys] + [
        pa.field("metric", pa.string()),
        pa.field("day", pa.date32()),
    ]
    fields += [
        pa.field(n, pa.float64())
        for n in ("value", "expected", "low", "high", "z", "p_value", "q_value")
    ]
    return pa.schema([*fields, pa.field("anomaly", pa.bool_())]).empty_table()


def _runs(
    metric: str,
    anomalous: BoolArray,
    rel: FloatArray,
    r: SeriesScores,
    q: FloatArray,
    start: int,
    day0: int,
    key_values: dict[str, pa.Array],
    by: str | None,
    gap: int,
) -> list[Candidate]:
    """The anomalous episodes of each series, as candidates.

    The episode rule is the series alerts' (:func:`assay.anomaly.alert_scores`): an episode
    opens on an anomalous day while none is open and closes after ``gap + 1`` quiet days in a
    row, so anomalous days at most ``gap`` quiet days apart are one episode and one incident,
    whichever way they move (its direction is its first day's). The quiet days inside an
    episode count in its means.
    """
    out: list[Candidate] = []
    for row in np.flatnonzero(anomalous.any(axis=1)):
        flagged = anomalous[row]
        _, onsets = episodes(flagged.astype(np.float64), 0.5, gap + 1)
        opens = np.flatnonzero(onsets)
        bounds = [*opens.tolist(), len(flagged)]
        for t, nxt in itertools.pairwise(bounds):
            end = int(t + np.flatnonzero(flagged[t:nxt])[-1])
            days = np.arange(t, end + 1)
            abs_days = days + start
            change = float(np.nanmean(np.abs(r.change[row, abs_days])))
            per_day = [
                {
                    "day": (_EPOCH + dt.timedelta(days=int(d + start + day0))).isoformat(),
                    "value": _num(r.value[row, d + start]),
                    "expected": _num(r.expected[row, d + start]),
                    "low": _num(r.low[row, d + start]),
                    "high": _num(r.high[row, d + start]),
                    "z": _num(r.z[row, d + start]),
                    "q_value": _num(q[row, d]),
                }
                for d in days
            ]
            out.append(
                Candidate(
                    tenant_id=str(key_values["tenant_id"][row].as_py()),
                    metric=metric,
                    slice={} if by is None else {by: key_values[by][row].as_py()},
                    start=_EPOCH + dt.timedelta(days=int(t + start + day0)),
                    end=_EPOCH + dt.timedelta(days=int(end + start + day0)),
                    direction="up" if rel[row, t] > 0 else "down",
                    severity=_severity(change),
                    expected=float(np.nanmean(r.expected[row, abs_days])),
                    observed=float(np.nanmean(r.value[row, abs_days])),
                    q_value=float(np.nanmin(q[row, days])),
                    details={
                        "per_day": per_day,
                        "anomalous_days": int(flagged[days].sum()),
                        "relative_change": round(change, 6),
                    },
                )
            )
    return out


def _num(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else float(x)
