"""`assay launch check|sign`: the Responsible-AI launch gate of a registered model version."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from assay.cli import _output
from assay.cli._common import EXIT_FINDINGS, EXIT_OK, WorkspaceOpt, command_group, handle_errors

app = command_group(
    help="Launch gate: a model card, blocking criteria and a sign-off before a version may "
    "take all traffic.",
)

NameArg = Annotated[str, typer.Argument(help="The registered model name.", show_default=False)]
VersionArg = Annotated[int, typer.Argument(min=1, help="The model version.", show_default=False)]


@app.command("check")
def check(
    name: NameArg,
    version: VersionArg,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="A launch policy TOML file (default: <workspace>/launch/NAME.toml, else the "
            "default of the model's kind).",
            show_default=False,
        ),
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record/--dry-run",
            help="Write the model card and the check next to the model (default), or only print.",
        ),
    ] = True,
    workspace: WorkspaceOpt = None,
    fmt: Annotated[
        Literal["table", "json"], typer.Option("--format", "-f", help="table or json.")
    ] = "table",
) -> None:
    """Print the launch checklist (criteria and sign-off); exit 1 while it is blocked."""
    from assay._api import Workspace
    from assay.rollout._launch import LaunchPolicy, launch_check

    with handle_errors(), Workspace.open(workspace) as ws:
        pol = None if policy is None else LaunchPolicy.load(policy)
        result, _ = launch_check(ws, name, version, policy=pol, record=record)
        if fmt == "json":
            _output.print_json(result.to_dict())
        else:
            sys.stdout.write(result.to_text() + "\n")
        if record:
            _output.message(f"model card written next to {name}/{version} (model_card/)")
    raise typer.Exit(EXIT_OK if result.ready else EXIT_FINDINGS)


@app.command("sign")
def sign(
    name: NameArg,
    version: VersionArg,
    by: Annotated[str, typer.Option("--by", help="Who signs off.", show_default=False)],
    decision: Annotated[
        Literal["approve", "reject"],
        typer.Option("--decision", help="approve or reject.", show_default=False),
    ],
    notes: Annotated[
        str | None, typer.Option("--notes", help="The reviewer's notes.", show_default=False)
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Record a sign-off of a version (the latest one counts)."""
    from assay._api import Workspace
    from assay.rollout._launch import sign as record_sign

    with handle_errors(), Workspace.open(workspace) as ws:
        s = record_sign(ws, name, version, by=by, decision=decision, notes=notes or "")
        _output.message(f"{s.model}/{s.version}: {s.decision} by {s.by} at {s.signed_at}")
