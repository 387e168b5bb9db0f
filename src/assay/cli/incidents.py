"""`assay incidents list|show|ack|resolve`: the incidents raised by anomalies, drift and
release regressions."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import pyarrow as pa
import typer

from assay._records import causes_text, slice_text, value_text
from assay.cli import _output
from assay.cli._common import (
    FormatOpt,
    WorkspaceOpt,
    command_group,
    handle_errors,
    require_tenant,
)
from assay.store import SEEN_IN, Incident, Workspace

StateChoice = Literal["open", "acknowledged", "resolved", "all"]
KindChoice = Literal["anomaly", "drift", "regression", "model", "rollout"]
ShowFormat = Literal["table", "json"]

app = command_group(
    help="Incidents raised by anomalies, drift and release regressions: list, show, ack, resolve.",
)

IdArg = Annotated[
    int, typer.Argument(help="The incident id (from `assay incidents list`).", show_default=False)
]

_LIST_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("kind", pa.string()),
        ("state", pa.string()),
        ("severity", pa.string()),
        ("tenant_id", pa.string()),
        ("metric", pa.string()),
        ("slice", pa.string()),
        ("start", pa.date32()),
        ("end", pa.date32()),
        ("direction", pa.string()),
        ("expected", pa.float64()),
        ("observed", pa.float64()),
        ("title", pa.string()),
        ("series", pa.int64()),
    ]
)
_EXPLANATION_COLUMNS = ("slice", "root_cause", "score", "share", "before", "after", "support")
_RELEASE_COLUMNS = ("field", "value", "first_seen", "days_before")
#: The columns of ``seen in``: where the incident is seen, one row per series.
_WHERE_COLUMNS = ("tenant_id", "slice", "metric", "start", "end", "direction")
_SEEN_IN_COLUMNS = (*_WHERE_COLUMNS, "expected", "observed", "root_cause")


def _slice_cell(value: object) -> str:
    return slice_text(value) if isinstance(value, dict) else value_text(value)


@app.command("list")
def list_incidents(
    state: Annotated[
        StateChoice | None,
        typer.Option(
            "--state",
            help="open, acknowledged, resolved or all (default: open and acknowledged).",
            show_default=False,
        ),
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's.")] = None,
    kind: Annotated[
        KindChoice | None,
        typer.Option("--kind", help="Only anomaly, drift, regression, model or rollout."),
    ] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="Only this metric's.")] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most this many, newest first.")
    ] = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """List incidents, newest first (by default the open and acknowledged ones)."""
    with handle_errors(), Workspace.open(workspace) as ws:
        found = ws.incidents.list(state=state, tenant=tenant, kind=kind, metric=metric, limit=limit)
        if not found:
            # A tenant without incidents lists none; one without events is likely a typo.
            require_tenant(ws, tenant)
        rows = [
            {
                "id": i.id,
                "kind": i.kind,
                "state": i.state,
                "severity": i.severity,
                "tenant_id": i.tenant_id,
                "metric": i.metric,
                "slice": slice_text(i.slice),
                "start": i.start,
                "end": i.end,
                "direction": i.direction,
                "expected": i.expected,
                "observed": i.observed,
                "title": i.title,
                "series": len(i.seen_in),
            }
            for i in found
        ]
        _output.print_table(pa.Table.from_pylist(rows, schema=_LIST_SCHEMA), fmt)


@app.command("show")
def show(
    incident_id: IdArg,
    workspace: WorkspaceOpt = None,
    fmt: Annotated[
        ShowFormat, typer.Option("--format", "-f", help="Output format: table or json.")
    ] = "table",
) -> None:
    """Show one incident with every field, its explanation and nearby releases."""
    with handle_errors(), Workspace.open(workspace) as ws:
        incident = ws.incidents.get(incident_id)
        moves = _rollout_moves(ws, incident)
        if fmt == "json":
            out = incident.as_dict()
            if moves:
                out["rollout_events"] = [{**m, "first_seen": str(m["first_seen"])} for m in moves]
            _output.print_json(out)
        else:
            _print_incident(incident)
            if moves:
                sys.stdout.write("\n")
                table = _rows_table(moves, (*_RELEASE_COLUMNS, "event", "rollout_id", "weight"))
                _output.print_table(table, "table", title="rollouts")


def _rollout_moves(ws: Workspace, inc: Incident) -> list[dict[str, Any]]:
    """Rollout transitions (release events of assay.rollout) from a week before the incident
    to its end, for its tenant (all tenants' when it has none)."""
    import datetime as dt

    from assay.rollout import release_events

    return release_events(ws, inc.start - dt.timedelta(days=7), inc.end, tenant=inc.tenant_id)


@app.command("ack")
def ack(incident_id: IdArg, workspace: WorkspaceOpt = None) -> None:
    """Acknowledge an open incident (someone is on it)."""
    with handle_errors(), Workspace.open(workspace) as ws:
        before = ws.incidents.get(incident_id).state
        incident = ws.incidents.acknowledge(incident_id)
        _state_message(incident, before)


@app.command("resolve")
def resolve(incident_id: IdArg, workspace: WorkspaceOpt = None) -> None:
    """Resolve an incident: findings on its days (and within the gap) no longer raise it."""
    with handle_errors(), Workspace.open(workspace) as ws:
        before = ws.incidents.get(incident_id).state
        incident = ws.incidents.resolve(incident_id)
        _state_message(incident, before)


def _state_message(incident: Incident, before: str) -> None:
    if incident.state == before:
        _output.message(f"incident {incident.id} was already {incident.state}")
    else:
        _output.message(f"incident {incident.id}: {before} -> {incident.state}")


def _number(value: float | None) -> str:
    """A value for people: 6 significant digits (``--format json`` has them all)."""
    return "" if value is None else f"{value:.6g}"


def _tenants(inc: Incident) -> str:
    """The tenants of an incident across tenants, for the ``tenant`` line."""
    tenants = {m.get("tenant_id") for m in inc.seen_in if m.get("tenant_id")}
    return f"({len(tenants)} tenants: see seen in)" if tenants else "(all tenants)"


def _print_incident(inc: Incident) -> None:
    """A readable block: the fields, then the explanation and releases as tables."""
    lines = [
        f"incident {inc.id}: {inc.kind}, {inc.state}, severity {inc.severity}",
        f"  {inc.title}",
        ("key", inc.key),
        ("tenant", inc.tenant_id or _tenants(inc)),
        ("metric", inc.metric),
        ("slice", slice_text(inc.slice)),
        ("days", f"{inc.start} to {inc.end} ({inc.days} day{'s' if inc.days != 1 else ''})"),
        ("direction", inc.direction),
        ("expected", _number(inc.expected)),
        ("observed", _number(inc.observed)),
        ("score", _number(inc.score)),
        ("created", inc.created_at),
        ("updated", inc.updated_at),
        ("acknowledged", inc.acknowledged_at or ""),
        ("resolved", inc.resolved_at or ""),
    ]
    if inc.merged_into is not None:
        lines.append(("merged into", f"incident {inc.merged_into}"))
    others = {k: v for k, v in inc.details.items() if k not in ("explanation", "releases", SEEN_IN)}
    lines += [(k, json.dumps(v, ensure_ascii=False)) for k, v in sorted(others.items())]
    width = max(len(x[0]) for x in lines if isinstance(x, tuple))
    text = [x if isinstance(x, str) else f"  {x[0].ljust(width)}  {x[1]}".rstrip() for x in lines]
    sys.stdout.write("\n".join(text) + "\n")
    members = inc.details.get(SEEN_IN)
    if isinstance(members, list) and members:
        rows = [
            {
                **{k: m.get(k) for k in _SEEN_IN_COLUMNS},
                "slice": _slice_cell(m.get("slice")),
                "root_cause": causes_text(m.get("root_cause") or []),
            }
            for m in members
            if isinstance(m, dict)
        ]
        sys.stdout.write("\n")
        _output.print_table(_rows_table(rows, _SEEN_IN_COLUMNS), "table", title="seen in")
    explanation = inc.details.get("explanation")
    if isinstance(explanation, list) and explanation:
        rows = [
            {**r, "slice": _slice_cell(r.get("slice"))} for r in explanation if isinstance(r, dict)
        ]
        sys.stdout.write("\n")
        _output.print_table(_rows_table(rows, _EXPLANATION_COLUMNS), "table", title="explanation")
    releases = inc.details.get("releases")
    if isinstance(releases, list) and releases:
        rows = [r for r in releases if isinstance(r, dict)]
        sys.stdout.write("\n")
        _output.print_table(_rows_table(rows, _RELEASE_COLUMNS), "table", title="releases")


def _rows_table(rows: Sequence[dict[str, Any]], first: Sequence[str]) -> pa.Table:
    """Rows of JSON values as a table: the ``first`` columns, then any others in name order.

    A column whose values Arrow cannot type as one (numbers and text mixed) is shown as text.
    """
    extra = sorted({k for r in rows for k in r} - set(first))
    names = [*first, *extra]
    columns: dict[str, pa.Array] = {}
    for name in names:
        values = [r.get(name) for r in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array([None if v is None else str(v) for v in values])
    return pa.table(columns)
