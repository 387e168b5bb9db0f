"""event_time parsing (RFC 3339 and epoch milliseconds) and the time-window check."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from validate_reference import EPOCH, reference_time

from assay._errors import UsageError
from assay.ingest._readers import table_from_records
from assay.schema._validate import check_time_window, validate

BASE = {"event_id": "e", "tenant_id": "t", "user_id": "u", "session_id": "s", "event_type": "turn"}


def run(times: list[Any], *, lenient: bool = False) -> list[tuple[str | None, Any]]:
    """Validate one row per time: (rule, None) or (None, (stored datetime, event_date))."""
    table = table_from_records([{**BASE, "event_time": t} for t in times])
    result = validate(table, lenient_strings=lenient)
    out: list[tuple[str | None, Any]] = [(None, None)] * len(times)
    for r in result.rejections:
        assert r.field == "event_time"
        out[r.index] = (r.rule, None)
    stored = result.valid.column("event_time").to_pylist()
    days = result.valid.column("event_date").to_pylist()
    for i, when, day in zip(result.valid_index.to_pylist(), stored, days, strict=True):
        out[i] = (None, (when, day))
    return out


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_tests_run_under_a_non_utc_process_time_zone() -> None:
    assert os.environ["TZ"] == "Asia/Kolkata"


@pytest.mark.parametrize(
    ("text", "stored", "day"),
    [
        ("2026-01-05T10:00:00Z", utc(2026, 1, 5, 10), date(2026, 1, 5)),
        ("2026-01-05T23:59:59.999Z", utc(2026, 1, 5, 23, 59, 59, 999000), date(2026, 1, 5)),
        ("2026-01-02T03:00:00+05:30", utc(2026, 1, 1, 21, 30), date(2026, 1, 1)),
        ("2026-01-01T20:00:00-05:00", utc(2026, 1, 2, 1), date(2026, 1, 2)),
        ("2026-01-05T10:00:00.123+05:30", utc(2026, 1, 5, 4, 30, 0, 123000), date(2026, 1, 5)),
        ("2024-02-29T12:00:00Z", utc(2024, 2, 29, 12), date(2024, 2, 29)),
        ("2026-01-05t10:00:00z", utc(2026, 1, 5, 10), date(2026, 1, 5)),
        ("2026-01-05 10:00:00Z", utc(2026, 1, 5, 10), date(2026, 1, 5)),
        ("2026-01-05T10:00:00.123456789Z", utc(2026, 1, 5, 10, 0, 0, 123456), date(2026, 1, 5)),
        ("2026-01-05T10:00:00.5-00:00", utc(2026, 1, 5, 10, 0, 0, 500000), date(2026, 1, 5)),
        ("1969-12-31T23:59:59.999999Z", utc(1969, 12, 31, 23, 59, 59, 999999), date(1969, 12, 31)),
        ("0001-01-01T00:00:00Z", utc(1, 1, 1), date(1, 1, 1)),
        ("9999-12-31T23:59:59.999999Z", utc(9999, 12, 31, 23, 59, 59, 999999), date(9999, 12, 31)),
        ("2000-03-01T00:30:00+01:00", utc(2000, 2, 29, 23, 30), date(2000, 2, 29)),
    ],
)
def test_rfc3339_strings_are_stored_as_utc(text: str, stored: datetime, day: date) -> None:
    assert run([text]) == [(None, (stored, day))]


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (0, utc(1970, 1, 1)),
        (1767607200000, utc(2026, 1, 5, 10)),
        (-1, utc(1969, 12, 31, 23, 59, 59, 999000)),
        (1767607200000.0, utc(2026, 1, 5, 10)),
    ],
)
def test_epoch_milliseconds_are_stored_as_utc(value: float, stored: datetime) -> None:
    assert run([value]) == [(None, (stored, stored.date()))]


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("2026-01-05 10:00", "timezone"),
        ("2026-01-05T10:00:00", "timezone"),
        ("2026-01-05T10:00:00.25", "timezone"),
        ("2026-01-05", "time_format"),
        ("2026-01-05T10:00Z", "time_format"),
        ("2026-01-05T10:00:00+0530", "time_format"),
        ("2026-01-05T10:00:00+05", "time_format"),
        ("2026-01-05T10:00:00.Z", "time_format"),
        ("2026-01-05T10:00:00.1234567890Z", "time_format"),
        ("2026-01-05T10:00:00,5Z", "time_format"),
        ("20260105T100000Z", "time_format"),
        (" 2026-01-05T10:00:00Z", "time_format"),
        ("2026-02-29T10:00:00Z", "time_format"),
        ("2100-02-29T10:00:00Z", "time_format"),
        ("2026-04-31T10:00:00Z", "time_format"),
        ("2026-13-01T10:00:00Z", "time_format"),
        ("2026-00-01T10:00:00Z", "time_format"),
        ("2026-01-00T10:00:00Z", "time_format"),
        ("2026-01-05T24:00:00Z", "time_format"),
        ("2026-01-05T10:60:00Z", "time_format"),
        ("2026-01-05T23:59:60Z", "time_format"),
        ("2026-01-05T10:00:00+24:00", "time_format"),
        ("2026-01-05T10:00:00+05:60", "time_format"),
        ("0000-01-01T00:00:00Z", "time_format"),
        ("0001-01-01T00:00:00+00:01", "time_format"),
        ("9999-12-31T23:59:59-00:01", "time_format"),
        ("yesterday", "time_format"),
        ("", "time_format"),
        ("1767607200000", "time_format"),
        (1.5, "time_format"),
        (10**16, "time_format"),
        (-(10**16), "time_format"),
        (2**63 - 1, "time_format"),
        (1e300, "time_format"),
        (True, "type"),
        ({"t": 1}, "type"),
    ],
)
def test_bad_event_times_are_rejected(value: Any, rule: str) -> None:
    assert run([value]) == [(rule, None)]


def test_naive_time_message_says_how_to_fix() -> None:
    table = table_from_records([{**BASE, "event_time": "2026-01-05 10:00"}])
    [rejection] = validate(table).rejections
    assert rejection.message == (
        "event_time must be RFC 3339 with a timezone (got a naive time '2026-01-05 10:00'); "
        "add 'Z' or an offset such as '+05:30'"
    )


def test_strings_and_epoch_milliseconds_mix_in_one_column() -> None:
    got = run(["2026-01-05T10:00:00Z", 1767607200000, "bad", 1767607200000.5])
    expected = (None, (utc(2026, 1, 5, 10), date(2026, 1, 5)))
    assert got == [expected, expected, ("time_format", None), ("time_format", None)]


def test_digit_strings_are_epoch_milliseconds_only_when_lenient() -> None:
    stored = utc(2026, 1, 5, 10)
    assert run(["1767607200000"], lenient=True) == [(None, (stored, stored.date()))]
    assert run(["1767607200000"]) == [("time_format", None)]
    before = utc(1969, 12, 31, 23, 59, 59, 995000)
    assert run(["-5"], lenient=True) == [(None, (before, before.date()))]


def _format(moment: datetime, digits: int, extra: str, sep: str, zulu: str) -> str:
    offset = moment.utcoffset()
    assert offset is not None
    body = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}{sep}"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if digits:
        body += "." + (f"{moment.microsecond:06d}" + extra)[:digits]
    if offset == timedelta(0) and zulu:
        return body + zulu
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return body + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
            st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
            st.integers(min_value=0, max_value=9),
            st.text(alphabet="0123456789", min_size=3, max_size=3),
            st.sampled_from(["T", "t", " "]),
            st.sampled_from(["", "Z", "z"]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_stored_microseconds_match_a_datetime_reference(
    cases: list[tuple[datetime, int, int, str, str, str]],
) -> None:
    texts: list[str] = []
    expected: list[int] = []
    for naive, offset_minutes, digits, extra, sep, zulu in cases:
        moment = naive.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
        texts.append(_format(moment, digits, extra, sep, zulu))
        keep = 10 ** (6 - min(digits, 6))
        truncated = moment.replace(microsecond=moment.microsecond // keep * keep)
        expected.append((truncated - EPOCH) // timedelta(microseconds=1))
    got = run(texts)
    for text, want, (rule, value) in zip(texts, expected, got, strict=True):
        assert rule is None, text
        assert reference_time(text) == (None, want)
        stored, day = value
        assert (stored - EPOCH) // timedelta(microseconds=1) == want, text
        assert day == (EPOCH + timedelta(microseconds=want)).date(), text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=1, max_size=20))
def test_epoch_milliseconds_match_a_datetime_reference(values: list[int]) -> None:
    got = run(list(values))
    for value, (rule, stored) in zip(values, got, strict=True):
        ref_rule, ref_micros = reference_time(value)
        assert rule == ref_rule, value
        if ref_micros is not None:
            assert (stored[0] - EPOCH) // timedelta(microseconds=1) == ref_micros


# -- time window -----------------------------------------------------------------------------

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def times(*moments: datetime | None) -> pa.Array:
    return pa.array(list(moments), pa.timestamp("us", tz="UTC"))


def test_time_window_flags_future_and_late_events() -> None:
    arr = times(
        NOW,
        NOW + timedelta(days=1),  # exactly at the bound: accepted
        NOW + timedelta(days=1, microseconds=1),
        NOW - timedelta(days=30),  # exactly at the bound: accepted
        NOW - timedelta(days=30, microseconds=1),
        None,
    )
    found = check_time_window(
        arr, now=NOW, max_future=timedelta(days=1), max_lateness=timedelta(days=30)
    )
    assert [(i, r.index, r.field, r.rule) for i, r in found] == [
        (2, 2, "event_time", "future"),
        (4, 4, "event_time", "late"),
    ]
    assert "ahead" in found[0][1].message
    assert "2026-01-11T12:00:00.000001Z" in found[0][1].message


def test_time_window_without_lateness_accepts_any_age() -> None:
    arr = times(datetime(1990, 1, 1, tzinfo=UTC), NOW + timedelta(hours=25))
    found = check_time_window(arr, now=NOW, max_future=timedelta(days=1), max_lateness=None)
    assert [(i, r.rule) for i, r in found] == [(1, "future")]


def test_time_window_accepts_now_in_any_zone_and_chunked_input() -> None:
    kolkata_now = NOW.astimezone(timezone(timedelta(hours=5, minutes=30)))
    arr = pa.chunked_array([times(NOW), times(NOW + timedelta(hours=2))])
    found = check_time_window(
        arr, now=kolkata_now, max_future=timedelta(hours=1), max_lateness=None
    )
    assert [i for i, _ in found] == [1]


def test_time_window_rejects_a_naive_now() -> None:
    with pytest.raises(UsageError, match="time-zone-aware"):
        check_time_window(
            times(NOW), now=datetime(2026, 1, 1), max_future=timedelta(0), max_lateness=None
        )


def test_time_window_rejects_naive_timestamps() -> None:
    with pytest.raises(UsageError, match="time-zone-aware timestamp"):
        check_time_window(
            pa.array([datetime(2026, 1, 1)], pa.timestamp("us")),
            now=NOW,
            max_future=timedelta(0),
            max_lateness=None,
        )
