"""Cost of ``assay explain`` on a workspace and of ``assay regressions``, before and after.

Runs, in a child process per code version, the calls a fleet scan makes: for each of
``--tenants`` tenants, every metric of ``EXPLAIN_METRICS`` explained on ``--day``
(``explain_metric(ws, metric=..., tenant=..., day=...)``), timing each call; then
``find_regressions(ws, record=False)`` twice. The first explain call of the process also pays
for imports and the engine's start: it is reported on its own (``first``) and left out of the
per-call figures. ``--side NAME=PATH`` (repeatable) runs the same calls with the package at
``PATH`` (a git worktree of an older commit: ``git worktree add /tmp/explain-old cf19e7a^``
then ``--side old=/tmp/explain-old/src``, the raw DuckDB SQL before the Ibis port) and prints
the ratios new / NAME. The children run one after the other; the answers of every side
(``as_dict()`` of every explanation, the regression rows) are compared with the new code's
and any difference is printed.

The workspace is only read (``record=False``). Ratios are the figure to quote: on a shared
machine absolute times move with the load.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/explain_workspace.py \\
        --workspace /tmp/assay-C/demo/workspace --day 2026-11-01 --side old=/tmp/explain-old/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"


def _child(workspace: str, day: str, tenants: int) -> dict[str, Any]:
    import datetime as dt

    import assay
    from assay.anomaly import explain_metric
    from assay.anomaly._rootcause import EXPLAIN_METRICS
    from assay.drift import find_regressions

    on = dt.date.fromisoformat(day)
    calls: list[dict[str, Any]] = []
    answers: list[Any] = []
    with assay.Workspace.open(workspace) as ws:
        for tenant in sorted(ws.tenants())[:tenants]:
            for metric in EXPLAIN_METRICS:
                t = time.perf_counter()
                ex = explain_metric(ws, metric=metric, tenant=tenant, day=on)
                calls.append(
                    {"tenant": tenant, "metric": metric, "seconds": time.perf_counter() - t}
                )
                answers.append(ex.as_dict())
        regressions = []
        for _ in range(2):
            t = time.perf_counter()
            report = find_regressions(ws, record=False)
            regressions.append(time.perf_counter() - t)
        answers.append(json.loads(json.dumps(report.rows, default=str)))
    return {"calls": calls, "regressions": regressions, "answers": answers}


def _run_side(src: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, __file__, "--child", "--workspace", args.workspace, "--day", args.day]
    cmd += ["--tenants", str(args.tenants)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"the child on {src} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


def _summary(side: dict[str, Any]) -> dict[str, float]:
    calls = side["calls"]
    seconds = [c["seconds"] for c in calls]
    # Later calls of a tenant: what a fleet scan pays once the tenant's history was read.
    seen: set[str] = set()
    first_of_tenant, later = [], []
    for c in calls[1:]:
        (later if c["tenant"] in seen else first_of_tenant).append(c["seconds"])
        seen.add(c["tenant"])
    per_metric: dict[str, list[float]] = {}
    for c in calls[1:]:
        per_metric.setdefault(c["metric"], []).append(c["seconds"])
    out = {
        "first": seconds[0],
        "median": statistics.median(seconds[1:]),
        "mean": statistics.fmean(seconds[1:]),
        "first of a tenant (median)": statistics.median(first_of_tenant or [float("nan")]),
        "later (median)": statistics.median(later),
        "regressions (first)": side["regressions"][0],
        "regressions (second)": side["regressions"][1],
    }
    out |= {f"  {m}": statistics.median(v) for m, v in per_metric.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--day", required=True, help="the day explained, YYYY-MM-DD")
    parser.add_argument("--tenants", type=int, default=3, help="tenants explained (first N)")
    parser.add_argument(
        "--side", action="append", default=[], help="NAME=PATH: the src of code to compare"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.workspace, args.day, args.tenants), default=str))
        return
    sides = {"new": _run_side(SRC, args)}
    for side in args.side:
        name, _, path = side.partition("=")
        sides[name] = _run_side(Path(path), args)
    others = [name for name in sides if name != "new"]
    summaries = {name: _summary(side) for name, side in sides.items()}
    n = len(sides["new"]["calls"])
    print(f"{n} explain calls ({args.tenants} tenants x metrics), then regressions twice")
    header = f"{'seconds':28s}" + "".join(f"{name:>10s}" for name in sides)
    print(header + "".join(f"{'new/' + name:>12s}" for name in others))
    for key in summaries["new"]:
        row = f"{key:28s}" + "".join(f"{summaries[s][key]:10.3f}" for s in sides)
        row += "".join(f"{summaries['new'][key] / summaries[o][key]:12.2f}" for o in others)
        print(row)
    for name in others:
        pairs = zip(sides["new"]["answers"], sides[name]["answers"], strict=True)
        differ = [i for i, (a, b) in enumerate(pairs) if a != b]
        print(f"answers of {name}: " + (f"DIFFER at {differ}" if differ else "identical"))


if __name__ == "__main__":
    main()
