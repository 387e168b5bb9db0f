"""``parse_day``: absolute and relative days (``today``, ``yesterday``, ``today-N``), and every
day option of the CLI going through it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from assay._errors import UsageError
from assay.cli import app
from assay.cli._common import parse_day

TODAY = dt.date(2026, 3, 1)  # the fixed clock; 2026 is not a leap year
DAY_ERROR = "YYYY-MM-DD, or today, yesterday or today-N"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", dt.date(2026, 3, 1)),
        ("yesterday", dt.date(2026, 2, 28)),
        ("today-0", dt.date(2026, 3, 1)),
        ("today-1", dt.date(2026, 2, 28)),
        ("today-29", dt.date(2026, 1, 31)),
        ("today-365", dt.date(2025, 3, 1)),
        (" Today-7 ", dt.date(2026, 2, 22)),
        ("YESTERDAY", dt.date(2026, 2, 28)),
        ("2026-01-05", dt.date(2026, 1, 5)),
        (" 2024-02-29 ", dt.date(2024, 2, 29)),
    ],
)
def test_parse_day_reads_absolute_and_relative_days(text: str, expected: dt.date) -> None:
    assert parse_day(text, "--since", today=TODAY) == expected


def test_parse_day_keeps_none() -> None:
    assert parse_day(None, "--since", today=TODAY) is None


def test_parse_day_defaults_to_the_current_utc_day() -> None:
    before = dt.datetime.now(dt.UTC).date()
    got = parse_day("today", "--day")
    after = dt.datetime.now(dt.UTC).date()
    assert got in {before, after}  # the clock may pass midnight between the two reads


@given(
    today=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 12, 31)),
    back=st.integers(min_value=0, max_value=5000),
)
def test_today_minus_n_is_n_calendar_days_back(today: dt.date, back: int) -> None:
    got = parse_day(f"today-{back}", "--since", today=today)
    assert got is not None
    # Independently: counting days since 0001-01-01 (the proleptic ordinal) backwards.
    assert got.toordinal() == today.toordinal() - back
    assert parse_day("yesterday", "--since", today=today) == parse_day(
        "today-1", "--since", today=today
    )


@given(day=st.dates())
def test_an_iso_day_round_trips(day: dt.date) -> None:
    assert parse_day(day.isoformat(), "--until", today=TODAY) == day


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tomorrow",
        "today+1",
        "today-",
        "today - 3",
        "today-1.5",
        "today--1",
        "yesterday-1",
        "today-1234567",
        "2026-13-01",
        "05/01/2026",
        "2026-01-05T10:00",
    ],
)
def test_parse_day_rejects_other_text_naming_the_option_and_the_forms(text: str) -> None:
    with pytest.raises(UsageError, match=r"--day must be a date YYYY-MM-DD, or today, yesterday"):
        parse_day(text, "--day", today=TODAY)


def test_a_day_before_year_one_is_a_usage_error_not_a_crash() -> None:
    with pytest.raises(UsageError, match="today-N"):
        parse_day("today-999999", "--since", today=dt.date(5, 1, 1))


# -- every day option of the CLI ---------------------------------------------------------------

DAY_OPTIONS = [
    ["metrics", "dau", "--since"],
    ["metrics", "dau", "--until"],
    ["metrics", "active", "--since"],
    ["metrics", "rolling", "--until"],
    ["metrics", "max-active", "--since"],
    ["metrics", "retention", "--since"],
    ["metrics", "sessions", "--until"],
    ["anomalies", "scan", "--since"],
    ["anomalies", "scan", "--until"],
    ["regressions", "--since"],
    ["regressions", "--until"],
    ["explain", "--metric", "dau", "--tenant", "t", "--day"],
    ["profile", "build", "--since"],
    ["profile", "build", "--until"],
    ["profile", "reference", "save", "r", "--until", "2026-01-02", "--since"],
    ["profile", "reference", "save", "r", "--since", "2026-01-01", "--until"],
]


@pytest.fixture(scope="module")
def empty_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("days") / "ws"
    assert CliRunner().invoke(app, ["init", "--workspace", str(ws)]).exit_code == 0
    return ws


@pytest.mark.parametrize("args", DAY_OPTIONS, ids=" ".join)
def test_every_day_option_goes_through_parse_day(args: list[str], empty_ws: Path) -> None:
    result = CliRunner().invoke(app, [*args, "today-x", "--workspace", str(empty_ws)])
    assert result.exit_code == 2
    assert f"{args[-1]} must be a date {DAY_ERROR}" in result.output


@pytest.mark.parametrize(
    ("reference", "target", "option"),
    [
        ("last:7d", "today-x..yesterday", "--target"),
        ("today-9..today-x", "today-7..yesterday", "--reference"),
    ],
)
def test_drift_ranges_take_relative_days(
    empty_ws: Path, reference: str, target: str, option: str
) -> None:
    result = CliRunner().invoke(
        app, ["drift", "--reference", reference, "--target", target, "-w", str(empty_ws)]
    )
    assert result.exit_code == 2
    assert f"{option} must be a date {DAY_ERROR}" in result.output
