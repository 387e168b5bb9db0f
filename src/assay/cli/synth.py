"""`assay synth`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from assay._errors import UsageError
from assay.cli import _output
from assay.cli._common import handle_errors, parse_day


def synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write events and truth.json to.")],
    tenants: Annotated[int, typer.Option("--tenants", min=1, help="Number of tenants.")] = 20,
    users: Annotated[int, typer.Option("--users", min=1, help="Users per tenant (mean).")] = 200,
    days: Annotated[int, typer.Option("--days", min=1, help="Days of telemetry.")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 0,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="First day (YYYY-MM-DD or today-N, UTC); default: --days days up to --end.",
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--end",
            help="Last day (YYYY-MM-DD or today-N, UTC); default: yesterday. Not with --start.",
        ),
    ] = None,
    fmt: Annotated[
        Literal["jsonl", "parquet"], typer.Option("--format", help="File format to write.")
    ] = "jsonl",
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="Also write a CSV of model predictions to evaluate (keep it outside --out).",
        ),
    ] = None,
    rag: Annotated[
        bool,
        typer.Option(
            "--rag",
            help="Retrieval with known relevance and the injected rag_release incident; write "
            "the labelled set (qrels) to --qrels.",
        ),
    ] = False,
    qrels: Annotated[
        Path | None,
        typer.Option(
            "--qrels", help="With --rag: where to write the qrels (keep it outside --out)."
        ),
    ] = None,
) -> None:
    """Write realistic synthetic telemetry with injected incidents and a truth.json."""
    from assay.synth import SynthConfig, rag_qrels, write

    with handle_errors():
        if qrels is not None and not rag:
            raise UsageError("--qrels needs --rag (the labelled set of the RAG world)")
        config = SynthConfig(
            tenants=tenants,
            users=users,
            days=days,
            seed=seed,
            start=parse_day(start, "--start"),
            end=parse_day(end, "--end"),
            rag=rag,
        )
        with _output.progress() as bar:
            result = write(
                out,
                config,
                format=fmt,
                progress=lambda n: bar.advance("synth", n),
                predictions=predictions,
            )
        _output.message(
            f"wrote {result.events:,} events ({config.start} to {config.end}) in "
            f"{len(result.files)} file(s) and truth.json to {out}"
            + (f"; predictions to {predictions}" if predictions is not None else "")
        )
        if qrels is not None:
            qrels.parent.mkdir(parents=True, exist_ok=True)
            with qrels.open("w", encoding="utf-8") as fh:
                for row in rag_qrels(config).to_pylist():
                    fh.write(json.dumps(row) + "\n")
            _output.message(f"wrote the labelled set to {qrels}")
