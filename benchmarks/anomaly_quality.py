"""Detection quality of ``assay anomalies scan`` and of each detector, on synthetic telemetry.

Issue #5: on the synthetic telemetry with its ``truth.json``, every injected incident found
within one day of its onset, at least 90% of raised incidents real (precision >= 0.9), and
precision, recall, F1 and detection delay per detector.

For each seed, ``assay synth`` data (``--tenants``, ``--users``, ``--days``) is ingested into a
workspace (reused under ``$ASSAY_BENCH_DIR/anomaly-quality``), and the daily series of
``Metrics.health`` are scanned:

- ``scan``: the fleet scan (``assay.anomaly.scan_table``), tenant level, default settings;
- ``scan --by F``: the same per slice of F (locale, model_version, prompt_template);
- ``scan (all)``: the union of the four scans, as an on-call engineer running them would see;
- ``drop``, ``seasonal``, ``level``, ``auto``: each detector in online mode on every tenant x
  metric series (rates as plain ratios, no counts), flagged points at the detector's own cut,
  consecutive flags (up to 2 quiet days apart) as one incident, no false-discovery control.

Matching (written here, independently of the scan's code):

- a raised incident is **real** when its days overlap ``[start, end + 7 days]`` of an injected
  incident it can belong to: the outage's tenant (any metric: an outage moves them all); the
  handoff jump's tenant for ``handoff_rate`` (any slice) or for any metric of a
  ``model_version`` slice (the rollout moves users between versions); any tenant's
  ``latency_p95`` outside a ``prompt_template`` slice other than the regressed template;
- an injected incident is **found** when a real incident that belongs to it, on one of its own
  signals (``dau``, ``active_users`` or ``error_rate`` for the outage, ``handoff_rate`` for the
  handoff jump, ``latency_p95`` for the latency regression), starts at most one day after its
  onset; its **delay** is the days from onset to the first such start (0 when the first day is
  flagged).

Precision = real / raised, recall = found / injected, F1 their harmonic mean, pooled over seeds.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/anomaly_quality.py --seeds 1 2 3 4 5 6 7 8
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import assay
from _bench import BENCH_DIR, markdown_row, print_machine
from assay.anomaly import explain_metric, make_detector
from assay.anomaly._scan import RATE_COUNTS, WATCHED_METRICS, ScanConfig, scan_table
from assay.ingest import ingest_paths
from assay.synth import SynthConfig, write

SLICES = ("locale", "model_version", "prompt_template")
DETECTORS = ("drop", "seasonal", "level", "auto")
DAY = dt.timedelta(days=1)

Incident = dict[str, Any]  # tenant_id, metric, slice, start, end


def workspace(seed: int, tenants: int, users: int, days: int) -> tuple[Path, dict[str, Any]]:
    root = BENCH_DIR / "anomaly-quality" / f"t{tenants}-u{users}-d{days}-s{seed}"
    done = root / "done"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        out = write(
            root / "data",
            SynthConfig(
                tenants=tenants, users=users, days=days, seed=seed, start=dt.date(2026, 1, 1)
            ),
        )
        (root / "truth.json").write_text(json.dumps(out.truth), encoding="utf-8")
        with assay.Workspace.open(root / "ws", create=True) as ws:
            ingest_paths(ws, [root / "data"])
        shutil.rmtree(root / "data")
        done.write_text("ok\n", encoding="utf-8")
    return root / "ws", json.loads((root / "truth.json").read_text(encoding="utf-8"))


def belongs(inc: Incident, truth: dict[str, Any]) -> bool:
    start = dt.date.fromisoformat(truth["start"])
    end = dt.date.fromisoformat(truth["end"]) + 7 * DAY
    if inc["end"] < start or inc["start"] > end:
        return False
    kind = truth["kind"]
    if kind == "outage":
        return inc["tenant_id"] == truth["tenant_id"]
    if kind == "handoff_jump":
        return inc["tenant_id"] == truth["tenant_id"] and (
            inc["metric"] == "handoff_rate" or "model_version" in inc["slice"]
        )
    if kind == "latency_regression":
        template = inc["slice"].get("prompt_template", truth["prompt_template"])
        return inc["metric"] == "latency_p95" and template == truth["prompt_template"]
    return False


#: The metrics whose incident counts as finding an injected incident (recall): its own signal.
SIGNALS = {
    "outage": {"dau", "active_users", "error_rate"},
    "handoff_jump": {"handoff_rate"},
    "latency_regression": {"latency_p95"},
}


def evaluate(raised: list[Incident], injected: list[dict[str, Any]]) -> dict[str, Any]:
    real = sum(any(belongs(i, t) for t in injected) for i in raised)
    delays: list[int] = []
    for t in injected:
        onset = dt.date.fromisoformat(t["start"])
        starts = [
            i["start"]
            for i in raised
            if belongs(i, t) and i["metric"] in SIGNALS[t["kind"]] and i["start"] <= onset + DAY
        ]
        if starts:
            delays.append(max(0, (min(starts) - onset).days))
    return {"raised": len(raised), "real": real, "found": len(delays), "delays": delays}


def scan_incidents(
    ws: assay.Workspace, by: str | None, config: ScanConfig
) -> tuple[list[Incident], float]:
    table = ws.metrics.health(by=by)
    started = time.perf_counter()
    result = scan_table(table, by=by, config=config)
    seconds = time.perf_counter() - started
    return [
        {
            "tenant_id": c.tenant_id,
            "metric": c.metric,
            "slice": {k: v for k, v in c.slice.items()},
            "start": c.start,
            "end": c.end,
        }
        for c in result.candidates
    ], seconds


def detector_incidents(ws: assay.Workspace, name: str) -> list[Incident]:
    table = ws.metrics.health()
    out: list[Incident] = []
    tenants = table.column("tenant_id").to_pylist()
    days = table.column("day").to_pylist()
    cols = {
        c: np.asarray(table.column(c).to_numpy(zero_copy_only=False), float)
        for c in table.column_names
        if c not in ("tenant_id", "day")
    }
    for tenant in sorted(set(tenants)):
        idx = [i for i, t in enumerate(tenants) if t == tenant]
        tdays = [days[i] for i in idx]
        for metric in WATCHED_METRICS:
            if metric in RATE_COUNTS:
                num, den = RATE_COUNTS[metric]
                with np.errstate(invalid="ignore", divide="ignore"):
                    x = cols[num][idx] / cols[den][idx]
                x[~np.isfinite(x)] = np.nan
            else:
                x = cols[metric][idx]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                flags = make_detector(name, online=True).fit(x).predict(x)
            out += _runs(tenant, metric, tdays, flags)
    return out


def _runs(tenant: str, metric: str, days: list[dt.date], flags: Any, gap: int = 2) -> list:
    out: list[Incident] = []
    hits = [d for d, f in zip(days, flags, strict=True) if f]
    for d in hits:
        if out and (d - out[-1]["end"]).days <= gap + 1:
            out[-1]["end"] = d
        else:
            out.append({"tenant_id": tenant, "metric": metric, "slice": {}, "start": d, "end": d})
    return out


def explain_case(ws: assay.Workspace, truth: dict[str, Any], inc: dict[str, Any]) -> dict:
    """Explain an injected incident on its first day; right when the top-ranked slice is part
    of the injected one (the whole tenant for an outage: the top slice is empty, or nothing
    narrower is a root cause)."""
    tenant = inc["tenant_id"]
    if tenant is None:  # every tenant: explain the largest
        tenant = max(truth["tenants"], key=lambda t: t["users"])["tenant_id"]
    day = dt.date.fromisoformat(inc["start"])
    found = explain_metric(ws, metric=inc["metric"], tenant=tenant, day=day)
    rows = found.explanation.rows
    top = dict(rows[0]["slice"]) if rows else {}
    causes = [dict(r["slice"]) for r in rows if r["root_cause"]]
    want = {k: str(v) for k, v in inc["slice"].items()}
    got = {k: str(v) for k, v in top.items()}
    if not want:
        right = not causes or causes[0] == {}
    else:
        right = bool(got) and got.items() <= want.items() and bool(causes)
    return {"kind": inc["kind"], "right": right, "top": top, "causes": causes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7, 8])
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--no-detectors", action="store_true", help="only the scans")
    parser.add_argument("--fdr", type=float, default=ScanConfig().fdr, help="the scan's fdr")
    args = parser.parse_args()
    print_machine()

    methods = ["scan", *[f"scan --by {f}" for f in SLICES], "scan (all)"]
    if not args.no_detectors:
        methods += list(DETECTORS)
    pooled: dict[str, dict[str, Any]] = {
        m: {"raised": 0, "real": 0, "found": 0, "injected": 0, "delays": [], "seconds": 0.0}
        for m in methods
    }
    misses: list[str] = []
    explained: list[dict[str, Any]] = []
    for seed in args.seeds:
        ws_path, truth = workspace(seed, args.tenants, args.users, args.days)
        injected = truth["incidents"]
        with assay.Workspace.open(ws_path) as ws:
            per: dict[str, list[Incident]] = {}
            for by in (None, *SLICES):
                name = "scan" if by is None else f"scan --by {by}"
                per[name], seconds = scan_incidents(ws, by, ScanConfig(fdr=args.fdr))
                pooled[name]["seconds"] += seconds
            per["scan (all)"] = [i for k in per for i in per[k]]
            for inc in injected:
                explained.append({"seed": seed, **explain_case(ws, truth, inc)})
            if not args.no_detectors:
                for det in DETECTORS:
                    per[det] = detector_incidents(ws, det)
        for m in methods:
            r = evaluate(per[m], injected)
            p = pooled[m]
            for k in ("raised", "real", "found"):
                p[k] += r[k]
            p["injected"] += len(injected)
            p["delays"] += r["delays"]
            if m == "scan (all)":
                for i in per[m]:
                    if not any(belongs(i, t) for t in injected):
                        misses.append(f"seed {seed}: false {i}")
                for t in injected:
                    if evaluate(per[m], [t])["found"] == 0:
                        misses.append(f"seed {seed}: missed {t['kind']} {t['tenant_id']}")
        print(f"seed {seed} done", flush=True)

    header = ["method", "raised", "real", "precision", "found / injected", "recall", "F1"]
    rows = [markdown_row([*header, "mean delay (days)"]), "|---|---|---|---|---|---|---|---|"]
    for m in methods:
        p = pooled[m]
        precision = p["real"] / p["raised"] if p["raised"] else float("nan")
        recall = p["found"] / p["injected"] if p["injected"] else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        delay = float(np.mean(p["delays"])) if p["delays"] else float("nan")
        rows.append(
            markdown_row(
                [
                    m,
                    str(p["raised"]),
                    str(p["real"]),
                    f"{precision:.3f}",
                    f"{p['found']} / {p['injected']}",
                    f"{recall:.3f}",
                    f"{f1:.3f}",
                    f"{delay:.2f}",
                ]
            )
        )
    print(f"\nseeds {args.seeds}, {args.tenants} tenants x {args.users} users x {args.days} days")
    print("\n".join(rows))
    print("\n".join(misses) or "scan (all): no false or missed incident")
    right = sum(e["right"] for e in explained)
    print(f"\nexplain: injected slice ranked first for {right} of {len(explained)} incidents")
    for kind in sorted({e["kind"] for e in explained}):
        of = [e for e in explained if e["kind"] == kind]
        print(f"  {kind}: {sum(e['right'] for e in of)} of {len(of)}")
    for e in explained:
        if not e["right"]:
            print(f"  wrong: seed {e['seed']} {e['kind']}: top {e['top']}, causes {e['causes']}")


if __name__ == "__main__":
    main()
