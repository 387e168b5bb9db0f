"""`assay profile build`: bring the workspace's privacy-preserving profiles up to date;
`assay profile reference save|list|delete`: frozen reference profiles for `assay drift`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import pyarrow as pa
import typer

from assay._errors import UsageError
from assay.cli import _output
from assay.cli._common import (
    FormatOpt,
    WorkspaceOpt,
    command_group,
    handle_errors,
    parse_day,
    require_tenant,
)

if TYPE_CHECKING:
    from assay.profiles import ReferenceInfo

app = command_group(
    help="Privacy-preserving profiles: mergeable sketches per day, tenant, slice and column.",
)

reference_app = command_group(
    help="Frozen reference profiles (a model's training profile) for "
    "`assay drift --reference ref:NAME`.",
)
app.add_typer(reference_app, name="reference")

_COLUMNS = ("days_rebuilt", "days_removed", "rows_written", "seconds", "events_version")
_REFERENCE_COLUMNS = (
    "name",
    "source",
    "first_day",
    "last_day",
    "days",
    "tenants",
    "pooled",
    "events",
    "rejected",
    "k",
    "created_at",
)
_REFERENCE_NUMBERS = ("days", "tenants", "events", "rejected", "k")


@app.command("build")
def build(
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Also rebuild every day from this one (YYYY-MM-DD or today-N, UTC)."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Build no day after this one (YYYY-MM-DD or today-N, UTC)."),
    ] = None,
    workspace: WorkspaceOpt = None,
    fmt: Annotated[
        Literal["table", "json"],
        typer.Option("--format", "-f", help="Output format: table or json."),
    ] = "table",
) -> None:
    """Rebuild the profiles of every day whose committed events changed since the last build
    (and every day from --since), folding values seen by fewer than 10 users into <OTHER>."""
    from assay.profiles import build_profiles
    from assay.store import Workspace

    with handle_errors():
        first, last = parse_day(since, "--since"), parse_day(until, "--until")
        if first is not None and last is not None and first > last:
            raise UsageError(f"--since {first} is after --until {last}; swap them")
        with Workspace.open(workspace) as ws, _output.days_progress() as on_progress:
            summary = build_profiles(ws, since=first, until=last, progress=on_progress)
        data = summary.as_dict()
        if fmt == "json":
            _output.print_json(data)
        else:
            _output.print_table(pa.Table.from_pylist([{c: data[c] for c in _COLUMNS}]), "table")
            _output.message(
                f"{summary.days_rebuilt} day(s) rebuilt, {summary.days_removed} removed, "
                f"{summary.rows_written} profile rows written in {summary.seconds:.2f} s"
            )


def _reference_table(infos: list[ReferenceInfo]) -> pa.Table:
    def kind(column: str) -> pa.DataType:
        if column == "pooled":
            return pa.bool_()
        return pa.int64() if column in _REFERENCE_NUMBERS else pa.string()

    schema = pa.schema([(c, kind(c)) for c in _REFERENCE_COLUMNS])
    rows = [{c: info.as_dict()[c] for c in _REFERENCE_COLUMNS} for info in infos]
    return pa.Table.from_pylist(rows, schema=schema)


@reference_app.command("save")
def reference_save(
    name: Annotated[
        str,
        typer.Argument(
            help="The reference's name: lower-case letters, digits, '.', '_', '-' (1-64)."
        ),
    ],
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="First day of the stored profiles to freeze (YYYY-MM-DD or today-N)."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", help="Last day of the stored profiles to freeze (YYYY-MM-DD or today-N)."
        ),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(
            "--events", help="Profile this events file (JSON Lines, Parquet or CSV) instead."
        ),
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")] = None,
    pooled: Annotated[
        bool,
        typer.Option("--pooled", help="Merge every tenant into one profile per slice (tenant *)."),
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite a reference of the same name.")
    ] = False,
    build: Annotated[
        bool,
        typer.Option(
            "--build/--no-build", help="Bring the profiles up to date first (with --since)."
        ),
    ] = True,
    workspace: WorkspaceOpt = None,
    fmt: Annotated[
        Literal["table", "json"],
        typer.Option("--format", "-f", help="Output format: table or json."),
    ] = "table",
) -> None:
    """Freeze the stored profiles of --since..--until, or the profile of an --events file (a
    training set), as reference NAME; later builds, forgets and ingests never change it."""
    from assay.profiles import (
        check_reference_name,
        refresh_profiles,
        save_reference,
        save_reference_events,
    )
    from assay.store import Workspace

    with handle_errors():
        check_reference_name(name)
        first, last = parse_day(since, "--since"), parse_day(until, "--until")
        if events is not None and (first is not None or last is not None):
            raise UsageError(
                "give either --since D --until D (stored profiles) or --events PATH (a file), "
                "not both"
            )
        if events is None and (first is None or last is None):
            raise UsageError(
                "give the days to freeze with --since D --until D (both), or an events file "
                "with --events PATH"
            )
        if first is not None and last is not None and first > last:
            raise UsageError(f"--since {first} is after --until {last}; swap them")
        with Workspace.open(workspace) as ws:
            if events is not None:
                info = save_reference_events(
                    ws, name, events, tenant=tenant, pooled=pooled, replace=replace
                )
            else:
                assert first is not None
                assert last is not None
                require_tenant(ws, tenant)
                if build:
                    with _output.days_progress() as on_progress:
                        refresh_profiles(ws, create=True, progress=on_progress)
                info = save_reference(
                    ws,
                    name,
                    since=first,
                    until=last,
                    tenant=tenant,
                    pooled=pooled,
                    replace=replace,
                )
        if fmt == "json":
            _output.print_json(info.as_dict())
        else:
            _output.print_table(_reference_table([info]), "table")
        rejected = (
            f"; {info.rejected} row(s) rejected and not profiled "
            f"({', '.join(f'{r} {n}' for r, n in info.rejected_rules.items())})"
            if info.rejected
            else ""
        )
        _output.message(
            f"saved reference {info.name}: {info.events} events of {info.tenants} tenant(s) "
            f"over {info.days} day(s) ({info.first_day}..{info.last_day})"
            + (", pooled" if info.pooled else "")
            + rejected
            + f"; compare with `assay drift --reference ref:{info.name}`"
        )


@reference_app.command("list")
def reference_list(workspace: WorkspaceOpt = None, fmt: FormatOpt = "table") -> None:
    """List the stored references (name, source, days, tenants, events, k)."""
    from assay.profiles import list_references
    from assay.store import Workspace

    with handle_errors(), Workspace.open(workspace) as ws:
        infos = list_references(ws)
        if fmt == "json":
            _output.print_json([info.as_dict() for info in infos])
        else:
            _output.print_table(_reference_table(infos), fmt)
        if not infos:
            _output.message("no stored references; `assay profile reference save` makes one")


@reference_app.command("delete")
def reference_delete(
    name: Annotated[str, typer.Argument(help="The reference to delete.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Delete a stored reference."""
    from assay.profiles import delete_reference
    from assay.store import Workspace

    with handle_errors(), Workspace.open(workspace) as ws:
        info = delete_reference(ws, name)
        _output.message(f"deleted reference {info.name} (saved {info.created_at})")
