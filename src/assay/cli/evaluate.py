"""`assay evaluate FILE --label COL --score COL [--slice COL]...`: a slice report of predictions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import pyarrow as pa
import typer

from assay._errors import NotFoundError, UsageError
from assay.cli import _output
from assay.cli._common import EXIT_FINDINGS, EXIT_OK, handle_errors

EvaluateFormat = Literal["table", "json", "csv", "html"]


def _read(path: Path) -> pa.Table:
    """A Parquet or CSV file as an Arrow table (by its extension; Parquet otherwise)."""
    if not path.exists():
        raise NotFoundError(f"no such file: {path}; pass a Parquet or CSV file of predictions")
    try:
        if path.suffix.lower() in (".csv", ".tsv", ".txt"):
            from pyarrow import csv

            options = csv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            return csv.read_csv(path, parse_options=options)
        import pyarrow.parquet as pq

        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(
            f"could not read {path.name} as {'CSV' if path.suffix.lower() == '.csv' else 'Parquet'}"
            f" ({type(exc).__name__}); pass a .parquet or .csv file with a header row"
        ) from None


def _column(table: pa.Table, name: str, option: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        shown = ", ".join(table.column_names[:20])
        raise UsageError(f"{option} {name!r} is not a column of the file; its columns are: {shown}")
    return table.column(name)


def evaluate(
    file: Annotated[
        Path, typer.Argument(help="Parquet or CSV file of predictions, one row per example.")
    ],
    label: Annotated[str, typer.Option("--label", help="Column of true labels (0/1 or bool).")],
    score: Annotated[str, typer.Option("--score", help="Column of model scores.")],
    slice_: Annotated[
        list[str] | None,
        typer.Option("--slice", help="Column to slice by; repeat for several."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            help="Metric to report; repeat for several (default roc_auc, average_precision, "
            "brier_score).",
            show_default=False,
        ),
    ] = None,
    weight: Annotated[
        str | None, typer.Option("--weight", help="Column of non-negative sample weights.")
    ] = None,
    min_support: Annotated[
        int, typer.Option("--min-support", min=1, help="Slices with fewer rows are never flagged.")
    ] = 30,
    n_boot: Annotated[
        int, typer.Option("--n-boot", min=0, help="Bootstrap replicates for intervals and flags.")
    ] = 200,
    alpha: Annotated[
        float,
        typer.Option("--alpha", help="1 - confidence level, and false discovery rate of flags."),
    ] = 0.05,
    pairs: Annotated[
        bool, typer.Option("--pairs/--no-pairs", help="Also report every pair of slice columns.")
    ] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    fmt: Annotated[
        EvaluateFormat,
        typer.Option("--format", "-f", help="Output format: table, json, csv or html."),
    ] = "table",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the output to this file instead of stdout."),
    ] = None,
) -> None:
    """Evaluate predictions per slice: metrics, intervals, gaps; exit 1 if a slice is flagged."""
    from assay.evaluation._slices import slice_report

    with handle_errors():
        table = _read(file)
        columns = list(dict.fromkeys(slice_ or []))
        if not columns:
            raise UsageError("pass at least one --slice COLUMN to slice the predictions by")
        report = slice_report(
            _column(table, label, "--label"),
            _column(table, score, "--score"),
            {c: _column(table, c, "--slice") for c in columns},
            metrics=tuple(metric) if metric else ("roc_auc", "average_precision", "brier_score"),
            min_support=min_support,
            n_boot=n_boot,
            alpha=alpha,
            pairs=pairs,
            seed=seed,
            sample_weight=None if weight is None else _column(table, weight, "--weight"),
        )
        if out is not None or fmt == "html":
            text = _render(report, fmt)
            if out is None:
                sys.stdout.write(text)
            else:
                out.write_text(text, encoding="utf-8")
                _output.message(f"wrote {fmt} report to {out}")
        else:
            _output.print_table(report.to_arrow(), fmt)
        n = report.n_flagged
        _output.message(
            f"{n} slice-metric row(s) significantly worse than overall"
            if n
            else "no slice is significantly worse than overall"
        )
    raise typer.Exit(EXIT_FINDINGS if report.n_flagged else EXIT_OK)


def _render(report: object, fmt: EvaluateFormat) -> str:
    """The report as text in ``fmt`` (for a file, or for HTML on stdout)."""
    import json

    from assay._records import records
    from assay.evaluation._report import SliceReport

    assert isinstance(report, SliceReport)
    if fmt == "html":
        return report.to_html()
    table = report.to_arrow()
    if fmt == "json":
        return json.dumps(records(table), ensure_ascii=False) + "\n"
    if fmt == "csv":
        return _output.csv_text(table)
    return report.to_markdown()
