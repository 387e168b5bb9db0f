"""Irregular input onto a regular grid, CSV errors, and `anomalies series` through a runner."""

from __future__ import annotations

import datetime as dt
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from assay._errors import NotFoundError, UsageError
from assay.anomaly import SeriesWarning, read_series, regularize
from assay.cli.anomalies import app as anomalies_app

runner = CliRunner()
cli = typer.Typer()
cli.add_typer(anomalies_app, name="anomalies")

WEEK = [100.0, 104, 102, 101, 99, 60, 55]


def _write(path: Path, rows: list[tuple[object, object]], header: str = "day,users") -> Path:
    path.write_text(header + "\n" + "".join(f"{t},{v}\n" for t, v in rows), encoding="utf-8")
    return path


def _days(n: int) -> list[dt.date]:
    return [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(n)]


def _weekly_rows(n: int, spike_at: int | None = None) -> list[tuple[object, object]]:
    rng = np.random.default_rng(0)
    values = np.resize(WEEK, n) + rng.normal(0, 2, n)
    if spike_at is not None:
        values[spike_at] -= 45
    return [(d.isoformat(), round(float(v), 3)) for d, v in zip(_days(n), values, strict=True)]


# -- regularize ------------------------------------------------------------------------------


def test_regular_sorted_input_passes_through_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = regularize(pa.array(_days(4)), [1.0, 2.0, 3.0, 4.0])
    assert s.time.to_pylist() == _days(4)
    assert s.values.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert s.step_text() == "1 day"
    assert s.seasons == (7,)


def test_unsorted_rows_are_sorted_with_a_warning() -> None:
    d = _days(3)
    with pytest.warns(SeriesWarning, match="not in time order"):
        s = regularize(pa.array([d[2], d[0], d[1]]), [3.0, 1.0, 2.0])
    assert s.values.tolist() == [1.0, 2.0, 3.0]


def test_duplicate_timestamps_are_averaged_over_their_present_values() -> None:
    d = _days(3)
    with pytest.warns(SeriesWarning, match="2 row\\(s\\) repeat") as record:
        s = regularize(pa.array([d[0], d[1], d[1], d[1], d[2]]), [1.0, 4.0, 8.0, None, 3.0])
    assert len(record) == 1
    assert s.values.tolist() == [1.0, 6.0, 3.0]


def test_gaps_become_nan_on_the_grid_of_the_median_step() -> None:
    hours = [dt.datetime(2026, 1, 1, h, tzinfo=dt.UTC) for h in (0, 1, 2, 5, 6)]
    with pytest.warns(SeriesWarning, match="2 missing time point"):
        s = regularize(pa.array(hours, pa.timestamp("s", tz="UTC")), [1.0, 2, 3, 6, 7])
    assert s.step_text() == "1 hour"
    assert s.seasons == (24, 168)
    assert [t.hour for t in s.time.to_pylist()] == [0, 1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal(s.values, [1, 2, 3, np.nan, np.nan, 6, 7])


def test_off_grid_times_move_to_the_nearest_grid_point() -> None:
    with pytest.warns(SeriesWarning, match="1 timestamp\\(s\\) were off the regular grid"):
        s = regularize(pa.array([0.0, 10.0, 20.0, 31.0, 40.0]), [1.0, 2, 3, 4, 5])
    assert s.time.to_pylist() == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert s.values.tolist() == [1.0, 2, 3, 4, 5]


def test_a_far_off_timestamp_is_a_usage_error_not_a_huge_grid() -> None:
    with pytest.raises(UsageError, match="too irregular"):
        regularize(pa.array([1, 2, 3, 4, 10_000_000]), [1.0, 2, 3, 4, 5])


# -- reading CSV -----------------------------------------------------------------------------


def test_non_numeric_value_names_the_column_and_the_first_bad_row(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "s.csv", [("2026-01-01", 1), ("2026-01-02", ""), ("2026-01-03", "12k")]
    )
    with pytest.raises(UsageError, match=r"value column 'users' .* row 3 .* '12k'"):
        read_series(path, time_col="day", value_col="users")


def test_empty_cells_and_na_are_missing_values(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", [("2026-01-01", 1), ("2026-01-02", "NA"), ("2026-01-03", "")])
    s = read_series(path, time_col="day", value_col="users")
    assert s.values[0] == 1.0
    assert math.isnan(s.values[1])
    assert math.isnan(s.values[2])


def test_missing_column_and_unreadable_times_are_usage_errors(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", [("01/02/2026", 1), ("01/03/2026", 2)])
    with pytest.raises(UsageError, match=r"--value-col 'dau' is not a column.*day, users"):
        read_series(path, time_col="day", value_col="dau")
    with pytest.raises(UsageError, match="ISO 8601"):
        read_series(path, time_col="day", value_col="users")
    with pytest.raises(NotFoundError):
        read_series(tmp_path / "nope.csv", time_col="day", value_col="users")


# -- the command -----------------------------------------------------------------------------


def _run(path: Path, *extra: str) -> object:
    args = ["anomalies", "series", str(path), "--time-col", "day", "--value-col", "users"]
    return runner.invoke(cli, [*args, *extra])


def test_csv_output_has_the_four_columns_and_exit_1_with_an_anomaly(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", _weekly_rows(70, spike_at=50))
    result = _run(path, "--format", "csv")
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    lines = result.stdout.splitlines()  # type: ignore[attr-defined]
    assert lines[0] == "timestamp,value,score,anomaly,alert_score,alert"
    assert len(lines) == 71
    anomalous = [line.split(",")[0] for line in lines[1:] if line.split(",")[3] == "true"]
    assert anomalous == [_days(70)[50].isoformat()]
    assert "1 anomaly in 70 rows" in result.stderr  # type: ignore[attr-defined]
    assert "chose seasonal" in result.stderr  # type: ignore[attr-defined]


def test_json_output_and_exit_0_on_a_clean_series(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", _weekly_rows(70))
    result = _run(path, "--format", "json", "--detector", "seasonal")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    rows = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert list(rows[0]) == ["timestamp", "value", "score", "anomaly", "alert_score", "alert"]
    assert rows[0]["timestamp"] == "2026-01-01"
    assert all(r["anomaly"] is False for r in rows)
    assert all(r["score"] is None or 0 <= r["score"] <= 1 for r in rows)


def test_online_rows_have_no_score_during_warm_up(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", _weekly_rows(70, spike_at=60))
    result = _run(path, "--format", "json", "--detector", "seasonal", "--online")
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    rows = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert [r["score"] for r in rows[:42]] == [None] * 42
    assert [i for i, r in enumerate(rows) if r["anomaly"]] == [60]


def test_irregular_input_is_repaired_with_warnings_on_stderr(tmp_path: Path) -> None:
    rows = _weekly_rows(30)
    rows = [rows[1], rows[0], *rows[2:10], rows[9], *rows[11:]]  # unsorted, duplicate, gap
    path = _write(tmp_path / "s.csv", rows)
    result = _run(path, "--format", "csv", "--detector", "drop", "--grid")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert "warning: rows were not in time order" in err
    assert "warning: 1 row(s) repeat an earlier timestamp" in err
    assert "warning: 1 missing time point(s)" in err
    lines = result.stdout.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 31  # --grid prints the 30 grid points, the gap filled
    assert lines[11].startswith(f"{_days(30)[10].isoformat()},,,false,")
    assert "in 30 grid points" in err


# -- rows in, rows out -----------------------------------------------------------------------

# Hand-built input: out of order, 01-03 twice, 01-05 and 01-06 missing (a gap), one time off the
# daily grid (01-08 06:00), one empty value. Written as text so nothing here is computed.
IRREGULAR = [
    ("2026-01-02T00:00:00Z", "12.5"),
    ("2026-01-01T00:00:00Z", "10"),
    ("2026-01-03T00:00:00Z", "11"),
    ("2026-01-03T00:00:00Z", "13"),
    ("2026-01-04T00:00:00Z", ""),
    ("2026-01-07T00:00:00Z", "9.25"),
    ("2026-01-08T06:00:00Z", "10.75"),
    ("2026-01-09T00:00:00Z", "1000000.5"),
]


def test_every_input_row_comes_out_once_in_order_with_its_time_and_value(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path / "s.csv", IRREGULAR, header="t,v")
    args = ["anomalies", "series", str(path), "--time-col", "t", "--value-col", "v"]
    result = runner.invoke(cli, [*args, "--format", "json", "--detector", "level"])
    assert result.exit_code in (0, 1), result.output  # type: ignore[attr-defined]
    rows = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert len(rows) == 8
    assert [r["timestamp"] for r in rows] == [t for t, _ in IRREGULAR]  # as written
    assert [r["value"] for r in rows] == [12.5, 10.0, 11.0, 13.0, None, 9.25, 10.75, 1000000.5]
    # the two rows at 01-03 sit on one grid point, so they share its score
    assert rows[2]["score"] == rows[3]["score"]


def test_rows_in_rows_out_through_the_library(tmp_path: Path) -> None:
    from assay.anomaly import score_series

    path = _write(tmp_path / "s.csv", IRREGULAR, header="t,v")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeriesWarning)
        s = read_series(path, time_col="t", value_col="v")
    table, _ = score_series(s, detector="level")
    assert table.num_rows == 8
    assert table.column("timestamp").to_pylist() == [t for t, _ in IRREGULAR]
    values = table.column("value").to_pylist()
    assert values[:4] == [12.5, 10.0, 11.0, 13.0]
    assert values[4] is None or math.isnan(values[4])
    assert values[5:] == [9.25, 10.75, 1000000.5]
    # the grid: 01-01 .. 01-09 daily (9 points), 01-03 merged to 12, the gap filled, 01-08 06:00
    # moved onto 01-08
    assert s.rows is not None
    assert s.rows.tolist() == [1, 0, 2, 2, 3, 6, 7, 8]
    assert s.values[2] == 12.0
    assert math.isnan(s.values[4])
    assert math.isnan(s.values[5])
    grid, _ = score_series(s, detector="level", grid=True)
    assert grid.num_rows == 9


# NAB's layout: no 'T', no offset; a repeated time, a gap of two rows, an off-grid time
NON_ISO = [
    ("2014-04-02 14:29:00", "1"),
    ("2014-04-02 14:34:00", "2"),
    ("2014-04-02 14:34:00", "3"),
    ("2014-04-02 14:39:00", "4"),
    ("2014-04-02 14:54:00", "5"),
    ("2014-04-02 14:59:00", "6"),
    ("2014-04-02 15:05:30", "7"),
]


def _output_times(path: Path, time_col: str, value_col: str, fmt: str) -> list[object]:
    """The time column of `anomalies series` output: CSV cells as text, JSON values as parsed."""
    args = ["anomalies", "series", str(path), "--time-col", time_col, "--value-col", value_col]
    result = runner.invoke(cli, [*args, "--format", fmt, "--detector", "level"])
    assert result.exit_code in (0, 1), result.output  # type: ignore[attr-defined]
    out = result.stdout  # type: ignore[attr-defined]
    if fmt == "csv":
        return [line.split(",")[0] for line in out.splitlines()[1:]]
    return [r["timestamp"] for r in json.loads(out)]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_times_come_out_as_their_cells_were_written(tmp_path: Path, fmt: str) -> None:
    path = _write(tmp_path / "s.csv", NON_ISO, header="timestamp,value")
    got = _output_times(path, "timestamp", "value", fmt)
    assert got == [t for t, _ in NON_ISO]


def test_epoch_integer_times_come_out_as_the_same_integers(tmp_path: Path) -> None:
    rows = [(1396448940, 1), (1396449240, 2), (1396449240, 3), (1396450140, 4)]
    path = _write(tmp_path / "s.csv", rows, header="t,v")
    assert _output_times(path, "t", "v", "json") == [1396448940, 1396449240, 1396449240, 1396450140]
    assert _output_times(path, "t", "v", "csv") == [
        "1396448940",
        "1396449240",
        "1396449240",
        "1396450140",
    ]


def test_the_grid_keeps_parsed_times(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", NON_ISO, header="timestamp,value")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeriesWarning)
        s = read_series(path, time_col="timestamp", value_col="value")
    assert s.input_time is not None
    assert s.input_time.to_pylist() == [t for t, _ in NON_ISO]
    assert s.step_text() == "5 minutes"
    assert s.time.to_pylist()[-1] == dt.datetime(2014, 4, 2, 15, 4)  # 15:05:30 moved
    assert s.rows is not None
    assert s.rows.tolist() == [0, 1, 1, 2, 5, 6, 7]


def test_a_non_numeric_value_exits_2_with_the_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", [("2026-01-01", 1), ("2026-01-02", "oops")])
    result = _run(path)
    assert result.exit_code == 2
    assert "row 2" in result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
