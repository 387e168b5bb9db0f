"""The vectorised formatters agree with the standard library on arbitrary inputs."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from assay.synth._format import prefixed_numbers, rfc3339_strings, uuid_strings
from assay.synth._jsonl import fragments

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MS_RANGE = (-62_135_596_800_000 + 86_400_000, 253_402_300_799_999 - 86_400_000)


@given(
    st.lists(
        st.tuples(st.integers(*MS_RANGE), st.integers(-14 * 60, 14 * 60)), min_size=1, max_size=50
    )
)
def test_rfc3339_strings_match_datetime_isoformat(pairs: list[tuple[int, int]]) -> None:
    ms = np.array([p[0] for p in pairs], dtype=np.int64)
    offsets = np.array([p[1] for p in pairs], dtype=np.int64)
    got = rfc3339_strings(ms, offsets).to_pylist()
    for (m, off), text in zip(pairs, got, strict=True):
        zone = dt.timezone(dt.timedelta(minutes=off))
        moment = EPOCH + dt.timedelta(milliseconds=m)
        expected = moment.astimezone(zone).isoformat(timespec="milliseconds")
        if off == 0:
            expected = expected.replace("+00:00", "Z")
        assert text == expected
        assert dt.datetime.fromisoformat(text) == moment


def test_rfc3339_strings_hand_worked() -> None:
    ms = np.array([0, 1_767_225_600_123, -1], dtype=np.int64)
    got = rfc3339_strings(ms, np.array([0, 330, -480], dtype=np.int64)).to_pylist()
    assert got == [
        "1970-01-01T00:00:00.000Z",
        "2026-01-01T05:30:00.123+05:30",
        "1969-12-31T15:59:59.999-08:00",
    ]


@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=50))
def test_uuid_strings_are_version_4_and_keep_hi_whole(his: list[int]) -> None:
    hi = np.array(his, dtype=np.uint64)
    got = uuid_strings(hi, np.zeros(len(his), dtype=np.uint64)).to_pylist()
    for value, text in zip(his, got, strict=True):
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert str(parsed) == text
        digits = text.replace("-", "")
        assert int(digits[:12] + digits[13:16] + digits[17], 16) == value
    assert len(set(got)) == len(set(his))


def test_prefixed_numbers_pad_with_zeros() -> None:
    got = prefixed_numbers("user-", np.array([0, 123, 999_999]), 6).to_pylist()
    assert got == ["user-000000", "user-000123", "user-999999"]


@given(st.lists(st.one_of(st.none(), st.text()), min_size=1, max_size=30))
def test_string_fragments_parse_back_to_the_value(values: list[str | None]) -> None:
    got = fragments("text", pa.array(values, pa.string())).to_pylist()
    for value, frag in zip(values, got, strict=True):
        if value is None:
            assert frag is None
        else:
            assert frag is not None
            assert frag.startswith(',"text":')
            assert json.loads("{" + frag[1:] + "}") == {"text": value}


@given(
    st.lists(
        st.one_of(st.none(), st.dictionaries(st.text(max_size=5), st.text(max_size=5))),
        min_size=1,
        max_size=20,
    ),
    st.lists(st.one_of(st.none(), st.lists(st.text(max_size=5), max_size=4)), min_size=1),
)
def test_map_and_list_fragments_parse_back(
    maps: list[dict[str, str] | None], lists: list[list[str] | None]
) -> None:
    # Sliced arrays (non-zero offsets) are what the renderer meets in chunks.
    map_arr = pa.array(
        [None, *(None if m is None else list(m.items()) for m in maps)],
        pa.map_(pa.string(), pa.string()),
    ).slice(1)
    for value, frag in zip(maps, fragments("attributes", map_arr).to_pylist(), strict=True):
        assert (frag is None) == (value is None)
        if frag is not None:
            assert json.loads("{" + frag[1:] + "}") == {"attributes": value}
    list_arr = pa.array([None, *lists], pa.list_(pa.string())).slice(1)
    for items, frag in zip(lists, fragments("flights", list_arr).to_pylist(), strict=True):
        assert (frag is None) == (items is None)
        if frag is not None:
            assert json.loads("{" + frag[1:] + "}") == {"flights": items}


@given(st.lists(st.floats(min_value=0, max_value=1e12, allow_nan=False), min_size=1))
def test_float_fragments_round_trip_exactly(values: list[float]) -> None:
    got = fragments("latency_ms", pa.array(values, pa.float64())).to_pylist()
    for value, frag in zip(values, got, strict=True):
        assert frag is not None
        assert json.loads("{" + frag[1:] + "}")["latency_ms"] == value
