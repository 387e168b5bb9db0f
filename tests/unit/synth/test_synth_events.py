"""The generated events follow schema v1, as a producer would send them, with realistic sessions."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from assay.synth import SynthConfig, SynthOutput

# Written out by hand from the schema table in DESIGN.md, not taken from assay.schema.
REQUIRED = {"event_id", "event_time", "tenant_id", "user_id", "session_id", "event_type"}
OPTIONAL_TYPES: dict[str, type | tuple[type, ...]] = {
    "turn_index": int,
    "locale": str,
    "platform": str,
    "app_version": str,
    "model_version": str,
    "prompt_template": str,
    "flights": list,
    "latency_ms": (int, float),
    "cost_usd": (int, float),
    "tokens_in": int,
    "tokens_out": int,
    "intent": str,
    "intent_confidence": (int, float),
    "feedback": int,
    "rating": int,
    "handoff": bool,
    "error_code": str,
    "retrieved_doc_ids": list,
    "cited_doc_ids": list,
    "text": str,
    "attributes": dict,
}
EVENT_TYPES = {"session_start", "turn", "feedback", "handoff", "error", "session_end"}


def test_every_row_passes_an_independent_schema_check(
    small_rows: list[dict[str, Any]],
    small_config: SynthConfig,
    instant: Callable[[object], dt.datetime],
) -> None:
    start = dt.datetime.combine(small_config.start, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=small_config.days)
    for row in small_rows:
        assert row.keys() >= REQUIRED
        assert row.keys() <= REQUIRED | OPTIONAL_TYPES.keys()
        for name in ("event_id", "tenant_id", "user_id", "session_id"):
            assert isinstance(row[name], str)
            assert 1 <= len(row[name]) <= 128
        assert row["event_type"] in EVENT_TYPES
        assert start <= instant(row["event_time"]) < end
        for name, value in row.items():
            if name in OPTIONAL_TYPES:
                assert value is not None, "absent fields are omitted, not null"
                assert isinstance(value, OPTIONAL_TYPES[name]), (name, value)
        for name in ("latency_ms", "cost_usd", "tokens_in", "tokens_out", "turn_index"):
            assert row.get(name, 0) >= 0
        assert 0.0 <= row.get("intent_confidence", 0.0) <= 1.0
        assert row.get("feedback", 1) in (-1, 1)
        assert 1 <= row.get("rating", 1) <= 5
        assert row.get("handoff", True) is True
        for name in ("flights", "retrieved_doc_ids", "cited_doc_ids"):
            assert all(isinstance(x, str) for x in row.get(name, []))
        assert all(
            isinstance(k, str) and isinstance(v, str) for k, v in row.get("attributes", {}).items()
        )


def test_each_event_type_carries_its_own_fields(small_rows: list[dict[str, Any]]) -> None:
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in small_rows:
        by_type[row["event_type"]].append(row)
    assert set(by_type) == EVENT_TYPES
    turn_fields = {"turn_index", "text", "intent", "intent_confidence", "latency_ms", "tokens_in"}
    turn_fields |= {"tokens_out", "cost_usd", "model_version", "prompt_template", "locale"}
    assert all(turn_fields <= r.keys() for r in by_type["turn"])
    assert all("feedback" in r and "turn_index" in r for r in by_type["feedback"])
    assert any("rating" in r for r in by_type["feedback"])
    assert not any("rating" in r for r in by_type["turn"])
    assert all(r.get("handoff") is True for r in by_type["handoff"])
    assert not any("handoff" in r for r in by_type["turn"])
    assert all("error_code" in r for r in by_type["error"])
    assert all("attributes" in r for r in by_type["session_start"])
    assert not any("text" in r for t in EVENT_TYPES - {"turn"} for r in by_type[t])
    rag = [r for r in by_type["turn"] if r["prompt_template"].startswith("rag-")]
    assert rag
    assert all(set(r["cited_doc_ids"]) <= set(r["retrieved_doc_ids"]) for r in rag)
    plain = [r for r in by_type["turn"] if not r["prompt_template"].startswith("rag-")]
    assert plain
    assert not any("retrieved_doc_ids" in r or "cited_doc_ids" in r for r in plain)


def test_sessions_start_first_and_number_their_turns_from_zero(
    small_rows: list[dict[str, Any]], instant: Callable[[object], dt.datetime]
) -> None:
    sessions: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in small_rows:
        sessions[(row["tenant_id"], row["session_id"])].append(row)
    for events in sessions.values():
        events.sort(key=lambda r: instant(r["event_time"]))
        assert events[0]["event_type"] == "session_start"
        turns = [r["turn_index"] for r in events if r["event_type"] == "turn"]
        assert turns == list(range(len(turns)))
        assert len(turns) >= 1
        assert len({(r["user_id"], r.get("locale"), r.get("model_version")) for r in events}) == 1
        ends = [i for i, r in enumerate(events) if r["event_type"] == "session_end"]
        assert ends in ([], [len(events) - 1])


def test_ids_are_unique_per_tenant(small_rows: list[dict[str, Any]]) -> None:
    event_keys = Counter((r["tenant_id"], r["event_id"]) for r in small_rows)
    assert max(event_keys.values()) == 1
    owners: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in small_rows:
        owners[(row["tenant_id"], row["session_id"])].add(row["user_id"])
    assert all(len(users) == 1 for users in owners.values())
    uuid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(uuid.match(r["event_id"]) and uuid.match(r["session_id"]) for r in small_rows)
    assert all(re.fullmatch(r"user-\d{6}", r["user_id"]) for r in small_rows)


def test_some_user_ids_occur_in_more_than_one_tenant(
    small_rows: list[dict[str, Any]], small_truth: dict[str, Any]
) -> None:
    tenants_of: dict[str, set[str]] = defaultdict(set)
    for row in small_rows:
        tenants_of[row["user_id"]].add(row["tenant_id"])
    shared = [u for u, t in tenants_of.items() if len(t) > 1]
    assert len(shared) >= 3
    assert small_truth["users"]["colliding_user_ids"] >= len(shared)


def test_event_time_mixes_utc_offsets_and_epoch_milliseconds(
    small_rows: list[dict[str, Any]],
) -> None:
    kinds = Counter(
        "epoch_ms"
        if isinstance(r["event_time"], int)
        else "utc"
        if r["event_time"].endswith("Z")
        else "offset"
        for r in small_rows
    )
    n = len(small_rows)
    assert 0.005 < kinds["epoch_ms"] / n < 0.015
    assert 0.012 < kinds["offset"] / n < 0.03
    offsets = {
        r["event_time"][-6:]
        for r in small_rows
        if isinstance(r["event_time"], str) and not r["event_time"].endswith("Z")
    }
    assert "+05:30" in offsets
    assert "-08:00" in offsets


def test_rows_of_a_file_are_in_time_order(
    small_output: SynthOutput, instant: Callable[[object], dt.datetime]
) -> None:
    for path in small_output.files[:5]:
        with path.open() as f:
            times = [instant(json.loads(line)["event_time"]) for line in f]
        assert times == sorted(times)


def test_users_are_active_on_a_subset_of_days_and_less_on_weekends(
    small_rows: list[dict[str, Any]],
    small_config: SynthConfig,
    instant: Callable[[object], dt.datetime],
) -> None:
    active: dict[dt.date, set[tuple[str, str]]] = defaultdict(set)
    for row in small_rows:
        if row["event_type"] == "turn":
            active[instant(row["event_time"]).date()].add((row["tenant_id"], row["user_id"]))
    days_per_user = Counter(u for users in active.values() for u in users)
    assert max(days_per_user.values()) <= small_config.days
    assert sum(days_per_user.values()) / len(days_per_user) < small_config.days / 2
    weekday = [len(u) for d, u in active.items() if d.weekday() < 5]
    weekend = [len(u) for d, u in active.items() if d.weekday() >= 5]
    assert sum(weekend) / len(weekend) < 0.7 * sum(weekday) / len(weekday)


def test_dimensions_take_several_values(small_rows: list[dict[str, Any]]) -> None:
    turns = [r for r in small_rows if r["event_type"] == "turn"]
    assert {r["locale"] for r in turns} == {"en-US", "en-GB", "de-DE", "fr-FR", "ja-JP"}
    assert {r["platform"] for r in turns} == {"web", "ios", "android", "teams"}
    assert len({r["app_version"] for r in turns}) >= 2
    assert {len(r.get("flights", [])) for r in turns} == {0, 1, 2}
    assert sum(r["intent"] == "oos" for r in turns) / len(turns) == pytest.approx(0.08, abs=0.02)
