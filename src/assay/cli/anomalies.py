"""`assay anomalies series FILE ...` (any time series) and `assay anomalies scan` (the fleet)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated, Literal

import pyarrow as pa
import typer

from assay._records import causes_text, slice_text
from assay.cli import _output
from assay.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    FormatOpt,
    WorkspaceOpt,
    command_group,
    handle_errors,
    parse_day,
)
from assay.schema import SliceField

app = command_group(
    help="Anomaly detection on time series.",
)

DetectorChoice = Literal["drop", "seasonal", "level", "auto"]
SliceChoice = SliceField


@app.command("series")
def series(
    file: Annotated[Path, typer.Argument(help="CSV file with a header row, one row per time.")],
    time_col: Annotated[
        str,
        typer.Option("--time-col", help="Column of times: ISO 8601 dates or times, or numbers."),
    ],
    value_col: Annotated[str, typer.Option("--value-col", help="Column of numeric values.")],
    detector: Annotated[
        DetectorChoice,
        typer.Option("--detector", help="drop, seasonal, level, or auto (picks per series)."),
    ] = "auto",
    online: Annotated[
        bool,
        typer.Option("--online", help="Score each point from the data up to it only."),
    ] = False,
    grid: Annotated[
        bool,
        typer.Option(
            "--grid",
            help="Print the internal regular grid (merged, filled) instead of the input's rows.",
        ),
    ] = False,
    fmt: Annotated[
        _output.OutputFormat,
        typer.Option("--format", "-f", help="Output format: table, json or csv."),
    ] = "table",
) -> None:
    """Score a time series: one row per input row, with score, anomaly, alert_score, alert.

    Exit 1 if any row is an anomaly.
    """
    from assay.anomaly._detectors import SeriesWarning
    from assay.anomaly._series import describe, read_series, score_series

    with handle_errors():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SeriesWarning)
            regular = read_series(file, time_col=time_col, value_col=value_col)
            table, fitted = score_series(regular, detector=detector, online=online, grid=grid)
        for w in caught:
            if issubclass(w.category, SeriesWarning):
                _output.message(f"warning: {w.message}")
        if fmt == "csv":
            sys.stdout.write(_output.csv_text(table))
        else:
            _output.print_table(table, fmt)
        if table.num_rows and table.column("score").null_count == table.num_rows:
            _output.message(
                f"warning: no point could be scored: {table.num_rows} points are too few for "
                "this detector's windows (see docs/anomalies.md)"
            )
        found = int(table.column("anomaly").to_numpy(zero_copy_only=False).sum())
        unit = "grid points" if grid else "rows"
        _output.message(
            f"{found} anomal{'y' if found == 1 else 'ies'} in {table.num_rows} {unit} "
            f"(step {regular.step_text()}; {describe(fitted)})"
        )
    raise typer.Exit(EXIT_FINDINGS if found else EXIT_OK)


@app.command("scan")
def scan(
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="First day reported (YYYY-MM-DD or today-N); default: 7 days back."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", help="Last day reported (YYYY-MM-DD or today-N); default: last event day."
        ),
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            help="Comma-separated metrics (default all): dau, active_users, handoff_rate, "
            "thumbs_down_rate, error_rate, latency_p95, cost_usd.",
        ),
    ] = None,
    by: Annotated[
        SliceChoice | None, typer.Option("--by", help="Scan every slice of this field too.")
    ] = None,
    fdr: Annotated[
        float,
        typer.Option("--fdr", min=0.0, max=1.0, help="False discovery rate per day (BH)."),
    ] = 0.01,
    min_effect: Annotated[
        float,
        typer.Option("--min-effect", min=0.0, help="Smallest relative change that can alert."),
    ] = 0.1,
    record: Annotated[
        bool,
        typer.Option(
            "--record/--dry-run", help="Record incidents (default), or only print the findings."
        ),
    ] = True,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain/--no-explain",
            help="Explain each anomalous episode (root cause) and make the episodes that share "
            "a release cause one incident; --no-explain: one incident per tenant and onset.",
        ),
    ] = True,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Scan every tenant x metric for anomalies; record incidents; exit 1 if one was opened."""
    from assay._api import Workspace
    from assay.anomaly._scan import WATCHED_METRICS, ScanConfig
    from assay.anomaly._watch import scan_workspace

    with handle_errors():
        chosen = (
            [m.strip() for m in metrics.split(",") if m.strip()] if metrics else WATCHED_METRICS
        )
        config = ScanConfig(fdr=fdr, min_effect=min_effect)
        with Workspace.open(workspace) as ws, _output.progress() as bar:
            report = scan_workspace(
                ws,
                since=parse_day(since, "--since"),
                until=parse_day(until, "--until"),
                metrics=list(chosen),
                by=by,
                config=config,
                record=record,
                explain=explain,
                progress=lambda text: bar.task(text),
            )
        rows = _scan_rows(report, record)
        if fmt == "json":
            _output.print_json({**report.summary(), "incidents": rows})
        else:
            shown = [{k: v for k, v in r.items() if k not in ("details",)} for r in rows]
            columns = [
                "id",
                "outcome",
                "severity",
                "tenant_id",
                "slice",
                "metric",
                "start",
                "end",
                "direction",
                "expected",
                "observed",
                "root_cause",
                "title",
                "series",
            ]
            table = pa.table({c: [r.get(c) for r in shown] for c in columns})
            if not record:
                table = table.drop(["id", "outcome", "title", "series"])
            _output.print_table(table, fmt, title="anomalies")
        s = report.summary()
        _output.message(
            f"scanned {s['series']:,} series ({s['tests']:,} day tests) from {s['since']} to "
            f"{s['until']}: {len(report.result.candidates)} anomalous episode(s)"
            + (
                f", {s.get('opened', 0)} incident(s) opened, {s.get('extended', 0)} extended, "
                f"{s.get('suppressed', 0)} already resolved; see `assay incidents list`"
                if record
                else " (dry run: nothing recorded)"
            )
        )
    opened = s.get("opened", 0) if record else len(report.result.candidates)
    raise typer.Exit(EXIT_FINDINGS if opened else EXIT_OK)


def _scan_rows(report: object, record: bool) -> list[dict[str, object]]:
    from assay.anomaly import ScanReport, incident_causes

    assert isinstance(report, ScanReport)
    rows: list[dict[str, object]] = []
    if record:
        for incident, outcome in report.recorded:
            if incident is None or outcome not in ("opened", "extended"):
                continue
            d = incident.as_dict()
            causes = incident_causes(incident)
            rows.append(
                {
                    "id": d["id"],
                    "outcome": outcome,
                    **{k: d[k] for k in ("severity", "tenant_id")},
                    "slice": slice_text(d["slice"]),
                    **{
                        k: d[k]
                        for k in ("metric", "start", "end", "direction", "expected", "observed")
                    },
                    "root_cause": causes_text(causes),
                    "title": d["title"],
                    "series": len(incident.seen_in),
                    "state": d["state"],
                    "details": d["details"],
                }
            )
        return rows
    for c in report.result.candidates:
        rows.append(
            {
                "severity": c.severity,
                "tenant_id": c.tenant_id,
                "slice": slice_text(c.slice),
                "metric": c.metric,
                "start": c.start.isoformat(),
                "end": c.end.isoformat(),
                "direction": c.direction,
                "expected": c.expected,
                "observed": c.observed,
                "root_cause": "",
                "q_value": c.q_value,
            }
        )
    return rows
