"""The Incident page ``/ui/incidents/{id}``: what moved, why, what was released, what drifted,
and the forms that acknowledge and resolve it.

Everything shown is read from the library: the incident from the workspace's incident store
(``ws.incidents``, as ``assay incidents show``), its root-cause slices from the explanation
the scan stored with it (:func:`assay.anomaly.root_causes` marks the ones a person should read,
as ``assay incidents list`` does), the expected band of its days from
:func:`assay.anomaly.scan_table` over the tenant's daily series (``Metrics.health``, the scan's
own input), release events from :func:`assay.anomaly.release_events` and
:func:`assay.rollout.release_events`, and the drift of the affected columns from
:func:`assay.drift.drift_report` over the profiles already built (the page never builds them).

Each root-cause slice links to the Sessions page filtered on that slice and the incident's days.

A tenant key sees only its own tenant's incidents: another tenant's, and incidents across
tenants (which name other tenants), answer the same 404 as an id that does not exist.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from assay._errors import AssayError, NotFoundError
from assay._records import slice_text, value_text
from assay.dashboard._auth import CsrfUser, UiUser, User, backend, not_found
from assay.dashboard._drift import STATISTICS
from assay.dashboard._render import render

if TYPE_CHECKING:
    from assay.store import Incident, Workspace

router = APIRouter()

#: Days of history drawn before an incident's first day (and scored as its expected band).
CONTEXT_DAYS = 28
#: Days drawn after an incident's last day (when the workspace has them).
AFTER_DAYS = 7
#: Days before an incident searched for release events.
RELEASE_DAYS = 7
#: The profiled columns each metric rests on: their drift is shown first.
METRIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "dau": ("event_type", "platform", "locale"),
    "active_users": ("event_type", "platform", "locale"),
    "sessions": ("event_type",),
    "handoff_rate": ("handoff", "intent", "intent_confidence"),
    "thumbs_down_rate": ("feedback", "rating", "intent"),
    "error_rate": ("error_code", "event_type"),
    "latency_p95": ("latency_ms", "tokens_in", "tokens_out"),
    "cost_usd": ("cost_usd", "tokens_in", "tokens_out"),
}
_BAND = ("value", "expected", "low", "high")


@dataclass(frozen=True)
class IncidentView:
    """The facts of one incident page (:func:`incident_view`).

    Attributes
    ----------
    incident : the stored incident.
    series : one dict per day drawn (``day``, ``value``, ``expected``, ``low``, ``high``,
        ``anomaly``), [] when the metric is not a scanned tenant series.
    series_note : why there is no chart, when there is none.
    causes : the explanation's rows, ranked: ``slice`` (dict), ``label``, ``root_cause`` (as
        :func:`assay.anomaly.root_causes` keeps them), ``share``, ``before``, ``after``,
        ``score``, ``support`` and ``sessions`` (the Sessions page URL for that slice and days).
    releases : release events from a week before the incident to its end.
    drift : the drift rows of the tenant's columns, target = the incident's days, reference =
        the 28 days before; the affected columns first, then by drift.
    drift_note : why there is no drift table, when there is none.
    seen_in : where the incident is seen, one row per series (``tenant_id``, ``label`` of its
        slice, ``metric``, ``start``, ``end``, ``direction``, ``expected``, ``observed``,
        ``causes`` as text) with ``sessions``: the Sessions page of that tenant, slice and
        days (the way from an incident across tenants to the sessions behind it).
    """

    incident: Incident
    series: list[dict[str, Any]] = field(default_factory=list)
    series_note: str | None = None
    causes: list[dict[str, Any]] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    drift_note: str | None = None
    seen_in: list[dict[str, Any]] = field(default_factory=list)


def visible_incident(ws: Workspace, incident_id: int, tenant: str | None) -> Incident:
    """The incident if a key of ``tenant`` (None: admin) may see it, else :class:`NotFoundError`
    (the same for an id that does not exist and one that is another tenant's)."""
    try:
        incident = ws.incidents.get(incident_id)
    except NotFoundError:
        raise NotFoundError("no such incident for this key") from None
    if tenant is not None and incident.tenant_id != tenant:
        raise NotFoundError("no such incident for this key")
    return incident


def sessions_url(tenant: str, slice_: dict[str, Any], since: dt.date, until: dt.date) -> str:
    """The Sessions page of ``tenant``'s sessions in ``slice_`` on ``since..until``.

    Examples
    --------
    >>> sessions_url("acme", {"locale": "de-DE", "flight": None},
    ...              dt.date(2026, 3, 2), dt.date(2026, 3, 3))
    '/ui/sessions?tenant=acme&since=2026-03-02&until=2026-03-03&locale=de-DE&flight=%28none%29'
    """
    params = {"tenant": tenant, "since": since.isoformat(), "until": until.isoformat()}
    params.update({str(k): value_text(v) for k, v in slice_.items()})
    return "/ui/sessions?" + urlencode(params)


def incident_view(ws: Workspace, incident: Incident) -> IncidentView:
    """Everything the Incident page shows about ``incident`` (already checked visible)."""
    from assay.anomaly import root_causes

    tenant = incident.tenant_id
    rows = incident.details.get("explanation")
    rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
    kept = root_causes(rows)
    causes = []
    for r in rows:
        slice_ = r.get("slice") if isinstance(r.get("slice"), dict) else {}
        causes.append(
            {
                **{k: r.get(k) for k in ("share", "before", "after", "score", "support")},
                "slice": slice_,
                "label": slice_text(slice_),
                "root_cause": slice_ in kept,
                "sessions": (
                    sessions_url(tenant, slice_, incident.start, incident.end) if tenant else None
                ),
            }
        )
    seen_in = [_member(m) for m in incident.seen_in]
    series, series_note = _series(ws, incident)
    drift, drift_note = _drift(ws, incident, kept)
    return IncidentView(
        incident=incident,
        series=series,
        series_note=series_note,
        causes=causes,
        releases=_releases(ws, incident),
        drift=drift,
        drift_note=drift_note,
        seen_in=seen_in,
    )


def _member(m: dict[str, Any]) -> dict[str, Any]:
    """One series of ``seen_in`` for the page, with its sessions link."""
    from assay._records import causes_text

    raw = m.get("slice")
    slice_: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
    tenant = m.get("tenant_id")
    start, end = _day_or_none(m.get("start")), _day_or_none(m.get("end"))
    link = None
    if isinstance(tenant, str) and start is not None and end is not None:
        link = sessions_url(tenant, slice_, start, end)
    return {
        "tenant_id": tenant,
        "label": slice_text(slice_),
        "metric": m.get("metric"),
        "start": start,
        "end": end,
        "direction": m.get("direction"),
        "expected": m.get("expected"),
        "observed": m.get("observed"),
        "causes": causes_text(m.get("root_cause") or []),
        "sessions": link,
    }


def _day_or_none(value: object) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def _series(ws: Workspace, inc: Incident) -> tuple[list[dict[str, Any]], str | None]:
    """The incident's metric per day with the scan's expected band, from ``CONTEXT_DAYS``
    before it to ``AFTER_DAYS`` after it (or the last event day)."""
    from assay.anomaly import WATCHED_METRICS, ScanConfig, scan_table
    from assay.anomaly._watch import history_days

    if inc.tenant_id is None or inc.metric not in WATCHED_METRICS:
        return [], f"{inc.metric} is not a daily tenant series the scan draws"
    chosen = _scanned_slice(inc)
    by = next(iter(chosen)) if len(chosen) == 1 else None
    if len(chosen) > 1:
        return [], f"the slice {slice_text(chosen)} is not a single series of the scan"
    last = ws.last_event_day() or inc.end
    since = inc.start - dt.timedelta(days=CONTEXT_DAYS)
    until = min(last, inc.end + dt.timedelta(days=AFTER_DAYS))
    cfg = ScanConfig()
    metrics = getattr(ws, "metrics", None)
    if metrics is None:
        return [], "this workspace handle has no metrics"
    try:
        table = metrics.health(
            tenant=inc.tenant_id,
            since=since - dt.timedelta(days=history_days(cfg)),
            until=until,
            by=by,
        )
        if by is not None:
            import pyarrow.compute as pc

            value = chosen[by]
            column = table.column(by)
            mask = pc.is_null(column) if value is None else pc.equal(column, value)
            table = table.filter(mask)
        points = scan_table(table, since=since, metrics=[inc.metric], by=by, config=cfg).points
    except AssayError as exc:
        return [], f"the series could not be scored: {exc}"
    wanted = ("day", "value", "expected", "low", "high", "anomaly")
    out = [{k: r.get(k) for k in wanted} for r in points.to_pylist()]
    out.sort(key=lambda r: r["day"])
    return out, None if out else "no scored days in the window"


def _scanned_slice(inc: Incident) -> dict[str, Any]:
    """The slice of the series the incident was found on: its first member's of its own
    tenant and metric (an incident grouped under a release cause has the cause as its slice,
    but was seen on whole-tenant series), else the incident's slice."""
    for m in inc.seen_in:
        if m.get("tenant_id") == inc.tenant_id and m.get("metric") == inc.metric:
            raw = m.get("slice")
            return dict(raw) if isinstance(raw, dict) else {}
    return dict(inc.slice)


def _releases(ws: Workspace, inc: Incident) -> list[dict[str, Any]]:
    """Release events (first appearances, then rollout transitions) near the incident."""
    from assay.anomaly import release_events as first_seen_events
    from assay.rollout import release_events as rollout_events

    since = inc.start - dt.timedelta(days=RELEASE_DAYS)
    found: list[dict[str, Any]] = []
    if inc.tenant_id is not None:
        try:
            found = [
                {**r, "source": "first seen"}
                for r in first_seen_events(ws, tenant=inc.tenant_id, since=since, until=inc.end)
            ]
        except AssayError:
            found = []
    moves = rollout_events(ws, since, inc.end, tenant=inc.tenant_id)
    found += [{**m, "source": f"rollout {m.get('event', '')}".strip()} for m in moves]
    return sorted(found, key=lambda r: (r["first_seen"], str(r["field"]), str(r["value"])))


def _drift(
    ws: Workspace, inc: Incident, causes: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], str | None]:
    """The tenant's column drift over the incident's days against the 28 days before."""
    from assay.drift import drift_report

    if inc.tenant_id is None:
        return [], "an incident across tenants has no single tenant's drift"
    target = (inc.start, inc.end)
    reference = (inc.start - dt.timedelta(days=CONTEXT_DAYS), inc.start - dt.timedelta(days=1))
    try:
        report = drift_report(ws, reference=reference, target=target, tenant=inc.tenant_id)
    except AssayError as exc:
        return [], f"drift could not be computed: {exc}"
    if not report.columns:
        return [], (
            "no profiles cover these days yet: `assay profile build` (or the running "
            "service's refresh) makes them"
        )
    affected = set(METRIC_COLUMNS.get(inc.metric, ())) | {k for c in causes for k in c}
    rows = [
        {
            "column": r["column"],
            "kind": r["kind"],
            "drift": bool(r["drift"]),
            "affected": r["column"] in affected,
            **{k: r.get(k) for k in STATISTICS},
        }
        for r in report.columns
    ]
    rows.sort(key=lambda r: (not r["affected"], not r["drift"], -(r.get("js_distance") or 0.0)))
    return rows, None


def band_label(metric: str) -> str:
    """What the band of a metric's chart is, in words (the scan's ``low``/``high``): for a
    rate, the 95% interval of the observed rate (Wilson's score interval), which leaves out
    the expectation on an anomalous day; for an amount, the expectation plus or minus 1.96
    scales, which leaves out the observed value."""
    if metric.endswith("_rate"):
        return "band: 95% interval of the observed rate (Wilson)"
    return "band: expected ± 1.96 scales"


def _chart(view: IncidentView) -> dict[str, Any]:
    """The band chart's data (``_render.py``'s convention)."""
    inc = view.incident
    days = [r["day"].isoformat() for r in view.series]
    fmt = {"latency_p95": "ms", "cost_usd": "usd"}.get(inc.metric, "number")
    if inc.metric.endswith("_rate"):
        fmt = "percent"
    return {
        "x": days,
        "series": [
            {"name": "observed", "values": [r["value"] for r in view.series]},
            {"name": "expected", "values": [r["expected"] for r in view.series]},
        ],
        "band": {
            "lower": [r["low"] for r in view.series],
            "upper": [r["high"] for r in view.series],
        },
        "flags": [r["day"].isoformat() for r in view.series if r["anomaly"]],
        "events": [
            {"x": r["first_seen"].isoformat(), "label": f"{r['field']}={value_text(r['value'])}"}
            for r in view.releases
            if r["first_seen"].isoformat() in days
        ],
        "format": fmt,
        "y_label": inc.metric,
    }


def _view_for(request: Request, user: UiUser, incident_id: int) -> IncidentView:
    with backend(request).reader(user.key) as ws:
        try:
            incident = visible_incident(ws, incident_id, user.tenant_id)
        except NotFoundError:
            raise not_found() from None
        return incident_view(ws, incident)


IdPath = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/ui/incidents/{incident_id}")
def incident_page(request: Request, user: User, incident_id: IdPath) -> Response:
    view = _view_for(request, user, incident_id)
    return render(
        request,
        "incident.html",
        nav="fleet",
        view=view,
        inc=view.incident,
        slice_label=slice_text(view.incident.slice),
        facts=other_facts(view.incident),
        chart=_chart(view) if view.series else None,
        band_label=band_label(view.incident.metric),
        series_rows=[
            [
                r["day"],
                *(_shown(r[k]) for k in ("value", "expected", "low", "high")),
                _yes(r["anomaly"]),
            ]
            for r in view.series
        ],
    )


def _shown(value: float | None) -> str | None:
    """A value for the page's table: 6 significant digits (the CSV has them all)."""
    return None if value is None else f"{value:.6g}"


#: Keys of an incident's details the page shows in sections of their own.
_SHOWN_DETAILS = ("explanation", "releases", "seen_in", "cause")


def other_facts(incident: Incident) -> list[tuple[str, str]]:
    """The incident's other details (a regression's counts, a drift's columns, ...) as
    (key, JSON text) pairs in key order, as ``assay incidents show`` lists them."""
    import json

    return [
        (k, json.dumps(v, ensure_ascii=False, sort_keys=True)[:2000])
        for k, v in sorted(incident.details.items())
        if k not in _SHOWN_DETAILS
    ]


def _yes(flag: object) -> str:
    return "yes" if flag else "no"


@router.get("/ui/incidents/{incident_id}/series.csv")
def incident_series_csv(request: Request, user: User, incident_id: IdPath) -> Response:
    view = _view_for(request, user, incident_id)
    lines = ["day,value,expected,low,high,anomalous"]
    for r in view.series:
        cells = [r["day"].isoformat(), *(_cell(r[k]) for k in _BAND)]
        lines.append(",".join([*cells, _yes(r["anomaly"])]))
    return Response(
        "\n".join(lines) + "\n",
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="incident-{incident_id}.csv"'},
    )


def _cell(value: object) -> str:
    return "" if value is None else repr(float(value))  # type: ignore[arg-type]


def _change_state(request: Request, user: UiUser, incident_id: int, action: str) -> Response:
    with backend(request).reader(user.key) as ws:
        try:
            visible_incident(ws, incident_id, user.tenant_id)
        except NotFoundError:
            raise not_found() from None
        if action == "acknowledge":
            ws.incidents.acknowledge(incident_id)
        else:
            ws.incidents.resolve(incident_id)
    return RedirectResponse(f"/ui/incidents/{incident_id}", status_code=303)


@router.post("/ui/incidents/{incident_id}/acknowledge")
def acknowledge(request: Request, user: CsrfUser, incident_id: IdPath) -> Response:
    return _change_state(request, user, incident_id, "acknowledge")


@router.post("/ui/incidents/{incident_id}/resolve")
def resolve(request: Request, user: CsrfUser, incident_id: IdPath) -> Response:
    return _change_state(request, user, incident_id, "resolve")
