"""Root cause of a tenant's metric change on one day, from the stored events.

:func:`explain_metric` turns the events of one tenant into one row per (day, leaf), where a
leaf is one combination of values of the chosen dimensions (``locale``, ``platform``,
``app_version``, ``model_version``, ``prompt_template``, ``flight``), and hands the table to
:func:`assay.anomaly.explain_table` (``docs/explain.md``). The leaf rows follow the metric
definitions of ``docs/metrics.md``, so that the leaves of a day add up to the metric the
tenant shows (except ``dau``, where a user active in two leaves counts in each).

:func:`release_events` lists what was released near the change: the first day each
``model_version``, ``prompt_template`` and flight appeared in the tenant's events.

Every count is an Ibis expression of :mod:`assay.metrics` (the metrics' own definitions,
broken down per day and leaf), run on the workspace's engine (DuckDB, or Spark with
``--engine pyspark``), filtered on the tenant and on ``event_date`` (the partition column, so
that other days' files are skipped). Nothing returned holds a user id.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import UsageError, unknown_tenant
from assay._records import jsonable, jsonable_row
from assay.anomaly._explain import Explanation, explain_table
from assay.metrics import (
    LeafMeasure,
    Metrics,
    first_event_day,
    first_seen,
    latency_quantile,
    leaf_counts,
    workspace_events,
)
from assay.schema import RELEASE_FIELDS, SLICE_FIELDS

if TYPE_CHECKING:
    import ibis.expr.types as ir

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
    "cited_rate",
    "uncited_retrieved_share",
)
#: The dimensions a workspace metric can be explained by: the slice fields.
DIMENSIONS: tuple[str, ...] = SLICE_FIELDS
#: The fields whose first appearances are release events: the release fields and flights.
RELEASE_EVENT_FIELDS: tuple[str, ...] = (*RELEASE_FIELDS, "flight")


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
            "rows": [jsonable_row(r) for r in self.explanation.to_list()],
            "releases": [{k: jsonable(v) for k, v in r.items()} for r in self.releases],
            "note": self.note,
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
    - ``cited_rate``: answers (``turn`` events with a retrieved doc id) citing a doc id over
      answers; ``uncited_retrieved_share``: retrieved doc ids an answer does not cite over
      retrieved doc ids (distinct per answer; ``Metrics.health``'s RAG counts).

    ``flight`` as a dimension is the event's set of flights, sorted and joined with ``+``
    (``exp-a+exp-b``; null with no flight), so each event is in exactly one leaf. Every
    calendar day of the window is a time point, a day without events included. The window
    starts no earlier than the tenant's first active day (its first stored day if it has
    no active event), like the metrics' day grid.

    Parameters
    ----------
    ws : assay.Workspace
        An open workspace; its engine (DuckDB, or Spark with ``engine="pyspark"``) runs the
        queries, with the same result. A bare ``assay.store.Workspace`` uses DuckDB.
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
    events = workspace_events(ws)
    active = tuple(ws.settings.active_event_types)
    first_day = _tenant_first_day(ws, events, tenant, active)
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
    table, total, note = _leaf_table(events, metric, dims, tenant, start, day, active)
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
        overlap = _dau_overlap(events, tenant, start, day, active, explanation)
        if overlap:
            notes.append(overlap)
    releases = _release_events(events, tenant, start, day)
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
    ws : assay.Workspace
        An open workspace; its engine (DuckDB, or Spark with ``engine="pyspark"``) runs the
        queries, with the same result. A bare ``assay.store.Workspace`` uses DuckDB.
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
    events = workspace_events(ws)
    _tenant_first_day(ws, events, tenant, ())
    return _release_events(events, tenant, since, until)


def _release_events(
    events: ir.Table, tenant: str, since: dt.date, until: dt.date
) -> list[dict[str, Any]]:
    table = first_seen(events, RELEASE_EVENT_FIELDS, tenant=tenant, until=until)
    return [
        {"field": f, "value": v, "first_seen": first, "days_before": (until - first).days}
        for f, v, first in zip(
            table.column("field").to_pylist(),
            table.column("value").to_pylist(),
            table.column("first_seen").to_pylist(),
            strict=True,
        )
        if first >= since
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
    ws: Workspace, events: ir.Table, tenant: str, active: tuple[str, ...]
) -> dt.date:
    """The tenant's first active day (its first stored day if it has no active event)."""
    first = first_event_day(events, tenant=tenant, event_types=active) if active else None
    if first is None:
        first = first_event_day(events, tenant=tenant)
    if first is None:
        raise unknown_tenant(tenant, ws.tenants())
    return first


# -- leaf rows -------------------------------------------------------------------------------


def _leaf_table(
    events: ir.Table,
    metric: str,
    dims: list[str],
    tenant: str,
    start: dt.date,
    day: dt.date,
    active: tuple[str, ...],
) -> tuple[pa.Table, str | None, str | None]:
    """Rows (day, dims..., value[, total]); the total column's name; a note."""

    def leaf(measure: LeafMeasure, slow_ms: float | None = None) -> pa.Table:
        return leaf_counts(
            events,
            measure,
            tenant=tenant,
            start=start,
            end=day,
            dims=dims,
            active_event_types=active,
            slow_ms=slow_ms,
        )

    if metric in ("dau", "active_users"):
        note = None
        if metric == "active_users":
            note = (
                "active_users is explained through dau (distinct active users per day): a "
                "trailing window's distinct count does not split into additive slices"
            )
        return leaf("dau"), None, note
    if metric in ("sessions", "handoff_rate"):
        note = "sessions are counted on the day of their first event, in the slice of that event"
        if metric == "sessions":
            return leaf("sessions"), None, note
        note += "; a session is handed off if any of its stored events is a handoff"
        return leaf("handoff_rate"), "total", note
    if metric == "thumbs_down_rate":
        return leaf("thumbs_down_rate"), "total", None
    if metric == "error_rate":
        return leaf("error_rate"), "total", None
    if metric == "cited_rate":
        return leaf("cited_rate"), "total", None
    if metric == "uncited_retrieved_share":
        return leaf("uncited_retrieved_share"), "total", None
    if metric == "latency_p95":
        threshold = latency_quantile(
            events, 0.95, tenant=tenant, start=start, end=day - dt.timedelta(days=1)
        )
        if threshold is None:
            raise UsageError(
                f"latency_p95 needs turn latencies in the baseline days ({start} to the day "
                f"before {day}) and the tenant has none; pick another metric or day"
            )
        note = (
            "explains the change in the share of turns slower than the baseline p95 "
            f"({threshold:.6g} ms)"
        )
        return leaf("slow_turns", threshold), "total", note
    return leaf("cost_usd"), None, None


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
    events: ir.Table,
    tenant: str,
    start: dt.date,
    day: dt.date,
    active: tuple[str, ...],
    explanation: Explanation,
) -> str:
    """A note when users active in two leaves make the leaf sums exceed the DAU."""
    daily = Metrics(lambda: events, active_event_types=active).dau(
        tenant=tenant, since=start, until=day
    )
    dau = {
        d: float(n)
        for d, n in zip(
            daily.column("day").to_pylist(), daily.column("dau").to_pylist(), strict=True
        )
    }
    times = explanation.baseline_times
    before = sum(dau.get(t, 0.0) for t in times) / len(times) if times else math.nan
    after = dau.get(day, 0.0)
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
    "RELEASE_EVENT_FIELDS",
    "MetricExplanation",
    "explain_metric",
    "release_events",
]
