"""Replays of each rollout scenario of ``assay.synth`` over N seeds: how often a rollout ends
rolled back or promoted, the candidate sessions exposed before a roll-back, the looks taken, and
the evidence's slices (issue 15). Baseline in the same run: the scenario ``equal`` (no effect).

Usage: PYTHONPATH=src .venv/bin/python benchmarks/rollout_replay.py [SEEDS] [MAX_LOOKS] [SCENARIOS]
(SCENARIOS: comma-separated, default equal,locale,slower,better)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from assay._api import Workspace
from assay._demo import replay_rollout


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    max_looks = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    print(
        "| scenario | seeds | rolled back | promoted | still live | median exposed "
        "(rolled back) | median looks | evidence slices | time |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    names = sys.argv[3] if len(sys.argv) > 3 else "equal,locale,slower,better"
    for scenario in names.split(","):
        started = time.perf_counter()
        ends, exposed, looks, slices = [], [], [], []
        for seed in range(n):
            with (
                tempfile.TemporaryDirectory() as d,
                Workspace.open(Path(d) / "ws", create=True) as ws,
            ):
                r = replay_rollout(
                    ws, scenario, sessions_per_step=20_000, max_looks=max_looks, seed=seed
                )
            ends.append(r.rollout.state)
            exposed.append(r.exposed)
            looks.append(len(r.looks))
            slices += [f"{g.gate}:{g.slice}" for g in r.evidence]
        back, promoted = ends.count("rolled_back"), ends.count("promoted")
        hit = [e for e, s in zip(exposed, ends, strict=True) if s == "rolled_back"]
        print(
            f"| {scenario} | {n} | {back} | {promoted} | {n - back - promoted} | "
            f"{statistics.median(hit) if hit else '-'} | {statistics.median(looks)} | "
            f"{', '.join(sorted(set(slices))) or '-'} | {time.perf_counter() - started:.0f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
