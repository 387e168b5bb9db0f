"""`assay ingest`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, cast

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
InputFormat = Literal["auto", "jsonl", "parquet", "csv"]
#: Values --format took when it named the input format; csv now names the output format.
_LEGACY_INPUT_FORMATS = ("auto", "jsonl", "parquet")


def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders (walked) of events; .gz accepted.")
    ],
    input_format: Annotated[
        InputFormat | None,
        typer.Option(
            "--input-format",
            help="Input format of every file (default auto: detected from each file).",
            show_default=False,
        ),
    ] = None,
    max_lateness: Annotated[
        str | None,
        typer.Option(
            "--max-lateness",
            help="Reject events older than this (e.g. 30d, 12h); files accept any by default.",
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="<table|json|csv>",
            help="Output format of the summary: table, json or csv.",
        ),
    ] = "table",
    output: Annotated[
        Literal["table", "json"] | None,
        typer.Option("--output", "-o", hidden=True, help="Deprecated: use --format."),
    ] = None,
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
        read_as, fmt = _formats(fmt, input_format, output)
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
                    format=read_as,
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
        if fmt == "json":
            _output.print_json(data)
        else:
            rows = [f.as_dict() for f in summary.files]
            if fmt == "csv":
                _output.print_table(_output.rows_table(rows, _COLUMNS), "csv")
            else:
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


def _formats(
    fmt: str, input_format: InputFormat | None, output: str | None
) -> tuple[InputFormat, _output.OutputFormat]:
    """The input format and the summary's output format from --input-format, --format and the
    deprecated --output; --format auto|jsonl|parquet still names the input format, with a
    warning (before 0.2 it was the input option; --format csv is now the output format)."""
    if fmt in _LEGACY_INPUT_FORMATS:
        if input_format is not None:
            raise UsageError(
                f"--format {fmt} is an input format and --input-format {input_format} is given; "
                "--format chooses the summary's output format: table, json or csv"
            )
        _output.message(
            f"warning: --format {fmt} for the input format is deprecated; use --input-format "
            f"{fmt} (--format now chooses the summary's output format: table, json or csv)"
        )
        input_format, fmt = cast(InputFormat, fmt), "table"
    if fmt not in ("table", "json", "csv"):
        raise UsageError(
            f"--format must be table, json or csv (got {fmt[:40]!r}); the input format is "
            "--input-format auto|jsonl|parquet|csv"
        )
    if output is not None:
        _output.message(f"warning: --output is deprecated; use --format {output}")
        if fmt not in ("table", output):
            raise UsageError(f"--output {output} and --format {fmt} disagree; give only --format")
        fmt = output
    return input_format or "auto", cast(_output.OutputFormat, fmt)
