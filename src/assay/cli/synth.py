"""`assay synth`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import typer

from assay._errors import UsageError
from assay.cli import _output
from assay.cli._common import handle_errors


def synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write events and truth.json to.")],
    tenants: Annotated[int, typer.Option("--tenants", min=1, help="Number of tenants.")] = 20,
    users: Annotated[int, typer.Option("--users", min=1, help="Users per tenant (mean).")] = 200,
    days: Annotated[int, typer.Option("--days", min=1, help="Days of telemetry.")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 0,
    start: Annotated[
        str, typer.Option("--start", help="First day, YYYY-MM-DD (UTC).")
    ] = "2026-01-01",
    fmt: Annotated[
        Literal["jsonl", "parquet"], typer.Option("--format", help="File format to write.")
    ] = "jsonl",
) -> None:
    """Write realistic synthetic telemetry with injected incidents and a truth.json."""
    from assay.synth import SynthConfig, write

    with handle_errors():
        try:
            first = date.fromisoformat(start)
        except ValueError:
            raise UsageError(f"--start must be a date YYYY-MM-DD (got {start[:40]!r})") from None
        config = SynthConfig(tenants=tenants, users=users, days=days, seed=seed, start=first)
        with _output.progress() as bar:
            result = write(out, config, format=fmt, progress=lambda n: bar.advance("synth", n))
        _output.message(
            f"wrote {result.events:,} events in {len(result.files)} file(s) and truth.json to {out}"
        )
