"""A time series from a CSV file, put onto a regular grid, and scored by a detector.

The detectors need a regular grid, so irregular input is repaired internally, each repair with a
:class:`SeriesWarning` (the CLI prints them on stderr): rows are sorted by time; rows with the
same timestamp are averaged (the mean of their present values); the step is the median
difference between consecutive timestamps; a timestamp off that grid moves to the nearest grid
point (averaged with any value already there); grid points without a row become NaN (missing).
The grid stays internal: :func:`score_series` writes one row per input row, in the input's order,
with the input's timestamp and value and the score of the grid point the row fell on (rows in,
rows out), unless the grid itself is asked for. Non-numeric values are a :class:`UsageError`
naming the column and the first bad row. ``docs/anomalies.md`` has the details.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from numpy.typing import ArrayLike

from assay._errors import NotFoundError, UsageError
from assay.anomaly._alerts import alert_scores
from assay.anomaly._detectors import (
    DetectorName,
    FloatArray,
    SeriesWarning,
    _Detector,
    as_series,
    make_detector,
)

_US_PER_DAY = 86_400_000_000
_US_PER_HOUR = 3_600_000_000
# A grid much longer than the data means a stray timestamp, not gaps.
_MAX_GROWTH = 10
_MAX_EXTRA = 1000

TimeKind = Literal["date", "timestamp", "number"]


@dataclass(frozen=True)
class RegularSeries:
    """A series on a regular grid.

    Attributes
    ----------
    time : pyarrow.Array
        The grid, in the time column's type (``date32``, ``timestamp`` or a number type).
    values : numpy.ndarray
        float64 values, NaN where missing (a gap or an empty cell).
    step : float or None
        The grid step: microseconds for dates and times, the column's unit for numbers; None
        for fewer than two distinct timestamps.
    kind : {"date", "timestamp", "number"}
        What the time column holds.
    rows : numpy.ndarray or None
        For each input row, in the input's order, the index of the grid point it fell on (None
        when the series was built on a grid directly).
    input_time : pyarrow.Array or None
        The input's times, in the input's order: as :func:`read_series` read them (the cells'
        text for dates and times, so ``2014-04-02 14:29:00`` is written back as it came; the
        numbers for a column of numbers), or the array given to :func:`regularize`.
    input_values : numpy.ndarray or None
        The input's values (float64, NaN where missing), in the input's order.
    """

    time: pa.Array
    values: FloatArray
    step: float | None
    kind: TimeKind
    rows: np.ndarray | None = None
    input_time: pa.Array | None = None
    input_values: FloatArray | None = None

    @property
    def seasons(self) -> tuple[int, ...]:
        """Season lengths worth testing: 7 for a daily step, 24 and 168 for an hourly one.

        Examples
        --------
        >>> import datetime as dt
        >>> days = pa.array([dt.date(2026, 1, d) for d in (1, 2, 3)])
        >>> regularize(days, [1.0, 2.0, 3.0]).seasons
        (7,)
        """
        if self.kind == "number" or self.step is None:
            return ()
        if self.step == _US_PER_DAY:
            return (7,)
        if self.step == _US_PER_HOUR:
            return (24, 168)
        return ()

    @property
    def week(self) -> int | None:
        """Rows in one week of the grid (7 for a daily step, 168 for an hourly one).

        None for number times, fewer than two timestamps, or a step that does not divide a day.
        """
        if self.kind == "number" or self.step is None or _US_PER_DAY % self.step:
            return None
        return int(7 * _US_PER_DAY // self.step)

    def step_text(self) -> str:
        """The step for people: ``1 day``, ``1 hour``, ``900 s`` or a number."""
        if self.step is None:
            return "none"
        if self.kind == "number":
            return f"{self.step:g}"
        for unit, size in (("day", _US_PER_DAY), ("hour", _US_PER_HOUR), ("minute", 60e6)):
            if self.step % size == 0:
                k = int(self.step // size)
                return f"{k} {unit}{'s' if k != 1 else ''}"
        return f"{self.step / 1e6:g} s"


def _time_keys(times: pa.Array, name: str) -> tuple[np.ndarray, TimeKind, pa.DataType]:
    """Times as sortable numbers (microseconds for dates and times) and what they were."""
    t = times.type
    if times.null_count:
        row = int(np.flatnonzero(~np.asarray(times.is_valid()))[0]) + 1
        raise UsageError(
            f"time column {name!r} is empty at row {row} (after the header); every row needs a "
            "time: fill it in or drop the row"
        )
    if pa.types.is_date(t):
        us = times.cast(pa.timestamp("us")).cast(pa.int64())
        return np.asarray(us.to_numpy(zero_copy_only=False), dtype=np.int64), "date", pa.date32()
    if pa.types.is_timestamp(t):
        out = pa.timestamp("us", tz=t.tz)
        us = times.cast(out).cast(pa.int64())
        return np.asarray(us.to_numpy(zero_copy_only=False), dtype=np.int64), "timestamp", out
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        keys = np.asarray(times.to_numpy(zero_copy_only=False), dtype=np.float64)
        if not np.isfinite(keys).all():
            row = int(np.flatnonzero(~np.isfinite(keys))[0]) + 1
            raise UsageError(f"time column {name!r} is not finite at row {row}; fix or drop it")
        return keys, "number", t
    first = times[0].as_py() if len(times) else None
    raise UsageError(
        f"time column {name!r} must hold ISO 8601 dates or times (2026-01-05, "
        f"2026-01-05T10:00:00Z) or numbers; got {t} values such as {str(first)[:40]!r}"
    )


def _value_array(values: pa.Array, name: str) -> FloatArray:
    t = values.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t):
        return np.asarray(values.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        for i, v in enumerate(values.to_pylist()):
            if v is None:
                continue
            try:
                float(v)
            except ValueError:
                raise UsageError(
                    f"value column {name!r} must hold numbers; row {i + 1} (after the header) "
                    f"holds {v[:40]!r}; fix the value, or leave the cell empty for a missing one"
                ) from None
    raise UsageError(
        f"value column {name!r} must hold numbers; it holds {t} values; pass a numeric column"
    )


def _mean_by(groups: np.ndarray, values: FloatArray, size: int) -> FloatArray:
    """Mean of the present values in each group; NaN for a group without any."""
    present = ~np.isnan(values)
    sums = np.bincount(groups[present], weights=values[present], minlength=size)
    counts = np.bincount(groups[present], minlength=size)
    out = np.full(size, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def _warn(text: str) -> None:
    warnings.warn(text, SeriesWarning, stacklevel=3)


def regularize(
    times: pa.Array | pa.ChunkedArray, values: ArrayLike, *, name: str = "time"
) -> RegularSeries:
    """Put ``values`` observed at ``times`` onto a regular grid, warning about each repair.

    Sorted by time; duplicate timestamps averaged; step = median difference of the distinct
    timestamps; off-grid timestamps moved to the nearest grid point; missing grid points NaN.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     s = regularize(pa.array([3, 1, 1, 2, 6, 5]), [30.0, 10, 20, 25, 60, 50])
    >>> s.time.to_pylist(), s.values.tolist(), s.step
    ([1, 2, 3, 4, 5, 6], [15.0, 25.0, 30.0, nan, 50.0, 60.0], 1.0)
    >>> s.rows.tolist()  # the grid point of each input row, in the input's order
    [2, 0, 0, 1, 5, 4]
    """
    if isinstance(times, pa.ChunkedArray):
        times = times.combine_chunks()
    keys, kind, out_type = _time_keys(times, name)
    x = as_series(values)
    if len(x) != len(keys):
        raise UsageError(f"times and values differ in length ({len(keys)} vs {len(x)})")
    if len(keys) and np.any(np.diff(keys) < 0):
        _warn("rows were not in time order; they were sorted by time")
    order = np.argsort(keys, kind="stable")
    keys, x = keys[order], x[order]
    distinct, inverse = np.unique(keys, return_inverse=True)
    if len(distinct) < len(keys):
        _warn(
            f"{len(keys) - len(distinct)} row(s) repeat an earlier timestamp; the values at "
            "one timestamp were averaged (mean of the present values)"
        )
    merged = _mean_by(inverse, x, len(distinct))
    rows = np.empty(len(keys), dtype=np.int64)
    if len(distinct) < 2:
        rows[order] = inverse
        return RegularSeries(
            _out(distinct, kind, out_type), merged, None, kind, rows, times, x[np.argsort(order)]
        )
    step = float(np.median(np.diff(distinct)))
    if kind != "number" or (float(distinct[0]).is_integer() and step >= 1):
        step = float(max(1, round(step)))
    pos = (distinct - distinct[0]) / step
    index = np.rint(pos).astype(np.int64)
    moved = int(np.sum(np.abs(pos - index) > 1e-9))
    size = int(index[-1]) + 1
    if size > _MAX_GROWTH * len(distinct) + _MAX_EXTRA:
        raise UsageError(
            f"time column {name!r}: a regular grid with the median step would have {size} "
            f"points for {len(distinct)} distinct timestamps; the times are too irregular "
            "(or one is far off): check the column"
        )
    if moved:
        _warn(
            f"{moved} timestamp(s) were off the regular grid (step "
            f"{RegularSeries(pa.array([]), x, step, kind).step_text()}) and moved to the "
            "nearest grid point"
        )
    grid = _mean_by(index, merged, size)
    gaps = size - len(np.unique(index))
    if gaps:
        _warn(f"{gaps} missing time point(s) on the regular grid were filled with NaN (missing)")
    grid_keys = distinct[0] + step * np.arange(size)
    rows[order] = index[inverse]
    inputs = np.empty_like(x)
    inputs[order] = x
    return RegularSeries(_out(grid_keys, kind, out_type), grid, step, kind, rows, times, inputs)


def _out(keys: np.ndarray, kind: TimeKind, out_type: pa.DataType) -> pa.Array:
    if kind == "date":
        return pa.array((np.asarray(keys, np.int64) // _US_PER_DAY).astype(np.int32), pa.date32())
    if kind == "timestamp":
        return pa.array(np.asarray(keys, np.int64), pa.int64()).cast(out_type)
    if pa.types.is_integer(out_type) and np.all(np.asarray(keys) == np.rint(keys)):
        return pa.array(np.asarray(keys, dtype=np.int64))
    return pa.array(np.asarray(keys, dtype=np.float64))


def read_series(path: str | Path, *, time_col: str, value_col: str) -> RegularSeries:
    """Read one series from a CSV file (``pyarrow.csv``) and put it onto a regular grid.

    Empty cells and ``NA``, ``NaN``, ``null`` are missing values. See :func:`regularize`. The
    input times are kept as read (:attr:`RegularSeries.input_time`): the text of each date or
    time cell, or the numbers (an epoch column of integers stays integers).
    """
    from pyarrow import csv

    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no such file: {path}; pass a CSV file with a header row")
    try:
        # Empty cells are missing values in every column, text columns included.
        table = csv.read_csv(path, convert_options=csv.ConvertOptions(strings_can_be_null=True))
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(
            f"could not read {path.name} as CSV ({str(exc)[:200]}); pass a CSV file with a "
            "header row"
        ) from None
    for col, option in ((time_col, "--time-col"), (value_col, "--value-col")):
        if col not in table.column_names:
            shown = ", ".join(table.column_names[:20])
            raise UsageError(
                f"{option} {col!r} is not a column of {path.name}; its columns are: {shown}"
            )
    values = _value_array(table.column(value_col).combine_chunks(), value_col)
    series = regularize(table.column(time_col), values, name=time_col)
    if series.kind == "number":
        return series
    # Rows in, rows out: the output carries each time as its cell was written, not re-printed
    # in ISO form from the parsed value (a second read of that one column, as text).
    text = csv.read_csv(
        path,
        convert_options=csv.ConvertOptions(
            include_columns=[time_col], column_types={time_col: pa.string()}
        ),
    )
    return replace(series, input_time=text.column(time_col).combine_chunks())


def score_series(
    series: RegularSeries,
    *,
    detector: DetectorName = "auto",
    online: bool = False,
    grid: bool = False,
) -> tuple[pa.Table, _Detector]:
    """Score a series: a table ``timestamp, value, score, anomaly, alert_score, alert``.

    Returns the table and the fitted detector. ``score`` and ``anomaly`` come from the detector
    ("this row is anomalous"); ``alert_score`` and ``alert`` from :func:`series_alerts` (page on
    these: high at the onset of an episode, one alert per episode, whatever the detector).

    The detector runs on the regular grid. The table has one row per input row, in the input's
    order, with the input's timestamp and value, and the ``score`` and ``anomaly`` of the grid
    point the row fell on (rows that share a timestamp share its score). With ``grid=True``, or
    for a series built without input rows, it has one row per grid point instead (the merged
    value, NaN at a gap). Seasons tested by ``seasonal`` and ``auto`` follow the step
    (:attr:`RegularSeries.seasons`). ``score`` is NaN where undefined (warm-up, missing value);
    ``anomaly`` is then false.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     s = regularize(pa.array([2, 1, 1, 3, 5]), [5.0, 1.0, 3.0, 7.0, 8.0])
    >>> table, _ = score_series(s, detector="level")
    >>> table.column("timestamp").to_pylist(), table.column("value").to_pylist()
    ([2, 1, 1, 3, 5], [5.0, 1.0, 3.0, 7.0, 8.0])
    >>> grid, _ = score_series(s, detector="level", grid=True)
    >>> grid.column("timestamp").to_pylist(), grid.column("value").to_pylist()
    ([1, 2, 3, 4, 5], [2.0, 5.0, 7.0, None, 8.0])
    """
    det = make_detector(detector, online=online, candidates=series.seasons)
    det.fit(series.values)
    scores = det.score(series.values)
    flags = det.predict(series.values)
    time, values = series.time, series.values
    if _on_rows(series, grid):
        assert series.rows is not None
        time, scores, flags = series.input_time, scores[series.rows], flags[series.rows]
        values = series.values[series.rows] if series.input_values is None else series.input_values
    value = pa.array(values, pa.float64(), from_pandas=True)
    score = pa.array(scores, pa.float64(), from_pandas=True)
    table = pa.table(
        {"timestamp": time, "value": value, "score": score, "anomaly": pa.array(flags)}
    )
    alerts = series_alerts(series, grid=grid)
    for name in alerts.column_names:
        table = table.append_column(name, alerts.column(name))
    return table, det


def _on_rows(series: RegularSeries, grid: bool) -> bool:
    return not grid and series.rows is not None and series.input_time is not None


def series_alerts(series: RegularSeries, *, grid: bool = False) -> pa.Table:
    """The columns ``alert_score`` (float64 in [0, 1]) and ``alert`` (bool) of a series.

    Computed online on the regular grid by :func:`assay.anomaly.alert_scores` (robust z-score,
    Numenta's anomaly likelihood, one alert per episode) with its defaults and a seasonal lag of
    one week of rows (:attr:`RegularSeries.week`, when the step divides a day), and given, like
    :func:`score_series`, one row per input row (or per grid point with ``grid=True``). Rows
    that share a grid point share its ``alert_score``; only the first of them in the input's
    order carries its ``alert``.

    Examples
    --------
    >>> x = [10.0 + (i % 3) for i in range(200)] + [40.0] * 100
    >>> t = series_alerts(regularize(pa.array(range(300)), x))
    >>> t.column_names, [i for i, a in enumerate(t.column("alert").to_pylist()) if a]
    (['alert_score', 'alert'], [200])
    """
    week = series.week
    score, alert = alert_scores(series.values, periods=() if week is None else (week,))
    if _on_rows(series, grid):
        assert series.rows is not None
        first = np.zeros(len(series.rows), dtype=np.bool_)
        first[np.unique(series.rows, return_index=True)[1]] = True
        score, alert = score[series.rows], alert[series.rows] & first
    return pa.table({"alert_score": pa.array(score, pa.float64()), "alert": pa.array(alert)})


def describe(det: _Detector) -> str:
    """One line on what a fitted detector did, for the CLI."""
    chosen = getattr(det, "chosen_", None)
    inner = getattr(det, "detector_", det)
    periods = getattr(inner, "periods_", None)
    text = type(det).__name__
    if chosen is not None:
        text += f" chose {chosen}"
    if periods is not None and (chosen in (None, "seasonal")):
        text += f", season {', '.join(map(str, periods))}" if periods else ", no season"
    return text + (" (online)" if det.online else "")
