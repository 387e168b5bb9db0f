"""`assay anomalies series FILE --time-col C --value-col C`: score any time series."""

from __future__ import annotations

import csv
import io
import sys
import warnings
from pathlib import Path
from typing import Annotated, Literal

import pyarrow as pa
import typer

from assay.cli import _output
from assay.cli._common import EXIT_FINDINGS, EXIT_OK, handle_errors

app = typer.Typer(help="Anomaly detection on time series.", no_args_is_help=True)

DetectorChoice = Literal["drop", "seasonal", "level", "auto"]


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
    fmt: Annotated[
        _output.OutputFormat,
        typer.Option("--format", "-f", help="Output format: table, json or csv."),
    ] = "table",
) -> None:
    """Score a time series: rows timestamp, value, score, anomaly; exit 1 if any anomaly."""
    from assay.anomaly._detectors import SeriesWarning
    from assay.anomaly._series import describe, read_series, score_series

    with handle_errors():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SeriesWarning)
            regular = read_series(file, time_col=time_col, value_col=value_col)
            table, fitted = score_series(regular, detector=detector, online=online)
        for w in caught:
            if issubclass(w.category, SeriesWarning):
                _output.message(f"warning: {w.message}")
        if fmt == "csv":
            sys.stdout.write(_csv(table))
        else:
            _output.print_table(table, fmt)
        if table.num_rows and table.column("score").null_count == table.num_rows:
            _output.message(
                f"warning: no point could be scored: {table.num_rows} points are too few for "
                "this detector's windows (see docs/anomalies.md)"
            )
        found = int(table.column("anomaly").to_numpy(zero_copy_only=False).sum())
        _output.message(
            f"{found} anomal{'y' if found == 1 else 'ies'} in {table.num_rows} points "
            f"(step {regular.step_text()}; {describe(fitted)})"
        )
    raise typer.Exit(EXIT_FINDINGS if found else EXIT_OK)


def _csv(table: pa.Table) -> str:
    """CSV with full precision (the shared table printer rounds floats for people)."""
    from assay._records import records

    rows = records(table)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["timestamp", "value", "score", "anomaly"])
    for row in rows:
        writer.writerow(
            [
                "" if v is None else ("true" if v is True else "false" if v is False else v)
                for v in row.values()
            ]
        )
    return buf.getvalue()
