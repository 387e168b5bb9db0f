"""The tenant page ``/ui/tenants/{tenant_id}``: each headline metric over time.

Each metric is a daily series read from the fleet's cached :func:`~._fleet.daily_summary` (no
query over the raw events), with the expected band and the anomalous days of the anomaly scan
(:func:`assay.anomaly.scan_table` on this tenant's series: one tenant is small, so it is scored
when the page is asked for), and the tenant's release events (:func:`assay.anomaly.release_events`:
first days of a model version, prompt template or flight) on the time axis.

``?by=`` (a slice field) splits the charts by that field's values instead: the five values with
the most sessions in the range, and the others summed as ``other`` (rates from summed counts; DAU
of ``other`` is the sum of the values' DAU, so a user in two values counts twice there; no p95
for ``other``: percentiles do not add). Below: retention cohorts (``Metrics.retention``) as a
heat map, and the tenant's incidents. Every state is in the URL: ``since``, ``until``, ``by``,
``metric`` (one metric only, else all).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import numpy as np
import pyarrow as pa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from assay.anomaly import ScanConfig, release_events, scan_table
from assay.dashboard._auth import UiError, UiUser, User, backend, not_found, require_tenant
from assay.dashboard._fleet import (
    COUNTS,
    PAGE_MAX_AGE,
    DailySummary,
    SinceQuery,
    UntilQuery,
    daily_summary,
    page_range,
)
from assay.dashboard._render import render
from assay.evaluation import wilson_interval
from assay.schema import SLICE_FIELDS

if TYPE_CHECKING:
    from assay._api import Workspace

router = APIRouter()
T = TypeVar("T")

#: The charted metrics: name, label, format, and its (numerator, denominator) counts for a rate.
CHARTS: tuple[tuple[str, str, str, tuple[str, str] | None], ...] = (
    ("dau", "Daily active users", "number", None),
    ("handoff_rate", "Handoff rate", "percent", ("handoff_sessions", "sessions")),
    ("thumbs_down_rate", "Thumbs-down rate", "percent", ("thumbs_down", "feedback")),
    ("error_rate", "Error rate", "percent", ("errors", "turns")),
    ("latency_p95", "p95 latency (ms)", "ms", None),
    ("cost_usd", "Cost per day (USD)", "usd", None),
)
CHART_NAMES: tuple[str, ...] = tuple(c[0] for c in CHARTS)
#: Per metric and ISO day: expected, band low, band high, anomalous (the scored days).
Band = dict[str, dict[str, tuple[float | None, float | None, float | None, bool]]]
#: Slice values drawn one by one in a ``by`` split; the rest are summed as ``other``.
TOP_VALUES = 5
OTHER = "other"

#: Answers kept by :func:`_memo` (split charts, releases, retention of recent page views).
MEMO_SIZE = 256
_memos: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_memo_lock = threading.Lock()


def _memo(key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """``compute()``, kept under ``key`` (which holds the events version) among the last
    :data:`MEMO_SIZE` answers: a page viewed again is not queried again."""
    with _memo_lock:
        if key in _memos:
            _memos.move_to_end(key)
            return cast(T, _memos[key])
    value = compute()
    with _memo_lock:
        _memos[key] = value
        while len(_memos) > MEMO_SIZE:
            _memos.popitem(last=False)
    return value


TenantPath = Annotated[str, Path(min_length=1, max_length=128)]


@dataclass(frozen=True)
class Series:
    """One chart's data: ``x`` days and named value lists, band and flags when scored."""

    metric: str
    x: list[str]
    series: list[tuple[str, list[float | None]]]
    lower: list[float | None] | None = None
    upper: list[float | None] | None = None
    expected: list[float | None] | None = None
    flags: tuple[str, ...] = ()

    def spec(self, fmt: str, events: list[dict[str, str]]) -> dict[str, Any]:
        """The chart JSON of ``_render.py``'s convention."""
        series = [{"name": name, "values": values} for name, values in self.series]
        if self.expected is not None:
            series.append({"name": "expected", "values": self.expected})
        return {
            "x": self.x,
            "series": series,
            "band": None if self.lower is None else {"lower": self.lower, "upper": self.upper},
            "flags": list(self.flags),
            "events": events,
            "format": fmt,
            "y_label": dict((c[0], c[1]) for c in CHARTS)[self.metric],
        }

    def columns(self) -> list[str]:
        names = ["day", *(name for name, _ in self.series)]
        if self.expected is not None:
            names += ["expected", "band low", "band high", "anomalous"]
        return names

    def rows(self) -> list[list[Any]]:
        out: list[list[Any]] = []
        flagged = set(self.flags)
        for i, day in enumerate(self.x):
            row: list[Any] = [day, *(values[i] for _, values in self.series)]
            if self.expected is not None and self.lower is not None and self.upper is not None:
                row += [
                    self.expected[i],
                    self.lower[i],
                    self.upper[i],
                    "yes" if day in flagged else "",
                ]
            out.append(row)
        return out


def _clean(values: Any) -> list[float | None]:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


def tenant_table(summary: DailySummary, tenant_id: str) -> pa.Table:
    """The tenant's rows of the summary as a ``Metrics.health``-shaped table (every day)."""
    index = summary.tenants.index(tenant_id)
    mask = summary.tenant == index
    days = summary.day[mask]
    cols: dict[str, Any] = {
        "tenant_id": pa.array([tenant_id] * int(mask.sum()), pa.string()),
        "day": pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32()),
    }
    for name, values in summary.columns.items():
        cols[name] = pa.array(values[mask], pa.float64(), from_pandas=True)
    return pa.table(cols)


def _rate(num: np.ndarray[Any, Any], den: np.ndarray[Any, Any]) -> list[float | None]:
    return [None if d <= 0 else float(n / d) for n, d in zip(num, den, strict=True)]


def _days_list(since: dt.date, until: dt.date) -> list[str]:
    return [(since + dt.timedelta(days=k)).isoformat() for k in range((until - since).days + 1)]


def whole_series(
    table: pa.Table,
    since: dt.date,
    until: dt.date,
    scored: Band,
) -> dict[str, Series]:
    """Each chart's series over ``since..until`` with the scan's band and anomalous days."""
    x = _days_list(since, until)
    at = {d: i for i, d in enumerate(x)}
    n = len(x)

    def spread(days: list[str], values: list[Any]) -> list[Any]:
        out: list[Any] = [None] * n
        for d, v in zip(days, values, strict=True):
            if d in at:
                out[at[d]] = v
        return out

    days = [d.isoformat() for d in table.column("day").to_pylist()]
    col = {
        name: np.asarray(table.column(name).to_numpy(zero_copy_only=False))
        for name in table.column_names
        if name not in ("tenant_id", "day")
    }
    values: dict[str, list[Any]] = {
        "dau": _clean(col["dau"].tolist()),
        "latency_p95": _clean(col["latency_p95"].tolist()),
        "cost_usd": _clean(col["cost_usd"].tolist()),
    }
    for name, _, _, counts in CHARTS:
        if counts is not None:
            values[name] = _rate(col[counts[0]], col[counts[1]])
    out: dict[str, Series] = {}
    for name, _, _, _ in CHARTS:
        band = scored.get(name)
        out[name] = Series(
            metric=name,
            x=x,
            series=[("observed", spread(days, values[name]))],
            expected=None if band is None else [band[d][0] if d in band else None for d in x],
            lower=None if band is None else [band[d][1] if d in band else None for d in x],
            upper=None if band is None else [band[d][2] if d in band else None for d in x],
            flags=() if band is None else tuple(d for d in x if d in band and band[d][3]),
        )
    return out


def tenant_scan(table: pa.Table) -> Band:
    """:func:`assay.anomaly.scan_table` on one tenant's whole history (``tenant_table``): per
    metric and ISO day, the expectation, a 95% band around it (the scan's for counts and
    amounts; for a rate, Wilson's interval of the expected rate on the day's trials) and
    whether the day is anomalous.

    Scored on demand (the workspace stores incidents, not the scan's daily points), so the
    false-discovery family of a day is this tenant's series alone, not the whole fleet's as in
    ``assay anomalies scan``: a day can be flagged here and not raise an incident there.
    """
    health = table
    for name in COUNTS:
        i = health.column_names.index(name)
        health = health.set_column(i, name, health.column(name).cast(pa.int64()))
    result = scan_table(health, metrics=list(CHART_NAMES), config=ScanConfig())
    day_text = [d.isoformat() for d in table.column("day").to_pylist()]
    trials = {
        name: dict(zip(day_text, table.column(counts[1]).to_pylist(), strict=True))
        for name, _, _, counts in CHARTS
        if counts is not None
    }
    out: Band = {}
    for p in result.points.to_pylist():
        day = p["day"].isoformat()
        expected, low, high = _clean([p["expected"], p["low"], p["high"]])
        n = trials.get(p["metric"], {}).get(day)
        if n and expected is not None:
            # The scan's low/high of a rate bound the observed rate; the chart's band is the
            # range expected around the expectation for the day's trials instead.
            low, high = (float(b) for b in wilson_interval(expected * n, n))
        if low is not None:
            low = max(0.0, low)  # every charted metric is >= 0; the scan's +- scales are not
        out.setdefault(p["metric"], {})[day] = (expected, low, high, bool(p["anomaly"]))
    return out


def split_series(
    ws: Workspace, tenant_id: str, by: str, since: dt.date, until: dt.date
) -> dict[str, Series]:
    """Each chart split by ``by``: the top values by sessions, then ``other`` summed."""
    table = ws.metrics.health(tenant=tenant_id, since=since, until=until, by=by, window=1)
    x = _days_list(since, until)
    at = {d: i for i, d in enumerate(x)}
    rows = table.to_pylist()
    totals: dict[str | None, float] = {}
    for r in rows:
        totals[r[by]] = totals.get(r[by], 0.0) + (r["sessions"] or 0)
    ranked = sorted(totals, key=lambda v: (-totals[v], "" if v is None else v))
    top = ranked[:TOP_VALUES]
    groups: list[tuple[str, set[str | None]]] = [
        ("(none)" if v is None else str(v), {v}) for v in top
    ]
    if len(ranked) > TOP_VALUES:
        groups.append((OTHER, set(ranked[TOP_VALUES:])))
    counts = (
        "dau",
        "sessions",
        "handoff_sessions",
        "turns",
        "errors",
        "feedback",
        "thumbs_down",
        "cost_usd",
    )
    out: dict[str, Series] = {}
    sums: dict[str, dict[str, list[float]]] = {}
    lat: dict[str, list[float | None]] = {}
    for label, members in groups:
        acc = {c: [0.0] * len(x) for c in counts}
        p95: list[float | None] = [None] * len(x)
        for r in rows:
            if r[by] not in members:
                continue
            i = at[r["day"].isoformat()]
            for c in counts:
                acc[c][i] += float(r[c] or 0)
            if len(members) == 1:
                p95[i] = r["latency_p95"]
        sums[label] = acc
        lat[label] = p95
    for name, _, _, rate in CHARTS:
        series: list[tuple[str, list[float | None]]] = []
        for label, _ in groups:
            acc = sums[label]
            if rate is not None:
                vals = _rate(np.array(acc[rate[0]]), np.array(acc[rate[1]]))
            elif name == "latency_p95":
                vals = lat[label]
            else:
                vals = list(acc[name])
            series.append((label, vals))
        out[name] = Series(metric=name, x=x, series=series)
    return out


def retention_heat(ws: Workspace, tenant_id: str, since: dt.date, until: dt.date) -> dict[str, Any]:
    """Retention cohorts of the range as a heat map: cohort weeks down, weeks since across."""
    table = ws.metrics.retention(tenant=tenant_id, since=since, until=until)
    rows = table.to_pylist()
    cohorts = sorted({r["cohort_week"] for r in rows})
    weeks = sorted({r["week"] for r in rows})
    grid = {(r["cohort_week"], r["week"]): r for r in rows}
    return {
        "x": [f"week {w}" for w in weeks],
        "y": [c.isoformat() for c in cohorts],
        "values": [
            [grid[(c, w)]["rate"] if (c, w) in grid else None for w in weeks] for c in cohorts
        ],
        "users": [grid[(c, 0)]["users"] if (c, 0) in grid else None for c in cohorts],
        "format": "percent",
        "x_label": "weeks since the first active week",
        "y_label": "cohort (ISO week of first activity)",
    }


def _checked(by: str | None, metric: str | None) -> None:
    if by is not None and by not in SLICE_FIELDS:
        raise UiError(
            400, "Bad split", f"by must be one of {', '.join(SLICE_FIELDS)} (got {by[:40]!r})."
        )
    if metric is not None and metric not in CHART_NAMES:
        raise UiError(
            400,
            "Bad metric",
            f"metric must be one of {', '.join(CHART_NAMES)} (got {metric[:40]!r}).",
        )


def _tenant_data(
    request: Request,
    user: UiUser,
    tenant_id: str,
    since: str | None,
    until: str | None,
    by: str | None,
    with_extras: bool,
) -> dict[str, Any]:
    require_tenant(user, tenant_id)
    with backend(request).reader(user.key) as ws:
        summary = daily_summary(ws, max_age=PAGE_MAX_AGE)
        if tenant_id not in summary.tenants:
            raise not_found()
        span = page_range(summary, since, until)
        if span is None:  # no events at all (the tenant was just forgotten)
            raise not_found()
        first, last = span
        if by is None:
            table = tenant_table(summary, tenant_id)
            scored = _memo(
                (ws.path, summary.version, "scan", tenant_id), lambda: tenant_scan(table)
            )
            charts = whole_series(table, first, last, scored)
        else:
            charts = _memo(
                (ws.path, summary.version, "split", tenant_id, first, last, by),
                lambda: split_series(ws, tenant_id, by, first, last),
            )
        data: dict[str, Any] = {"span": span, "charts": charts}
        if with_extras:
            memo = (ws.path, summary.version, tenant_id, first, last)
            data["releases"] = _memo(
                (*memo, "releases"),
                lambda: release_events(ws, tenant=tenant_id, since=first, until=last),
            )
            data["retention"] = _memo(
                (*memo, "retention"), lambda: retention_heat(ws, tenant_id, first, last)
            )
            data["incidents"] = ws.incidents.list(tenant=tenant_id, state="all", limit=50)
    return data


@router.get("/ui/tenants/{tenant_id}")
def tenant(
    request: Request,
    user: User,
    tenant_id: TenantPath,
    since: SinceQuery = None,
    until: UntilQuery = None,
    by: Annotated[str | None, Query(max_length=40)] = None,
    metric: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    by, metric = by or None, metric or None
    _checked(by, metric)
    data = _tenant_data(request, user, tenant_id, since, until, by, with_extras=True)
    first, last = data["span"]
    events = [
        {"x": e["first_seen"].isoformat(), "label": f"{e['field']} {e['value']}"}
        for e in data["releases"]
    ]
    shown = [c for c in CHARTS if metric is None or c[0] == metric]
    query = {"since": first.isoformat(), "until": last.isoformat(), "by": by or ""}
    return render(
        request,
        "tenant.html",
        nav="fleet",
        tenant_id=tenant_id,
        span=data["span"],
        by=by,
        metric=metric,
        slice_fields=SLICE_FIELDS,
        top=TOP_VALUES,
        charts=[(name, label, fmt, data["charts"][name]) for name, label, fmt, _ in shown],
        chart_names=[(c[0], c[1]) for c in CHARTS],
        events=events,
        releases=data["releases"],
        retention=data["retention"],
        incidents=data["incidents"],
        query={k: v for k, v in query.items() if v},
    )


@router.get("/ui/tenants/{tenant_id}/data.csv")
def tenant_csv(
    request: Request,
    user: User,
    tenant_id: TenantPath,
    metric: Annotated[str, Query(max_length=40)],
    since: SinceQuery = None,
    until: UntilQuery = None,
    by: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """One chart's data as CSV (``metric`` a chart name, or ``retention``)."""
    by = by or None
    if metric == "retention":
        _checked(by, None)
        require_tenant(user, tenant_id)
        with backend(request).reader(user.key) as ws:
            summary = daily_summary(ws, max_age=PAGE_MAX_AGE)
            if tenant_id not in summary.tenants:
                raise not_found()
            span = page_range(summary, since, until)
            if span is None:
                raise not_found()
            table = ws.metrics.retention(tenant=tenant_id, since=span[0], until=span[1])
        header = ["cohort_week", "week", "users", "retained", "rate"]
        lines = [[r[c] for c in header] for r in table.to_pylist()]
    else:
        _checked(by, metric)
        data = _tenant_data(request, user, tenant_id, since, until, by, with_extras=False)
        series: Series = data["charts"][metric]
        header = series.columns()
        lines = series.rows()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for line in lines:
        writer.writerow(["" if v is None else v for v in line])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{metric}.csv"'},
    )
