"""An independent reference for every metric, in plain Python over event rows.

Written from the definitions in docs/metrics.md, sharing no code with ``assay.metrics``: dates
stay ``datetime.date``, sets and dicts do the counting, numpy does the percentiles. Each
function returns the rows (as dicts) in the documented order.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

Row = dict[str, Any]
ONE_DAY = dt.timedelta(days=1)


def _days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    current = first
    while current <= last:
        yield current
        current += ONE_DAY


def _monday(on: dt.date) -> dt.date:
    return on - dt.timedelta(days=on.weekday())


def _groups(
    rows: Sequence[Row], tenant: str | None, by: str | None, until: dt.date
) -> dict[tuple[Any, ...], list[Row]]:
    """Rows per (tenant[, slice value]), dropping rows after ``until``."""
    out: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for row in rows:
        if tenant is not None and row["tenant_id"] != tenant:
            continue
        if row["event_date"] > until:
            continue
        if by is None:
            out[(row["tenant_id"],)].append(row)
        elif by == "flight":
            for flight in sorted({f for f in row["flights"] or [] if f is not None}):
                out[(row["tenant_id"], flight)].append(row)
        else:
            out[(row["tenant_id"], row[by])].append(row)
    return out


def _key_dict(key: tuple[Any, ...], by: str | None) -> Row:
    return {"tenant_id": key[0]} if by is None else {"tenant_id": key[0], by: key[1]}


def _order(key: tuple[Any, ...]) -> tuple[Any, ...]:
    # Nulls last, like the library's Arrow sort.
    return tuple((value is None, value or "") for value in key)


def _active_days(events: Iterable[Row], active: Sequence[str]) -> dict[dt.date, set[str]]:
    users: dict[dt.date, set[str]] = defaultdict(set)
    for row in events:
        if row["event_type"] in active:
            users[row["event_date"]].add(row["user_id"])
    return users


def last_event_day(rows: Sequence[Row]) -> dt.date | None:
    return max((row["event_date"] for row in rows), default=None)


def _setup(
    rows: Sequence[Row],
    tenant: str | None,
    by: str | None,
    until: dt.date | None,
    active: Sequence[str],
) -> tuple[dt.date | None, list[tuple[tuple[Any, ...], list[Row], dict[dt.date, set[str]]]]]:
    end = until if until is not None else last_event_day(rows)
    if end is None:
        return None, []
    grouped = _groups(rows, tenant, by, end)
    groups = []
    for key in sorted(grouped, key=_order):
        events = grouped[key]
        days = _active_days(events, active)
        if days:
            groups.append((key, events, days))
    return end, groups


def dau(
    rows: Sequence[Row],
    *,
    tenant: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    by: str | None = None,
    active: Sequence[str] = ("turn",),
) -> list[Row]:
    end, groups = _setup(rows, tenant, by, until, active)
    out = []
    for key, _, days in groups:
        first = min(days)
        start = max(first, since) if since else first
        for on in _days(start, end):  # type: ignore[arg-type]
            out.append({**_key_dict(key, by), "day": on, "dau": len(days.get(on, ()))})
    return out


def active_users(
    rows: Sequence[Row],
    *,
    window: int = 7,
    tenant: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    by: str | None = None,
    active: Sequence[str] = ("turn",),
) -> list[Row]:
    end, groups = _setup(rows, tenant, by, until, active)
    out = []
    for key, _, days in groups:
        first = min(days)
        start = max(first, since) if since else first
        for on in _days(start, end):  # type: ignore[arg-type]
            seen: set[str] = set()
            for back in range(window):
                seen |= days.get(on - dt.timedelta(days=back), set())
            out.append(
                {**_key_dict(key, by), "day": on, "window": window, "active_users": len(seen)}
            )
    return out


def dau_rolling(
    rows: Sequence[Row],
    *,
    window: int = 7,
    threshold: float = 0.3,
    tenant: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    by: str | None = None,
    active: Sequence[str] = ("turn",),
) -> list[Row]:
    end, groups = _setup(rows, tenant, by, until, active)
    out = []
    for key, _, days in groups:
        first = min(days)
        start = max(first, since) if since else first

        def count(on: dt.date, days: dict[dt.date, set[str]] = days) -> int:
            return len(days.get(on, ()))

        for on in _days(start, end):  # type: ignore[arg-type]
            current = sum(count(on - dt.timedelta(days=k)) for k in range(window))
            avg = current / window
            prior_first = on - dt.timedelta(days=2 * window - 1)
            if prior_first >= first:
                prior = sum(count(on - dt.timedelta(days=window + k)) for k in range(window))
                prev: float | None = prior / window
            else:
                prev = None
            drop = prev is not None and prev > 0 and avg <= (1 - threshold) * prev
            out.append(
                {
                    **_key_dict(key, by),
                    "day": on,
                    "dau": count(on),
                    "dau_avg": avg,
                    "dau_prev_avg": prev,
                    "drop": drop,
                }
            )
    return out


def max_active(
    rows: Sequence[Row],
    *,
    window: int = 30,
    tenant: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    by: str | None = None,
    active: Sequence[str] = ("turn",),
) -> list[Row]:
    end, groups = _setup(rows, tenant, by, until, active)
    out = []
    for key, _, days in groups:
        first = min(days)
        start = max(first, since) if since else first
        if start > end:  # type: ignore[operator]
            continue
        best: int | None = None
        best_start: dt.date | None = None
        window_start = start
        while window_start + dt.timedelta(days=window - 1) <= end:  # type: ignore[operator]
            users: set[str] = set()
            for k in range(window):
                users |= days.get(window_start + dt.timedelta(days=k), set())
            if best is None or len(users) > best:
                best, best_start = len(users), window_start
            window_start += ONE_DAY
        out.append(
            {
                **_key_dict(key, by),
                "window": window,
                "max_active": best,
                "window_start": best_start,
            }
        )
    return out


def retention(
    rows: Sequence[Row],
    *,
    tenant: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    by: str | None = None,
    active: Sequence[str] = ("turn",),
) -> list[Row]:
    end, groups = _setup(rows, tenant, by, until, active)
    out = []
    for key, _, days in groups:
        first_day: dict[str, dt.date] = {}
        weeks_of: dict[str, set[dt.date]] = defaultdict(set)
        for on in sorted(days):
            for user in days[on]:
                first_day.setdefault(user, on)
                weeks_of[user].add(_monday(on))
        cohorts: dict[dt.date, list[str]] = defaultdict(list)
        for user, first in first_day.items():
            cohorts[_monday(first)].append(user)
        for cohort in sorted(cohorts):
            if since is not None and cohort < _monday(since):
                continue
            members = cohorts[cohort]
            n_weeks = (_monday(end) - cohort).days // 7 + 1  # type: ignore[arg-type]
            for week in range(n_weeks):
                monday = cohort + dt.timedelta(weeks=week)
                kept = sum(1 for user in members if monday in weeks_of[user])
                out.append(
                    {
                        **_key_dict(key, by),
                        "cohort_week": cohort,
                        "week": week,
                        "users": len(members),
                        "retained": kept,
                        "rate": kept / len(members),
                    }
                )
    return out


def sessions(
    rows: Sequence[Row],
    *,
    tenant: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    by: str | None = None,
    active: Sequence[str] = ("turn",),
) -> list[Row]:
    end, groups = _setup(rows, tenant, by, until, active)
    out = []
    for key, events, days in groups:
        first = min(days)
        start = max(first, since) if since else first
        by_session: dict[str, list[Row]] = defaultdict(list)
        for row in events:
            by_session[row["session_id"]].append(row)
        started: dict[dt.date, list[bool]] = defaultdict(list)
        for session_events in by_session.values():
            opened = min(row["event_date"] for row in session_events)
            handed = any(
                row["event_type"] == "handoff" or row["handoff"] is True for row in session_events
            )
            started[opened].append(handed)
        for on in _days(start, end):  # type: ignore[arg-type]
            todays = [row for row in events if row["event_date"] == on]
            turns = [row for row in todays if row["event_type"] == "turn"]
            errors = sum(1 for row in todays if row["event_type"] == "error")
            rated = [row["feedback"] for row in todays if row["feedback"] is not None]
            latencies = [row["latency_ms"] for row in turns if row["latency_ms"] is not None]
            n_sessions = len(started.get(on, []))
            # numpy's default percentile is linear interpolation between closest ranks.
            p50, p95, p99 = (
                (float(v) for v in np.percentile(latencies, [50, 95, 99]))
                if latencies
                else (None, None, None)
            )
            out.append(
                {
                    **_key_dict(key, by),
                    "day": on,
                    "sessions": n_sessions,
                    "turns": len(turns),
                    "turns_per_session": len(turns) / n_sessions if n_sessions else None,
                    "handoff_rate": (sum(started[on]) / n_sessions if n_sessions else None),
                    "thumbs_down_rate": (
                        sum(1 for f in rated if f == -1) / len(rated) if rated else None
                    ),
                    "error_rate": errors / len(turns) if turns else None,
                    "latency_p50": p50,
                    "latency_p95": p95,
                    "latency_p99": p99,
                    "tokens_in": sum(r["tokens_in"] for r in todays if r["tokens_in"] is not None),
                    "tokens_out": sum(
                        r["tokens_out"] for r in todays if r["tokens_out"] is not None
                    ),
                    "cost_usd": float(
                        sum(r["cost_usd"] for r in todays if r["cost_usd"] is not None)
                    ),
                }
            )
    return out


def health(
    rows: Sequence[Row],
    *,
    window: int = 7,
    tenant: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    by: str | None = None,
    active: Sequence[str] = ("turn",),
) -> list[Row]:
    # Counted afresh from the events (not from the rates of `sessions`); only the grid,
    # latency and cost are shared with the references above.
    end, groups = _setup(rows, tenant, by, until, active)
    out = []
    for key, events, days in groups:
        first = min(days)
        start = max(first, since) if since else first
        opened: dict[str, dt.date] = {}
        handed: dict[str, bool] = defaultdict(bool)
        for row in events:
            sid = row["session_id"]
            opened[sid] = min(opened.get(sid, row["event_date"]), row["event_date"])
            handed[sid] |= row["event_type"] == "handoff" or row["handoff"] is True
        for on in _days(start, end):  # type: ignore[arg-type]
            todays = [row for row in events if row["event_date"] == on]
            seen: set[str] = set()
            for back in range(window):
                seen |= days.get(on - dt.timedelta(days=back), set())
            started = [sid for sid, d in opened.items() if d == on]
            latencies = [
                row["latency_ms"]
                for row in todays
                if row["event_type"] == "turn" and row["latency_ms"] is not None
            ]
            out.append(
                {
                    **_key_dict(key, by),
                    "day": on,
                    "dau": len(days.get(on, ())),
                    "active_users": len(seen),
                    "sessions": len(started),
                    "handoff_sessions": sum(handed[sid] for sid in started),
                    "turns": sum(row["event_type"] == "turn" for row in todays),
                    "errors": sum(row["event_type"] == "error" for row in todays),
                    "feedback": sum(row["feedback"] is not None for row in todays),
                    "thumbs_down": sum(row["feedback"] == -1 for row in todays),
                    "latency_p95": float(np.percentile(latencies, 95)) if latencies else None,
                    "cost_usd": float(
                        sum(r["cost_usd"] for r in todays if r["cost_usd"] is not None)
                    ),
                    **_rag_counts(todays),
                }
            )
    return out


def _rag_counts(todays: Sequence[Row]) -> dict[str, int]:
    """Answers: turns with a non-null retrieved doc id; doc ids as sets (duplicates once)."""
    out = dict.fromkeys(
        ("answers", "cited_answers", "citations", "retrieved", "uncited_retrieved"), 0
    )
    for row in todays:
        got = {d for d in row["retrieved_doc_ids"] or () if d is not None}
        if row["event_type"] != "turn" or not got:
            continue
        cited = {d for d in row["cited_doc_ids"] or () if d is not None}
        out["answers"] += 1
        out["cited_answers"] += bool(cited)
        out["citations"] += len(cited)
        out["retrieved"] += len(got)
        out["uncited_retrieved"] += len(got - cited)
    return out


REFERENCES = {
    "dau": dau,
    "active_users": active_users,
    "dau_rolling": dau_rolling,
    "max_active": max_active,
    "retention": retention,
    "sessions": sessions,
    "health": health,
}
