"""`assay explain --metric M --tenant T --day D`: the slices that explain a tenant's metric
change on a day, with the release events near it; `assay explain table FILE ...`: the same for
any table."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

import pyarrow as pa
import typer

from assay._errors import NotFoundError, UsageError
from assay._records import slice_text
from assay.cli import _output
from assay.cli._common import WorkspaceOpt, command_group, handle_errors, parse_day
from assay.cli.metrics import EngineOpt, MasterOpt
from assay.schema import SLICE_FIELDS

ExplainFormat = Literal["table", "json"]
# Keep in step with assay.anomaly.EXPLAIN_METRICS (a test checks it); spelled out
# here so that `--help` does not import the library.
ExplainMetric = Literal[
    "dau",
    "active_users",
    "sessions",
    "handoff_rate",
    "thumbs_down_rate",
    "error_rate",
    "latency_p95",
    "cost_usd",
    "cited_rate",
    "uncited_retrieved_share",
]
_DEFAULT_DIMENSIONS = ",".join(SLICE_FIELDS)

app = command_group(
    name="explain",
    help=(
        "Root cause: rank the slices that explain a metric's change. With --metric, --tenant "
        "and --day: a tenant's workspace metric on a day, with release events; "
        "`table`: any table."
    ),
    invoke_without_command=True,
    no_args_is_help=False,
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


def _options_given(ctx: typer.Context) -> bool:
    """Whether any option was typed on the command line (not a default or an env var)."""
    return any(
        getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE" for name in ctx.params
    )


@app.callback()
def workspace_metric(
    ctx: typer.Context,
    metric: Annotated[
        ExplainMetric | None,
        typer.Option("--metric", help="The metric that changed.", show_default=False),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="The tenant whose metric changed.")
    ] = None,
    day: Annotated[
        str | None, typer.Option("--day", help="The day to explain (YYYY-MM-DD or today-N, UTC).")
    ] = None,
    baseline_days: Annotated[
        int,
        typer.Option("--baseline-days", min=1, help="Days before --day that form the baseline."),
    ] = 7,
    dimensions: Annotated[
        str,
        typer.Option("--dimensions", help="Dimensions to slice by, comma-separated."),
    ] = _DEFAULT_DIMENSIONS,
    max_order: Annotated[
        int, typer.Option("--max-order", min=1, help="Most dimensions combined in one slice.")
    ] = 3,
    top: Annotated[int, typer.Option("--top", min=1, help="Rows shown (root causes always).")] = 20,
    workspace: WorkspaceOpt = None,
    engine: EngineOpt = None,
    spark_master: MasterOpt = None,
    fmt: Annotated[
        ExplainFormat, typer.Option("--format", "-f", help="Output format: table or json.")
    ] = "table",
) -> None:
    """Rank the slices (values and combinations of --dimensions) that explain the change of a
    tenant's --metric on --day against the --baseline-days before it, and list the release
    events (first model_version, prompt_template or flight) of that window.
    """
    if ctx.invoked_subcommand is not None:
        return
    with handle_errors():
        given = {"--metric": metric, "--tenant": tenant, "--day": day}
        missing = [name for name, v in given.items() if v is None]
        if len(missing) == len(given) and not _options_given(ctx):
            typer.echo(ctx.get_help())
            raise typer.Exit(0)
        if missing:
            raise UsageError(
                f"{', '.join(missing)} missing: explaining a workspace metric needs --metric, "
                "--tenant and --day (e.g. `assay explain --metric dau --tenant acme --day "
                "2026-01-05`); `assay explain table --help` explains a table instead"
            )
        when = parse_day(day, "--day")
        assert when is not None  # --day was given (checked above)
        _explain_workspace(
            metric=str(metric),
            tenant=str(tenant),
            day=when,
            baseline_days=baseline_days,
            dimensions=[d.strip() for d in dimensions.split(",") if d.strip()],
            max_order=max_order,
            top=top,
            workspace=workspace,
            engine=engine,
            spark_master=spark_master,
            fmt=fmt,
        )


def _explain_workspace(
    *,
    metric: str,
    tenant: str,
    day: dt.date,
    baseline_days: int,
    dimensions: list[str],
    max_order: int,
    top: int,
    workspace: Path | None,
    engine: str | None,
    spark_master: str | None,
    fmt: ExplainFormat,
) -> None:
    from assay._api import Workspace
    from assay.anomaly import explain_metric

    with Workspace.open(workspace, engine=engine, spark_master=spark_master) as ws:  # type: ignore[arg-type]
        result = explain_metric(
            ws,
            metric=metric,
            tenant=tenant,
            day=day,
            baseline_days=baseline_days,
            dimensions=dimensions,
            max_order=max_order,
            top=top,
        )
        # Rollout transitions are release events too (assay.rollout sits above anomaly).
        from assay.rollout import release_events

        since = day - dt.timedelta(days=baseline_days)
        moves = release_events(ws, since, day, tenant=tenant)
        if moves:
            merged = sorted([*result.releases, *moves], key=lambda r: r["first_seen"])
            result = dataclasses.replace(result, releases=merged)
    ex = result.explanation
    n_base = len(ex.baseline_times)
    _output.message(
        f"{metric} of tenant {tenant} on {day}: {ex.before:.6g} expected (mean of {n_base} "
        f"day(s) from {ex.baseline_times[0] if n_base else day}) -> {ex.after:.6g} observed"
        + (f"; {result.note}" if result.note else "")
    )
    if fmt == "json":
        _output.print_json(result.as_dict())
        return
    columns = ["slice", "root_cause"]
    columns += ["effect"] if ex.metric == "ratio" else []
    columns += ["score", "share", "before", "after", "support"]
    shown = [{"slice": slice_text(r["slice"]), **{c: r[c] for c in columns[1:]}} for r in ex.rows]
    _output.print_table(
        pa.Table.from_pylist(shown) if shown else pa.table({c: [] for c in columns}), "table"
    )
    n = sum(r["root_cause"] for r in ex.rows)
    _output.message(f"{n} root-cause slice(s)" if n else "no slice explains the change")
    if result.releases:
        keys = ["field", "value", "first_seen", "days_before"]
        if any("rollout_id" in r for r in result.releases):
            keys += ["source", "event"]
        releases = [
            {k: r.get(k, "telemetry" if k == "source" else "first seen") for k in keys}
            for r in result.releases
        ]
        _output.print_table(pa.Table.from_pylist(releases), "table", title="release events")
    else:
        _output.message("no release events in the window")


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
    expected: Annotated[
        str | None,
        typer.Option(
            "--expected",
            help="Forecast column of --value: the expectation instead of the --baseline mean "
            "(earlier time points then only gauge the noise).",
        ),
    ] = None,
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
    from assay.anomaly import explain_table

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
            expected=expected,
        )
        rows = result.to_list()
        if fmt == "json":
            _output.print_json(rows)
        else:
            shown = [
                {"slice": slice_text(r["slice"]), **{k: v for k, v in r.items() if k != "slice"}}
                for r in rows
            ]
            names = list(shown[0]) if shown else ["slice", "root_cause", "score", "share"]
            _output.print_table(
                pa.Table.from_pylist(shown) if shown else pa.table({n: [] for n in names}), "table"
            )
        n = sum(r["root_cause"] for r in rows)
        source = (
            f"forecast {expected!r}"
            if expected is not None
            else f"mean of {len(result.baseline_times)} time points"
        )
        _output.message(
            f"{result.metric} {result.before:.6g} expected ({source}) -> "
            f"{result.after:.6g} observed; "
            + (f"{n} root-cause slice(s)" if n else "no slice explains the change")
        )
