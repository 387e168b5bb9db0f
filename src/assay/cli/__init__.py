"""The ``assay`` command line: ``assay <group> <command>``. Thin: parse, call, format."""

from __future__ import annotations

import importlib.metadata
from typing import Annotated

import typer

from assay._logging import configure as configure_logging
from assay.cli import anomalies as _anomalies
from assay.cli import demo as _demo
from assay.cli import drift as _drift
from assay.cli import evaluate as _evaluate
from assay.cli import explain as _explain
from assay.cli import incidents as _incidents
from assay.cli import ingest as _ingest
from assay.cli import keys as _keys
from assay.cli import launch as _launch
from assay.cli import metrics as _metrics
from assay.cli import models as _models
from assay.cli import profile as _profile
from assay.cli import quarantine as _quarantine
from assay.cli import rag as _rag
from assay.cli import regressions as _regressions
from assay.cli import rollout as _rollout
from assay.cli import serve as _serve
from assay.cli import synth as _synth
from assay.cli import workspace as _workspace
from assay.cli._common import command_group

app = command_group(
    "assay: private telemetry, product metrics and model health for AI assistants.",
    name="assay",
    pretty_exceptions_enable=False,
    add_completion=False,
    # Inherited by every command: -h is --help everywhere.
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        # The installed distribution's version: no import of the library for it.
        typer.echo(f"assay {importlib.metadata.version('assay')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print assay's version and exit.",
        ),
    ] = False,
) -> None:
    """assay: private telemetry, product metrics and model health for AI assistants."""


app.command("init")(_workspace.init)
app.command("tenants")(_workspace.tenants)
app.command("forget")(_workspace.forget)
app.command("ingest")(_ingest.ingest)
app.command("synth")(_synth.synth)
app.command("demo")(_demo.demo)
app.command("serve")(_serve.serve)
app.command("evaluate")(_evaluate.evaluate)
app.command("drift")(_drift.drift)
app.command("regressions")(_regressions.regressions)
app.add_typer(_metrics.app, name="metrics")
app.add_typer(_models.app, name="models")
app.add_typer(_keys.app, name="keys")
app.add_typer(_launch.app, name="launch")
app.add_typer(_anomalies.app, name="anomalies")
app.add_typer(_explain.app, name="explain")
app.add_typer(_incidents.app, name="incidents")
app.add_typer(_profile.app, name="profile")
app.add_typer(_quarantine.app, name="quarantine")
app.add_typer(_rollout.app, name="rollout")
app.add_typer(_rag.app, name="rag")


def main() -> None:
    """Entry point of the ``assay`` script."""
    configure_logging()
    app()


__all__ = ["app", "main"]
