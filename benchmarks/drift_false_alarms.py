"""False alarms of `assay drift` on weeks without injected change, over synth seeds.

Issue #6: "weeks without injected change raise no drift at the default thresholds (report the
false-alarm rate over seeds)". For each seed, the workspace of ``anomaly_quality.py`` (20
tenants x 150 users x 60 days of ``assay synth``, made if missing) gets its profiles built, and
each tenant's week of days 29-35 is compared with its days 1-28 at the default thresholds. A
tenant with an injected incident overlapping days 1-35 (the outage, the handoff jump) is left
out; the latency regression starts after day 35. The synthetic world still changes slowly on
its own (growth, new users, churn, app upgrades), so this is a realistic "nothing happened"
week, not a perfectly stationary one.

Printed: the share of tenants whose dataset verdict is drift, and the share of columns flagged,
per kind and per column.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/drift_false_alarms.py --seeds 1 2 3 4 5 6 7 11
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections import Counter

import assay
from _bench import markdown_row, print_machine
from anomaly_quality import workspace
from assay.drift import drift_report
from assay.profiles import build_profiles

DAY = dt.timedelta(days=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7, 11])
    args = parser.parse_args()
    print_machine()
    datasets = drifted = 0
    columns: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    flagged_kind: Counter[str] = Counter()
    for seed in args.seeds:
        ws_path, truth = workspace(seed, 20, 150, 60)
        start = dt.date.fromisoformat(truth["start"])
        ref = (start, start + 27 * DAY)
        cur = (start + 28 * DAY, start + 34 * DAY)
        skip = {
            i["tenant_id"]
            for i in truth["incidents"]
            if i["tenant_id"] and dt.date.fromisoformat(i["start"]) <= cur[1]
        }
        with assay.Workspace.open(ws_path) as ws:
            build_profiles(ws)
            report = drift_report(ws, reference=ref, target=cur)
        for d in report.datasets:
            if d["tenant_id"] in skip:
                continue
            datasets += 1
            drifted += int(d["drift"])
        for c in report.columns:
            if c["tenant_id"] in skip:
                continue
            columns[c["column"]] += 1
            flagged[c["column"]] += int(c["drift"])
            by_kind[c["kind"]] += 1
            flagged_kind[c["kind"]] += int(c["drift"])
        print(f"seed {seed}: {len(report.drifted)} drifted datasets", flush=True)

    print(f"\nseeds {args.seeds}: days 29-35 against days 1-28, default thresholds")
    print(f"datasets (tenants) with drift: {drifted} of {datasets} ({drifted / datasets:.1%})")
    print(markdown_row(["column", "kind", "flagged", "of", "rate"]))
    print("|---|---|---|---|---|")
    for kind in sorted(by_kind):
        n = by_kind[kind]
        print(
            markdown_row(
                [
                    f"all {kind}",
                    kind,
                    str(flagged_kind[kind]),
                    str(n),
                    f"{flagged_kind[kind] / n:.1%}",
                ]
            )
        )
    for name in sorted(columns):
        n = columns[name]
        print(markdown_row([name, "", str(flagged[name]), str(n), f"{flagged[name] / n:.1%}"]))


if __name__ == "__main__":
    main()
