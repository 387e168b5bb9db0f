"""`assay demo`."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated, Literal

import pyarrow as pa
import typer

from assay.cli import _output
from assay.cli._common import handle_errors


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder for the demo's data and workspace (recreated).")
    ] = Path("assay-demo"),
    tenants: Annotated[int, typer.Option("--tenants", min=1, help="Number of tenants.")] = 20,
    users: Annotated[int, typer.Option("--users", min=1, help="Users per tenant (mean).")] = 150,
    days: Annotated[int, typer.Option("--days", min=14, help="Days of telemetry.")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 11,
    intent: Annotated[
        Literal["full", "small", "none"],
        typer.Option(
            "--intent",
            help="The intent step's data: CLINC150's 150 intents (a minute or two), a "
            "10-intent subset (seconds), or none to skip the step.",
        ),
    ] = "full",
    rollout: Annotated[
        bool,
        typer.Option(
            "--rollout/--no-rollout",
            help="Replay a rollout on synthetic telemetry (rolled back: worse in one locale) "
            "and show a launch check blocking until signed (a few seconds).",
        ),
    ] = True,
) -> None:
    """Synthesise telemetry with known incidents, ingest it, and find the incidents again."""
    from assay._demo import run_demo

    started = time.monotonic()
    with handle_errors(), _output.progress() as bar:

        def show(table: pa.Table, title: str) -> None:
            _output.print_table(table, "table", title=title, max_rows=25, more_hint=None)

        result = run_demo(
            directory.absolute(),
            tenants=tenants,
            users=users,
            days=days,
            seed=seed,
            say=_output.message,
            show=show,
            progress=lambda name, n: bar.advance(name, n),
            intent_data=None if intent == "none" else intent,
            rollout=rollout,
        )
    as_incidents = {k: v for k, v in result.found.items() if not k.endswith("(regression)")}
    as_regressions = {k: v for k, v in result.found.items() if k.endswith("(regression)")}
    _output.message(
        f"\n{sum(as_incidents.values())} of {len(as_incidents)} injected incidents found as "
        f"incidents, {sum(as_regressions.values())} of {len(as_regressions)} release-related "
        f"ones as regressions ({time.monotonic() - started:.0f} s)."
    )
    ws = result.workspace
    named = [i for i in result.truth.get("incidents", []) if i.get("tenant_id")]
    tenant = named[0]["tenant_id"] if named else "<tenant>"
    onset = named[0].get("start", "<YYYY-MM-DD>") if named else "<YYYY-MM-DD>"
    week = "<first..last>"
    if "start" in result.truth:
        last = dt.date.fromisoformat(result.truth["start"]) + dt.timedelta(days=days - 1)
        week = f"{last - dt.timedelta(days=6)}..{last}"
    _output.message(
        "\nTry next:\n"
        f"  assay incidents list --workspace {ws}\n"
        f"  assay incidents show <id> --workspace {ws}\n"
        f"  assay explain --workspace {ws} --metric dau --tenant {tenant} --day {onset}\n"
        f"  assay anomalies scan --workspace {ws} --by prompt_template --dry-run\n"
        f"  assay regressions --workspace {ws} --format json\n"
        f"  assay drift --workspace {ws} --reference last:28d --target {week}\n"
        f"  assay metrics dau --workspace {ws} --tenant {tenant}\n"
        f"  assay metrics rolling --workspace {ws} --format json\n"
        f"  assay metrics sessions --workspace {ws} --by model_version\n"
        f"  assay metrics retention --workspace {ws} --format csv\n"
        f"  assay ingest --workspace {ws} {result.root / 'data'}   # a replay: all duplicates\n"
        f"  assay forget --workspace {ws} --tenant {tenant} --user <raw user id>\n"
        + (
            f"  assay models show quality@champion --workspace {ws}\n"
            f"  assay models predict quality --workspace {ws} --since {onset} --format csv\n"
            f"  assay models retrain quality --sla 2h --workspace {ws}\n"
            f"  assay models monitor quality --workspace {ws}\n"
            if result.model
            else ""
        )
        + (
            f"  assay models show intent@champion --workspace {ws}\n"
            f"  KEY=$(assay keys create --workspace {ws} --tenant {tenant} --scope predict "
            "| tail -n 1)\n"
            f"  assay serve --workspace {ws} &   # then:\n"
            "  curl -s http://127.0.0.1:8000/v1/models/intent@champion/predict "
            '-H "Authorization: Bearer $KEY" -H "Content-Type: application/json" '
            '-d \'{"inputs": ["what is the weather like"]}\'\n'
            if result.intent
            else ""
        )
        + (
            f"  assay rollout list --workspace {result.root / 'rollout-workspace'}\n"
            f"  assay launch check {result.rollout['launch']['model'].replace('/', ' ')} "
            f"--workspace {ws}\n"
            if result.rollout and result.rollout.get("launch")
            else ""
        )
        + f"  assay keys create --workspace {ws} --tenant {tenant}   # then:\n"
        f"  assay serve --workspace {ws}   # HTTP: POST /v1/events, GET /v1/metrics/dau\n"
        "See README.md and docs/ for more (docs/http.md for the HTTP service)."
    )
    if result.dashboard_key:
        _output.message(
            "\nThe dashboard (docs/dashboard.md): run\n"
            f"  assay serve --workspace {ws}\n"
            "then open http://127.0.0.1:8000/ui/ and sign in with this admin read key "
            "(made for the demo's workspace; revoke it with `assay keys revoke`):\n"
            f"  {result.dashboard_key}"
        )
