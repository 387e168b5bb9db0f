"""`assay explain table FILE ...`: the slices that explain a metric's change, for any table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
import typer

from assay._errors import NotFoundError, UsageError
from assay._records import jsonable
from assay.cli import _output
from assay.cli._common import handle_errors

ExplainFormat = Literal["table", "json"]

app = typer.Typer(
    name="explain",
    help="Root cause: rank the slices that explain a metric's change.",
    no_args_is_help=True,
)


def _read(path: Path, dims: list[str]) -> pa.Table:
    """A Parquet or CSV file (by extension) as an Arrow table.

    In a CSV file, a dimension column that reads as floating point is read as text instead,
    so that versions such as ``1.10`` and ``1.1`` stay two values.
    """
    if not path.exists():
        raise NotFoundError(f"no such file: {path}; pass a Parquet or CSV file")
    is_csv = path.suffix.lower() in (".csv", ".tsv", ".txt")
    try:
        if is_csv:
            from pyarrow import csv

            parse = csv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            table = csv.read_csv(path, parse_options=parse)
            floats = [
                d
                for d in dims
                if d in table.column_names and pa.types.is_floating(table.schema.field(d).type)
            ]
            if floats:
                convert = csv.ConvertOptions(column_types=dict.fromkeys(floats, pa.string()))
                table = csv.read_csv(path, parse_options=parse, convert_options=convert)
            return table
        import pyarrow.parquet as pq

        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(
            f"could not read {path.name} as {'CSV' if is_csv else 'Parquet'} "
            f"({type(exc).__name__}); pass a .parquet or .csv file with a header row"
        ) from None


def _slice_text(s: dict[str, Any]) -> str:
    return ", ".join(f"{k}={jsonable(v)}" for k, v in s.items())


@app.command("table")
def table(
    file: Annotated[Path, typer.Argument(help="Parquet or CSV file, one row per time and slice.")],
    time_col: Annotated[str, typer.Option("--time-col", help="Column of time points.")],
    dims: Annotated[
        str, typer.Option("--dims", help="Dimension columns, comma-separated: COL[,COL...].")
    ],
    value: Annotated[str, typer.Option("--value", help="Numeric column summed into the metric.")],
    at: Annotated[
        str, typer.Option("--at", help="Time point to explain, as written in the time column.")
    ],
    total: Annotated[
        str | None,
        typer.Option("--total", help="Denominator column: the metric is sum(value)/sum(total)."),
    ] = None,
    baseline: Annotated[
        int,
        typer.Option("--baseline", min=1, help="Time points before --at that form the baseline."),
    ] = 7,
    max_order: Annotated[
        int, typer.Option("--max-order", min=1, help="Most dimensions combined in one slice.")
    ] = 3,
    top: Annotated[int, typer.Option("--top", min=1, help="Rows shown (root causes always).")] = 20,
    fmt: Annotated[
        ExplainFormat, typer.Option("--format", "-f", help="Output format: table or json.")
    ] = "table",
) -> None:
    """Rank the slices (values and combinations of --dims) that explain the change at --at.

    --at is read in the time column's type (a timestamp, a date, a number or text).
    """
    from assay.anomaly._explain import explain_table

    with handle_errors():
        columns = [c.strip() for c in dims.split(",") if c.strip()]
        data = _read(file, columns)
        result = explain_table(
            data,
            time_col=time_col,
            dims=columns,
            value=value,
            total=total,
            at=at,
            baseline=baseline,
            max_order=max_order,
            top=top,
        )
        rows = result.to_list()
        if fmt == "json":
            _output.print_json(rows)
        else:
            shown = [
                {"slice": _slice_text(r["slice"]), **{k: v for k, v in r.items() if k != "slice"}}
                for r in rows
            ]
            names = list(shown[0]) if shown else ["slice", "root_cause", "score", "share"]
            _output.print_table(
                pa.Table.from_pylist(shown) if shown else pa.table({n: [] for n in names}), "table"
            )
        n = sum(r["root_cause"] for r in rows)
        _output.message(
            f"{result.metric} {result.before:.6g} expected (mean of "
            f"{len(result.baseline_times)} time points) -> {result.after:.6g} observed; "
            + (f"{n} root-cause slice(s)" if n else "no slice explains the change")
        )
