"""The fleet scan on a workspace: read the daily series, scan, record incidents, explain them.

:func:`scan_workspace` is what ``assay anomalies scan`` runs: ``Metrics.health`` over the scan
window and the history before it, :func:`assay.anomaly.scan_table`, then each run of anomalous
days is recorded in the workspace's incident store (``assay incidents``), which merges it with
the incident it continues and never raises a resolved one again. A newly opened incident gets
its root cause (:func:`assay.anomaly.explain_metric` on its first day) and the release events
near it in its details.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from assay._errors import AssayError, UsageError
from assay.anomaly._scan import (
    _SEASON,
    _SEASON_CYCLES,
    WATCHED_METRICS,
    Candidate,
    ScanConfig,
    ScanResult,
    scan_table,
)
from assay.metrics import SLICE_FIELDS, Metrics, output_schema
from assay.store import Incident, IncidentStore, NewIncident, Workspace

log = logging.getLogger("assay.anomaly")

#: Days reported by default: the last week.
DEFAULT_SCAN_DAYS = 7
#: Rows of an explanation kept in an incident's details.
EXPLANATION_ROWS = 10


@dataclass(frozen=True)
class ScanReport:
    """What :func:`scan_workspace` did.

    Attributes
    ----------
    since, until : the days whose verdicts were reported.
    result : the scan itself (per-day points and the runs of anomalous days).
    recorded : per run, the incident it became and the store's outcome (``opened``,
        ``extended``, ``unchanged`` or ``suppressed``); empty when not recorded.
    """

    since: dt.date | None
    until: dt.date | None
    result: ScanResult
    recorded: list[tuple[Incident | None, str]] = field(default_factory=list)

    @property
    def opened(self) -> list[Incident]:
        """Incidents this scan opened."""
        return [i for i, outcome in self.recorded if outcome == "opened" and i is not None]

    def summary(self) -> dict[str, Any]:
        """Counts for logs and job records (no ids, no values)."""
        counts: dict[str, int] = {}
        for _, outcome in self.recorded:
            counts[outcome] = counts.get(outcome, 0) + 1
        return {
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "series": self.result.series,
            "tests": self.result.tests,
            "runs": len(self.result.candidates),
            **counts,
        }


def history_days(config: ScanConfig) -> int:
    """Days before ``since`` the scan reads: the season's cycles, the residual history, and
    the warm-up of a series, so a day's verdict is the same whatever ``since`` is."""
    return _SEASON * (_SEASON_CYCLES + 1) + config.history_days + config.min_history


def scan_workspace(
    ws: Workspace,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    metrics: Sequence[str] = WATCHED_METRICS,
    by: str | None = None,
    config: ScanConfig | None = None,
    record: bool = True,
    explain: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ScanReport:
    """Scan every tenant (x slice) x metric of a workspace and record the incidents.

    Parameters
    ----------
    ws : the workspace (``assay.Workspace``, which has ``metrics``).
    since, until : the days to report (default: the last 7 days up to the last event day).
        Days before ``since`` are read as history (:func:`history_days`).
    metrics : metrics to watch (default all of ``WATCHED_METRICS``).
    by : a slice field (``SLICE_FIELDS``), or None for whole tenants.
    config : the scan's statistics (:class:`ScanConfig`).
    record : record the runs in the incident store (False: only report them).
    explain : attach a root-cause explanation to each incident opened.
    progress : called with a short description of each step.

    Returns
    -------
    ScanReport
    """
    cfg = config or ScanConfig()
    if by is not None and by not in SLICE_FIELDS:
        raise UsageError(f"by must be one of {', '.join(SLICE_FIELDS)} (got {by!r})")
    metrics_api = getattr(ws, "metrics", None)
    if not isinstance(metrics_api, Metrics):
        raise UsageError("scan_workspace needs an assay.Workspace (with .metrics)")
    last = ws.last_event_day()
    if last is None:
        return ScanReport(since, until, scan_table(_empty(by), by=by, metrics=metrics))
    until = until or last
    since = since or until - dt.timedelta(days=DEFAULT_SCAN_DAYS - 1)
    if since > until:
        raise UsageError(
            f"since ({since.isoformat()}) is after until ({until.isoformat()}); "
            "swap them or widen the range"
        )
    if progress:
        progress("reading daily series")
    read_from = since - dt.timedelta(days=history_days(cfg))
    table = metrics_api.health(since=read_from, until=until, by=by)
    if progress:
        progress(f"scanning {table.num_rows:,} series-days")
    result = scan_table(table, since=since, metrics=metrics, by=by, config=cfg, progress=None)
    report = ScanReport(since, until, result)
    if not record:
        return report
    store: IncidentStore = ws.incidents
    for c in result.candidates:
        incident, outcome = store.record(_new_incident(c, by, cfg), gap_days=cfg.merge_gap + 1)
        if outcome == "opened" and incident is not None and explain:
            if progress:
                progress(f"explaining incident {incident.id}")
            incident = store.update_details(incident.id, _explanation(ws, c))
        report.recorded.append((incident, outcome))
    log.info("anomaly scan", extra={"event": "anomaly_scan", **report.summary()})
    return report


def _new_incident(c: Candidate, by: str | None, cfg: ScanConfig) -> NewIncident:
    return NewIncident(
        kind="anomaly",
        key=c.key,
        tenant_id=c.tenant_id,
        metric=c.metric,
        slice={k: None if v is None else str(v) for k, v in c.slice.items()},
        start=c.start,
        end=c.end,
        direction=c.direction,
        severity=c.severity,
        expected=c.expected,
        observed=c.observed,
        score=c.q_value,
        details={
            **c.details,
            "q_value": c.q_value,
            "scan": {"fdr": cfg.fdr, "min_effect": cfg.min_effect, "by": by},
        },
    )


def _explanation(ws: Workspace, c: Candidate) -> dict[str, Any]:
    """The root cause of a run's first day, for the incident's details (never raises)."""
    from assay.anomaly._rootcause import explain_metric

    try:
        found = explain_metric(ws, metric=c.metric, tenant=c.tenant_id, day=c.start)
    except AssayError as exc:
        return {"explanation_error": str(exc)}
    out = found.as_dict()
    return {
        "explanation": out["rows"][:EXPLANATION_ROWS],
        "explanation_note": out.get("note"),
        "explained_day": c.start.isoformat(),
        "releases": out["releases"],
    }


def _empty(by: str | None) -> pa.Table:
    return output_schema("health", by).empty_table()
