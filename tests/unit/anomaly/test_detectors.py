"""Detectors on hand-made series: injected anomalies found where they were put, clean series
left alone, online prefixes stable, and the edge cases (constant, NaN, short) as documented."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from assay._errors import UsageError
from assay.anomaly import (
    AutoDetector,
    DropDetector,
    LevelShiftDetector,
    SeasonalDetector,
    SeriesWarning,
    detect_periods,
)
from assay.anomaly._detectors import robust_location_scale, z_to_score

WEEK = np.array([100.0, 104, 102, 101, 99, 60, 55])  # a weekday/weekend pattern


def weekly(n: int, seed: int = 0, noise: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.resize(WEEK, n) + rng.normal(0, noise, n)


def flagged(det: object, x: np.ndarray) -> list[int]:
    return np.flatnonzero(det.fit_predict(x)).tolist()  # type: ignore[attr-defined]


# -- shared helpers against independent references ---------------------------------------------


def test_score_is_the_two_sided_normal_probability_of_z() -> None:
    z = np.array([-4.0, -1.0, 0.0, 0.5, 2.0, 3.5])
    expected = 1 - 2 * stats.norm.sf(np.abs(z))
    np.testing.assert_allclose(z_to_score(z), expected, rtol=1e-12)


def test_robust_scale_is_the_normal_consistent_mad() -> None:
    a = np.random.default_rng(3).standard_t(3, 101)
    med, scale = robust_location_scale(a)
    assert med == np.median(a)
    assert scale == pytest.approx(stats.median_abs_deviation(a, scale="normal"), rel=1e-5)


# -- drop ------------------------------------------------------------------------------------


def _rolling_rule(x: list[float], w: int, threshold: float) -> list[bool]:
    """The rolling rule of `assay metrics rolling`, written out with plain Python loops."""
    out = []
    for t in range(len(x)):
        if t < 2 * w - 1:
            out.append(False)
            continue
        cur = sum(x[t - w + 1 : t + 1]) / w
        prev = sum(x[t - 2 * w + 1 : t - w + 1]) / w
        out.append(prev > 0 and cur <= (1 - threshold) * prev)
    return out


@settings(max_examples=60, deadline=None)
@given(
    x=st.lists(st.integers(0, 50).map(float), min_size=0, max_size=40),
    w=st.integers(1, 6),
    threshold=st.sampled_from([0.1, 0.3, 0.5]),
)
def test_drop_flags_exactly_what_the_rolling_rule_flags(
    x: list[float], w: int, threshold: float
) -> None:
    got = DropDetector(window=w, threshold=threshold).fit_predict(np.array(x))
    assert got.tolist() == _rolling_rule(x, w, threshold)


def test_drop_score_is_the_relative_drop_and_flags_from_the_fifth_low_day() -> None:
    # 14 days at 10 then 7 at 5: on the j-th low day the trailing mean is 10 - 5j/7, so the
    # drop is 5j/70; it reaches 0.3 at j = 5 (index 18).
    x = np.array([10.0] * 14 + [5.0] * 7)
    s = DropDetector().fit_score(x)
    assert np.isnan(s[:13]).all()
    np.testing.assert_allclose(s[13:], [5 * j / 70 for j in range(8)], atol=1e-12)
    assert flagged(DropDetector(), x) == [18, 19, 20]


def test_drop_is_undefined_after_a_window_of_zeros() -> None:
    s = DropDetector(window=2).fit_score(np.array([0.0, 0.0, 3.0, 1.0]))
    assert np.isnan(s).all()


# -- seasonal --------------------------------------------------------------------------------


def test_detects_a_weekly_season_and_no_season_in_noise() -> None:
    assert detect_periods(weekly(84)) == (7,)
    noise = np.random.default_rng(1).normal(0, 1, 84)
    assert detect_periods(noise) == ()


def test_hourly_daily_cycle_alone_is_not_also_a_weekly_one() -> None:
    hours = np.arange(24 * 28)
    rng = np.random.default_rng(2)
    daily = 50 + 20 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 1, len(hours))
    assert detect_periods(daily, candidates=(24, 168)) == (24,)
    weekend = np.where((hours // 24) % 7 >= 5, -25.0, 0.0)
    assert detect_periods(daily + weekend, candidates=(24, 168)) == (24, 168)


@pytest.mark.parametrize("online", [False, True])
def test_clean_weekly_series_are_rarely_flagged(online: bool) -> None:
    # Gaussian noise passes |z| >= 3.5 with probability 4.7e-4: about 1.7 of 3600 points.
    n_flagged = sum(
        len(flagged(SeasonalDetector(online=online), weekly(180, s))) for s in range(20)
    )
    assert n_flagged <= 6
    assert flagged(SeasonalDetector(online=online), weekly(180, seed=0)) == []


@pytest.mark.parametrize("online", [False, True])
@pytest.mark.parametrize(("k", "delta"), [(100, +40.0), (131, -45.0), (176, +30.0)])
def test_an_injected_spike_or_dip_is_found_at_its_index(online: bool, k: int, delta: float) -> None:
    x = weekly(180, seed=7)
    x[k] += delta
    assert flagged(SeasonalDetector(online=online), x) == [k]


def test_a_weekend_dip_on_a_weekday_is_anomalous_but_the_same_value_on_weekends_is_not() -> None:
    x = weekly(120, seed=4)
    x[72] = 57.0  # index 72 is a Wednesday-like phase (72 % 7 == 2); 57 is a weekend level
    s = SeasonalDetector().fit_score(x)
    assert s[72] > 0.9999
    weekend = [t for t in range(120) if t % 7 >= 5]
    assert s[weekend].max() < 0.999


def test_given_period_shorter_than_two_cycles_gives_nan_with_a_warning() -> None:
    with pytest.warns(SeriesWarning, match="fewer than two cycles"):
        s = SeasonalDetector(period=7).fit_score(weekly(10))
    assert np.isnan(s).all()


def test_series_too_short_to_test_a_season_is_scored_without_one() -> None:
    x = np.array([5.0, 5, 6, 5, 4, 5, 5, 30, 5, 6, 5, 5])
    det = SeasonalDetector().fit(x)
    with pytest.warns(SeriesWarning, match="without a season"):
        s = det.score(x)
    assert det.periods_ == ()
    assert np.nanargmax(s) == 7
    with pytest.warns(SeriesWarning):
        flags = det.predict(x)
    assert np.flatnonzero(flags).tolist() == [7]


def test_online_seasonal_warm_up_is_as_documented() -> None:
    s = SeasonalDetector(online=True).fit_score(weekly(60))
    # A season is tested from t = 28 (four weeks); 14 one-step errors later the scale exists.
    assert np.isnan(s[:42]).all()
    assert not np.isnan(s[42:]).any()


# -- level shift -----------------------------------------------------------------------------


def _step(k: int, n: int = 60, shift: float = 10.0, seed: int = 5) -> np.ndarray:
    x = 20 + np.random.default_rng(seed).normal(0, 1, n)
    x[k:] += shift
    return x


@pytest.mark.parametrize("k", [20, 33, 45])
def test_offline_level_shift_flags_the_step_and_the_next_half_window(k: int) -> None:
    # At t in k..k+3 the after-window (t..t+6) is all new and the before-window (t-7..t-1)
    # holds at most 3 new values, so its median is still old; at t = k+4 it holds 4 of 7.
    assert flagged(LevelShiftDetector(), _step(k)) == [k, k + 1, k + 2, k + 3]


@pytest.mark.parametrize("k", [20, 33, 45])
def test_online_level_shift_flags_once_the_trailing_median_has_crossed(k: int) -> None:
    # The trailing window (t-6..t) has a new-level median from t = k+3 (4 of 7 new), and the
    # window before it (t-13..t-7) is still old until t = k+10.
    got = flagged(LevelShiftDetector(online=True), _step(k))
    assert got[0] == k + 3
    assert set(got) <= set(range(k + 3, k + 10))


def test_level_shift_ignores_an_isolated_spike() -> None:
    x = _step(200, n=60)  # no step inside the series
    x[30] += 15
    assert flagged(LevelShiftDetector(), x) == []
    assert flagged(LevelShiftDetector(online=True), x) == []


# -- auto ------------------------------------------------------------------------------------


def test_auto_chooses_seasonal_for_a_weekly_series_and_finds_its_spike() -> None:
    x = weekly(120, seed=9)
    x[80] -= 40
    det = AutoDetector().fit(x)
    assert det.chosen_ == "seasonal"
    assert flagged(det, x) == [80]


def test_auto_chooses_level_without_a_season_and_finds_the_step() -> None:
    x = _step(30)
    det = AutoDetector().fit(x)
    assert det.chosen_ == "level"
    assert flagged(det, x)[0] == 30
    online = AutoDetector(online=True).fit(x)
    assert online.chosen_ == "level"
    assert flagged(online, x)[0] == 33


# -- every detector: online prefix property and edge cases -------------------------------------

DETECTORS = [DropDetector, SeasonalDetector, LevelShiftDetector, AutoDetector]


@st.composite
def series(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(0, 70))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["weekly", "noise", "step", "constant", "ints"]))
    if kind == "weekly":
        x = weekly(n, seed)
    elif kind == "noise":
        x = rng.normal(10, 3, n)
    elif kind == "step":
        x = _step(n // 2, n=max(n, 1), seed=seed)[:n]
    elif kind == "constant":
        x = np.full(n, 4.0)
    else:
        x = rng.integers(0, 4, n).astype(float)
    missing = draw(st.floats(0, 0.3))
    x[rng.random(n) < missing] = np.nan
    return x


@settings(max_examples=40, deadline=None)
@given(x=series(), cls=st.sampled_from(DETECTORS), data=st.data())
def test_online_score_of_a_prefix_is_the_prefix_of_the_online_scores(
    x: np.ndarray, cls: type, data: st.DataObject
) -> None:
    k = data.draw(st.integers(0, len(x)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeriesWarning)
        whole = cls(online=True).fit(x).score(x)
        prefix = cls(online=True).fit(x[:k]).score(x[:k])
    np.testing.assert_array_equal(prefix, whole[:k])


@settings(max_examples=30, deadline=None)
@given(x=series(), cls=st.sampled_from(DETECTORS), online=st.booleans())
def test_scores_are_in_the_unit_interval_and_nan_is_never_flagged(
    x: np.ndarray, cls: type, online: bool
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeriesWarning)
        det = cls(online=online).fit(x)
        s, flags = det.score(x), det.predict(x)
    assert s.shape == flags.shape == x.shape
    defined = s[~np.isnan(s)]
    assert ((defined >= 0) & (defined <= 1)).all()
    assert not flags[np.isnan(s)].any()


@pytest.mark.parametrize("cls", DETECTORS)
@pytest.mark.parametrize("online", [False, True])
def test_constant_series_scores_zero_and_flags_nothing(cls: type, online: bool) -> None:
    x = np.full(60, 7.0)
    s = cls(online=online).fit_score(x)
    assert not np.isnan(s).all()
    assert np.nanmax(s) == 0.0
    assert not cls(online=online).fit_predict(x).any()


@pytest.mark.parametrize("cls", [SeasonalDetector, LevelShiftDetector])
@pytest.mark.parametrize("online", [False, True])
def test_a_missing_value_has_no_score_and_its_neighbours_still_do(cls: type, online: bool) -> None:
    x = weekly(90, seed=1)
    x[60] = np.nan
    s = cls(online=online).fit_score(x)
    assert math.isnan(s[60])
    assert not np.isnan(s[55:60]).any()
    assert not np.isnan(s[61:66]).any()


@pytest.mark.parametrize("cls", DETECTORS)
def test_empty_and_tiny_series_give_nan_scores(cls: type) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeriesWarning)
        assert cls().fit_score(np.array([])).shape == (0,)
        assert np.isnan(cls().fit_score(np.array([3.0]))).all()


def test_parameters_are_stored_by_init_and_validated_by_fit() -> None:
    det = LevelShiftDetector(window=0)
    assert det.window == 0
    with pytest.raises(UsageError, match="window must be an integer >= 2"):
        det.fit([1.0, 2.0])
    with pytest.raises(UsageError, match="threshold must be a number in"):
        DropDetector(threshold=1.5).fit([1.0])


def test_bad_input_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not fitted"):
        SeasonalDetector().score([1.0])
    with pytest.raises(UsageError, match="finite or NaN"):
        DropDetector().fit([1.0, math.inf])
    with pytest.raises(UsageError, match="must be numbers"):
        DropDetector().fit(["a", "b"])
