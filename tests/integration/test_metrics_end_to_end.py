"""Acceptance: raw events (odd time formats, offsets across midnight, epoch milliseconds, the same
user id in several tenants, duplicates, empty days) → `assay ingest` → every metric equals a
plain-Python reference computed from the raw events alone."""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "metrics"))

import metrics_reference as ref
from metrics_data import assert_same_rows

from assay import Workspace
from assay.ingest import ingest_paths
from assay.schema import EVENTS_SCHEMA

UTC = dt.UTC
START = dt.datetime(2026, 1, 1, tzinfo=UTC)
OFFSETS = [
    dt.timedelta(0),
    dt.timedelta(hours=5, minutes=30),
    dt.timedelta(hours=-8),
    dt.timedelta(hours=14),
    dt.timedelta(hours=-12),
]


def render_time(instant: dt.datetime, style: int, offset: dt.timedelta) -> Any:
    """The same instant written the ways producers write it."""
    if style == 0:
        return int(instant.timestamp() * 1000)  # epoch milliseconds
    local = instant.astimezone(dt.timezone(offset))
    text = local.isoformat(timespec="milliseconds" if style == 1 else "seconds")
    return text.replace("+00:00", "Z") if style == 2 else text


@st.composite
def raw_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(min_value=1, max_value=60))
    out: list[dict[str, Any]] = []
    for i in range(n):
        if out and draw(st.integers(0, 9)) == 0:
            # A repeat of an earlier key, possibly with other fields: the first copy wins.
            first = draw(st.sampled_from(out))
            out.append({**first, "latency_ms": draw(st.floats(0, 5000))})
            continue
        # Millisecond instants over 18 days, biased to the last millisecond before midnight.
        day = draw(st.integers(0, 17))
        ms = draw(st.one_of(st.integers(0, 86_399_999), st.just(86_399_999)))
        instant = START + dt.timedelta(days=day, milliseconds=ms)
        tenant = draw(st.sampled_from(["a", "b"]))
        event = {
            "event_id": f"e{i}",
            "event_time": render_time(
                instant, draw(st.integers(0, 3)), draw(st.sampled_from(OFFSETS))
            ),
            "tenant_id": tenant,
            "user_id": draw(st.sampled_from(["u1", "u2", "u3", "u4"])),
            "session_id": f"s{draw(st.integers(0, 6))}",
            "event_type": draw(
                st.sampled_from(
                    ["turn", "turn", "turn", "feedback", "handoff", "error", "session_start"]
                )
            ),
            "locale": draw(st.sampled_from([None, "en-US", "de-DE"])),
            "flights": draw(st.sampled_from([None, ["f1"], ["f1", "f2"]])),
            "latency_ms": draw(st.one_of(st.none(), st.floats(0, 5000))),
            "feedback": draw(st.sampled_from([None, -1, 1])),
            "handoff": draw(st.sampled_from([None, True, False])),
            "tokens_in": draw(st.one_of(st.none(), st.integers(0, 500))),
            "cost_usd": draw(st.one_of(st.none(), st.floats(0, 1))),
        }
        out.append({k: v for k, v in event.items() if v is not None})
    return out


def parse_time(value: Any) -> dt.datetime:
    if isinstance(value, int):
        return START + dt.timedelta(milliseconds=value - int(START.timestamp() * 1000))
    return dt.datetime.fromisoformat(value).astimezone(UTC)


def expected_rows(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What should be stored: first copy per (tenant, event_id), UTC days."""
    seen: set[tuple[str, str]] = set()
    rows = []
    for e in raw:
        key = (e["tenant_id"], e["event_id"])
        if key in seen:
            continue
        seen.add(key)
        row: dict[str, Any] = dict.fromkeys(EVENTS_SCHEMA.names)
        row.update(e)
        when = parse_time(e["event_time"])
        row["event_time"], row["event_date"] = when, when.date()
        rows.append(row)
    return rows


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(raw=raw_events(), window=st.integers(1, 5), cut=st.integers(0, 10))
def test_every_metric_after_ingest_equals_the_reference_on_raw_events(
    raw: list[dict[str, Any]], window: int, cut: int
) -> None:
    rows = expected_rows(raw)
    since = dt.date(2026, 1, 1) + dt.timedelta(days=cut)
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "raw.jsonl"
        src.write_text("".join(json.dumps(e) + "\n" for e in raw))
        with Workspace.open(Path(d) / "ws", create=True) as ws:
            summary = ingest_paths(ws, [src])
            assert summary.total("rejected") == 0
            assert summary.total("accepted") == len(rows)
            assert summary.total("duplicate") == len(raw) - len(rows)
            m = ws.metrics
            checks = [
                (m.dau(), ref.dau(rows)),
                (m.dau(since=since, by="locale"), ref.dau(rows, since=since, by="locale")),
                (m.active_users(window=window), ref.active_users(rows, window=window)),
                (
                    m.dau_rolling(window=window, threshold=0.3),
                    ref.dau_rolling(rows, window=window, threshold=0.3),
                ),
                (m.max_active(window=window), ref.max_active(rows, window=window)),
                (m.retention(), ref.retention(rows)),
                (m.sessions(by="flight"), ref.sessions(rows, by="flight")),
            ]
            for got, expected in checks:
                assert_same_rows(got.to_pylist(), expected)
