"""A plain-Python reference for ``ws.models.dataset``, written as loops over event dicts.

It follows docs/models.md sentence by sentence, in a different shape from the Ibis code:
events grouped in dicts, history found by scanning every event of the user or tenant, times
as whole seconds by integer division, weekdays from ``date.weekday()``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LABEL_TYPES = {"feedback", "handoff"}
WINDOWS = {"thumbs_down": 1, "handoff": 1, "thumbs_down_next": 8}


def seconds(t: dt.datetime) -> int:
    return (t - EPOCH) // dt.timedelta(seconds=1)


def is_down(e: dict[str, Any]) -> bool:
    return e["feedback"] == -1 or (e["rating"] is not None and e["rating"] <= 2)


def is_rated(e: dict[str, Any]) -> bool:
    return e["feedback"] is not None or e["rating"] is not None


def is_handed(e: dict[str, Any]) -> bool:
    return e["event_type"] == "handoff" or e["handoff"] is True


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def reference_dataset(
    rows: Sequence[dict[str, Any]],
    label: str = "thumbs_down",
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    tenant: str | None = None,
    attributes: Sequence[str] = (),
    window: int | None = None,
) -> list[dict[str, Any]]:
    """The dataset rows (as dicts, sorted like the real one) for these stored events."""
    window = WINDOWS[label] if window is None else window
    events = [e for e in rows if until is None or e["event_date"] <= until]
    if not events:
        return []
    horizon = max(e["event_time"] for e in events)
    if until is not None:
        horizon = min(horizon, dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC))
    if tenant is not None:
        events = [e for e in events if e["tenant_id"] == tenant]

    by_session: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_session[(e["tenant_id"], e["session_id"])].append(e)

    sessions: dict[tuple[str, str], dict[str, Any]] = {}
    for key, evs in by_session.items():
        turns = [e for e in evs if e["event_type"] == "turn"]
        if not turns:
            continue
        last = max(
            turns,
            key=lambda e: (
                e["event_time"],
                -1 if e["turn_index"] is None else e["turn_index"],
                e["event_id"],
            ),
        )
        pt = last["event_time"]
        seen = [e for e in evs if e["event_type"] not in LABEL_TYPES and e["event_time"] <= pt]
        seen_turns = [e for e in seen if e["event_type"] == "turn"]
        start = min(e["event_time"] for e in seen)
        lat = [e["latency_ms"] for e in seen_turns if e["latency_ms"] is not None]
        tin = [e["tokens_in"] for e in seen_turns if e["tokens_in"] is not None]
        tout = [e["tokens_out"] for e in seen_turns if e["tokens_out"] is not None]
        retrieved = sum(len(e["retrieved_doc_ids"] or []) for e in seen_turns)
        cited = sum(len(e["cited_doc_ids"] or []) for e in seen_turns)
        errors = sum(1 for e in seen if e["event_type"] == "error")
        attrs: dict[str, str | None] = {}
        for k in attributes:
            maps = [dict(e["attributes"] or []) for e in seen]
            values = [m[k] for m in maps if m.get(k) is not None]
            attrs[f"attr_{k}"] = max(values) if values else None
        sessions[key] = {
            "tenant_id": key[0],
            "session_id": key[1],
            "user_id": last["user_id"],
            "day": last["event_date"],
            "pt": pt,
            "start": start,
            "start_day": min(e["event_date"] for e in seen),
            "events": evs,
            "n_turns": float(len(seen_turns)),
            "latency_mean_ms": mean(lat),
            "latency_max_ms": max(lat) if lat else None,
            "tokens_in_mean": mean([float(v) for v in tin]),
            "tokens_out_mean": mean([float(v) for v in tout]),
            "n_errors": float(errors),
            "any_error": 1.0 if errors else 0.0,
            "retrieved_docs": float(retrieved),
            "cited_docs": float(cited),
            "citation_share": ratio(cited, retrieved),
            "intent_confidence": last["intent_confidence"],
            "session_duration_s": float(seconds(pt) - seconds(start)),
            "hour_of_day": float(seconds(pt) % 86400 // 3600),
            "weekday": float(last["event_date"].weekday()),
            "intent": last["intent"],
            "locale": last["locale"],
            "platform": last["platform"],
            "model_version": last["model_version"],
            "prompt_template": last["prompt_template"],
            "app_version": last["app_version"],
            **attrs,
        }

    out = []
    for s in sessions.values():
        user = (s["tenant_id"], s["user_id"])
        mine = [o for o in sessions.values() if (o["tenant_id"], o["user_id"]) == user]
        prev = sum(1 for o in mine if o["start"] < s["start"])
        before = [
            e
            for e in events
            if (e["tenant_id"], e["user_id"]) == user
            and e["event_time"] < s["start"]
            and e["session_id"] != s["session_id"]
        ]
        down = sum(1 for e in before if is_down(e))
        rated = sum(1 for e in before if is_rated(e))
        handed = sum(1 for e in before if is_handed(e))
        first = min(seconds(o["start"]) for o in mine)

        lo = s["start_day"] - dt.timedelta(days=28)
        in_window = [
            e
            for e in events
            if e["tenant_id"] == s["tenant_id"]
            and lo <= e["event_date"] < s["start_day"]
            # The session's own events are never its features, even stamped before its start
            # (only label-bearing ones can be: its feature events are at or after the start).
            and e["session_id"] != s["session_id"]
        ]
        t_sessions = sum(
            1
            for o in sessions.values()
            if o["tenant_id"] == s["tenant_id"] and lo <= o["start_day"] < s["start_day"]
        )
        t_down = sum(1 for e in in_window if is_down(e))
        t_rated = sum(1 for e in in_window if is_rated(e))
        t_handed = sum(1 for e in in_window if is_handed(e))

        pt, end = s["pt"], s["pt"] + dt.timedelta(days=window)
        if label == "thumbs_down_next":
            later = sorted(
                (o for o in mine if (o["start"], o["session_id"]) > (s["start"], s["session_id"])),
                key=lambda o: (o["start"], o["session_id"]),
            )
            value = False
            if later:
                nxt = later[0]
                reach = pt + dt.timedelta(days=min(7, window))
                value = pt < nxt["start"] <= reach and any(
                    is_down(e) and e["event_time"] <= end for e in nxt["events"]
                )
        else:
            hit = is_down if label == "thumbs_down" else is_handed
            value = any(hit(e) and pt <= e["event_time"] <= end for e in s["events"])

        if end > horizon or (since is not None and s["day"] < since):
            continue
        row = {k: v for k, v in s.items() if k not in ("pt", "start", "start_day", "events")}
        row["prediction_time"] = pt
        row |= {
            "user_prev_sessions": float(prev),
            "user_prev_thumbs_down_rate": ratio(down, rated),
            "user_prev_handoff_rate": ratio(handed, prev),
            "user_tenure_days": (seconds(s["start"]) - first) / 86400,
            "tenant_thumbs_down_rate_28d": ratio(t_down, t_rated),
            "tenant_handoff_rate_28d": ratio(t_handed, t_sessions),
            "label": value,
        }
        out.append(row)
    out.sort(key=lambda r: (r["day"], r["tenant_id"], r["session_id"]))
    return out
