"""The fleet scan on a workspace: read the daily series, scan, group, record incidents, explain.

:func:`scan_workspace` is what ``assay anomalies scan`` runs: ``Metrics.health`` over the scan
window and the history before it, :func:`assay.anomaly.scan_table` (one candidate per anomalous
episode of a series), the root cause of each candidate (:func:`assay.anomaly.explain_metric` on
its first day, once per tenant, metric and day), then :func:`group_candidates`: candidates that
share a cause (a release value, or else a tenant) and touch in time are one incident, which
lists where it is seen (``details["seen_in"]``). Each group is recorded in the workspace's
incident store (``assay incidents``), which merges it with the incident it continues and never
raises a resolved one again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
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
from assay.schema import RELEASE_FIELDS
from assay.store import SEEN_IN, Incident, IncidentStore, NewIncident, Workspace

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
    recorded : per group of candidates (:func:`group_candidates`), the incident it became and
        the store's outcome (``opened``, ``extended``, ``unchanged`` or ``suppressed``); empty
        when not recorded.
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
    gap = cfg.merge_gap + 1
    known, seen = _known_causes(store) if explain else ({}, [])
    explained: dict[tuple[str, str, dt.date], dict[str, Any]] = {}
    causes: list[list[dict[str, Any]]] = []
    for c in result.candidates:
        found = known.get((c.tenant_id, c.metric, c.start.isoformat()))
        if found is None and explain:
            ask = (c.tenant_id, c.metric, c.start)
            if ask not in explained:
                if progress:
                    progress(f"explaining {c.metric} of a tenant on {c.start.isoformat()}")
                explained[ask] = _explanation(ws, c)
            found = root_causes(explained[ask].get("explanation") or [])
        causes.append(found or [])
    for group in group_candidates(result.candidates, causes, gap_days=gap, seen=seen):
        lead = group.members[0][0]
        facts = explained.get((lead.tenant_id, lead.metric, lead.start), {})
        new = _new_incident(group, by, cfg, facts)
        incident, outcome = store.record(new, gap_days=gap)
        if outcome == "opened" and incident is not None and explain and not facts:
            # Its lead's cause was stored by an earlier scan (another slice of the same day):
            # a new incident still shows the lead's explanation.
            incident = store.update_details(incident.id, _explanation(ws, lead))
        report.recorded.append((incident, outcome))
    log.info("anomaly scan", extra={"event": "anomaly_scan", **report.summary()})
    return report


@dataclass(frozen=True)
class CandidateGroup:
    """Candidates that share a cause, recorded as one incident.

    Attributes
    ----------
    key : str
        The incident's key: ``release|FIELD=VALUE`` when the members' root cause names a
        release value (``model_version``, ``prompt_template``), else
        ``tenant=T``.
    cause : dict or None
        ``{"field": ..., "value": ...}`` of a release group, None for a tenant group.
    members : list of (Candidate, list of dict)
        Each candidate with its root-cause slices (:func:`root_causes`), the lead first: the
        earliest onset, then whole tenants before slices, then the strongest (smallest q).
    """

    key: str
    cause: dict[str, str] | None
    members: list[tuple[Candidate, list[dict[str, Any]]]]


def root_causes(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The root-cause slices of an explanation's rows, as a person should read them.

    The rows marked ``root_cause``, in rank order, less two kinds:

    - a slice on a missing value (``{"flight": None}``: the events without a flight) when a
      cause on known values is reported too: "no flight" is the finding only when nothing
      else is;
    - a slice that refines one already kept (``{"locale": "en-US", "prompt_template":
      "rag-v3"}`` after ``{"prompt_template": "rag-v3"}``), or that one already kept refines
      (its parent, ranked lower): the same cause, said again.

    Examples
    --------
    >>> rows = [
    ...     {"slice": {"prompt_template": "rag-v3"}, "root_cause": True},
    ...     {"slice": {"flight": None, "platform": "teams"}, "root_cause": True},
    ...     {"slice": {"locale": "en-US", "prompt_template": "rag-v3"}, "root_cause": True},
    ...     {"slice": {"locale": "fr-FR"}, "root_cause": False},
    ... ]
    >>> root_causes(rows)
    [{'prompt_template': 'rag-v3'}]
    >>> root_causes([{"slice": {"flight": None}, "root_cause": True}])
    [{'flight': None}]
    """
    slices = [
        dict(r["slice"]) for r in rows if r.get("root_cause") and isinstance(r.get("slice"), dict)
    ]
    known = [x for x in slices if all(v is not None for v in x.values())]
    kept: list[dict[str, Any]] = []
    for x in known or slices:
        if not any(k.items() <= x.items() or x.items() <= k.items() for k in kept):
            kept.append(x)
    return kept


def incident_causes(incident: Incident) -> list[dict[str, Any]]:
    """An incident's root cause as slices, for text: its release cause when it has one
    (``[{"prompt_template": "rag-v3"}]``), else :func:`root_causes` of its explanation (or of the
    first member of ``seen_in`` that has one); ``[]`` when none is known.

    Examples
    --------
    >>> import datetime
    >>> from assay.store import Incident
    >>> day = datetime.date(2026, 3, 2)
    >>> inc = Incident(
    ...     id=1, kind="anomaly", key="release|prompt_template=rag-v3", tenant_id=None,
    ...     metric="latency_p95", slice={"prompt_template": "rag-v3"}, start=day, end=day,
    ...     direction="up", severity="high", expected=2500.0, observed=4800.0, score=1e-6,
    ...     details={"cause": {"field": "prompt_template", "value": "rag-v3"}},
    ...     state="open", created_at="", updated_at="", acknowledged_at=None,
    ...     resolved_at=None)
    >>> incident_causes(inc)
    [{'prompt_template': 'rag-v3'}]
    """
    cause = incident.details.get("cause")
    if isinstance(cause, dict) and cause.get("field"):
        return [{str(cause["field"]): cause.get("value")}]
    rows = incident.details.get("explanation")
    if isinstance(rows, list) and rows:
        return root_causes([r for r in rows if isinstance(r, dict)])
    for m in incident.seen_in:
        found = m.get("root_cause")
        if isinstance(found, list) and found:
            return [x for x in found if isinstance(x, dict)]
    return []


@dataclass(frozen=True)
class SeenCause:
    """An episode recorded earlier with a release cause: a later episode of the same tenant,
    metric and direction on touching days may take its cause (rule 2 of
    :func:`group_candidates`)."""

    tenant_id: str
    metric: str
    direction: str
    start: dt.date
    end: dt.date
    cause: tuple[str, str]


def group_candidates(
    candidates: Sequence[Candidate],
    causes: Sequence[Sequence[dict[str, Any]]],
    *,
    gap_days: int,
    seen: Sequence[SeenCause] = (),
) -> list[CandidateGroup]:
    """Candidates that share a cause, as groups: one incident per problem.

    The rule (``docs/scan.md``, "One incident per problem"):

    1. A candidate's **release causes** are the ``(field, value)`` pairs of its root-cause
       slices on a release field (``model_version``, ``prompt_template``) with a
       known value. When it has several, the one that most candidates of the scan share wins
       (then the higher ranked): a regression of ``prompt_template=rag-v3`` seen in 12
       tenants is that template's in the 13th too, even where its explanation also names an
       ``app_version``.
    2. A candidate without a release cause of its own takes that of a candidate (or of an
       episode in ``seen``, recorded by an earlier scan) of the same tenant, metric and
       direction whose days touch its own: the explanation is of the tenant's metric, so a
       locale whose latency rose with its tenant's is seen in the tenant's problem even when
       the tenant's explanation on the locale's first day names no release.
    3. Candidates with a release cause are grouped by it, across tenants, metrics and slices:
       key ``release|FIELD=VALUE``. Candidates without one are grouped by tenant: key
       ``tenant=T`` (a tenant-wide outage moves users, errors and every slice of the tenant
       at once: one incident, never joined with another tenant's).
    4. Within a key, candidates whose days touch (the next one starts at most ``gap_days``
       after the days so far end, the incident store's rule) are one group; a later onset is
       another group (and another incident).

    Parameters
    ----------
    candidates : the scan's candidates.
    causes : per candidate, its root-cause slices (:func:`root_causes`; empty if unknown).
    gap_days : candidates at most this many days apart are one incident.
    seen : episodes recorded earlier with their release cause (rule 2).

    Returns
    -------
    list of CandidateGroup
        In order of their first day, then key.
    """
    if len(causes) != len(candidates):
        raise UsageError(
            f"causes must have one entry per candidate ({len(candidates)}), got {len(causes)}"
        )
    pairs = [
        list(
            dict.fromkeys(
                (f, str(v))
                for x in found
                for f, v in x.items()
                if f in RELEASE_FIELDS and v is not None
            )
        )
        for found in causes
    ]
    votes = Counter(p for found in pairs for p in found)
    best: list[tuple[str, str] | None] = [
        max(found, key=lambda p: (votes[p], -found.index(p))) if found else None for found in pairs
    ]
    step = dt.timedelta(days=gap_days)
    donors = [
        SeenCause(c.tenant_id, c.metric, c.direction, c.start, c.end, p)
        for c, p in zip(candidates, best, strict=True)
        if p is not None
    ] + list(seen)
    for i, c in enumerate(candidates):
        if best[i] is None:
            best[i] = next(
                (
                    d.cause
                    for d in donors
                    if (d.tenant_id, d.metric, d.direction) == (c.tenant_id, c.metric, c.direction)
                    and c.start <= d.end + step
                    and c.end >= d.start - step
                ),
                None,
            )
    keyed: dict[str, list[int]] = {}
    chosen: dict[str, dict[str, str] | None] = {}
    for i, (c, pair) in enumerate(zip(candidates, best, strict=True)):
        if pair is not None:
            key, cause = f"release|{pair[0]}={pair[1]}", {"field": pair[0], "value": pair[1]}
        else:
            key, cause = f"tenant={c.tenant_id}", None
        keyed.setdefault(key, []).append(i)
        chosen[key] = cause
    groups: list[CandidateGroup] = []
    for key, idx in keyed.items():
        idx.sort(key=lambda i: (candidates[i].start, candidates[i].end, candidates[i].key))
        runs: list[list[int]] = []
        end: dt.date | None = None
        for i in idx:
            if end is None or candidates[i].start > end + step:
                runs.append([])
                end = candidates[i].end
            runs[-1].append(i)
            end = max(end, candidates[i].end)
        for run in runs:
            run.sort(
                key=lambda i: (
                    candidates[i].start,
                    bool(candidates[i].slice),
                    candidates[i].q_value,
                    candidates[i].key,
                )
            )
            members = [(candidates[i], list(causes[i])) for i in run]
            groups.append(CandidateGroup(key, chosen[key], members))
    groups.sort(key=lambda g: (g.members[0][0].start, g.key))
    return groups


def _known_causes(
    store: IncidentStore,
) -> tuple[dict[tuple[str, str, str], list[dict[str, Any]]], list[SeenCause]]:
    """The root causes already stored, per (tenant, metric, first day): an explanation is of a
    tenant's metric on a day, so neither a rescan nor a scan by another slice explains that day
    again; and the episodes of open or acknowledged incidents with a release cause, with it."""
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    seen: list[SeenCause] = []
    for inc in store.list(state="all", kind="anomaly"):
        cause = inc.details.get("cause")
        for m in inc.details.get(SEEN_IN) or []:
            if not isinstance(m, dict):
                continue
            if isinstance(m.get("root_cause"), list):
                out[(str(m.get("tenant_id")), str(m.get("metric")), str(m.get("start")))] = m[
                    "root_cause"
                ]
            if inc.state != "resolved" and isinstance(cause, dict) and cause.get("field"):
                seen.append(
                    SeenCause(
                        str(m.get("tenant_id")),
                        str(m.get("metric")),
                        str(m.get("direction")),
                        dt.date.fromisoformat(str(m.get("start"))),
                        dt.date.fromisoformat(str(m.get("end"))),
                        (str(cause["field"]), str(cause.get("value"))),
                    )
                )
    return out, seen


def _member(c: Candidate, causes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "key": c.key,
        "tenant_id": c.tenant_id,
        "slice": {k: None if v is None else str(v) for k, v in c.slice.items()},
        "metric": c.metric,
        "start": c.start.isoformat(),
        "end": c.end.isoformat(),
        "direction": c.direction,
        "severity": c.severity,
        "expected": c.expected,
        "observed": c.observed,
        "q_value": c.q_value,
        "root_cause": causes,
        **c.details,
    }


def _new_incident(
    group: CandidateGroup, by: str | None, cfg: ScanConfig, facts: dict[str, Any]
) -> NewIncident:
    candidates = [c for c, _ in group.members]
    lead = candidates[0]
    tenants = {c.tenant_id for c in candidates}
    if group.cause is not None:
        slice_: dict[str, str | None] = {group.cause["field"]: group.cause["value"]}
    else:
        # A tenant group's slice is what its members share ({} once a whole-tenant series or
        # two different slices are in it).
        shared = [
            {k: None if v is None else str(v) for k, v in c.slice.items()} for c in candidates
        ]
        slice_ = {k: v for k, v in shared[0].items() if all(x.get(k, "") == v for x in shared)}
    return NewIncident(
        kind="anomaly",
        key=group.key,
        tenant_id=lead.tenant_id if len(tenants) == 1 else None,
        metric=lead.metric,
        slice=slice_,
        start=min(c.start for c in candidates),
        end=max(c.end for c in candidates),
        direction=lead.direction,
        severity=max((c.severity for c in candidates), key=("low", "medium", "high").index),
        expected=lead.expected,
        observed=lead.observed,
        score=min(c.q_value for c in candidates),
        details={
            "cause": group.cause,
            SEEN_IN: sorted(
                (_member(c, found) for c, found in group.members),
                key=lambda m: (m["start"], m["key"]),
            ),
            "q_value": min(c.q_value for c in candidates),
            "scan": {"fdr": cfg.fdr, "min_effect": cfg.min_effect, "by": by},
            **facts,
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
