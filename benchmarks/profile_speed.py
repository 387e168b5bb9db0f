"""Profile build speed and memory: ``build_profiles`` from a fresh state on N events.

Goal (issue #6): profile 10 M rows x 20+ columns, report rows/s, and show that peak memory is
flat in the number of rows (the build streams day by day, so it is bounded by the largest day,
not by the number of days).

The events: the kept benchmark workspace of ``--source-events`` (default 10 M) synthetic
events (``_bench.dataset`` + ``ingested_workspace``: 50 tenants over 60 days), ingested once.
Each size ``--events N`` profiles the leading days of that workspace whose events add up to
about N (so 2 M is the first ~12 days, 10 M all 60): the same data per day at every size, and
only the number of days (rows) grows.

The sides, each in its own child process (peak RSS from ``wait4``, interpreter and imports
included), on a fresh copy of the workspace (events hard-linked, no ``profiles/``):

``assay``
    ``build_profiles(ws, until=<last day of the size>)`` with the default slices (tenant plus
    ``model_version``, ``prompt_template``, ``locale``, ``platform``) and k = 10: per day, the
    k-user folds, exact item counts (``COUNT(DISTINCT user_id)``), 7 KLL sketches, 10 item
    lists with HLL sketches, 8 null counts, and the users' HLL and AMS sketches per day x
    tenant x slice, written to Parquet.
``DuckDB GROUP BY``
    The minimal aggregation over the same files and days: one ``SELECT event_date, tenant_id,
    count(*), count(c), min(c), max(c) ... GROUP BY event_date, tenant_id`` over the 25
    profiled columns (no slices, no distinct users, no sketches). A floor, not an equal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench

BUILD_CHILD = """
import json, sys, time
from datetime import date
t0 = time.perf_counter()
import assay
from assay.profiles import build_profiles
t1 = time.perf_counter()
with assay.Workspace.open(sys.argv[1]) as ws:
    s = build_profiles(ws, until=date.fromisoformat(sys.argv[2]))
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "build": t2 - t1, "days": s.days_rebuilt,
                  "rows": s.rows_written}))
"""

BASELINE_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import duckdb
from assay.profiles import CATEGORICAL_COLUMNS, COUNT_COLUMNS, NUMERIC_COLUMNS
t1 = time.perf_counter()
files = json.loads(open(sys.argv[1]).read())
aggs = ["count(*)"]
for c in NUMERIC_COLUMNS:
    aggs += [f'count("{c}")', f'min("{c}")', f'max("{c}")']
aggs += [f'count("{c}")' for c in CATEGORICAL_COLUMNS]
aggs += [f'count("{c}")' for c in COUNT_COLUMNS if c != "text"] + ["count_if(has_text)"]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
rows = con.sql(
    "SELECT event_date, tenant_id, " + ", ".join(aggs)
    + " FROM read_parquet(?, hive_partitioning = true) GROUP BY ALL", params=[files]
).to_arrow_table().num_rows
con.close()
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "build": t2 - t1, "rows": rows}))
"""


def _fresh_copy(source: Path, target: Path) -> None:
    """A workspace sharing ``source``'s event files (hard links), with its own metadata and no
    profiles: builds from scratch without touching the kept workspace."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ("events", "content", "quarantine"):
        if (source / name).exists():
            shutil.copytree(source / name, target / name, copy_function=os.link)
    for name in ("assay.sqlite", "assay.toml", "secret.key"):
        if (source / name).exists():
            shutil.copy2(source / name, target / name)
    (target / ".write.lock").touch()


def _days(workspace: Path) -> list[tuple[str, int, list[str]]]:
    """(day, events, files) of each day of the workspace, in order."""
    import assay
    from assay.profiles._build import _snapshot

    with assay.Workspace.open(workspace) as ws:
        _, by_day = _snapshot(ws)
        out = []
        with ws.duckdb() as con:
            for day in sorted(by_day):
                files = by_day[day]
                n = con.sql("SELECT count(*) FROM read_parquet(?)", params=[files]).fetchall()[0][0]
                out.append((day.isoformat(), int(n), files))
    return out


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events",
        type=int,
        action="append",
        help="profile about this many events (repeat for several sizes; default 2 M and 10 M)",
    )
    parser.add_argument(
        "--source-events", type=int, default=10_000_000, help="the kept data set to draw from"
    )
    parser.add_argument("--workspace", type=Path, help="use this workspace instead")
    return parser.parse_args()


def main() -> None:
    args = _parse_args()
    sizes = sorted(args.events or [2_000_000, 10_000_000])
    source = args.workspace or _bench.ingested_workspace(_bench.dataset(args.source_events))
    days = _days(source)
    total = sum(n for _, n, _ in days)
    work = _bench.BENCH_DIR / "profile-speed"
    results = []
    for size in sizes:
        picked: list[tuple[str, int, list[str]]] = []
        for d in days:
            if picked and sum(n for _, n, _ in picked) >= size:
                break
            picked.append(d)
        events = sum(n for _, n, _ in picked)
        ws = work / "ws"
        _fresh_copy(source, ws)
        _bench.note(f"profiling {events:,} events ({len(picked)} days of {total:,}) ...")
        build = _bench.run_child(
            [sys.executable, "-c", BUILD_CHILD, str(ws), picked[-1][0]], trace_every=0.5
        )
        b = json.loads(build.stdout.strip().splitlines()[-1])
        files = work / "files.json"
        files.write_text(json.dumps([f for _, _, fs in picked for f in fs]))
        _bench.note("  baseline GROUP BY ...")
        base = _bench.run_child([sys.executable, "-c", BASELINE_CHILD, str(files)])
        g = json.loads(base.stdout.strip().splitlines()[-1])
        results.append((events, len(picked), max(n for _, n, _ in picked), build, b, base, g))
        shutil.rmtree(ws, ignore_errors=True)

    _bench.print_machine()
    rows = []
    for events, n_days, largest, build, b, base, g in results:
        rows += [
            (f"{events / 1e6:.1f} M events", f"{n_days} days (largest day {largest:,} events)"),
            ("  assay build", f"{_bench.secs(b['build'])}, {events / b['build']:,.0f} events/s"),
            ("  assay peak RSS", _bench.mib(build.max_rss)),
            ("  assay profile rows", f"{b['rows']:,}"),
            ("  DuckDB GROUP BY", f"{_bench.secs(g['build'])}, {events / g['build']:,.0f} rows/s"),
            ("  GROUP BY peak RSS", _bench.mib(base.max_rss)),
            ("  build / GROUP BY", _bench.ratio(b["build"], g["build"])),
        ]
    if len(results) > 1:
        small, large = results[0], results[-1]
        rows += [
            ("rows ratio (largest / smallest)", _bench.ratio(large[0], small[0])),
            (
                "peak RSS ratio (largest / smallest)",
                _bench.ratio(large[3].max_rss, small[3].max_rss),
            ),
        ]
    _bench.print_block("profile build (fresh state, default slices, k = 10)", rows)
    print()
    for events, n_days, _, build, b, _, g in results:
        print(
            _bench.markdown_row(
                [
                    f"{events / 1e6:.1f} M ({n_days} days)",
                    _bench.secs(b["build"]),
                    f"{events / b['build']:,.0f}",
                    _bench.mib(build.max_rss),
                    _bench.secs(g["build"]),
                    _bench.ratio(b["build"], g["build"]),
                ]
            )
        )


if __name__ == "__main__":
    main()
