"""`assay drift --reference SPEC --target D..D`: drift against a range of days, a trailing
window or a stored reference, from profiles."""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from typing import Annotated, Literal

import typer

from assay._errors import UsageError
from assay.cli import _output
from assay.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    WorkspaceOpt,
    handle_errors,
    parse_day,
    require_tenant,
)

DriftFormat = Literal["table", "json", "csv", "html"]
DriftSlice = Literal["model_version", "prompt_template", "locale", "platform"]


def _range(text: str, option: str) -> tuple[dt.date, dt.date]:
    """``FIRST..LAST``, each side a day as :func:`parse_day` reads it (``today-7..yesterday``)."""
    first, sep, last = text.partition("..")
    if not sep:
        raise UsageError(
            f"{option} must be a range of days FIRST..LAST, e.g. 2026-01-01..2026-01-28 or "
            f"today-7..yesterday (got {text[:40]!r})"
        )
    first_day, last_day = parse_day(first, option), parse_day(last, option)
    # parse_day maps only None to None.
    assert first_day is not None
    assert last_day is not None
    return first_day, last_day


def _reference(text: str) -> str | tuple[dt.date, dt.date]:
    """A range of days resolved here (so that it may use relative days); other specs as given."""
    spec = text.strip()
    if spec.startswith("ref:") or ".." not in spec:
        return text
    return _range(spec, "--reference")


def drift(
    reference: Annotated[
        str,
        typer.Option(
            "--reference",
            help="Reference: days FIRST..LAST (YYYY-MM-DD, today, yesterday or today-N), "
            "last:Nd (the N days before the target) or ref:NAME (a stored reference).",
        ),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--target",
            help="Target days FIRST..LAST (YYYY-MM-DD, today, yesterday or today-N).",
        ),
    ],
    by: Annotated[
        DriftSlice | None, typer.Option("--by", help="Compare each slice of this field.")
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")] = None,
    build: Annotated[
        bool,
        typer.Option("--build/--no-build", help="Bring the profiles up to date first."),
    ] = True,
    record: Annotated[
        bool,
        typer.Option(
            "--record/--dry-run",
            help="Record each drifted dataset as an incident of kind drift, or only report "
            "(default).",
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
    fmt: Annotated[
        DriftFormat, typer.Option("--format", "-f", help="table, json, csv or html.")
    ] = "table",
) -> None:
    """Drift of every column against a reference, per tenant (and slice); exit 1 on drift."""
    from assay._api import Workspace
    from assay.drift._report import drift_report, resolve_reference
    from assay.profiles import refresh_profiles

    with handle_errors():
        cur = _range(target, "--target")
        ref = _reference(reference)
        resolve_reference(ref, cur)  # a bad spec fails before any build
        with Workspace.open(workspace) as ws:
            require_tenant(ws, tenant)
            if build:
                with _output.days_progress() as on_progress:
                    refresh_profiles(ws, create=True, progress=on_progress)
            report = drift_report(
                ws, reference=ref, target=cur, by=by, tenant=tenant, record=record
            )
        if fmt == "html":
            sys.stdout.write(report.to_html())
        elif fmt == "json":
            _output.print_json(
                {
                    "reference": [d.isoformat() for d in report.reference],
                    "reference_spec": report.reference_spec,
                    "reference_name": report.reference_name,
                    "reference_pooled": report.reference_pooled,
                    "target": [d.isoformat() for d in report.target],
                    "by": report.by,
                    "datasets": report.datasets,
                    "columns": report.columns,
                    "skipped": [
                        {"tenant_id": t, "slice_value": v, "reason": r}
                        for t, v, r in report.skipped
                    ],
                    "incidents": [
                        {"incident_id": inc.id if inc is not None else None, "outcome": outcome}
                        for inc, outcome in report.recorded
                    ],
                }
            )
        else:
            _output.print_table(report.to_arrow(), fmt, title="drift by column")
        _output.message(
            f"against {report.reference_label}: "
            f"{len(report.drifted)} of {len(report.datasets)} dataset(s) drifted "
            f"({sum(c['drift'] for c in report.columns)} of {len(report.columns)} columns)"
            + (f"; {len(report.skipped)} skipped (on one side only)" if report.skipped else "")
        )
        if record:
            outcomes = Counter(outcome for _, outcome in report.recorded)
            _output.message(
                f"incidents: {outcomes['opened']} opened, {outcomes['extended']} extended, "
                f"{outcomes['unchanged']} unchanged, {outcomes['suppressed']} already resolved; "
                "see `assay incidents list --kind drift`"
            )
    raise typer.Exit(EXIT_FINDINGS if report.drifted else EXIT_OK)
