"""Point-in-time training set build against one hand-written DuckDB ``GROUP BY session_id``.

Goal (issue #13): on 10 M events, ``ws.models.dataset()`` (default label ``thumbs_down``) takes
at most 3x the time of one hand-written DuckDB query grouping the same events by session and
computing the same session aggregates (turns, latency mean and max, token means, errors,
retrieved and cited documents, first event time, last turn time), in the same run; memory
flat in events.

The sides, each over the workspace's current Parquet files, timed in this process, best of
``--repeat`` rounds after an untimed warm-up:

``assay``
    ``with Workspace.open(ws) as w: w.models.dataset()`` (opening the workspace and its
    DuckDB engine included): prediction times, point-in-time session features, user and
    tenant history, labels, closed windows, Arrow output.
``sql``
    One ``SELECT ... FROM read_parquet(files) GROUP BY tenant_id, session_id`` on a new
    DuckDB connection, fetched as Arrow. It reads no prediction time (every event of the
    session counts) and no history: the floor under any per-session feature build.

Peak resident memory of each side is measured in a child process of its own (the child's
``VmHWM``), at the given size; run two sizes to see how it grows. Use ``--repeat 1`` at 10 M
events on a shared machine: one ``assay`` round there takes tens of seconds.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/models_dataset.py --events 1000000
    PYTHONPATH=src .venv/bin/python benchmarks/models_dataset.py --events 10000000 --repeat 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

import _bench
from _bench import mib, ratio, secs

GOAL = 3.0

_SQL = """
SELECT tenant_id, session_id,
       count(*) FILTER (WHERE event_type = 'turn') AS n_turns,
       avg(latency_ms) FILTER (WHERE event_type = 'turn') AS latency_mean_ms,
       max(latency_ms) FILTER (WHERE event_type = 'turn') AS latency_max_ms,
       avg(tokens_in) FILTER (WHERE event_type = 'turn') AS tokens_in_mean,
       avg(tokens_out) FILTER (WHERE event_type = 'turn') AS tokens_out_mean,
       count(*) FILTER (WHERE event_type = 'error') AS n_errors,
       sum(coalesce(len(retrieved_doc_ids), 0)) FILTER (WHERE event_type = 'turn') AS retrieved,
       sum(coalesce(len(cited_doc_ids), 0)) FILTER (WHERE event_type = 'turn') AS cited,
       min(event_time) AS start,
       max(event_time) FILTER (WHERE event_type = 'turn') AS pt
FROM read_parquet({files}, hive_partitioning = true)
GROUP BY tenant_id, session_id
"""


def _files(workspace: Path) -> list[str]:
    return list(DeltaTable(str(workspace / "events")).file_uris())


def run_sql(workspace: Path) -> pa.Table:
    files = "[" + ", ".join(f"'{f}'" for f in _files(workspace)) + "]"
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(_SQL.format(files=files)).to_arrow_table()
    finally:
        con.close()


def run_assay(workspace: Path) -> pa.Table:
    from assay import Workspace

    with Workspace.open(workspace) as ws:
        return ws.models.dataset()


_SIDES: dict[str, Any] = {"assay": run_assay, "sql": run_sql}


def _child_rss(side: str, workspace: Path) -> int:
    """Peak RSS of one side alone, in a child of its own.

    The child reports its own ``VmHWM``: ``ru_maxrss`` from ``wait4`` starts from the
    parent's peak when the child is spawned (Linux carries it over ``vfork`` + ``exec``), so
    it would show this process's memory, not the side's.
    """
    cmd = [sys.executable, __file__, "--child", side, "--workspace", str(workspace)]
    out = _bench.run_child(cmd).stdout
    return int(out.split("VmHWM")[1].split()[0]) * 1024


def _print_peak() -> None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            print("VmHWM", line.split()[1])


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="about this many events")
    parser.add_argument("--workspace", type=Path, help="use this workspace instead")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; best counts")
    parser.add_argument("--child", choices=sorted(_SIDES), help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = _parse_args()
    if args.child:
        _SIDES[args.child](args.workspace)
        _print_peak()
        return
    if args.workspace is not None:
        workspace, label = args.workspace, str(args.workspace)
    else:
        data = _bench.dataset(args.events)
        workspace = _bench.ingested_workspace(data)
        label = f"{data.events:,} events ({data.config})"

    _bench.note("peak memory of each side, in a child of its own ...")
    rss = {name: _child_rss(name, workspace) for name in _SIDES}
    _bench.note("warm-up round (untimed) ...")
    dataset = run_assay(workspace)
    groups = run_sql(workspace)
    _bench.note(f"  dataset rows {dataset.num_rows:,}; sessions grouped by sql {groups.num_rows:,}")

    times: dict[str, list[float]] = {name: [] for name in _SIDES}
    for i in range(args.repeat):
        _bench.note(f"round {i + 1} of {args.repeat}")
        for name, fn in _SIDES.items():
            start = time.perf_counter()
            fn(workspace)
            times[name].append(time.perf_counter() - start)
            _bench.note(f"  {name:6s} {times[name][-1]:7.2f} s")

    best = {name: min(ts) for name, ts in times.items()}
    met = best["assay"] / best["sql"] <= GOAL
    _bench.print_machine()
    rows = [
        ("data", label),
        ("files", f"{len(_files(workspace))} Parquet files"),
        ("rows", f"dataset {dataset.num_rows:,}; sql groups {groups.num_rows:,}"),
    ]
    for name, ts in times.items():
        runs = ", ".join(f"{t:.2f}" for t in ts)
        rows.append((name, f"{secs(best[name])}  runs {runs}; peak RSS {mib(rss[name])}"))
    verdict = "MET" if met else "MISSED"
    rows.append(
        ("RATIO assay / sql", f"{ratio(best['assay'], best['sql'])} (goal <= {GOAL}x: {verdict})")
    )
    _bench.print_block("models dataset build", rows)


if __name__ == "__main__":
    main()
