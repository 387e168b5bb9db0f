"""`assay regressions`: new model versions and prompt templates that answer worse than their
predecessors in the same tenants and days; each regression becomes an incident."""

from __future__ import annotations

import csv
import io
import sys
from typing import Annotated

import pyarrow as pa
import typer

from assay.cli import _output
from assay.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    FormatOpt,
    WorkspaceOpt,
    handle_errors,
    parse_day,
)
from assay.cli.metrics import EngineOpt, MasterOpt
from assay.schema import RELEASE_FIELDS, ReleaseField

# Columns of the table format (json and csv carry every column of the report).
_TABLE_COLUMNS = (
    "tenant_id",
    "field",
    "value",
    "comparison",
    "baseline",
    "metric",
    "start",
    "n_new",
    "n_base",
    "base_value",
    "new_value",
    "ratio",
    "q_value",
    "regression",
    "severity",
)


def regressions(
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="First release day searched (YYYY-MM-DD or today-N); default: 4 weeks "
            "before --until.",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", help="Last day compared (YYYY-MM-DD or today-N); default: last event day."
        ),
    ] = None,
    field: Annotated[
        ReleaseField | None,
        typer.Option("--field", help="model_version or prompt_template (default: both)."),
    ] = None,
    in_place: Annotated[
        bool,
        typer.Option(
            "--in-place/--new-only",
            help="Also look for values that changed in place (default), or only new values.",
        ),
    ] = True,
    record: Annotated[
        bool,
        typer.Option(
            "--record/--dry-run", help="Record incidents (default), or only print the findings."
        ),
    ] = True,
    workspace: WorkspaceOpt = None,
    engine: EngineOpt = None,
    spark_master: MasterOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Compare each new model_version / prompt_template with its predecessor (handoff,
    thumbs-down and error rates, latency p95, uncited answers and retrieved docs); record
    regressions as incidents; exit 1 if one was opened (with --dry-run: if one was found)."""
    from assay._api import Workspace
    from assay.drift import RegressionConfig, find_regressions

    with handle_errors():
        fields = [field] if field else list(RELEASE_FIELDS)
        with Workspace.open(workspace, engine=engine, spark_master=spark_master) as ws:
            report = find_regressions(
                ws,
                since=parse_day(since, "--since"),
                until=parse_day(until, "--until"),
                fields=fields,
                config=RegressionConfig(in_place=in_place),
                record=record,
            )
        table = report.to_arrow()
        ids = {
            (inc.tenant_id, inc.metric, *next(iter(inc.slice.items()))): (inc.id, outcome)
            for inc, outcome in report.recorded
            if inc is not None
        }
        if record:
            names = ("tenant_id", "metric", "field", "value", "regression")
            keys = zip(*(table.column(c).to_pylist() for c in names), strict=True)
            found = [ids.get(k[:4], (None, None)) if k[4] else (None, None) for k in keys]
            table = table.append_column("incident_id", pa.array([f[0] for f in found], pa.int64()))
            table = table.append_column("outcome", pa.array([f[1] for f in found], pa.string()))
        if fmt == "csv":
            sys.stdout.write(_csv(table))
        elif fmt == "json":
            _output.print_table(table, "json")
        else:
            extra = ["incident_id", "outcome"] if record else []
            _output.print_table(table.select([*_TABLE_COLUMNS, *extra]), "table")
        s = report.summary()
        _output.message(
            f"{s['tests']:,} tests from {s['since']} to {s['until']}: {s['comparisons']} "
            f"comparison(s), {s['regressions']} regression(s)"
            + (
                f", {s.get('opened', 0)} incident(s) opened, {s.get('extended', 0)} extended, "
                f"{s.get('suppressed', 0)} already resolved; see `assay incidents list`"
                if record
                else " (dry run: nothing recorded)"
            )
        )
    found_any = report.opened if record else len(report.regressions)
    raise typer.Exit(EXIT_FINDINGS if found_any else EXIT_OK)


def _csv(table: pa.Table) -> str:
    """CSV with full precision (the shared table printer rounds floats for people)."""
    from assay._records import records

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in records(table):
        writer.writerow(
            [
                "" if v is None else ("true" if v is True else "false" if v is False else v)
                for v in row.values()
            ]
        )
    return buf.getvalue()
