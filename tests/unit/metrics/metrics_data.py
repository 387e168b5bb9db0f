"""Stored-event rows for the metrics tests, and the fixed edge-case data set.

Shared by the unit tests (DuckDB) and the Spark integration tests, which load this module by
path. Rows conform to ``assay.schema.EVENTS_SCHEMA``; ``user_id`` stands in for a pseudonym.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import deltalake
import pyarrow as pa

from assay.metrics import Metrics
from assay.schema import EVENTS_SCHEMA

#: A fixture that makes Metrics over the given rows (and Metrics options).
MetricsFactory = Callable[..., Metrics]

UTC = dt.UTC
_ids = itertools.count()


def day(text: str) -> dt.date:
    """``"2026-01-05"`` -> ``date(2026, 1, 5)``."""
    return dt.date.fromisoformat(text)


def event(
    when: str | dt.date,
    *,
    tenant: str = "t1",
    user: str = "u1",
    session: str = "s1",
    type: str = "turn",
    hour: int = 12,
    minute: int = 0,
    **fields: Any,
) -> dict[str, Any]:
    """One stored event row on UTC day ``when``, at ``hour:minute`` UTC."""
    on = day(when) if isinstance(when, str) else when
    row: dict[str, Any] = dict.fromkeys(EVENTS_SCHEMA.names)
    time = dt.datetime(on.year, on.month, on.day, hour, minute, tzinfo=UTC)
    row.update(
        event_id=f"e{next(_ids)}",
        event_time=time,
        tenant_id=tenant,
        user_id=user,
        session_id=session,
        event_type=type,
        event_date=on,
        has_text=False,
        ingested_at=time + dt.timedelta(minutes=5),
    )
    unknown = set(fields) - set(EVENTS_SCHEMA.names)
    assert not unknown, f"not stored fields: {sorted(unknown)}"
    row.update(fields)
    # Other required stored columns (e.g. ingest bookkeeping) get a neutral value: the
    # metrics never read them.
    for field in EVENTS_SCHEMA:
        if not field.nullable and row[field.name] is None:
            row[field.name] = _neutral(field.type)
    return row


def _neutral(kind: pa.DataType) -> Any:
    if pa.types.is_integer(kind):
        return 0
    if pa.types.is_boolean(kind):
        return False
    if pa.types.is_string(kind):
        return ""
    raise AssertionError(f"no neutral value for a required {kind} column")


def to_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """The rows as an Arrow table with exactly ``EVENTS_SCHEMA``."""
    return pa.Table.from_pylist(list(rows), schema=EVENTS_SCHEMA)


def write_events(path: Path | str, rows: Sequence[dict[str, Any]]) -> str:
    """Write the rows as a Delta table partitioned by ``event_date``; return its root."""
    root = str(path)
    deltalake.write_deltalake(root, to_table(rows), partition_by=["event_date"])
    return root


def edge_case_events() -> list[dict[str, Any]]:
    """A fixed event set that touches every edge case the metric definitions name.

    - ``acme``: active 2026-01-01..2026-01-20 with days without events (01-06, 01-07, 01-15,
      01-19), a session spanning midnight (01-03 23:50 -> 01-04 00:10), a handoff event and a
      ``handoff = true`` flag, feedback -1 / +1 / null, errors on a day without turns (01-14),
      ties in max_active (windows 1, 3, 7, 21), a session in two flights, a flight listed
      twice, null locales, a turn without latency.
    - ``beta``: starts mid-range (2026-01-10), shares the user_id ``u1`` with ``acme``.
    - ``gamma``: only non-turn events (never active): absent from every metric.
    - The workspace's last event day is 2026-01-22 (a ``gamma`` event), after every turn.
    """
    rows: list[dict[str, Any]] = []
    add = rows.append

    # acme, week of Mon 2026-01-05 and around.
    for user, days in {
        "u1": ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-09", "2026-01-16"],
        "u2": ["2026-01-02", "2026-01-08", "2026-01-13", "2026-01-20"],
        "u3": ["2026-01-04", "2026-01-05", "2026-01-12"],
        "u4": ["2026-01-10", "2026-01-11", "2026-01-17", "2026-01-18"],
    }.items():
        for when in days:
            add(
                event(
                    when,
                    tenant="acme",
                    user=user,
                    session=f"acme-{user}-{when}",
                    locale="en-US" if user in ("u1", "u2") else None,
                    platform="web" if user != "u4" else "ios",
                    app_version="1.0",
                    model_version="m1" if when < "2026-01-10" else "m2",
                    prompt_template="p1",
                    flights=["f-a", "f-b"]
                    if user == "u1"
                    else (["f-a", "f-a"] if user == "u3" else None),
                    latency_ms=100.0 + 10 * int(when[-2:]) + len(user),
                    tokens_in=10,
                    tokens_out=20,
                    cost_usd=0.25,
                )
            )
    # A session spanning midnight: starts 01-03 23:50, turns on both days, ends 01-04.
    add(
        event(
            "2026-01-03",
            tenant="acme",
            user="u5",
            session="night",
            type="session_start",
            hour=23,
            minute=50,
            locale="de-DE",
        )
    )
    add(
        event(
            "2026-01-03",
            tenant="acme",
            user="u5",
            session="night",
            hour=23,
            minute=55,
            latency_ms=500.0,
            tokens_in=5,
            tokens_out=7,
            cost_usd=0.125,
            locale="de-DE",
        )
    )
    add(
        event(
            "2026-01-04",
            tenant="acme",
            user="u5",
            session="night",
            hour=0,
            minute=5,
            latency_ms=700.0,
            tokens_in=5,
            tokens_out=7,
            cost_usd=0.125,
            locale="de-DE",
        )
    )
    add(
        event(
            "2026-01-04",
            tenant="acme",
            user="u5",
            session="night",
            type="handoff",
            hour=0,
            minute=8,
            locale="de-DE",
        )
    )
    add(
        event(
            "2026-01-04",
            tenant="acme",
            user="u5",
            session="night",
            type="session_end",
            hour=0,
            minute=10,
            locale="de-DE",
        )
    )
    # Feedback: one thumbs down, one up, one null-feedback feedback event, on 01-09.
    add(
        event(
            "2026-01-09",
            tenant="acme",
            user="u1",
            session="acme-u1-2026-01-09",
            type="feedback",
            feedback=-1,
            locale="en-US",
            flights=["f-a", "f-b"],
        )
    )
    add(
        event(
            "2026-01-09",
            tenant="acme",
            user="u2",
            session="fb-u2",
            type="feedback",
            feedback=1,
            locale="en-US",
        )
    )
    add(
        event(
            "2026-01-09", tenant="acme", user="u2", session="fb-u2", type="feedback", locale="en-US"
        )
    )
    # A turn flagged handoff=true (no handoff event) on 01-12; no latency on it.
    add(
        event(
            "2026-01-12", tenant="acme", user="u6", session="flagged", handoff=True, platform="web"
        )
    )
    # Errors on 01-14, a day with no turns at all (inside the grid).
    add(event("2026-01-14", tenant="acme", user="u2", session="err", type="session_start"))
    add(
        event(
            "2026-01-14",
            tenant="acme",
            user="u2",
            session="err",
            type="error",
            error_code="timeout",
            tokens_in=3,
            cost_usd=0.01,
        )
    )
    add(
        event(
            "2026-01-14",
            tenant="acme",
            user="u2",
            session="err",
            type="error",
            error_code="timeout",
        )
    )

    # beta: starts 2026-01-10; shares user_id u1 with acme (a different user).
    for when in ["2026-01-10", "2026-01-11", "2026-01-12", "2026-01-19"]:
        add(
            event(
                when,
                tenant="beta",
                user="u1",
                session=f"beta-u1-{when}",
                locale="fr-FR",
                latency_ms=50.0,
                flights=["f-a"],
            )
        )
    add(
        event(
            "2026-01-11",
            tenant="beta",
            user="u7",
            session="beta-u7",
            locale="fr-FR",
            latency_ms=80.0,
            flights=["f-c"],
        )
    )
    # A session_start before beta's first active day: outside the grid.
    add(event("2026-01-08", tenant="beta", user="u8", session="early", type="session_start"))

    # gamma: never active.
    add(event("2026-01-05", tenant="gamma", user="u1", session="g1", type="session_start"))
    add(event("2026-01-22", tenant="gamma", user="u1", session="g1", type="feedback", feedback=-1))
    return rows


def assert_same_rows(
    got: Sequence[dict[str, Any]], expected: Sequence[dict[str, Any]], *, rel: float = 1e-9
) -> None:
    """Assert two row lists are equal: same order, same columns, floats within ``rel``.

    Float sums may differ in the last bits between engines (and from Python) by summation
    order; every other value must be equal exactly.
    """
    assert len(got) == len(expected), f"{len(got)} rows, expected {len(expected)}"
    for index, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert list(g) == list(e), f"row {index}: columns {list(g)}, expected {list(e)}"
        for name in g:
            a, b = g[name], e[name]
            if isinstance(a, float) and isinstance(b, float):
                same = math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
            else:
                same = a == b and type(a) is type(b)
            assert same, f"row {index} {name}: got {a!r}, expected {b!r}\n{g}\n{e}"
