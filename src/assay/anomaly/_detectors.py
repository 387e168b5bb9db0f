"""Anomaly detectors for one regular time series: drop, seasonal, level shift and auto.

Every detector follows the estimator contract (``docs/anomalies.md`` has the definitions):

- the constructor only stores keyword parameters; ``fit(values)`` validates them, learns what
  the series says about itself (a season, which detector to use) and returns ``self``;
- ``score(values)`` gives one score per point in [0, 1], higher is more anomalous, NaN where the
  score is undefined (warm-up, missing values, too little data);
- ``predict(values)`` flags the points whose score reaches the detector's cut (NaN is never
  flagged).

With ``online=True`` the score at ``t`` depends only on ``values[: t + 1]``: scoring a prefix
gives the prefix of the scores, so online scores are what a live alert would have said at the
time. ``fit`` then learns nothing the scores depend on. With ``online=False`` (the default) a
score may use the whole series (centred windows, a season fitted on all of it).

Values are floats; NaN means missing. Infinities are an error.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray
from scipy.special import erf
from scipy.stats import t as student_t

from assay._errors import UsageError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# 1.4826 * MAD estimates a normal standard deviation; 1.2533 * mean absolute deviation too
# (used when more than half of the deviations are exactly 0, as in small integer counts).
# The one definition in assay.anomaly (the scan and the alert score use these too).
MAD_TO_SD = 1.4826
MEAN_AD_TO_SD = math.sqrt(math.pi / 2)
# Standard error of a median of k normal values is about 1.2533 * sd / sqrt(k).
_MEDIAN_SE = math.sqrt(math.pi / 2)


class SeriesWarning(UserWarning):
    """A series was usable but not as given (too short for a season, reshaped, ...)."""


# -- helpers -----------------------------------------------------------------------------------


def as_series(values: ArrayLike) -> FloatArray:
    """``values`` as a 1-d float64 array; NaN (or None) is a missing value.

    Examples
    --------
    >>> as_series([1, None, 3.5])
    array([1. , nan, 3.5])
    """
    try:
        raw = values.to_numpy(zero_copy_only=False) if hasattr(values, "to_numpy") else values
        x = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError(
            "values must be numbers (NaN or None for a missing value); got a non-numeric value, "
            "convert the series to floats first"
        ) from None
    if x.ndim != 1:
        raise UsageError(f"values must be one series (a 1-d array); got shape {x.shape}")
    if np.isinf(x).any():
        i = int(np.flatnonzero(np.isinf(x))[0])
        raise UsageError(
            f"values must be finite or NaN (missing); got {x[i]} at index {i}; "
            "replace infinities with NaN or a finite value"
        )
    return x


def _window_matrix(x: FloatArray, offset: int, length: int) -> FloatArray:
    """Row ``t`` is ``x[t + offset : t + offset + length]``, NaN outside the series."""
    n = len(x)
    if n == 0:
        return np.empty((0, length))
    pad_left = max(0, -offset)
    pad_right = max(0, offset + length - 1)
    padded = np.concatenate([np.full(pad_left, np.nan), x, np.full(pad_right, np.nan)])
    start = offset + pad_left
    return sliding_window_view(padded, length)[start : start + n]


def _nanstat(m: FloatArray, how: Literal["median", "mean"], min_count: int) -> FloatArray:
    """Median or mean of each row over its present values; NaN below ``min_count`` values."""
    if m.shape[0] == 0:
        return np.empty(0)
    count = np.sum(~np.isnan(m), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN, as wanted
        out = np.nanmedian(m, axis=1) if how == "median" else np.nanmean(m, axis=1)
    out[count < max(min_count, 1)] = np.nan
    return np.asarray(out, dtype=np.float64)


def robust_location_scale(a: FloatArray) -> tuple[float, float]:
    """Median and robust standard deviation of the present values of ``a``.

    The scale is 1.4826 * MAD; when the MAD is 0 (more than half the values equal), it is
    1.2533 * the mean absolute deviation from the median; 0 only when all values are equal.
    NaN for fewer than two values.

    Examples
    --------
    >>> robust_location_scale(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    (3.0, 1.4826)
    >>> robust_location_scale(np.array([5.0, 5.0, 5.0, 9.0]))
    (5.0, 1.2533141373155001)
    """
    a = a[~np.isnan(a)]
    if len(a) < 2:
        return math.nan, math.nan
    med = float(np.median(a))
    dev = np.abs(a - med)
    mad = float(np.median(dev))
    if mad > 0:
        return med, MAD_TO_SD * mad
    return med, MEAN_AD_TO_SD * float(np.mean(dev))


def _z(dev: FloatArray, scale: FloatArray | float) -> FloatArray:
    """``dev / scale``, with 0/0 = 0 and d/0 = ±inf (a zero scale means 'all values equal')."""
    dev = np.asarray(dev, dtype=np.float64)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), dev.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = dev / scale
    zero = scale == 0
    z[zero & (dev == 0)] = 0.0
    z[zero & (dev != 0)] = np.sign(dev[zero & (dev != 0)]) * np.inf
    return np.asarray(z, dtype=np.float64)


def z_to_score(z: ArrayLike) -> FloatArray:
    """Two-sided normal probability ``1 - 2 * norm.sf(|z|) = erf(|z| / sqrt(2))``, in [0, 1].

    Examples
    --------
    >>> z_to_score([0.0, 1.959964, np.inf, np.nan]).round(3)
    array([0.  , 0.95, 1.  ,  nan])
    """
    z = np.asarray(z, dtype=np.float64)
    return np.asarray(erf(np.abs(z) / math.sqrt(2)), dtype=np.float64)


def _odd(w: int) -> int:
    return w if w % 2 else w + 1


def _centred_median(x: FloatArray, w: int) -> FloatArray:
    """Rolling median of the ``w`` (made odd) points centred on each point, the point left out.

    Near the ends the window slides inwards instead of shrinking, so it always spans a full
    cycle (a shrunk window would see part of a season and bias the trend). Leaving the point
    out keeps its own noise out of its trend, so residuals are not shrunk towards 0.
    """
    w = _odd(w)
    n = len(x)
    if n == 0:
        return np.empty(0)
    if n <= w:
        m = np.array(np.broadcast_to(x, (n, n)))
        np.fill_diagonal(m, np.nan)
        return _nanstat(m, "median", max(1, (n - 1 + 1) // 2))
    starts = np.clip(np.arange(n) - w // 2, 0, n - w)
    m = sliding_window_view(x, w)[starts].copy()
    m[np.arange(n), np.arange(n) - starts] = np.nan
    return _nanstat(m, "median", w // 2)


def _edge_lines(y: FloatArray, trend: FloatArray, w: int) -> FloatArray:
    """Correct the trend of the first and last ``w // 2`` points for the series' slope.

    Their windows cannot be centred, so the median sits at the window's centre, not at the
    point: it is moved along a Theil-Sen slope fitted to the last (first) ``3 * w`` points,
    long enough for the slope's noise to stay small at the end of the series.
    """
    from scipy.stats import theilslopes

    w = _odd(w)
    n = len(y)
    h = w // 2
    if n <= w:
        return trend
    out = trend.copy()
    for points, span in (
        (range(h), range(min(n, 3 * w))),
        (range(n - h, n), range(max(0, n - 3 * w), n)),
    ):
        idx = np.array([i for i in span if not np.isnan(y[i])])
        if len(idx) < 3:
            continue
        slope = float(theilslopes(y[idx], idx)[0])
        for t in points:
            centre = min(max(t - h, 0), n - w) + h
            out[t] = trend[t] + slope * (t - centre)
    return out


def _trailing_median(x: FloatArray, w: int) -> FloatArray:
    """Median of the ``w`` values strictly before each point (half of them present)."""
    return _nanstat(_window_matrix(x, -w, w), "median", (w + 1) // 2)


def _phase_medians(d: FloatArray, p: int) -> FloatArray:
    """Median of ``d`` at each phase ``t mod p`` (NaN for a phase without values)."""
    cycles = -(-len(d) // p)
    padded = np.full(cycles * p, np.nan)
    padded[: len(d)] = d
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmedian(padded.reshape(cycles, p), axis=0), dtype=np.float64)


def _phase_medians_without_self(d: FloatArray, p: int) -> FloatArray:
    """For each ``t``, the median of ``d`` at phase ``t mod p``, ``d[t]`` itself left out."""
    n = len(d)
    out = np.full(n, np.nan)
    for phase in range(min(p, n)):
        idx = np.arange(phase, n, p)
        idx = idx[~np.isnan(d[idx])]
        m = len(idx)
        if m < 2:
            continue
        order = np.argsort(d[idx], kind="stable")
        srt = d[idx][order]
        rank = np.empty(m, dtype=np.int64)
        rank[order] = np.arange(m)

        # Entry i of the m - 1 remaining values, sorted, is srt[i] below the left-out rank
        # and srt[i + 1] from it on.
        k = m - 1
        upper = srt[np.where(k // 2 < rank, k // 2, k // 2 + 1)]
        if k % 2:
            out[idx] = upper
        else:
            lower = srt[np.where(k // 2 - 1 < rank, k // 2 - 1, k // 2)]
            out[idx] = (lower + upper) / 2
    return out


def _autocorrelation(d: FloatArray, lag: int) -> float:
    """Pearson correlation of ``d[t]`` and ``d[t + lag]`` over the pairs where both exist."""
    a, b = d[:-lag], d[lag:]
    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < lag:
        return math.nan
    a, b = a[ok], b[ok]
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denom if denom > 0 else math.nan


def detect_periods(
    values: ArrayLike, candidates: Sequence[int] = (7,), *, acf_threshold: float = 0.3
) -> tuple[int, ...]:
    """The seasons of ``values`` among ``candidates``, shortest first.

    Candidates are tested shortest first. For each, the series (with the seasons found so far
    removed) is detrended by a centred rolling median over two cycles (the point left out:
    each phase then appears twice in the window), and the season is kept
    when the autocorrelation at that lag is at least ``acf_threshold``; its per-phase medians
    are then removed before the next candidate is tested. The first and last cycle are left
    out of the autocorrelation (their windows are not centred), so a candidate needs four
    cycles of data (fewer: it is not tested).

    Examples
    --------
    >>> week = np.tile([10.0, 10, 10, 10, 10, 4, 4], 8)
    >>> detect_periods(week + np.linspace(0, 1, 56), candidates=(7,))
    (7,)
    >>> detect_periods(np.arange(56.0), candidates=(7,))
    ()
    """
    x = as_series(values)
    found: list[int] = []
    rest = x.copy()
    for p in sorted(set(candidates)):
        if p < 2 or len(x) < 4 * p:
            continue
        d = rest - _centred_median(rest, 2 * p + 1)
        inner = d.copy()
        inner[:p] = inner[-p:] = np.nan
        acf = _autocorrelation(inner, p)
        if not math.isnan(acf) and acf >= acf_threshold:
            found.append(p)
            rest = rest - np.nan_to_num(_phase_medians(d, p))[np.arange(len(x)) % p]
    return tuple(found)


# -- base --------------------------------------------------------------------------------------


class _Detector:
    """Shared plumbing: input checks, the fitted flag, ``predict`` from ``score``."""

    online: bool

    def fit(self, values: ArrayLike) -> _Detector:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_fit_"):
            raise UsageError(
                f"this {type(self).__name__} is not fitted yet; call fit(values) before "
                "score or predict (or use fit_predict)"
            )

    def _cut(self) -> float:
        raise NotImplementedError

    def score(self, values: ArrayLike) -> FloatArray:
        raise NotImplementedError

    def predict(self, values: ArrayLike) -> BoolArray:
        """True where the score reaches the detector's cut; False where it is NaN."""
        s = self.score(values)
        with np.errstate(invalid="ignore"):
            return np.asarray(s >= self._cut(), dtype=np.bool_)

    def fit_score(self, values: ArrayLike) -> FloatArray:
        """``fit(values).score(values)``."""
        return self.fit(values).score(values)

    def fit_predict(self, values: ArrayLike) -> BoolArray:
        """``fit(values).predict(values)``."""
        return self.fit(values).predict(values)

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters, as given."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _check_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum} (got {value!r})")


def _check_float(name: str, value: object, low: float, high: float) -> None:
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    if not ok or not (low < float(value) < high):  # type: ignore[arg-type]
        raise UsageError(f"{name} must be a number in ({low}, {high}) (got {value!r})")


# -- drop --------------------------------------------------------------------------------------


class DropDetector(_Detector):
    """A drop of the trailing-window mean against the window before it.

    At ``t``, ``cur`` is the mean of ``values[t - window + 1 : t + 1]`` and ``prev`` the mean of
    the ``window`` values before those (each over its present values; NaN when fewer than half
    are present, or before ``2 * window`` points exist). The score is the relative drop
    ``clip((prev - cur) / prev, 0, 1)``, NaN when ``prev`` is NaN or not positive; a point is
    flagged when the score is at least ``threshold``, i.e. ``cur <= (1 - threshold) * prev``:
    the rolling rule of ``assay metrics rolling``. It only looks back, so online and offline
    scores are equal. It assumes a non-negative series (counts) and sees only drops.

    Parameters
    ----------
    window : int, default 7
        Points in each window.
    threshold : float, default 0.3
        Relative drop that flags a point (0.3 = 30%).
    online : bool, default False
        Accepted for a uniform interface; the rule is causal either way.

    Examples
    --------
    >>> x = [10.0] * 14 + [5.0] * 7
    >>> det = DropDetector(window=7).fit(x)
    >>> det.score(x)[13:].round(3).tolist()
    [0.0, 0.071, 0.143, 0.214, 0.286, 0.357, 0.429, 0.5]
    >>> np.flatnonzero(det.predict(x)).tolist()
    [18, 19, 20]
    """

    def __init__(self, *, window: int = 7, threshold: float = 0.3, online: bool = False) -> None:
        self.window = window
        self.threshold = threshold
        self.online = online

    def fit(self, values: ArrayLike) -> DropDetector:
        """Validate the parameters; nothing is learned from ``values``."""
        _check_int("window", self.window, 1)
        _check_float("threshold", self.threshold, 0.0, 1.0)
        self.n_fit_ = len(as_series(values))
        return self

    def _cut(self) -> float:
        return float(self.threshold)

    def score(self, values: ArrayLike) -> FloatArray:
        """Relative drop of the trailing mean, in [0, 1]; NaN in the first 2 * window - 1 points."""
        self._check_fitted()
        x = as_series(values)
        w = int(self.window)
        half = (w + 1) // 2
        cur = _nanstat(_window_matrix(x, -w + 1, w), "mean", half)
        prev = _nanstat(_window_matrix(x, -2 * w + 1, w), "mean", half)
        prev[: 2 * w - 1] = np.nan  # a full prior window inside the series, as dau_rolling
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.clip((prev - cur) / prev, 0.0, 1.0)
        s[~(prev > 0)] = np.nan
        return np.asarray(s, dtype=np.float64)


# -- seasonal ----------------------------------------------------------------------------------


class SeasonalDetector(_Detector):
    """Robust seasonal decomposition; the residual is scored by median and MAD.

    ``x = trend + season(s) + residual``: the trend is a rolling median over ``trend_window``
    points (default: two cycles of the longest season plus one, 15 without a season), each
    season the median of the detrended values at its phase (``t mod period``), shortest season
    first. Offline, trend and seasons are estimated twice, the second trend on the
    deseasonalised series (so a gap or an edge does not let the season leak into the trend).
    The residual ``r`` becomes a robust z, ``z = (r - median(r)) / (1.4826 * MAD(r))``, and
    the score is the two-sided normal probability ``erf(|z| / sqrt(2)) = 1 - 2 * norm.sf(|z|)``.
    A point is flagged when its score reaches that of ``z_threshold`` (``|z| >= z_threshold``
    offline).

    Offline, the trend is a centred median, the seasons and the scale come from the whole
    series, and the seasons are those ``fit`` found (or ``period``). A given period needs two
    cycles of data: with fewer, every score is NaN (with a :class:`SeriesWarning`). When
    ``period`` is None and the series is too short to test any candidate, it is scored
    without a season (also with a warning).

    Online, the score at ``t`` fits the decomposition on ``values[:t]`` (trailing-median
    trend, seasons detected once per cycle on ``values[:t]`` when ``period`` is None) and
    scores the one-step-ahead error at ``t`` against the ``m`` earlier such errors, with
    Student's t (``m - 1`` degrees of freedom) in place of the normal. Warm-up: no
    score before ``t = 4 * max(candidates)`` when ``period`` is None (a season must be
    testable), nor before ``trend_window`` points, one cycle of detrended history and then
    two cycles of errors exist (``trend_window`` errors without a season): the first score
    is at ``t = 42`` for a weekly season with the defaults.

    Parameters
    ----------
    period : int, sequence of int or None, default None
        The season length(s) in points; None detects them among ``candidates``
        (:func:`detect_periods`).
    candidates : sequence of int, default (7,)
        Season lengths to test: 7 for daily data, (24, 168) for hourly data.
    trend_window : int or None, default None
        Rolling-median window of the trend; None: ``2 * max(period) + 1``, or 15 without a
        season.
    z_threshold : float, default 3.5
        Robust z that flags a point (score cut ``erf(z_threshold / sqrt(2))``).
    acf_threshold : float, default 0.3
        Autocorrelation at the candidate lag above which a season is detected.
    online : bool, default False
        Score each point from the data up to it only.

    Attributes
    ----------
    periods_ : tuple of int
        Seasons used offline (online: the ones detected on the whole series given to ``fit``).

    Examples
    --------
    >>> week = [10.0, 10, 10, 10, 10, 4, 4] * 6
    >>> x = np.array(week); x[30] = 30.0
    >>> det = SeasonalDetector().fit(x)
    >>> det.periods_
    (7,)
    >>> np.flatnonzero(det.predict(x)).tolist()
    [30]
    """

    def __init__(
        self,
        *,
        period: int | Sequence[int] | None = None,
        candidates: Sequence[int] = (7,),
        trend_window: int | None = None,
        z_threshold: float = 3.5,
        acf_threshold: float = 0.3,
        online: bool = False,
    ) -> None:
        self.period = period
        self.candidates = candidates
        self.trend_window = trend_window
        self.z_threshold = z_threshold
        self.acf_threshold = acf_threshold
        self.online = online

    def _validate(self) -> None:
        if self.period is not None:
            periods = [self.period] if isinstance(self.period, int | np.integer) else self.period
            for p in periods:
                _check_int("period", p, 2)
        for p in self.candidates:
            _check_int("candidates", p, 2)
        if self.trend_window is not None:
            _check_int("trend_window", self.trend_window, 2)
        _check_float("z_threshold", self.z_threshold, 0.0, math.inf)
        _check_float("acf_threshold", self.acf_threshold, -1.0, 1.0)

    def _given(self) -> tuple[int, ...] | None:
        if self.period is None:
            return None
        if isinstance(self.period, int | np.integer):
            return (int(self.period),)
        return tuple(sorted({int(p) for p in self.period}))

    def fit(self, values: ArrayLike) -> SeasonalDetector:
        """Validate the parameters and find the seasons of ``values`` (``periods_``)."""
        self._validate()
        x = as_series(values)
        given = self._given()
        self.periods_ = given if given is not None else self._detect(x)
        self.n_fit_ = len(x)
        return self

    def _detect(self, x: FloatArray) -> tuple[int, ...]:
        return detect_periods(x, self.candidates, acf_threshold=self.acf_threshold)

    def _cut(self) -> float:
        return float(z_to_score(self.z_threshold))

    def _trend_window(self, periods: tuple[int, ...]) -> int:
        if self.trend_window is not None:
            return int(self.trend_window)
        return 2 * max(periods) + 1 if periods else 15

    def score(self, values: ArrayLike) -> FloatArray:
        """Score of each point in [0, 1]; NaN where missing or undefined (see the class)."""
        self._check_fitted()
        x = as_series(values)
        if self.online:
            return self._online(x)[0]
        return self._offline(x, self.periods_)

    # offline ------------------------------------------------------------------------------

    def _offline(self, x: FloatArray, periods: tuple[int, ...]) -> FloatArray:
        n = len(x)
        given = self._given()
        if given is None and self.candidates and not any(n >= 4 * p for p in self.candidates):
            warnings.warn(
                f"the series has {n} points, fewer than four cycles of any candidate season "
                f"{tuple(self.candidates)}; it is scored without a season",
                SeriesWarning,
                stacklevel=3,
            )
        if periods and n < 2 * max(periods):
            warnings.warn(
                f"the series has {n} points, fewer than two cycles of the season "
                f"{max(periods)}; its scores are undefined (NaN)",
                SeriesWarning,
                stacklevel=3,
            )
            return np.full(n, np.nan)
        w = self._trend_window(periods)
        season = np.zeros(n)
        passes = 2 if periods else 1
        for i in range(passes):
            trend = _centred_median(x - season, w)
            if i == passes - 1:
                trend = _edge_lines(x - season, trend, w)
            d = x - trend
            season = np.zeros(n)
            for p in periods:
                if i == passes - 1:
                    # Each point's season leaves the point out, as its trend does: otherwise
                    # the typical residuals shrink towards 0 and the scale comes out too small.
                    s = _phase_medians_without_self(d - season, p)
                else:
                    s = np.nan_to_num(_phase_medians(d - season, p))[np.arange(n) % p]
                season = season + s
            d = d - season
        med, scale = robust_location_scale(d)
        if math.isnan(scale):
            return np.full(n, np.nan)
        return z_to_score(_z(d - med, scale))

    # online -------------------------------------------------------------------------------

    def _online(self, x: FloatArray) -> tuple[FloatArray, list[tuple[int, ...]]]:
        """Scores, and the seasons used at each point (for AutoDetector).

        The residual at ``t`` is a one-step-ahead error: ``x[t]`` minus the trailing-median
        trend and the seasons fitted on ``values[:t]``. It is scored against the earlier errors
        (their median and robust scale), which are out of sample too, so a season estimated
        from few cycles widens the scale instead of hiding in an overfit residual.
        """
        n = len(x)
        given = self._given()
        errors = np.full(n, np.nan)
        used: list[tuple[int, ...]] = [()] * n
        trends: dict[int, FloatArray] = {}
        cycle = max(self.candidates, default=0) if given is None else max(given)
        periods: tuple[int, ...] = given or ()
        for t in range(n):
            if given is None and cycle:
                if t < 4 * cycle:
                    continue
                if t % cycle == 0:
                    # Re-detected once per cycle on the data before t: the answer depends on
                    # values[:t] only, so prefixes keep their scores.
                    periods = self._detect(x[:t])
            used[t] = periods
            w = self._trend_window(periods)
            if w not in trends:
                trends[w] = _trailing_median(x, w)
            d = x[: t + 1] - trends[w][: t + 1]
            if np.isnan(d[-1]):
                continue
            if periods and int(np.sum(~np.isnan(d[:-1]))) < max(periods):
                continue
            for p in periods:
                d = d - _phase_medians(d[:-1], p)[np.arange(t + 1) % p]
            errors[t] = d[-1]
        scores = np.full(n, np.nan)
        for t in map(int, np.flatnonzero(~np.isnan(errors))):
            past = errors[:t]
            past = past[~np.isnan(past)]
            needed = 2 * max(used[t]) if used[t] else self._trend_window(())
            if len(past) < needed:
                continue
            med, scale = robust_location_scale(past)
            z = _z(np.array([errors[t] - med]), scale)
            # A scale from m errors is itself uncertain: Student's t with m - 1 degrees of
            # freedom instead of the normal keeps the first weeks from alerting on noise.
            scores[t] = 1.0 - 2.0 * float(student_t.sf(abs(z[0]), len(past) - 1))
        return scores, used


# -- level shift -------------------------------------------------------------------------------


class LevelShiftDetector(_Detector):
    """Level shifts: the median after a point against the median before it.

    At ``t``, ``before`` is the median of the ``window`` values before the split and ``after``
    the median of the ``window`` values from the split on (offline: the split is ``t``, so the
    after window looks ahead; online: the after window is the trailing one ending at ``t``, the
    split ``t - window + 1``). With ``sd`` the noise scale, ``1.4826 · MAD(diff(x)) / sqrt(2)``
    (differences ignore the level, so a shift does not inflate it; offline from the whole
    series, online from the differences up to ``t``), the shift's z is
    ``(after - before) / (1.2533 · sd · sqrt(1/n_before + 1/n_after))``. The point itself must be
    at the new level too: its own z is ``(x[t] - before) / (sd · sqrt(1 + 1.2533² / n_before))``.
    The score is ``erf(|z| / sqrt(2))`` of the smaller of the two z when they have the same sign
    (0 otherwise), so an isolated spike (no shift of the median) scores low, and a point is
    flagged when that z reaches ``z_threshold``. Each window needs half its values present.

    Offline, a clean step at ``k`` is flagged from ``k`` to ``k + window // 2``; online from
    ``k + window // 2`` (the trailing median must have crossed) for a few points.

    Parameters
    ----------
    window : int, default 7
        Points in each of the two windows.
    z_threshold : float, default 3.5
        z that flags a point.
    online : bool, default False
        Score each point from the data up to it only.

    Attributes
    ----------
    scale_ : float
        The noise scale ``sd`` of the series given to ``fit``.

    Examples
    --------
    >>> x = np.array([10.0, 11, 9, 10, 10, 11, 9, 10, 11, 9, 10, 20, 21, 19, 20, 20, 21, 19, 20])
    >>> np.flatnonzero(LevelShiftDetector(window=5).fit_predict(x)).tolist()
    [11, 12, 13]
    """

    def __init__(self, *, window: int = 7, z_threshold: float = 3.5, online: bool = False) -> None:
        self.window = window
        self.z_threshold = z_threshold
        self.online = online

    def fit(self, values: ArrayLike) -> LevelShiftDetector:
        """Validate the parameters and estimate the noise scale ``scale_``."""
        _check_int("window", self.window, 2)
        _check_float("z_threshold", self.z_threshold, 0.0, math.inf)
        x = as_series(values)
        self.scale_ = self._scale(x)
        self.n_fit_ = len(x)
        return self

    def _cut(self) -> float:
        return float(z_to_score(self.z_threshold))

    @staticmethod
    def _scale(x: FloatArray) -> float:
        return robust_location_scale(np.diff(x))[1] / math.sqrt(2) if len(x) > 2 else math.nan

    def score(self, values: ArrayLike) -> FloatArray:
        """Score of each point in [0, 1]; NaN where a window lacks data (see the class)."""
        self._check_fitted()
        x = as_series(values)
        n = len(x)
        w = int(self.window)
        half = (w + 1) // 2
        split = 0 if not self.online else -w + 1  # offset of the after window from t
        after_m = _window_matrix(x, split, w)
        before_m = _window_matrix(x, split - w, w)
        after = _nanstat(after_m, "median", half)
        before = _nanstat(before_m, "median", half)
        n_after = np.sum(~np.isnan(after_m), axis=1)
        n_before = np.sum(~np.isnan(before_m), axis=1)
        if self.online:
            sd = np.full(n, np.nan)
            diffs = np.diff(x)
            for t in range(2, n):
                sd[t] = robust_location_scale(diffs[:t])[1] / math.sqrt(2)
        else:
            sd = np.full(n, self._scale(x))
        with np.errstate(divide="ignore", invalid="ignore"):
            se_shift = _MEDIAN_SE * sd * np.sqrt(1.0 / n_before + 1.0 / n_after)
            se_point = sd * np.sqrt(1.0 + _MEDIAN_SE**2 / n_before)
        z_shift = _z(after - before, se_shift)
        z_point = _z(x - before, se_point)
        same = np.sign(z_shift) == np.sign(z_point)
        z = np.where(same, np.minimum(np.abs(z_shift), np.abs(z_point)), 0.0)
        s = z_to_score(z)
        s[np.isnan(z_shift) | np.isnan(z_point)] = np.nan
        return s


# -- auto --------------------------------------------------------------------------------------

DetectorName = Literal["drop", "seasonal", "level", "auto"]


class AutoDetector(_Detector):
    """Seasonal when the series has a season, level shift otherwise; says which it chose.

    ``fit`` runs :func:`detect_periods` on the series: with a season, the scores are those of
    :class:`SeasonalDetector` with it, else those of :class:`LevelShiftDetector`. Online, the
    choice is made at each point from the data before it (the seasonal detector's online
    detection): level shift until a season is found.

    Parameters
    ----------
    candidates : sequence of int, default (7,)
        Season lengths to test (7 for daily data, (24, 168) for hourly data).
    window : int, default 7
        Window of the level-shift detector.
    z_threshold : float, default 3.5
        z that flags a point, for either detector.
    acf_threshold : float, default 0.3
        Autocorrelation that detects a season.
    online : bool, default False
        Score each point from the data up to it only.

    Attributes
    ----------
    chosen_ : {"seasonal", "level"}
        The detector chosen for the series given to ``fit`` (online: at its last point).
    detector_ : SeasonalDetector or LevelShiftDetector
        That detector, fitted.

    Examples
    --------
    >>> AutoDetector().fit([10.0, 10, 10, 10, 10, 4, 4] * 4).chosen_
    'seasonal'
    >>> AutoDetector().fit(np.arange(28.0)).chosen_
    'level'
    """

    def __init__(
        self,
        *,
        candidates: Sequence[int] = (7,),
        window: int = 7,
        z_threshold: float = 3.5,
        acf_threshold: float = 0.3,
        online: bool = False,
    ) -> None:
        self.candidates = candidates
        self.window = window
        self.z_threshold = z_threshold
        self.acf_threshold = acf_threshold
        self.online = online

    def _parts(self) -> tuple[SeasonalDetector, LevelShiftDetector]:
        seasonal = SeasonalDetector(
            candidates=self.candidates,
            z_threshold=self.z_threshold,
            acf_threshold=self.acf_threshold,
            online=self.online,
        )
        level = LevelShiftDetector(
            window=self.window, z_threshold=self.z_threshold, online=self.online
        )
        return seasonal, level

    def fit(self, values: ArrayLike) -> AutoDetector:
        """Validate the parameters and choose the detector (``chosen_``, ``detector_``)."""
        x = as_series(values)
        seasonal, level = (d.fit(x) for d in self._parts())
        assert isinstance(seasonal, SeasonalDetector)
        if self.online:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SeriesWarning)
                used = seasonal._online(x)[1]
            has_season = bool(used and used[-1])
        else:
            has_season = bool(seasonal.periods_)
        self.chosen_: Literal["seasonal", "level"] = "seasonal" if has_season else "level"
        self.detector_: _Detector = seasonal if has_season else level
        self.n_fit_ = len(x)
        return self

    def _cut(self) -> float:
        return float(z_to_score(self.z_threshold))

    def score(self, values: ArrayLike) -> FloatArray:
        """Scores of the chosen detector (online: of the detector chosen at each point)."""
        self._check_fitted()
        x = as_series(values)
        if not self.online:
            return self.detector_.score(x)
        seasonal, level = self._parts()
        seasonal.fit(x)
        level.fit(x)
        s_seasonal, used = seasonal._online(x)
        s_level = level.score(x)
        has = np.array([bool(u) for u in used], dtype=bool)
        return np.where(has, s_seasonal, s_level)


def make_detector(
    name: DetectorName, *, online: bool = False, candidates: Sequence[int] = (7,)
) -> _Detector:
    """A detector by its CLI name, with its default parameters.

    Examples
    --------
    >>> make_detector("seasonal", online=True, candidates=(24, 168))
    SeasonalDetector(period=None, candidates=(24, 168), trend_window=None, z_threshold=3.5, \
acf_threshold=0.3, online=True)
    """
    if name == "drop":
        return DropDetector(online=online)
    if name == "seasonal":
        return SeasonalDetector(candidates=tuple(candidates), online=online)
    if name == "level":
        return LevelShiftDetector(online=online)
    if name == "auto":
        return AutoDetector(candidates=tuple(candidates), online=online)
    raise UsageError(f"--detector must be drop, seasonal, level or auto (got {name!r})")
