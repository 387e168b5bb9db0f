"""The synthetic period: by default the days up to yesterday (UTC), else fixed by a start or an
end day; the same seed and days give the same bytes however the days were given."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay._errors import UsageError
from assay.cli import app
from assay.synth import SynthConfig, truth, write


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def test_the_default_period_ends_yesterday_utc() -> None:
    before = _utc_today()
    config = SynthConfig(days=30)
    after = _utc_today()
    assert (config.end, config.start) in {
        (d - dt.timedelta(days=1), d - dt.timedelta(days=30)) for d in (before, after)
    }
    facts = truth(config)
    assert (facts["start"], facts["end"]) == (config.start.isoformat(), config.end.isoformat())


def test_an_end_day_sets_the_start_day() -> None:
    config = SynthConfig(days=10, end=dt.date(2026, 3, 2))
    assert config.start == dt.date(2026, 2, 21)  # 21 Feb .. 2 Mar: 8 + 2 days
    assert config.end == dt.date(2026, 3, 2)
    assert config == SynthConfig(days=10, start=dt.date(2026, 2, 21))


def test_start_and_end_together_are_a_usage_error() -> None:
    with pytest.raises(UsageError, match="start or end, not both"):
        SynthConfig(days=3, start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 3))


@pytest.mark.parametrize("bad", ["2026-01-01", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)])
def test_an_end_that_is_not_a_date_is_a_usage_error(bad: object) -> None:
    with pytest.raises(UsageError, match=r"SynthConfig\.end must be a datetime\.date"):
        SynthConfig(end=bad)  # type: ignore[arg-type]


def test_a_config_keeps_the_days_it_was_made_with() -> None:
    config = SynthConfig(days=5)
    # The resolved start is a field: copies and replacements keep it (no second clock read).
    assert dataclasses.replace(config, seed=4).start == config.start
    assert dataclasses.replace(config, days=9).end == config.start + dt.timedelta(days=8)


def test_the_same_seed_and_days_give_the_same_bytes_by_start_or_by_end(tmp_path: Path) -> None:
    by_start = write(
        tmp_path / "a",
        SynthConfig(tenants=2, users=20, days=4, seed=7, start=dt.date(2025, 12, 30)),
    )
    by_end = write(
        tmp_path / "b", SynthConfig(tenants=2, users=20, days=4, seed=7, end=dt.date(2026, 1, 2))
    )
    assert [p.read_bytes() for p in by_start.files] == [p.read_bytes() for p in by_end.files]
    assert by_start.truth_path.read_bytes() == by_end.truth_path.read_bytes()


def test_events_fall_on_the_days_up_to_the_end(
    tmp_path: Path, instant: Callable[[object], dt.datetime]
) -> None:
    config = SynthConfig(tenants=2, users=30, days=3, seed=2, end=dt.date(2024, 3, 1))
    out = write(tmp_path, config)
    days = {
        instant(json.loads(line)["event_time"]).date()
        for path in out.files
        for line in path.read_text("utf-8").splitlines()
    }
    # 2024 is a leap year: the three days up to 1 March are 28 Feb, 29 Feb and 1 Mar.
    assert days == {dt.date(2024, 2, 28), dt.date(2024, 2, 29), dt.date(2024, 3, 1)}


# -- the command -------------------------------------------------------------------------------


def _synth(tmp_path: Path, *args: str) -> dict[str, object]:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["synth", "--tenants", "2", "--users", "5", "--days", "3", "--out", str(out), *args]
    )
    assert result.exit_code == 0, result.output
    loaded: dict[str, object] = json.loads((out / "truth.json").read_text("utf-8"))
    return loaded


def test_synth_command_ends_yesterday_by_default(tmp_path: Path) -> None:
    facts = _synth(tmp_path)
    ends = {(_utc_today() - dt.timedelta(days=k)).isoformat() for k in (1, 2)}
    assert facts["end"] in ends


def test_synth_command_takes_an_end_or_a_start_day(tmp_path: Path) -> None:
    assert _synth(tmp_path / "e", "--end", "2026-02-01")["start"] == "2026-01-30"
    assert _synth(tmp_path / "s", "--start", "2026-02-01")["end"] == "2026-02-03"
    # Relative days, as every day option takes them (the UTC day may change meanwhile).
    tenth = {(_utc_today() - dt.timedelta(days=k)).isoformat() for k in (10, 11)}
    assert _synth(tmp_path / "r", "--end", "today-10")["end"] in tenth


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2026-01-01", "--end", "2026-01-03"], "not both"),
        (["--end", "01/03/2026"], "--end must be a date"),
        (["--start", "soon"], "--start must be a date"),
    ],
)
def test_synth_command_rejects_bad_days(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert message in result.output
