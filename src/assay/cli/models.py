"""`assay models train|list|show|promote|predict`: the session-quality model's lifecycle."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pyarrow as pa
import typer

from assay.cli import _output
from assay.cli._common import FormatOpt, WorkspaceOpt, command_group, handle_errors, parse_day

LabelChoice = Literal["thumbs_down", "handoff", "thumbs_down_next"]
ModelChoice = Literal["auto", "logistic", "gbdt"]
ShowFormat = Literal["table", "json"]

app = command_group(
    help="Models: train the session-quality model, list, show and promote registered "
    "versions, score sessions with one.",
)

RefArg = Annotated[
    str,
    typer.Argument(
        help="A registered model: NAME (its champion, else its latest version), NAME@ALIAS "
        "or NAME/VERSION.",
        show_default=False,
    ),
]


def _open(workspace: Any) -> Any:
    from assay._api import Workspace

    return Workspace.open(workspace)


def _stage(name: str) -> None:
    if _output.err.is_terminal:
        _output.message(f"- {name}", style="dim")


def _metric_rows(metrics: dict[str, dict[str, float | None]]) -> pa.Table:
    rows = [{"metric": name, **values} for name, values in metrics.items()]
    return _output.rows_table(rows, ("metric", "estimate", "ci_low", "ci_high"))


@app.command("train")
def train(
    kind: Annotated[
        Literal["quality", "intent"],
        typer.Argument(
            help="The model to train: quality (the session-quality model) or intent (an "
            "intent classifier on --data)."
        ),
    ],
    label: Annotated[
        LabelChoice, typer.Option("--label", help="What counts as an unsatisfied session.")
    ] = "thumbs_down",
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Last day of sessions (YYYY-MM-DD, today or today-N; default: every stored day).",
            show_default=False,
        ),
    ] = None,
    days: Annotated[
        int | None,
        typer.Option("--days", min=1, help="Days of sessions ending on --until (default: all)."),
    ] = None,
    model: Annotated[
        ModelChoice,
        typer.Option("--model", help="logistic, gbdt (LightGBM), or auto (higher PR-AUC)."),
    ] = "auto",
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Registered model name (default: quality, or quality-<label> for other labels).",
            show_default=False,
        ),
    ] = None,
    allow_leakage: Annotated[
        bool,
        typer.Option("--allow-leakage", help="Train even when the leakage probe flags a feature."),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seeds training and the bootstrap.")] = 0,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="intent: CLINC150 JSON, or JSONL/CSV of text,label; clinc150 or "
            "clinc150-small for the copies shipped with assay.",
            show_default=False,
        ),
    ] = None,
    encoder: Annotated[
        str,
        typer.Option(
            "--encoder",
            help="intent: the text encoder: tfidf, or the directory of a pretrained sentence "
            "encoder (sentence-transformers layout: config.json, model.safetensors, "
            "tokenizer.json; or an ONNX export) with a logistic regression on its embeddings.",
        ),
    ] = "tfidf",
    oos_label: Annotated[
        str, typer.Option("--oos-label", help="intent: the label meaning out of scope.")
    ] = "oos",
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Train, evaluate, export to ONNX and register a new version; print it and its evaluation."""
    from assay.models._lifecycle import train as train_model

    if kind == "intent":
        _train_intent(data, name, encoder, oos_label, seed, workspace, fmt)
        return
    with handle_errors(), _open(workspace) as ws:
        outcome = train_model(
            ws,
            name,
            label=label,
            until=parse_day(until, "--until"),
            days=days,
            model=model,
            seed=seed,
            allow_leakage=allow_leakage,
            progress=_stage,
        )
        if fmt == "json":
            _output.print_json(outcome.summary())
            return
        table = _metric_rows(outcome.evaluation.metrics)
        if fmt == "csv":
            _output.print_table(table, "csv")
            return
        _output.message(
            f"registered {outcome.version} ({outcome.kind}, {outcome.calibration} calibration); "
            f"test days {outcome.window['test_days'][0]} to {outcome.window['test_days'][1]}"
        )
        _output.print_table(table, "table", title="Evaluation on the test days (95% intervals)")
        op = outcome.evaluation.operating_point
        _output.message(
            f"operating point: threshold {_output._cell(op['threshold'])}, alert rate "
            f"{_output._cell(op['alert_rate'])}, precision {_output._cell(op['precision'])}, "
            f"recall {_output._cell(op['recall'])}"
        )
        flagged = outcome.evaluation.slices.flagged()
        if flagged.num_rows:
            _output.print_table(
                flagged.select(["feature", "value", "metric", "support", "estimate", "overall"]),
                "table",
                title="Slices worse than overall",
            )


def _train_intent(
    data: str | None,
    name: str | None,
    encoder: str,
    oos_label: str,
    seed: int,
    workspace: Any,
    fmt: Literal["table", "json", "csv"],
) -> None:
    from assay._errors import UsageError
    from assay.models._intent import train_intent_model

    with handle_errors():
        if not data:
            raise UsageError(
                "assay models train intent needs --data FILE (CLINC150 JSON, or JSONL/CSV of "
                "text,label; clinc150 or clinc150-small for the copies shipped with assay)"
            )
        with _open(workspace) as ws:
            outcome = train_intent_model(
                ws,
                data,
                name=name or "intent",
                encoder=encoder,
                oos_label=oos_label,
                seed=seed,
                progress=_stage,
            )
        summary = outcome.summary()
        rows = [
            {"metric": k, "valid": summary["valid"].get(k), "test": summary["test"].get(k)}
            for k in summary["valid"]
        ]
        table = _output.rows_table(rows, ("metric", "valid", "test"))
        if fmt != "table":
            _output.print_json(summary) if fmt == "json" else _output.print_table(table, fmt)
            return
        _output.message(
            f"registered {outcome.version} (C {summary['C']:g}, OOS threshold "
            f"{summary['threshold']:.2f} chosen on validation, {summary['labels']} labels)"
        )
        _output.print_table(table, "table", title="Intent model: validation and test")


@app.command("list")
def list_models(workspace: WorkspaceOpt = None, fmt: FormatOpt = "table") -> None:
    """List every registered model version with its aliases and test metrics."""
    from assay.models._lifecycle import list_models as list_versions

    with handle_errors(), _open(workspace) as ws:
        _output.print_table(list_versions(ws), fmt)


@app.command("show")
def show(
    ref: RefArg,
    workspace: WorkspaceOpt = None,
    fmt: Annotated[
        ShowFormat, typer.Option("--format", "-f", help="Output format: table or json.")
    ] = "table",
) -> None:
    """Show one model version: aliases, parameters, metrics and tags."""
    from assay.models._lifecycle import show as show_version

    with handle_errors(), _open(workspace) as ws:
        data = show_version(ws, ref)
        if fmt == "json":
            _output.print_json(data)
            return
        rows = [
            {"section": "version", "key": k, "value": str(data[k])}
            for k in ("name", "version", "created", "source")
        ]
        rows.append({"section": "version", "key": "aliases", "value": ", ".join(data["aliases"])})
        for section in ("params", "metrics", "tags"):
            rows += [
                {"section": section, "key": k, "value": str(v)}
                for k, v in sorted(data[section].items())
            ]
        _output.print_table(_output.rows_table(rows, ("section", "key", "value")), "table")


@app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="The registered model name.", show_default=False)],
    version: Annotated[
        int, typer.Argument(min=1, help="The version to promote.", show_default=False)
    ],
    alias: Annotated[
        str, typer.Option("--alias", help="The alias to set: champion or challenger.")
    ] = "champion",
    workspace: WorkspaceOpt = None,
) -> None:
    """Point an alias (champion by default) at a version."""
    from assay.models._lifecycle import promote as promote_version

    with handle_errors(), _open(workspace) as ws:
        ref = promote_version(ws, name, version, alias)
        _output.message(f"{ref.name}@{alias} -> version {ref.version}")


@app.command("predict")
def predict(
    ref: RefArg,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="First day of sessions (YYYY-MM-DD, today or today-N).",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Last day of sessions (YYYY-MM-DD, today or today-N).",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Score sessions with a model's ONNX export: tenant_id, session_id, day, score."""
    from assay.models._lifecycle import predict as predict_scores

    with handle_errors(), _open(workspace) as ws:
        table = predict_scores(
            ws, ref, since=parse_day(since, "--since"), until=parse_day(until, "--until")
        )
        _output.print_table(table, fmt, max_rows=50 if fmt == "table" else None)


# -- retrain, runs, monitor (helper G) -----------------------------------------------------------


@app.command("retrain")
def retrain(
    kind: Annotated[
        Literal["quality"],
        typer.Argument(help="The model to retrain: quality (the session-quality model)."),
    ],
    sla: Annotated[
        str,
        typer.Option(
            "--sla", help="Longest acceptable run (e.g. 2h, 90m); longer opens an incident."
        ),
    ] = "2h",
    label: Annotated[
        LabelChoice, typer.Option("--label", help="What counts as an unsatisfied session.")
    ] = "thumbs_down",
    days: Annotated[
        int, typer.Option("--days", min=1, help="Days of sessions ending on --until.")
    ] = 60,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Last day of sessions (YYYY-MM-DD, today or today-N; default: last stored day).",
            show_default=False,
        ),
    ] = None,
    max_ece: Annotated[
        float,
        typer.Option("--max-ece", min=0.0, max=1.0, help="Largest calibration error that passes."),
    ] = 0.05,
    model: Annotated[
        ModelChoice,
        typer.Option("--model", help="logistic, gbdt (LightGBM), or auto (higher PR-AUC)."),
    ] = "auto",
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Registered model name (default as for train).", show_default=False
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds training and the bootstrap.")] = 0,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Retrain on the latest window, compare with the champion on the same test days, and set
    the candidate as challenger only if it passes the gate (exit code 1 when rejected)."""
    from assay.models._retrain import parse_duration
    from assay.models._retrain import retrain as run_retrain

    with handle_errors(), _open(workspace) as ws:
        out = run_retrain(
            ws,
            name,
            label=label,
            days=days,
            until=parse_day(until, "--until"),
            sla_seconds=parse_duration(sla),
            max_ece=max_ece,
            model=model,
            seed=seed,
            progress=_stage,
        )
        if fmt == "json":
            _output.print_json(out.summary())
        else:
            stages = _output.rows_table(out.stages, ("stage", "seconds"))
            if fmt == "csv":
                _output.print_table(stages, "csv")
            else:
                _output.message(
                    f"run {out.run_id}: {out.outcome} (candidate {out.candidate or 'none'}, "
                    f"champion {out.champion or 'none'}); {out.seconds:.1f}s of a "
                    f"{out.sla_seconds:.0f}s SLA"
                )
                if out.outcome == "champion":
                    _output.message("no champion yet: the passing candidate is now the champion")
                for reason in (out.gate or {}).get("reasons", []):
                    _output.message(f"gate: {reason}")
                if out.error and out.outcome == "rejected":
                    _output.message(out.error)
                if out.incidents:
                    _output.message(f"incidents: {', '.join(map(str, out.incidents))}")
                _output.print_table(stages, "table", title="Stages")
        if out.outcome == "rejected":
            raise typer.Exit(1)


@app.command("runs")
def runs(
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most recent runs to show.")] = 20,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """List the latest model job runs (retrain, monitor): outcome, versions, duration."""
    from assay.models._retrain import runs as list_runs

    with handle_errors(), _open(workspace) as ws:
        table = list_runs(ws.meta, limit=limit)
        if fmt == "table":
            table = table.drop(["stages"])
        _output.print_table(table, fmt)


@app.command("monitor")
def monitor(
    kind: Annotated[
        str,
        typer.Argument(
            help="The model to monitor: quality (its champion), or NAME[@ALIAS|/VERSION].",
        ),
    ],
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="First day of sessions (YYYY-MM-DD, today or today-N; default: the last 7 days).",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Last day of sessions (default: the last stored day).",
            show_default=False,
        ),
    ] = None,
    max_auc_drop: Annotated[
        float,
        typer.Option("--max-auc-drop", help="Estimated ROC-AUC drop that opens an incident."),
    ] = 0.05,
    max_ap_drop: Annotated[
        float,
        typer.Option("--max-ap-drop", help="Estimated PR-AUC relative drop that opens one."),
    ] = 0.3,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Record neither the run nor incidents.")
    ] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Estimate the champion's ROC-AUC, PR-AUC and precision on recent sessions without labels
    (CBPE), compare with realised values where labels exist, report score and feature drift."""
    from assay.models._monitor import monitor as run_monitor

    with handle_errors(), _open(workspace) as ws:
        report = run_monitor(
            ws,
            kind,
            since=parse_day(since, "--since"),
            until=parse_day(until, "--until"),
            max_auc_drop=max_auc_drop,
            max_ap_drop=max_ap_drop,
            record=not dry_run,
        )
        if fmt == "json":
            _output.print_json(report.to_dict())
            return
        ref, est = report.reference, report.estimated
        lab = report.labelled
        rows = [
            {
                "metric": m,
                "reference": ref.get(m),
                "estimated": est.get(m),
                "labelled_estimated": (lab.get("estimated") or {}).get(m),
                "labelled_realised": (lab.get("realised") or {}).get(m),
            }
            for m in ("roc_auc", "average_precision", "precision", "alert_rate")
        ]
        cols = ("metric", "reference", "estimated", "labelled_estimated", "labelled_realised")
        table = _output.rows_table(rows, cols)
        if fmt == "csv":
            _output.print_table(table, "csv")
            return
        _output.message(
            f"{report.model} on {report.days[0]} to {report.days[1]}: {est['rows']} sessions, "
            f"{(lab.get('realised') or {}).get('rows', 0)} with a closed label window"
        )
        _output.print_table(
            table, "table", title="Reference (test days), estimated (CBPE), realised"
        )
        drift = report.score_drift
        if drift:
            _output.message(
                f"score drift: {'yes' if drift['drift'] else 'no'} (mean "
                f"{_output._cell(drift['reference_mean'])} -> "
                f"{_output._cell(drift['current_mean'])}, PSI {_output._cell(drift['psi'])})"
            )
        drifted = [r["feature"] for r in report.feature_drift if r["drift"]]
        _output.message(f"features drifted: {', '.join(drifted) if drifted else 'none'}")
        for a in report.alerts:
            _output.message(
                f"ALERT: estimated {a['metric']} {_output._cell(a['estimate'])} below "
                f"{_output._cell(a['bound'])} (reference {_output._cell(a['reference'])})"
            )
        if report.incidents:
            _output.message(f"incidents: {', '.join(map(str, report.incidents))}")
