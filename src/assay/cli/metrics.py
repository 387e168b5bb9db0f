"""`assay metrics dau|active|rolling|max-active|retention|sessions|health`."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from assay.cli import _output
from assay.cli._common import (
    FormatOpt,
    WorkspaceOpt,
    command_group,
    handle_errors,
    parse_day,
)
from assay.schema import SliceField

app = command_group(
    help="Product metrics per tenant (DuckDB by default, Spark with --engine pyspark).",
)

TenantOpt = Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="First day (YYYY-MM-DD or today-N, UTC), inclusive.")
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until", help="Last day (YYYY-MM-DD or today-N, UTC), inclusive; default: last event day."
    ),
]
ByOpt = Annotated[SliceField | None, typer.Option("--by", help="Break down by this field.")]
EngineOpt = Annotated[
    Literal["duckdb", "pyspark"] | None,
    typer.Option(
        "--engine",
        envvar="ASSAY_ENGINE",
        help="Query engine (default: the workspace's `engine` setting, duckdb).",
        show_default=False,
    ),
]
MasterOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        envvar="ASSAY_SPARK_MASTER",
        help="Spark master URL (default local[2]); executors must see the workspace path.",
    ),
]


def _run(
    metric: str,
    workspace: WorkspaceOpt,
    engine: str | None,
    spark_master: str | None,
    fmt: _output.OutputFormat,
    **kwargs: object,
) -> None:
    from assay._api import Workspace

    with handle_errors():
        since = parse_day(kwargs.pop("since"), "--since")  # type: ignore[arg-type]
        until = parse_day(kwargs.pop("until"), "--until")  # type: ignore[arg-type]
        with Workspace.open(workspace, engine=engine, spark_master=spark_master) as ws:  # type: ignore[arg-type]
            fn = getattr(ws.metrics, metric)
            table = fn(since=since, until=until, **kwargs)
        _output.print_table(table, fmt)


@app.command("dau")
def dau(
    tenant: TenantOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    by: ByOpt = None,
    workspace: WorkspaceOpt = None,
    engine: EngineOpt = None,
    spark_master: MasterOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Daily active users per tenant: columns tenant_id, day, dau."""
    _run(
        "dau", workspace, engine, spark_master, fmt, tenant=tenant, since=since, until=until, by=by
    )


@app.command("active")
def active(
    window: Annotated[
        int, typer.Option("--window", help="Trailing days (7 = WAU, 28/30 = MAU).")
    ] = 7,
    tenant: TenantOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    by: ByOpt = None,
    workspace: WorkspaceOpt = None,
    engine: EngineOpt = None,
    spark_master: MasterOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Distinct users in the trailing N days: tenant_id, day, window, active_users."""
    _run(
        "active_users",
        workspace,
        engine,
        spark_master,
        fmt,
        window=window,
        tenant=tenant,
        since=since,
        until=until,
        by=by,
    )


@app.command("rolling")
def rolling(
    window: Annotated[int, typer.Option("--window", help="Days in each window.")] = 7,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Relative drop that flags a day (0.3 = 30%).")
    ] = 0.3,
    tenant: TenantOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    by: ByOpt = None,
    workspace: WorkspaceOpt = None,
    engine: EngineOpt = None,
    spark_master: MasterOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Rolling mean DAU vs the window before: tenant_id, day, dau, dau_avg, dau_prev_avg, drop."""
    _run(
        "dau_rolling",
        workspace,
        engine,
        spark_master,
        fmt,
        window=window,
        threshold=threshold,
        tenant=tenant,
        since=since,
        until=until,
        by=by,
    )


@app.command("max-active")
def max_active(
    window: Annotated[int, typer.Option("--window", help="Consecutive days in a window.")] = 30,
    tenant: TenantOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    by: ByOpt = None,
    workspace: WorkspaceOpt = None,
    engine: EngineOpt = None,
    spark_master: MasterOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Most distinct users in any N-day window: tenant_id, window, max_active, window_start."""
    _run(
        "max_active",
        workspace,
        engine,
        spark_master,
        fmt,
        window=window,
        tenant=tenant,
        since=since,
        until=until,
        by=by,
    )


@app.command("retention")
def retention(
    tenant: TenantOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    by: ByOpt = None,
    workspace: WorkspaceOpt = None,
    engine: EngineOpt = None,
    spark_master: MasterOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Weekly cohort retention: tenant_id, cohort_week, week, users, retained, rate."""
    _run(
        "retention",
        workspace,
        engine,
        spark_master,
        fmt,
        tenant=tenant,
        since=since,
        until=until,
        by=by,
    )


@app.command("sessions")
def sessions(
    tenant: TenantOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    by: ByOpt = None,
    workspace: WorkspaceOpt = None,
    engine: EngineOpt = None,
    spark_master: MasterOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Session quality per day: sessions, turns, handoff, thumbs-down, errors, latency, cost."""
    _run(
        "sessions",
        workspace,
        engine,
        spark_master,
        fmt,
        tenant=tenant,
        since=since,
        until=until,
        by=by,
    )


@app.command("health")
def health(
    tenant: TenantOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    by: ByOpt = None,
    window: Annotated[
        int, typer.Option("--window", min=1, help="Days of the trailing active_users window.")
    ] = 7,
    workspace: WorkspaceOpt = None,
    engine: EngineOpt = None,
    spark_master: MasterOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """The daily counts `assay anomalies scan` watches (rates as successes and trials)."""
    _run(
        "health",
        workspace,
        engine,
        spark_master,
        fmt,
        tenant=tenant,
        since=since,
        until=until,
        by=by,
        window=window,
    )
