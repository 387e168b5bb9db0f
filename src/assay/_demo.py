"""The demo: synthesise telemetry with known incidents, ingest it, scan every tenant x metric,
and find each injected incident again as an incident with its root cause. Runs on the embedded
default (DuckDB), with no server and no network.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from assay._api import Workspace
from assay._errors import UsageError
from assay._records import WHOLE_TENANT, causes_text, slice_text, value_text
from assay.anomaly import incident_causes, scan_workspace
from assay.drift import find_regressions
from assay.ingest import IngestSummary, ingest_paths
from assay.store import Incident
from assay.store import Workspace as StoreWorkspace
from assay.synth import SynthConfig, write

if TYPE_CHECKING:
    from assay.rollout import GateRow, Rollout

MARKER = ".assay-demo"

Say = Callable[[str], None]
Show = Callable[[pa.Table, str], None]


@dataclass
class DemoResult:
    """What the demo did and found."""

    root: Path
    workspace: Path
    events_written: int
    ingest: IngestSummary
    truth: dict[str, Any]
    found: dict[str, bool] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    regressions: list[dict[str, Any]] = field(default_factory=list)
    model: dict[str, Any] | None = None
    intent: dict[str, Any] | None = None
    rollout: dict[str, Any] | None = None
    #: An admin key of scope ``read`` made in the workspace, to sign in to the dashboard.
    dashboard_key: str | None = None


def prepare(root: Path) -> None:
    """Make ``root`` an empty demo folder; refuse to wipe a folder the demo did not make."""
    if root.exists():
        if not (root / MARKER).exists() and any(root.iterdir()):
            raise UsageError(
                f"{root} exists and is not an assay demo folder; choose another --dir or remove it"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("made by `assay demo`; safe to delete\n", encoding="utf-8")


def run_demo(
    root: Path,
    *,
    tenants: int = 20,
    users: int = 150,
    days: int = 60,
    seed: int = 11,
    end: date | None = None,
    say: Say,
    show: Show,
    progress: Callable[[str, int], None] | None = None,
    model: bool = True,
    intent_data: Literal["full", "small"] | None = "full",
    rollout: bool = True,
) -> DemoResult:
    """Run the whole demo under ``root`` and report through ``say`` and ``show``.

    The telemetry covers the ``days`` days up to ``end`` (default: yesterday, UTC, as
    ``assay synth`` does), so that the demo's workspace takes today's events over HTTP
    without a gap of silent days. With ``model`` (and the ``models`` extra installed), the last
    step trains a session-quality model, registers it as champion and monitors it; then an
    intent classifier is trained on the CLINC150 data shipped in the package (``intent_data``:
    ``full``, the 150 intents, or ``small``, a 10-intent subset; None skips it) and served by
    ``assay serve`` on 127.0.0.1 for a few predictions. With ``rollout``, a telemetry-only
    rollout whose candidate is worse in one locale is replayed on synthetic telemetry in a
    workspace of its own (and rolled back), and the launch check of a model trained above is
    shown blocked until signed.
    """
    prepare(root)
    config = SynthConfig(tenants=tenants, users=users, days=days, seed=seed, end=end, rag=True)
    say(
        f"1/9  synthesising {days} days of telemetry ({config.start} to {config.end}) for "
        f"{tenants} tenants (seed {seed}) ..."
    )
    out = write(
        root / "data",
        config,
        format="jsonl",
        progress=None if progress is None else (lambda n: progress("synthesise", n)),
    )
    truth: dict[str, Any] = out.truth
    say(f"     {out.events:,} events written to {root / 'data'}")

    say("2/9  ingesting: validate, redact, pseudonymise, deduplicate ...")
    with Workspace.open(root / "workspace", create=True) as ws:
        summary = ingest_paths(
            ws,
            [root / "data"],
            progress=None if progress is None else (lambda s, n, b: progress("ingest", n)),
        )
        t = summary.as_dict()["totals"]
        say(
            f"     {t['accepted']:,} events stored in {ws.path}, {t['duplicate']:,} duplicates, "
            f"{t['rejected']:,} rejected"
        )
        content = ws.read("content")
        redactions = int(pc.sum(content.column("redactions")).as_py() or 0)
        say(
            f"     {redactions:,} pieces of PII replaced by placeholders in "
            f"{pc.sum(pc.greater(content.column('redactions'), 0)).as_py() or 0:,} texts; "
            "user ids stored only as keyed pseudonyms"
        )
        say("     ingesting the same files again (replays are safe) ...")
        again = ingest_paths(ws, [root / "data"]).as_dict()["totals"]
        say(
            f"     {again['accepted']} accepted, {again['duplicate']:,} duplicates: nothing doubled"
        )

        say("3/9  headline metrics per tenant (last 7 days) ...")
        show(_headline(ws), "tenants")

        result = DemoResult(root, ws.path, out.events, summary, truth)
        first = date.fromisoformat(truth["start"])
        say(
            "4/9  scanning every tenant x metric for anomalies, then each locale and "
            "model_version (assay anomalies scan) ..."
        )
        for by in (None, "locale", "model_version"):
            report = scan_workspace(ws, since=first, by=by)
            result.incidents += [i for i, outcome in report.recorded if outcome == "opened" and i]
            s = report.summary()
            say(
                f"     {'tenants' if by is None else 'by ' + by}: {s['series']:,} series, "
                f"{s['tests']:,} day tests, {s.get('opened', 0)} incident(s) opened"
            )
        # Later scans extend what earlier ones opened (a slice seen in the same problem).
        result.incidents = [ws.incidents.get(i.id) for i in result.incidents]
        show(_incident_table(result.incidents), "assay incidents list")

        say("5/9  the injected incidents (truth.json), as incidents with their root cause ...")
        for injected in truth.get("incidents", []):
            kind = str(injected.get("kind"))
            matches = [i for i in result.incidents if _matches(i, injected)]
            result.found[kind] = bool(matches)
            _say_match(injected, matches, say)
            if kind == "rag_release":
                say(
                    f"    by how much, where, is it real: assay rag compare --a prompt_template="
                    f"{injected['baseline_prompt_template']} --b prompt_template="
                    f"{injected['prompt_template']} --by locale"
                )

        say(
            "6/9  release regressions: each new model_version or prompt_template against its "
            "predecessor (assay regressions) ..."
        )
        regressions = find_regressions(ws, since=first)
        result.regressions = regressions.regressions
        show(_regression_table(result.regressions), "assay regressions")
        for injected in truth.get("incidents", []):
            field_value = _release_of(injected)
            if field_value is None:
                continue
            hit = [
                r
                for r in result.regressions
                if (r["field"], r["value"]) == field_value and r["metric"] == injected["metric"]
            ]
            result.found[f"{injected['kind']} (regression)"] = bool(hit)
            say(
                f"  - {injected['kind']}: {field_value[0]} {field_value[1]} "
                + (
                    f"reported as a {injected['metric']} regression in {len(hit)} tenant(s)"
                    if hit
                    else "NOT reported as a regression"
                )
            )
        if model:
            result.model = _model_step(ws, truth, say)
    if intent_data is not None:
        tenants_seen = sorted(
            {str(i["tenant_id"]) for i in truth.get("incidents", []) if i.get("tenant_id")}
        )
        result.intent = _intent_step(
            result.workspace, tenants_seen[0] if tenants_seen else "tenant-001", intent_data, say
        )
    if rollout:
        result.rollout = _rollout_step(root, result, seed, say)
    with Workspace.open(result.workspace) as ws:
        _, result.dashboard_key = ws.keys.create(tenant_id=None, scopes=("read",))
    return result


def _model_step(ws: Workspace, truth: dict[str, Any], say: Say) -> dict[str, Any] | None:
    """Step 7: train, register and promote a session-quality model, then monitor it.

    The synthetic world knows each session's true probability of a thumbs-down
    (``truth.json``'s ``session_labels``): its ROC-AUC on the test sessions is the best any
    model can reach there, printed beside the model's so the figure can be read.
    """
    import importlib.util

    missing = [
        m
        for m in ("sklearn", "lightgbm", "mlflow", "onnxruntime")
        if not importlib.util.find_spec(m)
    ]
    if missing:
        say(
            "7/9  session-quality model: skipped, the models extra is not installed "
            "(pip install 'assay[models]'; scripts/demo.sh installs it)"
        )
        return None
    say(
        "7/9  a session-quality model: which sessions end in a thumbs-down (assay models "
        "train quality), registered in MLflow, promoted, then monitored without labels ..."
    )
    try:
        outcome = ws.models.train(model="logistic", n_boot=100)
    except UsageError as exc:  # e.g. too few days for train, validation and test weeks
        say(f"     skipped: {exc}")
        return None
    metrics = outcome.evaluation.metrics
    auc, ece = metrics.get("roc_auc", {}), metrics.get("ece", {})
    say(
        f"     {outcome.version} ({outcome.kind}, {outcome.calibration} calibration): test "
        f"ROC-AUC {_g(auc.get('estimate'))} [{_g(auc.get('ci_low'))}, {_g(auc.get('ci_high'))}], "
        f"calibration error {_g(ece.get('estimate'))}; ONNX export equal to the model to "
        f"{outcome.onnx_max_abs_diff:.1e}"
    )
    best = _bayes_auc(ws, truth, outcome.window.get("test_days") or [None, None])
    if best is not None:
        say(
            f"     the best any model can reach on these test sessions (their true "
            f"probabilities in truth.json): ROC-AUC {_g(best)}"
        )
    ws.models.promote(outcome.version.name, outcome.version.version)
    report = ws.models.monitor(outcome.version.name)
    est, real = report.estimated, report.labelled.get("realised", {})
    say(
        f"     monitoring {report.model} on {report.days[0]}..{report.days[1]}: estimated "
        f"ROC-AUC {_g(est.get('roc_auc'))} without labels, realised {_g(real.get('roc_auc'))} "
        f"where labels exist; {len(report.alerts)} alert(s)"
    )
    return {
        "version": str(outcome.version),
        "roc_auc": auc.get("estimate"),
        "bayes_roc_auc": best,
        "ece": ece.get("estimate"),
        "monitor": report.to_dict(),
    }


#: What the demo asks the served intent model (no PII, so redaction leaves them as they are).
DEMO_UTTERANCES = (
    "how do i reset my pin",
    "what is the weather like in boston tomorrow",
    "please book a table for four at an italian place tonight",
    "tell me something about the french revolution",
)


def _intent_step(
    workspace: Path, tenant: str, data: Literal["full", "small"], say: Say
) -> dict[str, Any] | None:
    """Step 8: train an intent classifier on the shipped CLINC150 data, promote it, serve it
    with ``assay serve`` on 127.0.0.1 and ask it a few utterances through ``POST
    /v1/models/intent@champion/predict`` with a tenant key of scope ``predict``."""
    import importlib.util

    missing = [m for m in ("sklearn", "mlflow", "onnxruntime") if not importlib.util.find_spec(m)]
    if missing:
        say("8/9  intent model: skipped, the models extra is not installed")
        return None
    from assay.models._intent_data import clinc150_path

    subset = "150 intents" if data == "full" else "a 10-intent subset"
    say(
        f"8/9  an intent classifier on CLINC150 ({subset}, shipped in the package): "
        "TF-IDF + logistic regression, out-of-scope threshold chosen on validation, served by "
        "assay serve ..."
    )
    with Workspace.open(workspace) as ws:
        outcome = ws.models.train_intent(clinc150_path(small=data == "small"), name="intent")
        test = outcome.summary().get("test", {})
        say(
            f"     {outcome.version}: test in-scope accuracy {_g(test.get('in_scope_accuracy'))}, "
            f"out-of-scope recall {_g(test.get('oos_recall'))}; ONNX export equal to the model "
            f"to {outcome.onnx_max_abs_diff:.1e}"
        )
        ws.models.promote(outcome.version.name, outcome.version.version)
        _, key = ws.keys.create(tenant_id=tenant, scopes=("predict",))
    answer = _serve_and_ask(workspace, key, tenant)
    for text, pred in zip(DEMO_UTTERANCES, answer["predictions"], strict=True):
        say(f"     {text!r} -> {pred['label']} ({pred['probability']:.2f})")
    recorded = answer.get("recorded") or {}
    say(
        f"     answered by {answer['model']}/{answer['version']} in {answer['ms']:.0f} ms "
        f"(one request of {len(DEMO_UTTERANCES)} utterances, the first after start); "
        f"{recorded.get('accepted', 0)} predictions recorded as events of {tenant} "
        "(intent, intent_confidence, model_version), for the scan and drift to watch"
    )
    return {"version": str(outcome.version), "test": test, "answer": answer}


def _serve_and_ask(workspace: Path, key: str, tenant: str) -> dict[str, Any]:
    """Run ``assay serve``'s app on a free port of 127.0.0.1 in a thread, POST the demo's
    utterances once, stop the server, and return the answer (plus its time, ``ms``)."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from assay.service import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(workspace), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise UsageError(
                    "the demo's inference server did not start on 127.0.0.1 within 60 s; "
                    "run `assay serve` yourself to see why"
                )
            time.sleep(0.05)
        body = {"inputs": list(DEMO_UTTERANCES), "record": True, "record_wait": True}
        started = time.perf_counter()
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/models/intent@champion/predict",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        ms = (time.perf_counter() - started) * 1000
        if reply.status_code != 200:
            raise UsageError(
                f"the demo's predict request answered {reply.status_code} (expected 200): "
                f"{reply.text[:300]}"
            )
        answer: dict[str, Any] = reply.json()
        answer["ms"] = ms
        return answer
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _headline(ws: Workspace) -> pa.Table:
    last = ws.last_event_day()
    if last is None:
        return pa.table({"tenant_id": pa.array([], pa.string())})
    since = last - timedelta(days=6)
    dau = ws.metrics.dau(since=since).to_pylist()
    mau = ws.metrics.active_users(window=28, since=last).to_pylist()
    sess = ws.metrics.sessions(since=since).to_pylist()
    rows: dict[str, dict[str, Any]] = {}
    for r in dau:
        d = rows.setdefault(r["tenant_id"], {"tenant_id": r["tenant_id"], "_dau": []})
        d["_dau"].append(r["dau"])
    for r in mau:
        if r["tenant_id"] in rows:
            rows[r["tenant_id"]]["mau_28d"] = r["active_users"]
    agg: dict[str, dict[str, float]] = {}
    for r in sess:
        a = agg.setdefault(r["tenant_id"], {"sessions": 0, "handoffs": 0.0, "p95": 0.0})
        a["sessions"] += r["sessions"]
        a["handoffs"] += (r["handoff_rate"] or 0.0) * r["sessions"]
        a["p95"] = max(a["p95"], r["latency_p95"] or 0.0)
    out = []
    for tenant, d in sorted(rows.items()):
        a = agg.get(tenant, {"sessions": 0, "handoffs": 0.0, "p95": 0.0})
        out.append(
            {
                "tenant_id": tenant,
                "dau_avg_7d": round(sum(d["_dau"]) / max(len(d["_dau"]), 1), 1),
                "mau_28d": d.get("mau_28d", 0),
                "sessions_7d": int(a["sessions"]),
                "handoff_rate_7d": round(a["handoffs"] / a["sessions"], 3)
                if a["sessions"]
                else None,
                "worst_p95_latency_ms": round(a["p95"], 1),
            }
        )
    return pa.Table.from_pylist(out)


def _release_of(injected: dict[str, Any]) -> tuple[str, str] | None:
    """The (field, value) a release-related injected incident is about, else None."""
    slice_ = injected.get("slice") or {}
    if injected.get("kind") == "handoff_jump" and "model_version" in slice_:
        return ("model_version", str(slice_["model_version"]))
    if injected.get("kind") == "latency_regression" and "prompt_template" in slice_:
        return ("prompt_template", str(slice_["prompt_template"]))
    return None


def _regression_table(rows: list[dict[str, Any]]) -> pa.Table:
    keep = ("tenant_id", "field", "value", "comparison", "baseline", "metric", "start")
    out = [
        {
            **{k: r.get(k) for k in keep},
            "base_value": round(r["base_value"], 4) if r.get("base_value") is not None else None,
            "new_value": round(r["new_value"], 4) if r.get("new_value") is not None else None,
            "severity": r.get("severity"),
        }
        for r in rows
    ]
    return pa.Table.from_pylist(out) if out else pa.table({"tenant_id": pa.array([], pa.string())})


def _incident_table(incidents: list[Incident]) -> pa.Table:
    rows = [
        {
            "id": i.id,
            "severity": i.severity,
            "title": i.title,
            "start": i.start,
            "end": i.end,
            "tenants": len({m.get("tenant_id") for m in i.seen_in}),
            "series": len(i.seen_in),
            "root_cause": _causes(i),
        }
        for i in incidents
    ]
    return pa.Table.from_pylist(rows) if rows else pa.table({"id": pa.array([], pa.int64())})


def _causes(incident: Incident) -> str:
    return causes_text(incident_causes(incident))


#: The metrics an injected incident shows in: an outage empties a tenant and fails its turns.
_SIGNALS = {
    "outage": ("dau", "active_users", "error_rate"),
    "handoff_jump": ("handoff_rate",),
    "latency_regression": ("latency_p95",),
    "rag_release": ("cited_rate", "uncited_retrieved_share"),
}


def _matches(incident: Incident, injected: dict[str, Any]) -> bool:
    """An incident is the injected one's when it is seen in one of its metrics (and tenant,
    unless the injected one hit every tenant) starting within two days of its onset: with the
    data ending yesterday the weekdays move, and an onset on a Friday may show only on the
    Sunday, the weekend's low volume giving less evidence."""
    onset = date.fromisoformat(injected["start"])
    tenant = injected.get("tenant_id")
    signals = _SIGNALS.get(str(injected.get("kind")), (injected.get("metric"),))
    return any(
        m.get("metric") in signals
        and (tenant is None or m.get("tenant_id") == tenant)
        and onset <= date.fromisoformat(str(m.get("start"))) <= onset + timedelta(days=2)
        for m in incident.seen_in
    )


def _say_match(injected: dict[str, Any], matches: list[Incident], say: Say) -> None:
    where = injected.get("tenant_id") or "every tenant"
    what = slice_text(injected.get("slice"))
    what = what if what == WHOLE_TENANT else f"({what})"
    say(f"  - {injected['kind']}: {injected['metric']} of {where} {what} from {injected['start']}")
    if not matches:
        say("    NOT found as an incident")
        return
    first = min(matches, key=lambda i: (i.start, i.id))
    more = f" (and {len(matches) - 1} more incident(s))" if len(matches) > 1 else ""
    say(
        f"    found: incident {first.id}, {first.severity}, {first.start} to {first.end}: "
        f"{first.title}{more}"
    )
    tenants = sorted({str(m.get("tenant_id")) for m in first.seen_in})
    shown = ", ".join(tenants[:6]) + (f" and {len(tenants) - 6} more" if len(tenants) > 6 else "")
    # The incident's own series (its metric, from its first day), else its first one.
    lead = next(
        (
            m
            for m in first.seen_in
            if (m.get("metric"), m.get("start")) == (first.metric, str(first.start))
        ),
        first.seen_in[0],
    )
    say(
        f"    seen in {shown}; e.g. {lead.get('metric')} of {lead.get('tenant_id')} "
        f"{slice_text(lead.get('slice'))}: expected {_g(lead.get('expected'))} -> observed "
        f"{_g(lead.get('observed'))}"
    )
    say(f"    root cause: {_causes(first) or 'none found'}")
    releases = first.details.get("releases") or []
    if releases:
        say(
            "    release events: "
            + "; ".join(f"{r['field']} {r['value']} first seen {r['first_seen']}" for r in releases)
        )
    say(f"    (assay incidents show {first.id})")


def _bayes_auc(ws: Workspace, truth: dict[str, Any], test_days: list[str | None]) -> float | None:
    """ROC-AUC of the true thumbs-down probabilities on the test days' sessions."""
    from assay.evaluation import roc_auc

    labels = truth.get("session_labels") or {}
    if not labels or None in test_days:
        return None
    true_p = dict(zip(labels["session_id"], labels["thumbs_down"], strict=True))
    rows = ws.models.dataset(
        since=date.fromisoformat(str(test_days[0])), until=date.fromisoformat(str(test_days[1]))
    )
    ids = rows.column("session_id").to_pylist()
    y = rows.column("label").to_pylist()
    kept = [(p, bool(v)) for s, v in zip(ids, y, strict=True) if (p := true_p.get(s)) is not None]
    if not kept or all(v for _, v in kept) or not any(v for _, v in kept):
        return None
    return float(roc_auc([v for _, v in kept], [p for p, _ in kept]))  # type: ignore[arg-type]


def _g(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else value_text(value)


@dataclass
class Replay:
    """A rollout replayed on synthetic telemetry (:func:`replay_rollout`).

    ``looks`` holds, per evaluation, the candidate's share of users then (percent), the verdict
    and the rollout's state afterwards; ``evidence`` the gate rows that rolled it back;
    ``exposed`` the sessions the candidate served before the rollout ended.
    """

    rollout: Rollout
    looks: list[dict[str, Any]]
    evidence: list[GateRow]
    exposed: int


def replay_rollout(
    ws: StoreWorkspace,
    scenario: str,
    *,
    steps: tuple[float, ...] = (1.0, 5.0, 25.0, 50.0, 100.0),
    sessions_per_step: int = 20_000,
    max_looks: int = 8,
    seed: int = 0,
    start: date = date(2026, 5, 4),
) -> Replay:
    """Replay a telemetry-only rollout (``--release model_version=v2 --stable
    model_version=v1``) of a synthetic scenario (``assay.synth.SCENARIOS``) against ``ws``:
    one day per evaluation, whose events (at the rollout's current candidate share) are
    stored, then the gates evaluated and the verdict applied, until the rollout ends or
    ``max_looks`` evaluations. The rollout's clock is the simulated day's."""
    from assay.rollout import RolloutStore, apply, evaluate
    from assay.synth import step_events

    now = [_midnight(start)]
    store = RolloutStore(ws.meta, clock=lambda: now[0])
    r = store.start(
        field="model_version", stable="v1", candidate="v2", steps=steps, step_seconds=86_400
    )
    looks: list[dict[str, Any]] = []
    evidence: list[GateRow] = []
    exposed = 0
    for look in range(max_looks):
        day = start + timedelta(days=look)
        step = step_events(
            scenario,
            weight=r.weight * 100,
            sessions=sessions_per_step,
            day=day,
            seed=seed,
            index=look,
        )
        exposed += sum(step.sessions["candidate"].values())
        with ws.lock.hold(ws.settings.lock_timeout_seconds):
            ws.append("events", step.events)
        now[0] = _midnight(day + timedelta(days=1))
        evaluation = evaluate(ws, r.id, until=day)
        weight = r.weight * 100
        r = apply(ws, evaluation, store=store)
        looks.append({"weight": weight, "verdict": evaluation.verdict, "state": r.state})
        if evaluation.verdict == "rollback":
            evidence = list(evaluation.failing)
        if not r.live:
            break
    return Replay(r, looks, evidence, exposed)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _rollout_step(root: Path, result: DemoResult, seed: int, say: Say) -> dict[str, Any]:
    """Step 9: replay a rollout whose candidate hands off more in one locale only, on a
    workspace of its own, and show the launch check of a model trained above blocking until
    signed."""
    from assay.synth import SCENARIOS

    scenario = SCENARIOS["locale"]
    say(
        "9/9  a rollout judged by user outcomes: model_version v1 -> v2 on synthetic telemetry, "
        f"v2 handing off {scenario.locale_handoff:.1%} of sessions in {scenario.locale} only "
        f"({scenario.handoff:.1%} elsewhere and on v1); steps 1, 5, 25, 50, 100% of users, one "
        "day each, evaluated daily (assay rollout evaluate) ..."
    )
    with Workspace.open(root / "rollout-workspace", create=True) as rws:
        replay = replay_rollout(rws, "locale", seed=seed)
        incident = (
            rws.incidents.get(replay.rollout.incident_id)
            if replay.rollout.incident_id is not None
            else None
        )
    explanation = None if incident is None else incident.details.get("explanation")
    for i, look in enumerate(replay.looks, 1):
        say(
            f"     day {i}: v2 on {look['weight']:g}% of users -> {look['verdict']} "
            f"({look['state']})"
        )
    out: dict[str, Any] = {
        "state": replay.rollout.state,
        "scenario_locale": scenario.locale,
        "looks": replay.looks,
        "evidence": [g.as_dict() for g in replay.evidence],
        "exposed_sessions": replay.exposed,
    }
    for g in replay.evidence:
        stat = g.statistic
        say(
            f"     rolled back automatically: gate {g.gate} ({g.metric}) on {g.slice}: stable "
            f"{_rate(g.stable)} vs candidate {_rate(g.candidate)}, {stat.get('name')} "
            f"p = {_g(stat.get('p_value'))}; {stat.get('reason')}"
        )
    if explanation:
        causes = [r for r in explanation["rows"] if r["root_cause"]]
        say(
            f"     incident {incident.id if incident else '?'} explains it (assay explain, v2 "
            f"against v1, by tenant, locale and platform): "
            + (
                "; ".join(
                    f"{slice_text(r['slice'])} {_pct(r['before'])} -> {_pct(r['after'])}"
                    for r in causes
                )
                or "no single slice"
            )
        )
        out["explanation"] = explanation
    if not replay.evidence:
        say(f"     NOT rolled back: the rollout ended {replay.rollout.state}")
    say(f"     {replay.exposed:,} sessions were served by v2 before the rollout ended")
    out["launch"] = _launch_step(result, say)
    return out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _rate(side: dict[str, Any]) -> str:
    rate = side.get("rate")
    text = "n/a" if rate is None else f"{rate:.2%}"
    return f"{text} ({side.get('events')}/{side.get('n')})"


def _launch_step(result: DemoResult, say: Say) -> dict[str, Any] | None:
    """The launch check of the intent (else the quality) model: blocked before a sign-off,
    then signed and checked again. (The intent model is the one step 9's rollout is about; it
    meets its default criterion, so the sign-off alone unblocks it.)"""
    trained = result.intent or result.model
    if trained is None:
        say("     launch check: skipped, no model was trained above")
        return None
    from assay.rollout import launch_ready, sign

    name, _, version = str(trained["version"]).partition("/")
    with Workspace.open(result.workspace) as ws:
        before = launch_ready(ws, name, int(version))
        say(
            f"     launch check {name}/{version} (assay launch check): "
            + ("ready" if before.ready else "blocked: " + "; ".join(before.reasons()))
        )
        sign(
            ws,
            name,
            int(version),
            by="demo reviewer",
            decision="approve",
            notes="signed by the demo",
        )
        after = launch_ready(ws, name, int(version))
    say(
        f"     signed (assay launch sign {name} {version} --by 'demo reviewer' --decision "
        "approve), checked again: "
        + ("ready" if after.ready else "still blocked: " + "; ".join(after.reasons()))
    )
    return {
        "model": f"{name}/{version}",
        "before": {"ready": before.ready, "reasons": before.reasons()},
        "after": {"ready": after.ready, "reasons": after.reasons()},
    }
