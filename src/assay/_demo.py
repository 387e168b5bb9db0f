"""The demo: synthesise telemetry with known incidents, ingest it, and find each incident again
in the metrics. Runs on the embedded default (DuckDB), with no server and no network.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from assay._api import Workspace
from assay._errors import UsageError
from assay.ingest import IngestSummary, ingest_paths
from assay.synth import SynthConfig, write

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
    seed: int = 7,
    say: Say,
    show: Show,
    progress: Callable[[str, int], None] | None = None,
) -> DemoResult:
    """Run the whole demo under ``root`` and report through ``say`` and ``show``."""
    prepare(root)
    config = SynthConfig(tenants=tenants, users=users, days=days, seed=seed)
    say(f"1/4  synthesising {days} days of telemetry for {tenants} tenants (seed {seed}) ...")
    out = write(
        root / "data",
        config,
        format="jsonl",
        progress=None if progress is None else (lambda n: progress("synthesise", n)),
    )
    truth: dict[str, Any] = out.truth
    say(f"     {out.events:,} events written to {root / 'data'}")

    say("2/4  ingesting: validate, redact, pseudonymise, deduplicate ...")
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

        say("3/4  headline metrics per tenant (last 7 days) ...")
        show(_headline(ws), "tenants")

        say("4/4  the injected incidents, as the metrics show them ...")
        result = DemoResult(root, ws.path, out.events, summary, truth)
        for incident in truth.get("incidents", []):
            kind = incident.get("kind")
            if kind == "outage":
                result.found["outage"] = _show_outage(ws, incident, say, show)
            elif kind == "handoff_jump":
                result.found["handoff_jump"] = _show_handoff(ws, incident, say, show)
            elif kind == "latency_regression":
                result.found["latency_regression"] = _show_latency(ws, incident, say, show)
    return result


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


def _d(value: str) -> date:
    return date.fromisoformat(value)


def _show_outage(ws: Workspace, inc: dict[str, Any], say: Say, show: Show) -> bool:
    tenant, start, end = inc["tenant_id"], _d(inc["start"]), _d(inc["end"])
    say(f"  - outage of tenant {tenant} from {start} to {end} (truth.json)")
    rolling = ws.metrics.dau_rolling(
        window=3,
        threshold=0.3,
        tenant=tenant,
        since=start - timedelta(days=3),
        until=end + timedelta(days=2),
    )
    show(rolling, f"assay metrics rolling --tenant {tenant} --window 3")
    drops = rolling.filter(pc.field("drop")).column("day").to_pylist()
    found = any(start <= d <= end + timedelta(days=2) for d in drops)
    say(f"    found: {len(drops)} day(s) flagged as drop" if found else "    NOT found")
    return found


def _show_handoff(ws: Workspace, inc: dict[str, Any], say: Say, show: Show) -> bool:
    tenant, start = inc["tenant_id"], _d(inc["start"])
    new = inc.get("slice", {}).get("model_version", "v2.1")
    say(
        f"  - handoff-rate jump in tenant {tenant}, locale {inc.get('slice', {}).get('locale')}, "
        f"after the rollout "
        f"of model_version {new} on {start} (truth.json)"
    )
    sess = ws.metrics.sessions(tenant=tenant, since=start, by="model_version")
    rates: dict[str, list[float]] = {}
    totals: dict[str, list[int]] = {}
    for r in sess.to_pylist():
        mv = r["model_version"]
        rates.setdefault(mv, []).append((r["handoff_rate"] or 0.0) * r["sessions"])
        totals.setdefault(mv, []).append(r["sessions"])
    table = pa.Table.from_pylist(
        [
            {
                "model_version": mv,
                "sessions": sum(totals[mv]),
                "handoff_rate": round(sum(rates[mv]) / max(sum(totals[mv]), 1), 3),
            }
            for mv in sorted(rates)
        ]
    )
    show(table, f"assay metrics sessions --tenant {tenant} --since {start} --by model_version")
    by_mv = {r["model_version"]: r["handoff_rate"] for r in table.to_pylist()}
    others = [v for k, v in by_mv.items() if k != new]
    found = new in by_mv and bool(others) and by_mv[new] > 1.5 * max(others)
    say("    found: the new model_version hands off far more often" if found else "    NOT found")
    return found


def _show_latency(ws: Workspace, inc: dict[str, Any], say: Say, show: Show) -> bool:
    template, start = inc.get("slice", {}).get("prompt_template", "rag-v3"), _d(inc["start"])
    say(f"  - latency regression of prompt_template {template} from {start} (truth.json)")
    before = ws.metrics.sessions(
        since=start - timedelta(days=7), until=start - timedelta(days=1), by="prompt_template"
    )
    after = ws.metrics.sessions(since=start, until=start + timedelta(days=6), by="prompt_template")

    def worst(t: pa.Table) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in t.to_pylist():
            k = r["prompt_template"]
            out[k] = max(out.get(k, 0.0), r["latency_p95"] or 0.0)
        return out

    b, a = worst(before), worst(after)
    table = pa.Table.from_pylist(
        [
            {
                "prompt_template": k,
                "p95_week_before": round(b.get(k, 0.0), 1),
                "p95_week_after": round(a.get(k, 0.0), 1),
            }
            for k in sorted(set(a) | set(b))
        ]
    )
    show(table, "assay metrics sessions --by prompt_template (worst daily p95 latency, ms)")
    found = template in a and template in b and a[template] > 1.5 * b[template]
    say("    found: p95 latency of that template rose sharply" if found else "    NOT found")
    return found
