"""Ingest memory: peak RSS of ``assay ingest`` stays flat as the input file grows.

Goal (issue #2): the peak resident memory of ingesting 10 M events is within 1.3x that of
ingesting 2 M events (readers stream; memory is bounded by the batch size, not the file).

Each size is ingested once (or ``--repeat`` times) by the real CLI in a fresh child process
into a new workspace; the peak RSS is that child's own ``ru_maxrss`` from ``wait4``. Its RSS
is also sampled from ``/proc`` as it runs, and the peak of each tenth of the run is printed,
to tell memory that grows with the input from a flat profile with spikes. The largest size's
workspace is kept under ``$ASSAY_BENCH_DIR/ws/`` for ``metrics_duckdb.py``. With
``--baseline`` the block-wise pyarrow JSON → Parquet copy of ``ingest_throughput.py`` is
measured alongside, for reference (it holds one 32 MiB block at a time).

The 10 M file is about 4.9 GB (twice that with its string-time twin, which only
``--baseline`` reads); check ``df -h /tmp`` first.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/ingest_memory.py --events 2000000 --events 10000000
"""

from __future__ import annotations

import argparse
import shutil
import sys

import _bench
from _bench import ChildRun, gb, mib, ratio, secs

GOAL = 1.3


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events",
        type=int,
        action="append",
        help="a size to ingest (give two or more; default 2000000 and 10000000)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="ingests per size; largest RSS")
    parser.add_argument(
        "--baseline", action="store_true", help="also measure the block-wise pyarrow copy"
    )
    parser.add_argument(
        "--sample", type=float, default=0.5, help="seconds between RSS samples of the ingest"
    )
    return parser.parse_args()


def main() -> None:
    args = _parse_args()
    sizes = sorted(args.events or [2_000_000, 10_000_000])
    if len(sizes) < 2:
        raise SystemExit("give at least two sizes, e.g. --events 2000000 --events 10000000")
    work = _bench.BENCH_DIR / "ingest-runs"
    results: list[tuple[_bench.DataSet, list[ChildRun], dict[str, object], ChildRun | None]] = []
    for n in sizes:
        data = _bench.dataset(n)
        largest = n == sizes[-1]
        runs: list[ChildRun] = []
        totals: dict[str, object] = {}
        for i in range(args.repeat):
            workspace = _bench.workspace_path(data) if largest else work / "ws-memory"
            _bench.note(f"ingest {data.events:,} events, run {i + 1} of {args.repeat} ...")
            run, totals = _bench.ingest(data.path, workspace, trace_every=args.sample)
            _bench.note(f"  {run.seconds:.1f} s, peak RSS {mib(run.max_rss)}, {totals}")
            runs.append(run)
            if largest:
                _bench.mark_ingested(data, totals)
            else:
                shutil.rmtree(workspace, ignore_errors=True)
        base: ChildRun | None = None
        if args.baseline:
            code = _bench.STREAM_BASELINE
            out = work / "baseline-memory"
            base = _bench.run_child([sys.executable, "-c", code, str(data.strtime_path), str(out)])
            shutil.rmtree(out, ignore_errors=True)
            _bench.note(f"  stream baseline {base.seconds:.1f} s, peak RSS {mib(base.max_rss)}")
        results.append((data, runs, totals, base))

    small_data, small_runs, _, _ = results[0]
    large_data, large_runs, _, _ = results[-1]
    small_rss = max(r.max_rss for r in small_runs)
    large_rss = max(r.max_rss for r in large_runs)
    met = large_rss / small_rss <= GOAL
    _bench.print_machine()
    rows: list[tuple[str, str]] = []
    for data, runs, totals, base in results:
        best = min(r.seconds for r in runs)
        rows.append(
            (
                f"{data.events:,} events ({gb(data.bytes)})",
                f"peak RSS {mib(max(r.max_rss for r in runs))}, {secs(best)}, "
                f"{data.events / best:,.0f} events/s",
            )
        )
        rows.append((f"  totals {data.events:,}", str(totals)))
        trace = max(runs, key=lambda r: r.max_rss).rss_trace
        rows.append((f"  RSS per tenth of the run {data.events:,}", _bench.describe_trace(trace)))
        if base is not None:
            rows.append(
                (
                    f"  stream baseline {data.events:,}",
                    f"peak RSS {mib(base.max_rss)}, {secs(base.seconds)}",
                )
            )
    rows.append(
        (
            f"RATIO peak RSS {large_data.events:,} / {small_data.events:,}",
            f"{ratio(large_rss, small_rss)} (goal <= {GOAL}x: {'MET' if met else 'MISSED'})",
        )
    )
    rows.append(("kept workspace", str(_bench.workspace_path(large_data))))
    _bench.print_block("ingest peak memory", rows)
    print("\nmarkdown row (small | large | RSS small | RSS large | ratio | goal):")
    print(
        _bench.markdown_row(
            [
                f"{small_data.events:,}",
                f"{large_data.events:,}",
                mib(small_rss),
                mib(large_rss),
                ratio(large_rss, small_rss),
                f"<= {GOAL}x {'met' if met else 'MISSED'}",
            ]
        )
    )


if __name__ == "__main__":
    main()
