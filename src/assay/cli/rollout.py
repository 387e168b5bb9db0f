"""`assay rollout start|status|pause|resume|abort|list|evaluate`: rollout plans and their gates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from assay._errors import UsageError
from assay.cli import _output
from assay.cli._common import (
    EXIT_FINDINGS,
    FormatOpt,
    WorkspaceOpt,
    command_group,
    handle_errors,
    parse_duration,
)

app = command_group(
    help="Rollouts: shadow, canary steps and promotion, judged by gates on user outcomes.",
)

IdArg = Annotated[
    int, typer.Argument(help="The rollout id (from `assay rollout list`).", show_default=False)
]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="Why, recorded with the transition.")
]
ShowFormat = Literal["table", "json"]
ShowFormatOpt = Annotated[
    ShowFormat, typer.Option("--format", "-f", help="Output format: table or json.")
]

_LIST_COLUMNS = (
    "id",
    "kind",
    "model",
    "field",
    "stable",
    "candidate",
    "state",
    "weight",
    "step",
    "updated_at",
)
_GATE_COLUMNS = (
    "gate",
    "metric",
    "slice",
    "stable",
    "candidate",
    "estimate",
    "p_value",
    "decision",
)


def _open(workspace: Any) -> Any:
    from assay._api import Workspace

    return Workspace.open(workspace)


def _row(r: Any) -> dict[str, Any]:
    step = f"{r.step_index + 1}/{len(r.steps)}" if r.step_index >= 0 else "shadow"
    return {
        "id": r.id,
        "kind": r.kind,
        "model": r.model,
        "field": r.field,
        "stable": r.stable,
        "candidate": r.candidate,
        "state": r.state,
        "weight": r.weight,
        "step": step,
        "updated_at": r.updated_at,
    }


def _summary(r: Any) -> None:
    _output.message(
        f"rollout {r.id}: {r.state}, candidate {r.field}={r.candidate} at weight {r.weight:g} "
        f"(stable {r.stable})"
    )


def _served_versions(ws: Any, name: str, candidate: str, stable: str | None) -> tuple[str, str]:
    """The stable (the champion unless given) and candidate versions, checked in the registry."""
    from assay.models import Registry

    registry = Registry(ws.path, getattr(ws.settings, "mlflow_uri", ""))
    cand = registry.resolve(f"{name}/{candidate}")
    if stable is None:
        champion = registry.resolve(name)
        if "champion" not in champion.aliases:
            raise UsageError(
                f"model {name!r} has no champion to compare the candidate with; promote one "
                f"(`assay models promote {name}/VERSION`) or name it with --stable VERSION"
            )
        stable = str(champion.version)
    base = registry.resolve(f"{name}/{stable}")
    return str(base.version), str(cand.version)


@app.command("start")
def start(
    name: Annotated[
        str | None,
        typer.Argument(
            help="A registered model (a served rollout); leave out with --release.",
            show_default=False,
        ),
    ] = None,
    candidate: Annotated[
        str | None,
        typer.Option("--candidate", help="The model version to roll out (with NAME)."),
    ] = None,
    release: Annotated[
        str | None,
        typer.Option(
            "--release",
            help="A release judged from telemetry alone: model_version=V, prompt_template=T "
            "or flight=F.",
        ),
    ] = None,
    stable: Annotated[
        str | None,
        typer.Option(
            "--stable",
            help="The release it replaces: FIELD=VALUE with --release; a version with NAME "
            "(default: the champion).",
        ),
    ] = None,
    shadow: Annotated[
        str, typer.Option("--shadow", help="Shadow phase first, e.g. 1h (0: none).")
    ] = "0",
    steps: Annotated[
        str, typer.Option("--steps", help="Canary weights in percent, ending at 100.")
    ] = "1,5,25,50,100",
    step_duration: Annotated[
        str, typer.Option("--step-duration", help="Least time at each step, e.g. 1h.")
    ] = "1h",
    gates: Annotated[
        Path | None,
        typer.Option("--gates", help="A TOML gates file (default: the built-in gates)."),
    ] = None,
    opt_out: Annotated[
        list[str] | None,
        typer.Option("--opt-out", help="A tenant always answered by the stable release."),
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Start a rollout: of a registered model's version (NAME --candidate VERSION), or of a
    release assay does not serve (--release FIELD=VALUE --stable FIELD=VALUE)."""
    from assay.rollout._gates import parse_gates
    from assay.rollout._plan import RolloutStore, parse_release, parse_steps

    with handle_errors():
        if (name is None) == (release is None):
            raise UsageError(
                "start takes either NAME --candidate VERSION (a served model) or --release "
                "FIELD=VALUE --stable FIELD=VALUE (telemetry only)"
            )
        weights = parse_steps(steps)
        step_s = parse_duration(step_duration, option="--step-duration")
        shadow_s = parse_duration(shadow, option="--shadow")
        gates_text = None
        if gates is not None:
            try:
                gates_text = gates.read_text(encoding="utf-8")
            except OSError as exc:
                raise UsageError(
                    f"--gates: cannot read {gates} ({exc.strerror}); give a TOML gates file"
                ) from None
            parse_gates(gates_text)
        with _open(workspace) as ws:
            if name is not None:
                if candidate is None:
                    raise UsageError(f"--candidate VERSION is needed to roll out {name}")
                field = "model_version"
                base, value = _served_versions(ws, name, candidate, stable)
            else:
                assert release is not None
                if stable is None or candidate is not None:
                    raise UsageError(
                        "--release FIELD=VALUE needs --stable FIELD=VALUE (the release it "
                        "replaces) and no --candidate"
                    )
                field, value = parse_release(release, "--release")
                base_field, base = parse_release(stable, "--stable")
                if base_field != field:
                    raise UsageError(
                        f"--release and --stable must name the same field (got {field} and "
                        f"{base_field})"
                    )
            r = RolloutStore(ws.meta).start(
                model=name,
                field=field,
                stable=base,
                candidate=value,
                steps=weights,
                step_seconds=step_s,
                shadow_seconds=shadow_s,
                gates=gates_text,
                opt_out_tenants=opt_out or (),
            )
            _summary(r)
            typer.echo(r.id)


@app.command("list")
def list_rollouts(
    all_: Annotated[bool, typer.Option("--all", help="Finished rollouts too.")] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """List rollouts, newest first (by default the live ones)."""
    from assay.rollout._plan import RolloutStore

    with handle_errors(), _open(workspace) as ws:
        found = RolloutStore(ws.meta).list(live_only=not all_)
        _output.print_table(_output.rows_table([_row(r) for r in found], _LIST_COLUMNS), fmt)


@app.command("status")
def status(
    rollout_id: IdArg,
    workspace: WorkspaceOpt = None,
    fmt: ShowFormatOpt = "table",
) -> None:
    """A rollout's state and its history of transitions."""
    from assay.rollout._plan import RolloutStore

    with handle_errors(), _open(workspace) as ws:
        store = RolloutStore(ws.meta)
        r = store.get(rollout_id)
        history = [t.__dict__ for t in store.history(rollout_id)]
        if fmt == "json":
            _output.print_json(r.as_dict() | {"history": history})
            return
        _output.print_table(_output.rows_table([_row(r)], _LIST_COLUMNS), "table")
        columns = ("at", "from_state", "to_state", "step_index", "weight", "reason")
        _output.print_table(_output.rows_table(history, columns), "table", title="history")


def _transition(action: str) -> Any:
    def command(
        rollout_id: IdArg, reason: ReasonOpt = None, workspace: WorkspaceOpt = None
    ) -> None:
        from assay.rollout._plan import RolloutStore

        with handle_errors(), _open(workspace) as ws:
            store = RolloutStore(ws.meta)
            move = getattr(store, action)
            r = move(rollout_id, reason) if reason else move(rollout_id)
            _summary(r)

    command.__doc__ = {
        "pause": "Hold a rollout where it is (its weight too) until resumed.",
        "resume": "Resume a paused rollout where it was; the step's time starts again.",
        "abort": "Stop a rollout: the candidate's weight goes to 0, the stable release serves.",
    }[action]
    return command


app.command("pause")(_transition("pause"))
app.command("resume")(_transition("resume"))
app.command("abort")(_transition("abort"))


@app.command("evaluate")
def evaluate(
    rollout_id: IdArg,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Only judge; do not move the rollout by the verdict."),
    ] = False,
    workspace: WorkspaceOpt = None,
    fmt: ShowFormatOpt = "table",
) -> None:
    """Run a rollout's gates once and act on the verdict (a roll-back sets the candidate's
    weight to 0 and opens an incident). JSON: {"verdict", "gates": [{"gate", "metric",
    "slice", "stable", "candidate", "statistic", "decision"}, ...]}. Exit 1 when the verdict
    is rollback (also with --dry-run), else 0."""
    from assay.rollout._evaluate import apply
    from assay.rollout._evaluate import evaluate as run

    with handle_errors(), _open(workspace) as ws:
        result = run(ws, rollout_id)
        moved = None if dry_run else apply(ws, result)
        if fmt == "json":
            _output.print_json(result.as_dict())
        else:
            rows = [
                {
                    "gate": g.gate,
                    "metric": g.metric,
                    "slice": g.slice,
                    "stable": g.stable["rate"],
                    "candidate": g.candidate["rate"],
                    "estimate": g.statistic["estimate"],
                    "p_value": g.statistic["p_value"],
                    "decision": g.decision,
                }
                for g in result.gates
            ]
            table = _output.rows_table(rows, _GATE_COLUMNS)
            _output.print_table(table, "table", title=f"verdict: {result.verdict}")
        if moved is not None:
            _summary(moved)
    if result.verdict == "rollback":
        raise typer.Exit(EXIT_FINDINGS)


__all__ = ["app"]
