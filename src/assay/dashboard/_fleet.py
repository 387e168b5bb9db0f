"""The fleet page ``/ui/``: every tenant the key may see, with its headline metrics.

Speed: a page never reads the raw events. :func:`daily_summary` runs ONE query over the events
(``Metrics.health``: per tenant and day, the counts behind every headline metric) and keeps
the result in memory, keyed by the events table's Delta version, so it is recomputed only
after new events were committed. A page then sums the days of its range per tenant
(:func:`fleet_rows`, numpy over the small table), sorts, filters and pages the rows.

Definitions over a range of days ``since..until`` (each tenant's own day grid inside the
range: from its first active day, days without activity count as 0):

- ``dau``: the mean of the daily DAU;
- ``handoff_rate`` = handoff sessions / sessions, ``thumbs_down_rate`` = thumbs-down /
  feedback events, ``error_rate`` = errors / turns: ratios of the range's summed counts (not
  means of daily rates), null when the denominator is 0 (as in ``docs/metrics.md``);
- ``latency_p95``: the mean of the daily p95 latencies of the days with a latency (an exact
  p95 over a range would read every turn of the range; the daily p95 is exact);
- ``cost_per_session`` = cost / sessions;
- ``change``: the largest relative change of those metrics against the previous period (the
  same number of days just before ``since``), with the metric it is on;
- ``incidents``: the tenant's unresolved (open or acknowledged) incidents.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import threading
import time
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, get_args

import numpy as np
import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from numpy.typing import NDArray

from assay._errors import WorkspaceError
from assay.dashboard._auth import UiError, UiUser, User, backend
from assay.dashboard._render import render

if TYPE_CHECKING:
    from assay._api import Workspace

router = APIRouter()

#: Tenants per page of the fleet.
PAGE_SIZE = 50
#: Days in the default range (ending on the workspace's last event day).
DEFAULT_DAYS = 28
#: The headline metrics, in column order, with their labels and formats.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("dau", "DAU (mean)", "number"),
    ("handoff_rate", "Handoff rate", "percent"),
    ("thumbs_down_rate", "Thumbs-down rate", "percent"),
    ("error_rate", "Error rate", "percent"),
    ("latency_p95", "p95 latency (ms)", "ms"),
    ("cost_per_session", "Cost per session (USD)", "usd"),
)
SortKey = Literal[
    "attention",
    "tenant",
    "dau",
    "handoff_rate",
    "thumbs_down_rate",
    "error_rate",
    "latency_p95",
    "cost_per_session",
    "incidents",
    "change",
]
SORTS: tuple[str, ...] = get_args(SortKey)
#: The count columns of ``Metrics.health`` kept in the summary.
COUNTS = ("dau", "sessions", "handoff_sessions", "turns", "errors", "feedback", "thumbs_down")

FloatArray = NDArray[np.float64]
#: A range of days, both included.
Span = tuple[dt.date, dt.date]


@dataclass(frozen=True)
class DailySummary:
    """Per tenant and day, the counts behind the headline metrics (``Metrics.health``).

    ``tenants`` are sorted; ``tenant`` indexes them per row; ``day`` is days since 1970-01-01;
    ``columns`` holds ``dau, sessions, handoff_sessions, turns, errors, feedback, thumbs_down,
    latency_p95`` (NaN where null) and ``cost_usd`` as float arrays. ``version`` is the events
    table's Delta version it was computed from (-1 for a workspace without events).
    """

    version: int
    tenants: tuple[str, ...]
    tenant: NDArray[np.int64]
    day: NDArray[np.int64]
    columns: Mapping[str, FloatArray]

    @property
    def last_day(self) -> dt.date | None:
        return None if not len(self.day) else _date(int(self.day.max()))

    @cached_property
    def offsets(self) -> NDArray[np.int64]:
        """Row ``offsets[i]`` is tenant ``i``'s first (rows are sorted by tenant, then day)."""
        bounds = np.searchsorted(self.tenant, np.arange(len(self.tenants) + 1))
        return bounds.astype(np.int64)

    @classmethod
    def from_health(cls, table: pa.Table, version: int) -> DailySummary:
        """From ``Metrics.health``'s table (``tenant_id, day, ...``)."""
        names = table.column("tenant_id").to_numpy(zero_copy_only=False).astype(str)
        tenants, index = np.unique(names, return_inverse=True)
        day = table.column("day").cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
        order = np.lexsort((day, index))
        columns = {
            name: table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)[order]
            for name in (*COUNTS, "latency_p95", "cost_usd")
        }
        return cls(
            version,
            tuple(str(t) for t in tenants),
            index.astype(np.int64)[order],
            day[order],
            columns,
        )


@dataclass(frozen=True)
class FleetRow:
    """One tenant's headline metrics over a range; ``spark`` is its DAU per day of the range."""

    tenant_id: str
    days: int
    dau: float | None
    handoff_rate: float | None
    thumbs_down_rate: float | None
    error_rate: float | None
    latency_p95: float | None
    cost_per_session: float | None
    previous: Mapping[str, float | None]
    change: float | None
    change_metric: str | None
    incidents: int
    spark: tuple[float | None, ...]

    def value(self, metric: str) -> float | None:
        result: float | None = getattr(self, metric)
        return result


#: Seconds a page may show a summary of an older events version (the HTTP ingest commits
#: every few seconds: without this bound, every page view would query all events again).
PAGE_MAX_AGE = 60.0

_cache: dict[Path, tuple[DailySummary, float]] = {}
_cache_lock = threading.Lock()


def daily_summary(ws: Workspace, *, max_age: float = 0.0) -> DailySummary:
    """The workspace's :class:`DailySummary`, computed once per events-table version.

    One ``Metrics.health`` query over every tenant and day (on the workspace's engine);
    later calls answer from memory until new events are committed, or, with ``max_age``
    seconds, until the kept summary is that old and a newer version exists.
    """
    try:
        version = ws.version("events")
    except WorkspaceError:  # no events table: nothing stored
        version = -1
    key = ws.path.resolve()

    def fresh() -> DailySummary | None:
        kept = _cache.get(key)
        if kept is None:
            return None
        summary, made = kept
        if summary.version == version or time.monotonic() - made < max_age:
            return summary
        return None

    found = fresh()
    if found is not None:
        return found
    with _cache_lock:
        found = fresh()
        if found is not None:
            return found
        table = ws.metrics.health(window=1) if version >= 0 else None
        summary = (
            DailySummary.from_health(table, version)
            if table is not None and table.num_rows
            else DailySummary(version, (), np.zeros(0, np.int64), np.zeros(0, np.int64), {})
        )
        _cache[key] = (summary, time.monotonic())
        return summary


def _date(days: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=days)


def _days(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def default_range(summary: DailySummary) -> tuple[dt.date, dt.date] | None:
    """The last :data:`DEFAULT_DAYS` days up to the last day with events (None: no events)."""
    last = summary.last_day
    if last is None:
        return None
    return last - dt.timedelta(days=DEFAULT_DAYS - 1), last


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _range_metrics(
    summary: DailySummary, lo: int, hi: int
) -> tuple[dict[str, FloatArray], NDArray[np.int64]]:
    """Per tenant (by index), the headline metrics over days ``lo..hi``, and the day count."""
    n = len(summary.tenants)
    mask = (summary.day >= lo) & (summary.day <= hi)
    t = summary.tenant[mask]
    col = summary.columns

    def total(name: str) -> FloatArray:
        return np.bincount(t, weights=col[name][mask], minlength=n).astype(np.float64)

    days = np.bincount(t, minlength=n)
    lat = col["latency_p95"][mask]
    has_lat = ~np.isnan(lat)
    lat_days = np.bincount(t[has_lat], minlength=n)
    lat_sum = np.bincount(t[has_lat], weights=lat[has_lat], minlength=n).astype(np.float64)
    sessions = total("sessions")
    metrics = {
        "dau": _ratio(total("dau"), days.astype(np.float64)),
        "handoff_rate": _ratio(total("handoff_sessions"), sessions),
        "thumbs_down_rate": _ratio(total("thumbs_down"), total("feedback")),
        "error_rate": _ratio(total("errors"), total("turns")),
        "latency_p95": _ratio(lat_sum, lat_days.astype(np.float64)),
        "cost_per_session": _ratio(total("cost_usd"), sessions),
    }
    return metrics, days


def _values(x: FloatArray) -> list[float | None]:
    return [None if v != v else v for v in x.tolist()]  # v != v: NaN


def fleet_rows(
    summary: DailySummary,
    *,
    since: dt.date,
    until: dt.date,
    tenants: Collection[str] | None = None,
    incidents: Mapping[str, int] | None = None,
    with_spark: bool = True,
) -> list[FleetRow]:
    """Every tenant (of ``tenants``, if given) with a day in ``since..until``, with its
    headline metrics over that range (see the module docstring for the definitions), in
    tenant order. ``spark`` (DAU per day of the range, None before the tenant's first day) is
    left empty unless ``with_spark`` (a page needs it for its rows only: :func:`sparks`)."""
    lo, hi = _days(since), _days(until)
    width = hi - lo + 1
    now, days = _range_metrics(summary, lo, hi)
    before, _ = _range_metrics(summary, lo - width, lo - 1)
    incidents = incidents or {}
    wanted = None if tenants is None else set(tenants)
    names = [m for m, _, _ in METRICS]
    # Relative changes of every metric at once; NaN where either side is missing or 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.stack([np.abs(now[m] - before[m]) / np.abs(before[m]) for m in names])
    rel[~np.isfinite(rel)] = np.nan
    has_change = ~np.all(np.isnan(rel), axis=0)
    best = np.argmax(np.nan_to_num(rel, nan=-1.0), axis=0)
    now_values = {m: _values(now[m]) for m in names}
    before_values = {m: _values(before[m]) for m in names}
    days_list = days.tolist()
    rows: list[FleetRow] = []
    for i, name in enumerate(summary.tenants):
        if days_list[i] == 0 or (wanted is not None and name not in wanted):
            continue
        values = {m: now_values[m][i] for m in names}
        change_metric = names[int(best[i])] if has_change[i] else None
        rows.append(
            FleetRow(
                tenant_id=name,
                days=days_list[i],
                dau=values["dau"],
                handoff_rate=values["handoff_rate"],
                thumbs_down_rate=values["thumbs_down_rate"],
                error_rate=values["error_rate"],
                latency_p95=values["latency_p95"],
                cost_per_session=values["cost_per_session"],
                previous={m: before_values[m][i] for m in names},
                change=None if change_metric is None else float(rel[int(best[i]), i]),
                change_metric=change_metric,
                incidents=incidents.get(name, 0),
                spark=_spark(summary, i, lo, hi) if with_spark else (),
            )
        )
    return rows


def sparks(
    summary: DailySummary, tenants: Sequence[str], *, since: dt.date, until: dt.date
) -> dict[str, tuple[float | None, ...]]:
    """The DAU of each day of ``since..until`` for each of ``tenants`` (None on the days
    outside its day grid: before its first active day, after the last event day)."""
    index = {name: i for i, name in enumerate(summary.tenants)}
    lo, hi = _days(since), _days(until)
    return {t: _spark(summary, index[t], lo, hi) if t in index else () for t in tenants}


def _spark(summary: DailySummary, index: int, lo: int, hi: int) -> tuple[float | None, ...]:
    a, b = int(summary.offsets[index]), int(summary.offsets[index + 1])
    day = summary.day[a:b]
    keep = (day >= lo) & (day <= hi)
    out: list[float | None] = [None] * (hi - lo + 1)
    for d, v in zip(day[keep].tolist(), summary.columns["dau"][a:b][keep].tolist(), strict=True):
        out[d - lo] = v
    return tuple(out)


def spark_days(row: FleetRow, until: dt.date) -> list[str]:
    """The ISO days of ``row.spark`` (its last value is on ``until``)."""
    n = len(row.spark)
    return [(until - dt.timedelta(days=n - 1 - k)).isoformat() for k in range(n)]


def sort_rows(rows: Sequence[FleetRow], sort: str, descending: bool) -> list[FleetRow]:
    """``rows`` sorted by ``sort`` (a metric, ``tenant``, ``incidents``, ``change`` or
    ``attention``: unresolved incidents first, then the largest change); missing values last."""
    if sort == "attention":
        return sorted(rows, key=lambda r: (-r.incidents, -(r.change or 0.0), r.tenant_id))
    if sort == "tenant":
        return sorted(rows, key=lambda r: r.tenant_id, reverse=descending)
    present = [r for r in rows if r.value(sort) is not None]
    missing = [r for r in rows if r.value(sort) is None]
    present.sort(key=lambda r: (r.value(sort), r.tenant_id), reverse=descending)
    return present + sorted(missing, key=lambda r: r.tenant_id)


def open_incidents(ws: Workspace, tenant: str | None) -> Counter[str]:
    """Unresolved incidents per tenant (an incident seen in several tenants counts in each)."""
    counts: Counter[str] = Counter()
    for incident in ws.incidents.list(tenant=tenant):
        names = {m.get("tenant_id") for m in incident.seen_in} | {incident.tenant_id}
        counts.update(str(n) for n in names if n is not None)
    return counts


def parse_day(name: str, value: str | None) -> dt.date | None:
    """A ``YYYY-MM-DD`` query value, or None; a 400 page for anything else."""
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UiError(
            400,
            "Bad date",
            f"{name} must be a day as YYYY-MM-DD (got {value[:20]!r}); fix it in the address.",
        ) from None


def page_range(
    summary: DailySummary, since: str | None, until: str | None
) -> tuple[dt.date, dt.date] | None:
    """The range a page shows: the query's, else the default (None when nothing is stored)."""
    first, last = parse_day("since", since), parse_day("until", until)
    default = default_range(summary)
    if default is None:
        return None
    last = last or default[1]
    first = first or last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise UiError(400, "Bad range", f"since ({first}) is after until ({last}); swap them.")
    if (last - first).days > 3660:
        raise UiError(400, "Bad range", "A range is at most 10 years long; pick a shorter one.")
    return first, last


def fleet_data(
    request: Request, user: UiUser, since: str | None, until: str | None, q: str
) -> tuple[list[FleetRow], tuple[dt.date, dt.date] | None]:
    """The rows of the fleet the user may see, searched by ``q``, for the page's range."""
    with backend(request).reader(user.key) as ws:
        summary = daily_summary(ws, max_age=PAGE_MAX_AGE)
        incidents = open_incidents(ws, user.tenant_id)
    span = page_range(summary, since, until)
    if span is None:
        return [], None
    # A tenant key sees its own tenant only, whatever the search.
    names = summary.tenants if user.tenant_id is None else (user.tenant_id,)
    needle = q.strip().lower()
    if needle:
        names = tuple(n for n in names if needle in n.lower())
    rows = fleet_rows(
        summary, since=span[0], until=span[1], tenants=names, incidents=incidents, with_spark=False
    )
    return rows, span


SinceQuery = Annotated[str | None, Query(max_length=10, description="First day, YYYY-MM-DD.")]
UntilQuery = Annotated[str | None, Query(max_length=10, description="Last day, YYYY-MM-DD.")]


def _sort_arg(sort: str) -> tuple[str, bool]:
    descending = sort.startswith("-")
    name = sort.lstrip("-")
    if name not in SORTS:
        raise UiError(
            400,
            "Bad sort",
            f"sort must be one of {', '.join(SORTS)}, with '-' before it for descending "
            f"(got {sort[:40]!r}).",
        )
    return name, descending


@dataclass(frozen=True)
class FleetQuery:
    """What a fleet view shows: the range, the search and the order (the page aside)."""

    since: str | None
    until: str | None
    q: str
    sort: str

    def rows(
        self, request: Request, user: UiUser
    ) -> tuple[list[FleetRow], tuple[dt.date, dt.date] | None]:
        """The rows the user may see, searched, in order; and the range (None: no events)."""
        name, descending = _sort_arg(self.sort)
        rows, span = fleet_data(request, user, self.since, self.until, self.q)
        return sort_rows(rows, name, descending), span


def fleet_query(
    since: SinceQuery = None,
    until: UntilQuery = None,
    q: Annotated[str, Query(max_length=128, description="Tenant ids containing this.")] = "",
    sort: Annotated[str, Query(max_length=40, description="A column; '-' first: descending.")] = (
        "attention"
    ),
) -> FleetQuery:
    return FleetQuery(since, until, q, sort)


FleetQueryDep = Annotated[FleetQuery, Depends(fleet_query)]


@router.get("/ui/")
def fleet(
    request: Request,
    user: User,
    query: FleetQueryDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    rows, span = query.rows(request, user)
    pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
    page = min(page, pages)
    shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    if span is not None and shown:
        with backend(request).reader(user.key) as ws:
            summary = daily_summary(ws, max_age=PAGE_MAX_AGE)
        lines = sparks(summary, [r.tenant_id for r in shown], since=span[0], until=span[1])
        shown = [replace(r, spark=lines[r.tenant_id]) for r in shown]
    return render(
        request,
        "fleet.html",
        nav="fleet",
        rows=shown,
        total=len(rows),
        page=page,
        pages=pages,
        span=span,
        q=query.q,
        sort=query.sort,
        sorts=SORTS,
        metrics=METRICS,
        spark_days=spark_days,
        query=_link_query(since=query.since, until=query.until, q=query.q, sort=query.sort),
    )


@router.get("/ui/fleet.csv")
def fleet_csv(request: Request, user: User, query: FleetQueryDep) -> Response:
    """The fleet's rows (every page) as CSV, full precision, for the same range and search."""
    rows, _ = query.rows(request, user)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    cols = [m for m, _, _ in METRICS]
    writer.writerow(["tenant_id", "days", *cols, "incidents", "change", "change_metric"])
    for r in rows:
        writer.writerow(
            [
                r.tenant_id,
                r.days,
                *("" if r.value(m) is None else repr(r.value(m)) for m in cols),
                r.incidents,
                "" if r.change is None else repr(r.change),
                r.change_metric or "",
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="fleet.csv"'},
    )


def _link_query(**params: str | None) -> dict[str, str]:
    """The page's query without empty values, for building links that keep its state."""
    return {k: v for k, v in params.items() if v}
