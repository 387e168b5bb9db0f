"""Helpers of the profile tests: events in stored form (for ``profile_events``) and in input
form (ingested into temp workspaces), and a plain-Python reference of the exact profile."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

import assay
from assay.ingest import ingest_paths
from assay.profiles import CATEGORICAL_COLUMNS, COUNT_COLUMNS, NUMERIC_COLUMNS, OTHER
from assay.schema import EVENTS_SCHEMA

D1 = dt.date(2026, 3, 2)


def stored_events(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows in stored form (``event_date`` a date, ``user_id`` any string) as an events table;
    fields not given are null, ids are made unique."""
    filled = []
    for i, r in enumerate(rows):
        day = r.get("event_date", D1)
        filled.append(
            {
                "event_id": f"e{i}",
                "event_time": dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC),
                "session_id": f"s{i}",
                "event_type": "turn",
                "has_text": False,
                "fingerprint": 0,
                "ingested_at": dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
                **r,
                "event_date": day,
            }
        )
    return pa.Table.from_pylist(filled, schema=EVENTS_SCHEMA)


def _value(e: dict[str, Any], column: str) -> Any:
    if column == "text":
        return "x" if e.get("has_text") else None
    v = e.get(column)
    if column == "handoff" and v is not None:
        return "true" if v else "false"
    if column == "feedback" and v is not None:
        return str(v)
    return v


def reference(
    rows: Sequence[dict[str, Any]], slices: Sequence[str], k: int
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The exact profile, written with loops, Counters and sets: key (day, tenant,
    slice_field, slice_value, column) -> {count, nulls, items, values}."""
    by_day_tenant: dict[tuple[Any, str], list[dict[str, Any]]] = defaultdict(list)
    for e in rows:
        by_day_tenant[(e.get("event_date", D1), e["tenant_id"])].append(e)
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for (day, tenant), evs in by_day_tenant.items():
        groups: dict[tuple[str, str | None], list[dict[str, Any]]] = {("", ""): list(evs)}
        for f in slices:
            users: dict[str, set[str]] = defaultdict(set)
            for e in evs:
                if e.get(f) is not None:
                    users[e[f]].add(e["user_id"])
            for e in evs:
                v = e.get(f)
                sv = None if v is None else (v if len(users[v]) >= k else OTHER)
                groups.setdefault((f, sv), []).append(e)
        for (sf, sv), members in groups.items():
            for column in (*NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS, *COUNT_COLUMNS):
                values = [_value(e, column) for e in members]
                present = [(v, e["user_id"]) for v, e in zip(values, members, strict=True)]
                present = [(v, u) for v, u in present if v is not None]
                entry: dict[str, Any] = {
                    "count": len(members),
                    "nulls": len(members) - len(present),
                }
                if column in CATEGORICAL_COLUMNS:
                    item_users: dict[str, set[str]] = defaultdict(set)
                    item_rows: Counter[str] = Counter()
                    for v, u in present:
                        item_users[v].add(u)
                        item_rows[v] += 1
                    folded: Counter[str] = Counter()
                    for v, n in item_rows.items():
                        folded[v if len(item_users[v]) >= k else OTHER] += n
                    entry["items"] = dict(folded)
                if column in NUMERIC_COLUMNS:
                    entry["values"] = sorted(float(v) for v, _ in present)
                out[(day, tenant, sf, sv, column)] = entry
    return out


def input_event(i: str, day: dt.date, tenant: str, user: str, **fields: Any) -> dict[str, Any]:
    """One event in input form (as a producer sends it)."""
    return {
        "event_id": i,
        "event_time": f"{day.isoformat()}T12:00:00Z",
        "tenant_id": tenant,
        "user_id": user,
        "session_id": fields.pop("session_id", f"s-{user}-{day}"),
        "event_type": fields.pop("event_type", "turn"),
        **fields,
    }


def write_jsonl(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def ingest(root: Path, files: Sequence[Path]) -> None:
    with assay.Workspace.open(root, create=True) as ws:
        summary = ingest_paths(ws, list(files))
        assert summary.total("rejected") == 0, summary.as_dict()
