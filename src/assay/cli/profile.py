"""`assay profile build`: bring the workspace's privacy-preserving profiles up to date."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import pyarrow as pa
import typer

from assay._errors import UsageError
from assay.cli import _output
from assay.cli._common import WorkspaceOpt, handle_errors

app = typer.Typer(
    help="Privacy-preserving profiles: mergeable sketches per day, tenant, slice and column.",
    no_args_is_help=True,
)

_COLUMNS = ("days_rebuilt", "days_removed", "rows_written", "seconds", "events_version")


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"{option} must be a date YYYY-MM-DD (got {value[:40]!r})") from None


@app.command("build")
def build(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Also rebuild every day from this one (YYYY-MM-DD, UTC)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Build no day after this one (YYYY-MM-DD, UTC)."),
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
        first, last = _date(since, "--since"), _date(until, "--until")
        if first is not None and last is not None and first > last:
            raise UsageError(f"--since {first} is after --until {last}; swap them")
        with Workspace.open(workspace) as ws, _output.progress() as bar:

            def on_progress(done: int, total: int) -> None:
                bar.task("profile days", total)
                bar.advance("profile days", 1)

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
