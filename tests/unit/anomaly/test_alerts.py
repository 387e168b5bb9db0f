"""``alert_scores``: online, in [0, 1], one alert per episode; and its columns in ``series``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay._errors import UsageError
from assay.anomaly import SeriesWarning, alert_scores, regularize, score_series, series_alerts

SMALL = {
    "window": 12,
    "long_window": 40,
    "min_periods": 5,
    "quiet": 3,
    "periods": (3,),
    "smooth": 4,
    "seen": 2,
    "reference_max": 0.1,
}


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return 100.0 + np.random.default_rng(seed).normal(0.0, 1.0, n)


series_values = st.lists(
    st.one_of(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
        st.just(float("nan")),
        st.sampled_from([0.0, 1.0, 5.0]),  # repeats: zero MADs, flat stretches
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(values=series_values, cut=st.integers(min_value=1, max_value=120))
def test_the_scores_of_a_prefix_are_the_prefix_of_the_scores(values: list[float], cut: int) -> None:
    x = np.array(values)
    cut = min(cut, len(x))
    for params in (SMALL, {}):
        full_score, full_alert = alert_scores(x, **params)
        part_score, part_alert = alert_scores(x[:cut], **params)
        np.testing.assert_array_equal(part_score, full_score[:cut])
        np.testing.assert_array_equal(part_alert, full_alert[:cut])


@settings(max_examples=60, deadline=None)
@given(values=series_values)
def test_scores_lie_in_0_1_and_alerts_only_where_the_score_is_high(values: list[float]) -> None:
    score, alert = alert_scores(np.array(values), **SMALL)
    assert score.dtype == np.float64
    assert np.all((score >= 0.0) & (score <= 1.0))
    assert np.all(score[alert] >= 0.5)


def test_a_level_shift_alerts_once_at_its_onset_and_not_after_it_settles() -> None:
    x = _noise(2000)
    x[600:] += 10.0  # ten standard deviations up, for good
    score, alert = alert_scores(x)
    assert np.flatnonzero(alert).tolist() == [600]
    assert score[600] > 0.9
    # the episode, then the new normal once the trailing median has moved: low all along
    assert score[601:].max() < 0.5


def test_a_spike_alerts_once_on_its_row() -> None:
    x = _noise(1000, seed=1)
    x[700] += 15.0
    score, alert = alert_scores(x)
    assert np.flatnonzero(alert).tolist() == [700]
    assert np.argmax(score) == 700


def test_two_episodes_far_apart_alert_twice() -> None:
    x = _noise(1500, seed=2)
    x[500] += 15.0
    x[1200] -= 15.0
    assert np.flatnonzero(alert_scores(x)[1]).tolist() == [500, 1200]


def test_a_flat_series_never_alerts() -> None:
    score, alert = alert_scores(np.full(1000, 7.0))
    assert not alert.any()
    assert score.max() < 0.1


def test_noise_alone_rarely_alerts() -> None:
    # Gaussian noise: 1 - 1e-5 tail on 20,000 rows -> well under one alert expected
    _, alert = alert_scores(_noise(20_000, seed=3))
    assert alert.sum() <= 1


def test_missing_values_score_0_and_do_not_shorten_the_windows() -> None:
    x = _noise(900, seed=4)
    x[700] += 15.0
    with_gaps = np.insert(x, [100, 100, 400], np.nan)  # three NaN rows before the spike
    score, alert = alert_scores(with_gaps)
    assert np.isnan(with_gaps[[100, 101, 402]]).all()
    assert score[[100, 101, 402]].tolist() == [0.0, 0.0, 0.0]
    # the present values are scored exactly as without the gaps
    np.testing.assert_array_equal(score[~np.isnan(with_gaps)], alert_scores(x)[0])
    assert np.flatnonzero(alert).tolist() == [703]


def test_a_day_that_breaks_the_weekly_pattern_alerts_with_the_weekly_lag_only() -> None:
    week = np.array([100.0, 104, 102, 101, 99, 60, 55])
    x = np.tile(week, 40) + np.random.default_rng(6).normal(0.0, 1.0, 280)
    x[201] = 100.0  # a Saturday (60) as busy as a weekday: ordinary for the last 288 days
    assert np.flatnonzero(alert_scores(x, periods=(7,))[1]).tolist() == [201]
    assert not alert_scores(x)[1].any()


def test_a_spike_seen_twenty_times_in_the_long_window_is_no_longer_news() -> None:
    # a spike every 100 rows (NAB's art_increase_spike_density): the k-th spike has k - 1 as
    # large before it, so the 21st (row 2100) is the first to have seen=20 of them
    x = np.zeros(4000)
    x[100::100] = 20.0
    assert np.flatnonzero(alert_scores(x)[1]).tolist() == list(range(100, 2001, 100))
    # with the Gaussian likelihood alone, every spike alerts
    assert np.flatnonzero(alert_scores(x, seen=0)[1]).tolist() == list(range(100, 4000, 100))


def test_a_small_sustained_rise_alerts_through_the_slow_channel_only() -> None:
    # +1 standard deviation from row 1500: no row stands out, the mean of a day (288) does
    x = _noise(3000, seed=7)
    x[1500:] += 1.0
    alerts = np.flatnonzero(alert_scores(x)[1]).tolist()
    assert len(alerts) == 1
    assert 1500 <= alerts[0] < 1500 + 288
    assert not alert_scores(x, smooth=1)[1].any()


def test_a_spike_does_not_alert_again_one_seasonal_lag_later() -> None:
    # a daily cycle of 24 rows, a spike at row 500: x[524] - x[500] is the spike upside down
    day = 100.0 + 3.0 * np.sin(2 * np.pi * np.arange(24) / 24)
    x = np.tile(day, 40) + np.random.default_rng(6).normal(0.0, 1.0, 960)
    x[500] += 40.0
    assert np.flatnonzero(alert_scores(x, periods=(24,))[1]).tolist() == [500]
    # with every row a reference, the echo alerts
    echo = alert_scores(x, periods=(24,), reference_max=1.0)[1]
    assert np.flatnonzero(echo).tolist() == [500, 524]


def test_the_week_of_a_grid_follows_its_step() -> None:
    import datetime as dt

    days = pa.array([dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(3)])
    hours = pa.array([3600 * i for i in range(3)], pa.timestamp("s", tz="UTC"))
    seven = pa.array([dt.datetime(2026, 1, 1) + dt.timedelta(hours=7 * i) for i in range(3)])
    assert regularize(days, [1.0, 2.0, 3.0]).week == 7
    assert regularize(hours, [1.0, 2.0, 3.0]).week == 168
    assert regularize(seven, [1.0, 2.0, 3.0]).week is None  # 7 hours do not divide a day
    assert regularize(pa.array([1, 2, 3]), [1.0, 2.0, 3.0]).week is None


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"window": 0}, "window must be an integer >= 1"),
        ({"quiet": 2.5}, "quiet must be an integer >= 1"),
        ({"cap": 0.0}, "cap must be > 0"),
        ({"threshold": 1.5}, "threshold must be in (0, 1]"),
        ({"periods": (0,)}, "periods must be an integer >= 1"),
        ({"smooth": 0}, "smooth must be an integer >= 1"),
        ({"seen": -1}, "seen must be an integer >= 0"),
        ({"reference_max": 1.5}, "reference_max must be between 0 and 1"),
    ],
)
def test_bad_parameters_are_usage_errors(params: dict[str, float], text: str) -> None:
    with pytest.raises(UsageError, match=text.replace("(", r"\(").replace("]", r"\]")):
        alert_scores([1.0, 2.0], **params)  # type: ignore[arg-type]


def test_series_columns_follow_the_input_rows_and_alert_once_on_a_repeated_time() -> None:
    x = _noise(400, seed=5)
    x[300:] += 10.0
    times = list(range(400))
    # the onset's row is given twice (same time, same value): one alert, on the first of them
    times.insert(301, 300)
    values = np.insert(x, 301, x[300])
    with pytest.warns(SeriesWarning, match="repeat an earlier timestamp"):
        series = regularize(pa.array(times), values)
    table = series_alerts(series)
    assert table.num_rows == 401
    assert [i for i, a in enumerate(table.column("alert").to_pylist()) if a] == [300]
    scores = table.column("alert_score").to_pylist()
    assert scores[300] == scores[301]
    scored, _ = score_series(series, detector="level", online=True)
    assert scored.column_names[-2:] == ["alert_score", "alert"]
    assert scored.column("alert").to_pylist() == table.column("alert").to_pylist()
