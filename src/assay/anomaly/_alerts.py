"""Alerts a person can page on: an online ``alert_score`` in [0, 1] and one ``alert`` per episode.

A detector's per-row score says "this row is anomalous"; paging on it pages all day, because an
incident keeps its rows anomalous for a while and every series has its own noise. The alert
score turns any series into a score that is high at the *onset* of an anomalous episode, zero
while the episode lasts, and on the same scale for every series, so that one threshold serves a
whole fleet. Every step uses only the row and the rows before it (online).

1. **Raw score** (robust, online): ``z_t = (x_t - m_t) / s_t`` with ``m_t`` the median and
   ``s_t = 1.4826 MAD`` of the ``window`` rows *before* ``t`` (floored at ``1e-3 |m_t|`` so a
   flat series does not divide by zero), ``raw_t = clip(z_t, -cap, cap) / cap``.
2. **Anomaly likelihood** (Ahmad, Lavin, Purdy and Agha 2017, "Unsupervised real-time anomaly
   detection for streaming data", Neurocomputing 262; Numenta HTM's post-processing, which
   applies to any raw score): the raw scores' distribution is modelled as a Gaussian with the mean
   ``mu_t`` and standard deviation ``sigma_t`` of the last ``long_window`` raw scores (this
   rescales each series by its own noise, which makes scores comparable across series), and the
   likelihood is two-sided, ``L_t = 2 Phi(|d_t|) - 1`` with
   ``d_t = (mean of the last short_window raw scores - mu_t) / sigma_t``. HTM scores a raw
   anomaly score in [0, 1] one-sided; the signed z is used here because its distribution is
   close to Gaussian on a quiet series, so the ``1 - 1e-5`` tail means what it says (on Gaussian
   noise, no alert in 20,000 rows; the one-sided likelihood of ``|z|`` raised 20).
   As in HTM's NAB detector it is reported on a log scale,
   ``log(1.0000000001 - L_t) / log(1e-10)`` clipped to [0, 1], so ``0.5`` means
   ``L_t = 1 - 1e-5`` whatever the series' own noise. HTM's ``short_window`` is 10; the
   development half of NAB, tuned by cross-validation over series, prefers 1 (a single row):
   the robust z already averages the noise out.
   **Seasonal channel**: with a seasonal lag (``periods``; ``series_alerts`` passes one week of
   rows when the grid's step divides a day, a lag that also covers a daily season), steps 1 and
   2 run again on the differences ``x_t - x_{t - lag}`` and each row keeps the larger of the
   two log likelihoods: a departure from last week's shape stands out there even when the value
   is ordinary for the trailing window (a missed daily peak, a night that looks like a day).
   A row that was itself unusual (its own log likelihood above ``reference_max``, 0.1:
   outside the central 90 %) is no reference: without that, every spike alerts a second time
   one lag later, as ``x_t - spike``, the echo that seasonal differencing is known for. Only
   the first channel judges the reference: a spike hidden in a wide daily swing, unusual
   against last week only, still echoes.
   **Slow channel** (multi-scale windows, as in the multi-resolution detectors of NAB and in
   CUSUM's accumulation of small deviations, Page 1954): steps 1 and 2 also run on the trailing
   mean of the last ``smooth`` present values (288, a day of 5-minute rows), and a row
   keeps the largest log likelihood of its channels. A shift of a fraction of the noise, or
   spikes that come more often, move that mean by many of its own deviations while no single
   row stands out.
   **Familiar extremes** (the "new normal" that ARTime (M. Hampton 2021, ARTimeNAB.jl; NAB's best)
   learns by resetting its model, and an empirical tail in place of the Gaussian's once there
   is data for it): the Gaussian model of step 2 calls a raw score rare even after it has
   happened many times (spikes every 100 rows, whose raw scores are all at the cap, make a
   two-point distribution, not a Gaussian). So a raw score at least as far out (``|raw|``) as
   ``c >= seen`` (20) of the ``n`` raw scores in the ``long_window`` rows before it gets the
   likelihood ``min(L_t, 1 - c / n)``, its empirical tail, which 20 observations estimate to
   about 20 %. Only rows with ``L_t > 1 - 1e-3`` are looked at (below, no alert is in reach).
3. **Episode rule** (the suppression after a detection that ARTime, the best published NAB
   detector, applies to its own scores, and the refractory period of online change detectors):
   a row whose log likelihood reaches ``threshold`` while no episode is open raises an
   ``alert`` and opens an episode; it closes after ``quiet`` consecutive rows below it.
   Inside an episode ``alert_score`` is 0, so any threshold at or above ``threshold`` fires once
   per episode; outside, it is the log likelihood. A level shift keeps the likelihood high until
   the trailing median has moved to the new level (at most about ``window / 2`` rows), or the
   long window has learnt the larger deviations, and then its episode closes quietly.

Windows count present values: a missing value (a gap in the grid, an empty cell) is skipped, so
gaps neither shorten the windows nor open episodes; its ``alert_score`` is 0. Before
``min_periods`` present values the likelihood is held at 0.5, so no alert can be raised.

The defaults are HTM's windows for 5-minute data (a day, 288 rows; a month, 8640 rows);
``cap``, ``quiet`` and the weekly lag were chosen on NAB's development half in an earlier
round; ``smooth`` (288), ``seen`` (20), ``reference_max`` (0.1) and the threshold (0.52, a
likelihood of ``1 - 10^-5.2``, next to HTM's ``1 - 1e-5``) are what the benchmark's selection
chooses on the whole development half, and the same selection run inside 3 folds of series
estimates the score on unseen series (``benchmarks/nab_alerts.py``, ``benchmarks/RESULTS.md``).
Not adapted here: ARTime's and contextOSE's own models of the signal.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike
from scipy.special import ndtr

from assay._errors import UsageError
from assay.anomaly._detectors import MAD_TO_SD, BoolArray, FloatArray, as_series

_LOG_FLOOR = math.log(1e-10)
_BLOCK = 2048


def _trailing_median_mad(x: FloatArray, window: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Median, MAD and count of the present values among the ``window`` rows before each row."""
    n = len(x)
    med, mad, count = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
    if n == 0:
        return med, mad, count
    before = sliding_window_view(np.concatenate([np.full(window, np.nan), x])[:-1], window)
    # The first ``window`` rows see the NaN padding; the blocks after them, on a series without
    # gaps, take numpy's median, several times faster than nanmedian.
    for start in [0, *range(min(window, n), n, _BLOCK)]:
        stop = min(window, n) if start == 0 else start + _BLOCK
        block = before[start:stop]
        present = (~np.isnan(block)).sum(axis=1)
        count[start:stop] = present
        if present.min(initial=window) == window:
            m = np.median(block, axis=1)
            med[start:stop], mad[start:stop] = m, np.median(np.abs(block - m[:, None]), axis=1)
            continue
        some = present > 0
        if some.any():
            m = np.nanmedian(block[some], axis=1)
            med[start:stop][some] = m
            mad[start:stop][some] = np.nanmedian(np.abs(block[some] - m[:, None]), axis=1)
    return med, mad, count


def _trailing_mean(a: FloatArray, window: int) -> FloatArray:
    """Mean of each row and the ``window - 1`` rows before it."""
    c = np.concatenate([[0.0], np.cumsum(a)])
    end = np.arange(1, len(a) + 1)
    start = np.maximum(0, end - window)
    return np.asarray((c[end] - c[start]) / (end - start), dtype=np.float64)


def alert_scores(
    values: ArrayLike,
    *,
    window: int = 288,
    cap: float = 20.0,
    long_window: int = 8640,
    short_window: int = 1,
    min_periods: int = 30,
    threshold: float = 0.52,
    quiet: int = 20,
    periods: tuple[int, ...] = (),
    smooth: int = 288,
    seen: int = 20,
    reference_max: float = 0.1,
) -> tuple[FloatArray, BoolArray]:
    """Online alert score in [0, 1] and the rows where an alert is raised (once per episode).

    Parameters
    ----------
    values : array-like of float
        A regular series, NaN where missing.
    window : int, default 288
        Rows before a row whose median and MAD standardise it (HTM: a day of 5-minute rows).
    cap : float, default 20.0
        Robust z-scores above ``cap`` count as ``cap``.
    long_window : int, default 8640
        Raw scores whose mean and standard deviation model their distribution (HTM: 30 days).
    short_window : int, default 1
        Raw scores averaged before comparing with that distribution (HTM: 10).
    min_periods : int, default 30
        Present values needed before a row can be scored.
    threshold : float, default 0.52
        Log likelihood that raises an alert (0.5 is a likelihood of ``1 - 1e-5``, 0.52 of
        ``1 - 10^-5.2``: the corpus threshold chosen on NAB's development half, see the notes).
    quiet : int, default 20
        Consecutive rows below ``threshold`` that close an episode.
    periods : tuple of int, default ()
        Seasonal lags, in rows: for each, steps 1 and 2 also run on the differences
        ``x_t - x_{t - lag}`` (present when both are), and a row's log likelihood is the largest
        of its channels. :func:`~assay.anomaly.series_alerts` passes one week of rows.
    smooth : int, default 288
        Rows averaged by the slow channel: steps 1 and 2 also run on the trailing mean of the
        last ``smooth`` present values, which sees a sustained shift or a change in the rate of
        spikes that no single row shows (1: no slow channel).
    seen : int, default 20
        A raw score at least as far out as ``seen`` of the ``long_window`` raw scores before it
        is no news: its likelihood is the empirical one (that count over the rows counted), when
        lower than the Gaussian's (0: the Gaussian's always).
    reference_max : float, default 0.1
        A row whose own log likelihood (of its value, the first channel) exceeds this is no
        reference for the seasonal channel: the difference to it, a lag later, is skipped like a
        gap, so a spike does not alert again one lag later (1: every row is a reference).

    Returns
    -------
    alert_score : numpy.ndarray
        float64 in [0, 1]: the log likelihood outside an episode, 0 inside one.
    alert : numpy.ndarray
        bool, true on the row that opens an episode.

    Notes
    -----
    Definitions and citations in the module docstring and ``docs/anomalies.md``. Every value at
    row ``t`` depends on rows ``0..t`` only, so the scores of a prefix of a series are the prefix
    of its scores.

    Examples
    --------
    >>> x = [10.0 + (i % 3) for i in range(200)] + [40.0] * 100
    >>> score, alert = alert_scores(x)
    >>> np.flatnonzero(alert).tolist(), round(float(score[200]), 6)
    ([200], 1.0)
    >>> int(alert.sum()), bool(score[201:].max() < 0.5)  # one alert; low after the onset
    (1, True)
    """
    x = as_series(values)
    for name, v, low in (
        *(("periods", p, 1) for p in periods),
        ("window", window, 1),
        ("long_window", long_window, 1),
        ("short_window", short_window, 1),
        ("min_periods", min_periods, 1),
        ("quiet", quiet, 1),
        ("smooth", smooth, 1),
        ("seen", seen, 0),
    ):
        if int(v) != v or v < low:
            raise UsageError(f"{name} must be an integer >= {low} (got {v!r})")
    if not cap > 0:
        raise UsageError(f"cap must be > 0 (got {cap!r})")
    if not 0 <= reference_max <= 1:
        raise UsageError(f"reference_max must be between 0 and 1 (got {reference_max!r})")
    if not 0 < threshold <= 1:
        raise UsageError(f"threshold must be in (0, 1] (got {threshold!r})")
    present = ~np.isnan(x)
    settings = _Channel(window, cap, long_window, short_window, min_periods, seen)
    log_score = _log_scores(x, settings, periods, smooth, reference_max)
    score, alert = episodes(log_score, threshold, quiet)
    full_score, full_alert = np.zeros(len(present)), np.zeros(len(present), dtype=np.bool_)
    full_score[present], full_alert[present] = score, alert
    return full_score, full_alert


class _Channel(NamedTuple):
    """The settings of steps 1 and 2, shared by every channel (see :func:`alert_scores`)."""

    window: int
    cap: float
    long_window: int
    short_window: int
    min_periods: int
    seen: int


def _log_scores(
    x: FloatArray,
    settings: _Channel,
    periods: tuple[int, ...],
    smooth: int,
    reference_max: float,
) -> FloatArray:
    """The largest log likelihood of a row's channels, for the present values of ``x``.

    Steps 1 and 2 of the module docstring on every channel, before the episode rule (the NAB
    benchmark applies that rule at several thresholds to the same scores).
    """
    present = ~np.isnan(x)

    def channel(v: FloatArray) -> FloatArray:
        return _log_likelihood(v, *settings)

    own = channel(x[present])
    unusual = np.zeros(len(x), dtype=np.bool_)
    unusual[present] = own > reference_max
    log_score = own
    if smooth > 1:
        log_score = np.maximum(log_score, channel(_trailing_mean(x[present], smooth)))
    for period in periods:
        if period >= len(x):
            continue
        diff = np.full(len(x), np.nan)
        diff[period:] = np.where(unusual[:-period], np.nan, x[period:] - x[:-period])
        seasonal = np.zeros(len(x))
        has = ~np.isnan(diff)
        seasonal[has] = channel(diff[has])
        log_score = np.maximum(log_score, seasonal[present])
    return log_score


def _log_likelihood(
    x: FloatArray,
    window: int,
    cap: float,
    long_window: int,
    short_window: int,
    min_periods: int,
    seen: int,
) -> FloatArray:
    """Steps 1 and 2 on a series without missing values: HTM's log likelihood of the robust z."""
    med, mad, count = _trailing_median_mad(x, window)
    scale = np.maximum(MAD_TO_SD * mad, 1e-3 * np.abs(med) + 1e-12)
    with np.errstate(invalid="ignore"):
        z = (x - med) / scale
    ok = (count >= min(min_periods, window)) & ~np.isnan(z)
    raw = np.where(ok, np.clip(np.where(ok, z, 0.0), -cap, cap) / cap, 0.0)
    mu = _trailing_mean(raw, long_window)
    sd = np.sqrt(np.maximum(_trailing_mean(raw**2, long_window) - mu**2, 0.0))
    dev = (_trailing_mean(raw, short_window) - mu) / np.maximum(sd, 1e-4)
    likelihood = 2.0 * ndtr(np.abs(dev)) - 1.0
    if seen:
        _familiar(likelihood, np.abs(raw), long_window, seen)
    likelihood[np.cumsum(ok) < min_periods] = 0.5
    return np.asarray(
        np.clip(np.log(1.0000000001 - likelihood) / _LOG_FLOOR, 0.0, 1.0), dtype=np.float64
    )


def _familiar(likelihood: FloatArray, size: FloatArray, long_window: int, seen: int) -> None:
    """Cap, in place, the likelihood of rows seen often enough at their empirical tail.

    A row whose ``size`` is reached by ``c >= seen`` of the ``n`` rows before it (at most
    ``long_window``) gets ``min(L, 1 - c / n)``. Only rows with ``L > 1 - 1e-3`` are looked at:
    below that, no alert threshold is in reach (``1e-3`` is 0.3 on the log scale).
    """
    for t in map(int, np.flatnonzero(likelihood > 1.0 - 1e-3)):
        start = max(0, t - long_window)
        count = int(np.count_nonzero(size[start:t] >= size[t]))
        if count >= seen:
            likelihood[t] = min(likelihood[t], 1.0 - count / (t - start))


def episodes(score: FloatArray, threshold: float, quiet: int) -> tuple[FloatArray, BoolArray]:
    """The episode rule: one alert at the onset of each episode, the score zeroed inside it.

    An episode opens at a row whose score is at least ``threshold`` (that row is flagged) and
    closes after ``quiet`` consecutive rows below it; rows inside an open episode score 0, so a
    threshold on the returned score raises one alert per episode. The series alerts and the
    fleet scan share this rule.

    Examples
    --------
    >>> out, alert = episodes(np.array([0.1, 0.9, 0.8, 0.1, 0.1, 0.7]), 0.5, quiet=2)
    >>> out.tolist(), alert.tolist()
    ([0.1, 0.9, 0.0, 0.0, 0.0, 0.7], [False, True, False, False, False, True])
    """
    out = score.copy()
    alert = np.zeros(len(score), dtype=np.bool_)
    open_, calm = False, 0
    for t, s in enumerate(score):
        if open_:
            calm = calm + 1 if s < threshold else 0
            out[t] = 0.0
            open_ = calm < quiet
        elif s >= threshold:
            alert[t], open_, calm = True, True, 0
    return out, alert
