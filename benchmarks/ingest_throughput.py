"""Ingest throughput: ``assay ingest`` of JSON Lines against a raw pyarrow JSON → Parquet copy.

Goal (issue #2): ingesting 2 M synthetic events with text takes at most 2.0x the time of the
baseline that only reads the same file with ``pyarrow.json.read_json`` and writes it with
``pyarrow.parquet.write_table``.

What is timed, each as a fresh child process (wall time from spawn to exit, so both sides pay
interpreter start and imports; peak RSS from ``wait4``), best of ``--repeat`` runs, the runs
interleaved so that a noisy neighbour hits both sides alike:

``baseline``
    ``pq.write_table(pj.read_json(file), out)``: the whole file as one table, then one
    Parquet file (snappy). This is the issue's baseline.
``stream baseline``
    The same per 32 MiB block of lines, one Parquet file per block: bounded memory, as ingest
    must be. Shown for reference.
``assay ingest``
    ``assay ingest FILE --workspace NEW --output json`` through the real CLI, into a new
    workspace each run: validation, redaction, pseudonymisation, duplicate check, Delta
    commits of events and content.
``assay ingest (string times)``
    The same on the twin file described below, to show what the mixed ``event_time`` types
    cost.

The data comes from ``assay.synth.write(..., format="jsonl")`` (one file per day),
concatenated into one file. About 1% of its ``event_time`` values are integer epoch
milliseconds, the rest RFC 3339 strings: ``pyarrow.json.read_json`` cannot read that file at
all ("Column(/event_time) changed from string to number"). The baselines therefore read a twin
file in which those values are rewritten as the equal RFC 3339 strings (same lines otherwise,
2-12 bytes longer each); ``assay ingest`` reads the file as the synth wrote it.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/ingest_throughput.py --events 2000000
    PYTHONPATH=src .venv/bin/python benchmarks/ingest_throughput.py --events 500000 --profile
"""

from __future__ import annotations

import argparse
import pstats
import shutil
import sys
from pathlib import Path

import _bench
from _bench import ChildRun, gb, mib, ratio, secs

GOAL = 2.0

_PROFILED_INGEST = """
import cProfile, sys
from assay.cli import main
out = sys.argv[1]
sys.argv = ["assay", *sys.argv[2:]]
profile = cProfile.Profile()
try:
    profile.runcall(main)
except SystemExit:
    pass
profile.dump_stats(out)
"""


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000, help="about this many events")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; best counts")
    parser.add_argument(
        "--no-stream-baseline", action="store_true", help="skip the block-wise baseline"
    )
    parser.add_argument(
        "--no-twin", action="store_true", help="skip ingesting the string-time twin file"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: run one ingest under cProfile and print the top functions",
    )
    parser.add_argument("--top", type=int, default=30, help="functions listed by --profile")
    return parser.parse_args()


def _work_dir() -> Path:
    work = _bench.BENCH_DIR / "ingest-runs"
    work.mkdir(parents=True, exist_ok=True)
    return work


def _baseline(code: str, source: Path, label: str) -> ChildRun:
    # The simple baseline writes one file, the stream baseline a folder of files.
    out = _work_dir() / f"baseline-{label}"
    _remove(out)
    run = _bench.run_child([sys.executable, "-c", code, str(source), str(out)])
    _remove(out)
    return run


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _ingest(source: Path, label: str) -> tuple[ChildRun, dict[str, object]]:
    workspace = _work_dir() / f"ws-{label}"
    run, totals = _bench.ingest(source, workspace)
    shutil.rmtree(workspace, ignore_errors=True)
    return run, totals


def _profile(data: _bench.DataSet, top: int) -> None:
    workspace = _work_dir() / "ws-profile"
    shutil.rmtree(workspace, ignore_errors=True)
    stats_path = _work_dir() / "ingest.prof"
    cmd = [
        sys.executable,
        "-c",
        _PROFILED_INGEST,
        str(stats_path),
        "ingest",
        str(data.path),
        "--workspace",
        str(workspace),
        "--output",
        "json",
    ]
    _bench.note(f"profiling one ingest of {data.events:,} events ...")
    run = _bench.run_child(cmd, ok_codes=(0, 1))
    shutil.rmtree(workspace, ignore_errors=True)
    _bench.print_machine()
    _bench.print_block(
        "profiled ingest (cProfile, main thread only)",
        [
            ("events", f"{data.events:,}"),
            ("wall time (with profiler)", secs(run.seconds)),
            ("stats file", str(stats_path)),
        ],
    )
    stats = pstats.Stats(str(stats_path), stream=sys.stdout)
    stats.strip_dirs()
    print(f"\n== top {top} by cumulative time ==")
    stats.sort_stats("cumulative").print_stats(top)
    print(f"\n== top {top} by own time ==")
    stats.sort_stats("tottime").print_stats(top)


def _fmt_runs(runs: list[ChildRun]) -> str:
    return ", ".join(f"{r.seconds:.1f}" for r in runs) + " s"


def main() -> None:
    args = _parse_args()
    data = _bench.dataset(args.events)
    if args.profile:
        _profile(data, args.top)
        return

    sides: dict[str, list[ChildRun]] = {"baseline": [], "assay": []}
    if not args.no_stream_baseline:
        sides["stream"] = []
    if not args.no_twin:
        sides["assay-twin"] = []
    totals: dict[str, dict[str, object]] = {}
    for i in range(args.repeat):
        _bench.note(f"round {i + 1} of {args.repeat} ({data.events:,} events)")
        sides["baseline"].append(_baseline(_bench.SIMPLE_BASELINE, data.strtime_path, "simple"))
        _bench.note(f"  baseline       {sides['baseline'][-1].seconds:7.1f} s")
        run, totals["assay"] = _ingest(data.path, "assay")
        sides["assay"].append(run)
        _bench.note(f"  assay ingest   {run.seconds:7.1f} s  {totals['assay']}")
        if "stream" in sides:
            sides["stream"].append(_baseline(_bench.STREAM_BASELINE, data.strtime_path, "stream"))
            _bench.note(f"  stream base    {sides['stream'][-1].seconds:7.1f} s")
        if "assay-twin" in sides:
            run, totals["assay-twin"] = _ingest(data.strtime_path, "twin")
            sides["assay-twin"].append(run)
            _bench.note(f"  assay (twin)   {run.seconds:7.1f} s  {totals['assay-twin']}")

    best = {name: min(runs, key=lambda r: r.seconds) for name, runs in sides.items()}
    base = best["baseline"].seconds
    ours = best["assay"].seconds
    met = ours / base <= GOAL
    _bench.print_machine()
    rows = [
        ("events", f"{data.events:,} ({data.config})"),
        ("file", f"{gb(data.bytes)} JSONL, {data.epoch_times:,} epoch-ms times"),
        ("baseline (read_json+write_table)", f"{secs(base)}  runs {_fmt_runs(sides['baseline'])}"),
    ]
    if "stream" in best:
        rows.append(
            (
                "stream baseline (32 MiB blocks)",
                f"{secs(best['stream'].seconds)}  runs {_fmt_runs(sides['stream'])}",
            )
        )
    rows += [
        ("assay ingest", f"{secs(ours)}  runs {_fmt_runs(sides['assay'])}"),
        ("assay ingest totals", str(totals.get("assay", {}))),
    ]
    if "assay-twin" in best:
        rows.append(
            (
                "assay ingest (string times)",
                f"{secs(best['assay-twin'].seconds)}  runs {_fmt_runs(sides['assay-twin'])}",
            )
        )
    rows += [
        ("assay events/s", f"{data.events / ours:,.0f} ({data.bytes / ours / 1e6:.1f} MB/s)"),
        ("baseline events/s", f"{data.events / base:,.0f}"),
        ("peak RSS baseline", mib(best["baseline"].max_rss)),
    ]
    if "stream" in best:
        rows.append(("peak RSS stream baseline", mib(best["stream"].max_rss)))
    rows.append(("peak RSS assay ingest", mib(max(r.max_rss for r in sides["assay"]))))
    rows.append(
        (
            "RATIO assay / baseline",
            f"{ratio(ours, base)} (goal <= {GOAL}x: {'MET' if met else 'MISSED'})",
        )
    )
    if "assay-twin" in best:
        rows.append(
            ("ratio assay (string times) / baseline", ratio(best["assay-twin"].seconds, base))
        )
    if "stream" in best:
        rows.append(("ratio assay / stream baseline", ratio(ours, best["stream"].seconds)))
    _bench.print_block("ingest throughput", rows)
    print("\nmarkdown row (events | file | baseline | assay | events/s | ratio | goal):")
    print(
        _bench.markdown_row(
            [
                f"{data.events:,}",
                gb(data.bytes),
                secs(base),
                secs(ours),
                f"{data.events / ours:,.0f}",
                ratio(ours, base),
                f"<= {GOAL}x {'met' if met else 'MISSED'}",
            ]
        )
    )


if __name__ == "__main__":
    main()
