"""Root cause of a tenant's metric change on one day, from the stored events.

:func:`explain_metric` turns the events of one tenant into one row per (day, leaf), where a
leaf is one combination of values of the chosen dimensions (``locale``, ``platform``,
``app_version``, ``model_version``, ``prompt_template``, ``flight``), and hands the table to
:func:`assay.anomaly.explain_table` (``docs/explain.md``). The leaf rows follow the metric
definitions of ``docs/metrics.md``, so that the leaves of a day add up to the metric the
tenant shows (except ``dau``, where a user active in two leaves counts in each).

:func:`release_events` lists what was released near the change: the first day each
``model_version``, ``prompt_template`` and flight appeared in the tenant's events.

Everything is read with DuckDB straight from the workspace's Parquet files, filtered on the
tenant and on ``event_date`` (the partition column, so that other days' files are skipped).
Nothing returned holds a user id.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import UsageError, unknown_tenant
from assay._records import jsonable
from assay.anomaly._explain import Explanation, explain_table

if TYPE_CHECKING:
    from assay.store import Workspace

EXPLAIN_METRICS: tuple[str, ...] = (
    "dau",
    "active_users",
    "sessions",
    "handoff_rate",
    "thumbs_down_rate",
    "error_rate",
    "latency_p95",
    "cost_usd",
)
DIMENSIONS: tuple[str, ...] = (
    "locale",
    "platform",
    "app_version",
    "model_version",
    "prompt_template",
    "flight",
)
RELEASE_FIELDS: tuple[str, ...] = ("model_version", "prompt_template", "flight")

_SOURCE = "read_parquet($files, hive_partitioning = true)"
# The leaf value of `flight`: the event's set of flights, sorted, joined with "+"; null
# when it has none. Each event is in exactly one leaf, so nothing is counted twice.
_FLIGHT_SQL = (
    "CASE WHEN len(list_distinct(flights)) > 0 "
    "THEN array_to_string(list_sort(list_distinct(flights)), '+') END"
)
_HANDOFF_SQL = "(event_type = 'handoff' OR coalesce(handoff, false))"


@dataclass(frozen=True)
class MetricExplanation:
    """Why a tenant's metric changed on one day, from :func:`explain_metric`.

    Attributes
    ----------
    metric : str
        One of :data:`EXPLAIN_METRICS`.
    tenant_id : str
        The tenant.
    day : datetime.date
        The day explained.
    baseline_days : int
        The number of days before ``day`` asked for as the baseline (the days actually
        used are ``explanation.baseline_times``: fewer when the tenant started later).
    dimensions : tuple of str
        The dimensions sliced by: those asked for that take more than one value (null
        included) in the window; the note names the others.
    explanation : Explanation
        The ranked slices from :func:`assay.anomaly.explain_table`; ``before`` is the
        baseline mean of the leaf table's metric, ``after`` its value on ``day``.
    releases : list of dict
        Release events in the window (see :func:`release_events`): ``field``, ``value``,
        ``first_seen`` (a date), ``days_before`` (``day - first_seen`` in days).
    note : str or None
        How the metric was mapped onto leaf rows, when that needs saying.
    """

    metric: str
    tenant_id: str
    day: dt.date
    baseline_days: int
    dimensions: tuple[str, ...]
    explanation: Explanation
    releases: list[dict[str, Any]]
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: dates as ``YYYY-MM-DD``, NaN as None.

        Keys: ``metric``, ``tenant_id``, ``day``, ``baseline_days``, ``baseline_from``,
        ``dimensions``, ``kind`` (``sum`` or ``ratio``), ``before``, ``after``, ``rows``
        (``explanation.to_list()``), ``releases``, ``note``.
        """
        times = self.explanation.baseline_times
        return {
            "metric": self.metric,
            "tenant_id": self.tenant_id,
            "day": self.day.isoformat(),
            "baseline_days": self.baseline_days,
            "baseline_from": jsonable(times[0]) if times else None,
            "dimensions": list(self.dimensions),
            "kind": self.explanation.metric,
            "before": jsonable(self.explanation.before),
            "after": jsonable(self.explanation.after),
            "rows": [_jsonable_row(r) for r in self.explanation.to_list()],
            "releases": [{k: jsonable(v) for k, v in r.items()} for r in self.releases],
            "note": self.note,
        }


def _jsonable_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: ({d: jsonable(x) for d, x in v.items()} if k == "slice" else jsonable(v))
        for k, v in row.items()
    }


def explain_metric(
    ws: Workspace,
    *,
    metric: str,
    tenant: str,
    day: dt.date,
    baseline_days: int = 7,
    dimensions: Sequence[str] | None = None,
    max_order: int = 3,
    top: int | None = 20,
) -> MetricExplanation:
    """Rank the slices that explain the change of a tenant's metric on ``day``.

    The tenant's events of the days ``[day - baseline_days, day]`` become one row per (day,
    leaf), a leaf being one combination of values of ``dimensions``, with the metric's
    numerator (and denominator for a rate) as defined in ``docs/metrics.md``:

    - ``dau``: distinct users with an active event (``active_event_types``) in the leaf that
      day. A user active in two leaves on one day counts in each (the note says so when the
      leaves then add up to more than the DAU).
    - ``active_users``: explained through ``dau`` (a trailing distinct count does not split
      into additive slices).
    - ``sessions``: sessions counted on the day of their first event, in the leaf of that
      first event (a session whose first event is before the window is not counted).
    - ``handoff_rate``: of those sessions, the ones with a ``handoff`` event or an event
      with ``handoff = true``, at any time in the stored history of the session.
    - ``thumbs_down_rate``: events with ``feedback = -1`` over events with a feedback.
    - ``error_rate``: ``error`` events over ``turn`` events.
    - ``latency_p95``: ``turn`` events slower than the tenant's p95 latency over the
      baseline days (exact, linear interpolation) over ``turn`` events with a latency: the
      change in the share of slow turns is what is explained.
    - ``cost_usd``: the sum of ``cost_usd``.

    ``flight`` as a dimension is the event's set of flights, sorted and joined with ``+``
    (``exp-a+exp-b``; null with no flight), so each event is in exactly one leaf. Every
    calendar day of the window is a time point, a day without events included. The window
    starts no earlier than the tenant's first active day (its first stored day if it has
    no active event), like the metrics' day grid.

    Parameters
    ----------
    ws : assay.store.Workspace
        An open workspace.
    metric : str
        One of :data:`EXPLAIN_METRICS`.
    tenant : str
        The tenant whose metric changed.
    day : datetime.date
        The day to explain; up to the workspace's last event day and after the tenant's
        first day.
    baseline_days : int, default 7
        Calendar days before ``day`` whose mean is the expectation.
    dimensions : sequence of str, optional
        Subset of :data:`DIMENSIONS` (default: all six). Those with a single value (null
        included) over the window are left out, since their one slice is the whole tenant.
    max_order, top
        As in :func:`assay.anomaly.explain_table`.

    Returns
    -------
    MetricExplanation
        The ranked slices, the release events of the window
        (``release_events(ws, tenant=tenant, since=day - baseline_days, until=day)``) and a
        note on how the metric was mapped.

    Raises
    ------
    UsageError
        An unknown metric or dimension, ``baseline_days`` < 1, a ``day`` after the last
        stored day or without a day of the tenant before it, no latency in the baseline.
    NotFoundError
        The tenant has no stored events.

    Examples
    --------
    >>> import datetime as dt, json, tempfile
    >>> from pathlib import Path
    >>> import assay
    >>> from assay.ingest import ingest_paths
    >>> def turn(i, day, locale):
    ...     return {"event_id": f"e{i}", "event_time": f"2026-01-0{day}T10:00:00Z",
    ...             "tenant_id": "acme", "user_id": f"u{i}", "session_id": f"s{i}",
    ...             "event_type": "turn", "locale": locale}
    >>> events = [turn(i, 1 + i % 3, "en" if i % 2 else "fr") for i in range(12)]
    >>> events += [turn(100 + i, 4, "fr") for i in range(14)]  # day 4: 14 fr users, 2 before
    >>> events += [turn(200 + i, 4, "en") for i in range(2)]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     src = Path(d) / "events.jsonl"
    ...     _ = src.write_text("\\n".join(json.dumps(e) for e in events))
    ...     with assay.Workspace.open(Path(d) / "ws", create=True) as ws:
    ...         _ = ingest_paths(ws, [src])
    ...         ex = explain_metric(ws, metric="dau", tenant="acme", day=dt.date(2026, 1, 4),
    ...                             baseline_days=3, dimensions=["locale"])
    >>> ex.explanation.before, ex.explanation.after
    (4.0, 16.0)
    >>> ex.explanation.rows[0]["slice"], ex.explanation.rows[0]["share"]
    ({'locale': 'fr'}, 1.0)
    """
    if metric not in EXPLAIN_METRICS:
        raise UsageError(
            f"metric must be one of {', '.join(EXPLAIN_METRICS)} (got {str(metric)[:40]!r})"
        )
    if isinstance(baseline_days, bool) or not isinstance(baseline_days, int) or baseline_days < 1:
        raise UsageError(f"baseline_days must be an integer >= 1 (got {baseline_days!r})")
    dims = _check_dimensions(dimensions)
    day = _check_day(day, "day")
    files = ws.files("events")
    active = tuple(ws.settings.active_event_types)
    first_day = _tenant_first_day(ws, files, tenant, active)
    last = ws.last_event_day()
    if last is not None and day > last:
        raise UsageError(
            f"day {day} is after the last stored event day {last}; pass a day up to {last}"
        )
    if day <= first_day:
        raise UsageError(
            f"day {day} has no baseline day before it: the tenant's first day is {first_day}; "
            "pass a later day"
        )
    start = max(day - dt.timedelta(days=baseline_days), first_day)
    notes: list[str] = []
    if (day - start).days < baseline_days:
        notes.append(
            f"baseline shortened to {(day - start).days} day(s): the tenant's first day is "
            f"{first_day}"
        )
    params: dict[str, object] = {"files": files, "tenant": tenant, "start": start, "day": day}
    with ws.duckdb() as con:
        table, total, note = _leaf_table(con, metric, dims, params, active)
        if note:
            notes.append(note)
        table = _fill_days(table, dims, start, day, total is not None)
        # A dimension with one value in the window splits nothing: its slice would be the
        # whole tenant under another name ("locale=None"), so it is left out.
        used = [d for d in dims if pc.count_distinct(table.column(d), mode="all").as_py() > 1]
        used = used or dims[:1]
        if len(used) < len(dims):
            constant = [d for d in dims if d not in used]
            notes.append(f"not sliced by {', '.join(constant)}: one value in the window")
        explanation = explain_table(
            table,
            time_col="day",
            dims=used,
            value="value",
            total=total,
            at=day,
            baseline=baseline_days,
            max_order=max_order,
            top=top,
            counts=metric != "cost_usd",
        )
        if metric in ("dau", "active_users"):
            overlap = _dau_overlap(con, params, active, explanation)
            if overlap:
                notes.append(overlap)
    releases = release_events(ws, tenant=tenant, since=start, until=day)
    return MetricExplanation(
        metric=metric,
        tenant_id=tenant,
        day=day,
        baseline_days=baseline_days,
        dimensions=tuple(used),
        explanation=explanation,
        releases=releases,
        note="; ".join(notes) or None,
    )


def release_events(
    ws: Workspace, *, tenant: str, since: dt.date, until: dt.date
) -> list[dict[str, Any]]:
    """The values of ``model_version``, ``prompt_template`` and ``flight`` that first appeared
    in a tenant's events between ``since`` and ``until`` (inclusive).

    The first day of a value is the earliest ``event_date`` of any event of the tenant that
    carries it, over all stored history up to ``until``; a flight is one element of the
    event's ``flights`` list.

    Parameters
    ----------
    ws : assay.store.Workspace
        An open workspace.
    tenant : str
        The tenant.
    since, until : datetime.date
        The window of first days, inclusive.

    Returns
    -------
    list of dict
        Sorted by ``first_seen``, then ``field``, then ``value``; each ``{"field": ...,
        "value": ..., "first_seen": date, "days_before": (until - first_seen) in days}``.

    Raises
    ------
    UsageError
        ``since`` after ``until``.
    NotFoundError
        The tenant has no stored events.
    """
    since = _check_day(since, "since")
    until = _check_day(until, "until")
    if since > until:
        raise UsageError(f"since ({since}) must not be after until ({until}); swap them")
    files = ws.files("events")
    _tenant_first_day(ws, files, tenant, ())
    sql = f"""
        WITH ev AS (
            SELECT event_date, model_version, prompt_template, flights FROM {_SOURCE}
            WHERE tenant_id = $tenant AND event_date <= $until
        ),
        firsts AS (
            SELECT 'model_version' AS field, model_version AS value, min(event_date) AS first
            FROM ev WHERE model_version IS NOT NULL GROUP BY model_version
            UNION ALL
            SELECT 'prompt_template', prompt_template, min(event_date)
            FROM ev WHERE prompt_template IS NOT NULL GROUP BY prompt_template
            UNION ALL
            SELECT 'flight', flight, min(event_date)
            FROM (SELECT event_date, unnest(flights) AS flight FROM ev)
            WHERE flight IS NOT NULL GROUP BY flight
        )
        SELECT field, value, first FROM firsts WHERE first >= $since
        ORDER BY first, field, value
    """
    with ws.duckdb() as con:
        rows = con.sql(
            sql, params={"files": files, "tenant": tenant, "since": since, "until": until}
        ).fetchall()
    return [
        {"field": f, "value": v, "first_seen": first, "days_before": (until - first).days}
        for f, v, first in rows
    ]


# -- checks ----------------------------------------------------------------------------------


def _check_dimensions(dimensions: Sequence[str] | None) -> list[str]:
    if dimensions is None:
        return list(DIMENSIONS)
    if isinstance(dimensions, str):
        raise UsageError(
            f"dimensions must be a list of names (got the string {dimensions[:60]!r}); "
            f"pass e.g. ['locale', 'platform']"
        )
    dims = list(dimensions)
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise UsageError(
            f"unknown dimension(s) {', '.join(repr(str(d)[:40]) for d in unknown)}; "
            f"choose from {', '.join(DIMENSIONS)}"
        )
    if not dims:
        raise UsageError(f"dimensions is empty; pass at least one of {', '.join(DIMENSIONS)}")
    if len(set(dims)) != len(dims):
        raise UsageError(f"dimensions must not repeat a name (got {dims})")
    return dims


def _check_day(value: object, name: str) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise UsageError(
            f"{name} must be a datetime.date (got {type(value).__name__}); "
            "pass e.g. datetime.date(2026, 1, 5)"
        )
    return value


def _tenant_first_day(
    ws: Workspace, files: list[str], tenant: str, active: tuple[str, ...]
) -> dt.date:
    """The tenant's first active day (its first stored day if it has no active event)."""
    row: tuple[Any, ...] | None = None
    if files:
        with ws.duckdb() as con:
            (row,) = con.sql(
                f"""SELECT min(event_date),
                           min(event_date) FILTER (WHERE list_contains($active, event_type))
                    FROM {_SOURCE} WHERE tenant_id = $tenant""",
                params={"files": files, "tenant": tenant, "active": list(active)},
            ).fetchall()
    if row is None or row[0] is None:
        raise unknown_tenant(tenant, ws.tenants())
    first: dt.date = row[1] if row[1] is not None else row[0]
    return first


# -- leaf rows -------------------------------------------------------------------------------


def _window_sql(dims: list[str]) -> str:
    """The tenant's events of the window, with one column per dimension."""
    columns = ", ".join(f'{_FLIGHT_SQL if d == "flight" else d} AS "{d}"' for d in dims)
    return f"""
        SELECT event_date AS day, user_id, session_id, event_time, event_id, event_type,
               handoff, feedback, latency_ms, cost_usd, {columns}
        FROM {_SOURCE}
        WHERE tenant_id = $tenant AND event_date BETWEEN $start AND $day
    """


def _leaf_table(
    con: duckdb.DuckDBPyConnection,
    metric: str,
    dims: list[str],
    params: dict[str, object],
    active: tuple[str, ...],
) -> tuple[pa.Table, str | None, str | None]:
    """Rows (day, dims..., value[, total]); the total column's name; a note."""
    keys = ", ".join(f'"{d}"' for d in dims)
    window = _window_sql(dims)
    params = dict(params)
    total: str | None = None
    note: str | None = None
    if metric in ("dau", "active_users"):
        params["active"] = list(active)
        select = "count(DISTINCT user_id)::DOUBLE AS value"
        where = "list_contains($active, event_type)"
        if metric == "active_users":
            note = (
                "active_users is explained through dau (distinct active users per day): a "
                "trailing window's distinct count does not split into additive slices"
            )
    elif metric in ("sessions", "handoff_rate"):
        return _session_table(con, metric, dims, params)
    elif metric == "thumbs_down_rate":
        select = (
            "count(*) FILTER (WHERE feedback = -1)::DOUBLE AS value, "
            "count(feedback)::DOUBLE AS total"
        )
        where, total = "true", "total"
    elif metric == "error_rate":
        select = (
            "count(*) FILTER (WHERE event_type = 'error')::DOUBLE AS value, "
            "count(*) FILTER (WHERE event_type = 'turn')::DOUBLE AS total"
        )
        where, total = "event_type IN ('error', 'turn')", "total"
    elif metric == "latency_p95":
        threshold = _baseline_p95(con, params)
        params["threshold"] = threshold
        select = (
            "count(*) FILTER (WHERE latency_ms > $threshold)::DOUBLE AS value, "
            "count(*)::DOUBLE AS total"
        )
        where, total = "event_type = 'turn' AND latency_ms IS NOT NULL", "total"
        note = (
            "explains the change in the share of turns slower than the baseline p95 "
            f"({threshold:.6g} ms)"
        )
    else:  # cost_usd
        # fsum: a compensated sum, so the result does not depend on the order of the rows.
        select = "coalesce(fsum(cost_usd), 0)::DOUBLE AS value"
        where = "true"
    sql = f"""
        WITH ev AS ({window})
        SELECT day, {keys}, {select} FROM ev WHERE {where}
        GROUP BY day, {keys} ORDER BY day, {keys}
    """
    return con.sql(sql, params=params).to_arrow_table(), total, note


def _session_table(
    con: duckdb.DuckDBPyConnection, metric: str, dims: list[str], params: dict[str, object]
) -> tuple[pa.Table, str | None, str | None]:
    """Sessions on the day of their first event, in the leaf of that first event."""
    keys = ", ".join(f'"{d}"' for d in dims)
    measures = (
        "count(*)::DOUBLE AS value"
        if metric == "sessions"
        else "count(*) FILTER (WHERE h.session_id IS NOT NULL)::DOUBLE AS value, "
        "count(*)::DOUBLE AS total"
    )
    # A session whose first event is before the window is counted on an earlier day; a
    # handoff may come on a later day than the session's first event.
    sql = f"""
        WITH ev AS ({_window_sql(dims)}),
        firsts AS (
            SELECT day, session_id, {keys},
                   row_number() OVER (PARTITION BY session_id ORDER BY event_time, event_id) AS rn
            FROM ev
        ),
        earlier AS (
            SELECT DISTINCT session_id FROM {_SOURCE}
            WHERE tenant_id = $tenant AND event_date < $start
        ),
        handed_off AS (
            SELECT DISTINCT session_id FROM {_SOURCE}
            WHERE tenant_id = $tenant AND event_date >= $start AND {_HANDOFF_SQL}
        )
        SELECT f.day, {", ".join(f'f."{d}"' for d in dims)}, {measures}
        FROM firsts f LEFT JOIN handed_off h ON f.session_id = h.session_id
        WHERE f.rn = 1 AND NOT EXISTS (SELECT 1 FROM earlier e WHERE e.session_id = f.session_id)
        GROUP BY ALL ORDER BY ALL
    """
    note = "sessions are counted on the day of their first event, in the slice of that event"
    if metric == "sessions":
        return con.sql(sql, params=params).to_arrow_table(), None, note
    note += "; a session is handed off if any of its stored events is a handoff"
    return con.sql(sql, params=params).to_arrow_table(), "total", note


def _baseline_p95(con: duckdb.DuckDBPyConnection, params: dict[str, object]) -> float:
    (row,) = con.sql(
        f"""SELECT quantile_cont(latency_ms, 0.95) FROM {_SOURCE}
            WHERE tenant_id = $tenant AND event_date >= $start AND event_date < $day
              AND event_type = 'turn' AND latency_ms IS NOT NULL""",
        params={k: params[k] for k in ("files", "tenant", "start", "day")},
    ).fetchall()
    if row[0] is None:
        raise UsageError(
            f"latency_p95 needs turn latencies in the baseline days ({params['start']} to the "
            f"day before {params['day']}) and the tenant has none; pick another metric or day"
        )
    return float(row[0])


def _fill_days(
    table: pa.Table, dims: list[str], start: dt.date, day: dt.date, has_total: bool
) -> pa.Table:
    """Add a zero row for each calendar day of [start, day] without a row.

    ``explain_table`` takes the distinct values of the time column as its time points, so a
    day without events would otherwise be skipped and "N days before" would reach further
    back. The zero row reuses the dimension values of an existing row (nulls if there is
    none), so it adds no leaf.
    """
    present = set(table.column("day").to_pylist())
    missing = [
        start + dt.timedelta(days=i)
        for i in range((day - start).days + 1)
        if start + dt.timedelta(days=i) not in present
    ]
    if not missing:
        return table
    first = table.slice(0, 1).to_pylist()
    template = {d: (first[0][d] if first else None) for d in dims}
    rows = [
        {"day": m, **template, "value": 0.0, **({"total": 0.0} if has_total else {})}
        for m in missing
    ]
    schema = pa.schema(
        [pa.field("day", pa.date32())]
        + [pa.field(d, pa.string()) for d in dims]
        + [pa.field("value", pa.float64())]
        + ([pa.field("total", pa.float64())] if has_total else [])
    )
    filled = pa.Table.from_pylist(rows, schema=schema)
    return pa.concat_tables([table.select(schema.names).cast(schema), filled])


def _dau_overlap(
    con: duckdb.DuckDBPyConnection,
    params: dict[str, object],
    active: tuple[str, ...],
    explanation: Explanation,
) -> str:
    """A note when users active in two leaves make the leaf sums exceed the DAU."""
    rows = con.sql(
        f"""SELECT event_date, count(DISTINCT user_id) FROM {_SOURCE}
            WHERE tenant_id = $tenant AND event_date BETWEEN $start AND $day
              AND list_contains($active, event_type)
            GROUP BY event_date""",
        params={**params, "active": list(active)},
    ).fetchall()
    dau = {d: float(n) for d, n in rows}
    times = explanation.baseline_times
    before = sum(dau.get(t, 0.0) for t in times) / len(times) if times else math.nan
    after = dau.get(params["day"], 0.0)
    same = math.isclose(before, explanation.before, abs_tol=1e-9) and math.isclose(
        after, explanation.after, abs_tol=1e-9
    )
    rule = "a user active in two slices on one day counts in each"
    if same:
        return ""
    return (
        f"{rule}: the slices add up to {explanation.before:.6g} -> {explanation.after:.6g} "
        f"while the tenant's dau is {before:.6g} -> {after:.6g}"
    )


__all__ = [
    "DIMENSIONS",
    "EXPLAIN_METRICS",
    "MetricExplanation",
    "explain_metric",
    "release_events",
]
