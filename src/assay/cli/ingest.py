"""`assay ingest`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import typer

from assay._errors import UsageError
from assay.cli import _output
from assay.cli._common import (
    EXIT_FINDINGS,
    WorkspaceOpt,
    handle_errors,
    parse_duration,
)
from assay.ingest import FileSummary, ingest_paths
from assay.store import Workspace

_COLUMNS = ("source", "format", "read", "accepted", "duplicate", "conflicting", "rejected")


def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders (walked) of events; .gz accepted.")
    ],
    fmt: Annotated[
        Literal["auto", "jsonl", "parquet", "csv"],
        typer.Option("--format", help="Input format; auto detects it from each file."),
    ] = "auto",
    max_lateness: Annotated[
        str | None,
        typer.Option(
            "--max-lateness",
            help="Reject events older than this (e.g. 30d, 12h); files accept any by default.",
        ),
    ] = None,
    output: Annotated[
        Literal["table", "json"],
        typer.Option("--output", "-o", help="Summary format on stdout: table or json."),
    ] = "table",
    profile: Annotated[
        bool | None,
        typer.Option(
            "--profile/--no-profile",
            help="Update the profiles after the ingest (default: when they were built before).",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Validate, redact, pseudonymise and store events exactly once; quarantine bad rows.

    Exit code 0 when every row was accepted or a duplicate, 1 when any row was rejected
    (the good rows are still stored), 2 on usage errors.
    """
    with handle_errors():
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise UsageError(
                f"no such file or folder: {', '.join(missing[:5])}; check the paths given to ingest"
            )
        lateness = (
            None
            if max_lateness is None
            else timedelta(seconds=parse_duration(max_lateness, option="--max-lateness"))
        )
        with Workspace.open(workspace, create=True) as ws:
            if ws.created:
                _output.message(f"created a new workspace at {ws.path}")
            with _output.progress() as bar:

                def on_progress(source: str, rows: int, _bytes: int) -> None:
                    bar.advance(f"ingest {Path(source).name}", rows)

                def on_file(fs: FileSummary) -> None:
                    if fs.error:
                        _output.error(fs.error)

                summary = ingest_paths(
                    ws,
                    paths,
                    format=fmt,
                    max_lateness=lateness,
                    progress=on_progress,
                    on_file=on_file,
                )
            if profile is not False:
                from assay.profiles import refresh_profiles

                # --profile builds even the first time; by default only profiles built before.
                with _output.days_progress() as on_days:
                    built = refresh_profiles(ws, create=bool(profile), progress=on_days)
                if built is not None:
                    _output.message(
                        f"profiles updated: {built.days_rebuilt} day(s) rebuilt from committed "
                        "events"
                    )
        data = summary.as_dict()
        if output == "json":
            _output.print_json(data)
        else:
            rows = [f.as_dict() for f in summary.files]
            _output.print_kv_table(rows, _COLUMNS, title="ingest summary")
            t = data["totals"]
            _output.message(
                f"{t['read']} rows read: {t['accepted']} accepted, {t['duplicate']} duplicate "
                f"({t['conflicting']} conflicting), {t['rejected']} rejected"
            )
            for f in summary.files:
                for rule, n in list(f.rules.items())[:5]:
                    field, _, name = rule.partition(":")
                    _output.message(f"  {Path(f.source).name}: {n} rejected, {field} broke {name}")
            if t["rejected"]:
                _output.message(
                    f"rejected rows are in the quarantine table {summary.quarantine} "
                    "(redacted, with reasons)"
                )
        if summary.total("rejected") or summary.failed_files:
            raise typer.Exit(EXIT_FINDINGS)
