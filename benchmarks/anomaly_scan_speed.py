"""Fleet scan speed: ``scan_table`` over stored daily series against a loop of statsmodels STL.

Goal (issue #5): scan 2,000 tenants x 7 metrics x 180 days from stored daily metric series in
under 30 s on 2 cores, and at least 10x faster than a loop calling statsmodels
``STL(..., robust=True)`` per series, measured in the same run.

The stored series: a table shaped like ``Metrics.health`` (``tenant_id, day, dau,
active_users, sessions, handoff_sessions, turns, errors, feedback, thumbs_down, latency_p95,
cost_usd``; one row per tenant and day of its grid), generated with a seeded numpy RNG and
written as one Parquet file under ``$ASSAY_BENCH_DIR/scan-speed/``:

- tenant sizes log-uniform over 5..5,000 daily users; a weekly season (weekends at 45-85% of
  a weekday, per tenant); a slight trend (about -10%..+30% over the run); 15% of tenants start
  later (their grid begins on their first day, as ``Metrics.health``'s does);
- counts Poisson (``dau``; ``sessions`` about 1.5 a user, ``turns`` about 4 a session),
  ``active_users`` the 7-day window (``dau`` plus about 45% of the other user-days in it);
- rates binomial: handoffs about 4% of sessions, errors about 1% of turns, feedback on 8% of
  turns and thumbs-down about 15% of it (each scaled per tenant by a lognormal factor);
- ``latency_p95`` lognormal around 2,500 ms (noisier on small days, null without turns);
  ``cost_usd`` proportional to turns;
- ``--anomalies`` injected incidents of 1-4 days after day 60: user drops (x0.4 on ``dau``,
  and so on everything that follows from users), handoff x3, errors x5, thumbs-down x2,
  latency x1.6, cost x2.5.

The sides:

``assay``
    ``scan_table(pq.read_table(path))`` with default settings: reading the Parquet file and
    the whole scan (every tenant x metric, Benjamini-Hochberg, incidents), timed ``--repeat``
    times in this process; the median is the figure. Its peak RSS is that of a child process
    doing the same once (interpreter and imports included, sampled from ``/proc``), next to a
    child that only imports and reads.
``STL loop``
    For each of the tenants x 7 series, ``STL(x, period=7, robust=True).fit()`` and a robust z
    of the residual (median and 1.4826 MAD), ``|z| > 3.5`` flagged: the minimal per-series loop.
    Rates are ``successes / trials``; days without trials (and days without a latency) are
    filled by linear interpolation, since STL rejects NaN. Building the series from the table
    is not timed (in the baseline's favour). The first 100 series of a random order are timed
    first; when the whole loop would take more than ``--baseline-budget`` seconds, a random
    sample of ``--baseline-sample`` (at least 1,000) series is timed and scaled to all series,
    and the output says so.

Computing the series from raw events is a separate cost, not measured here (see the line the
script prints about ``metrics_duckdb.py``).

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/anomaly_scan_speed.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from _bench import BENCH_DIR, markdown_row, mib, note, print_block, print_machine, run_child
from assay.anomaly._scan import RATE_COUNTS, WATCHED_METRICS, scan_table

GOAL_SECONDS = 30.0
GOAL_RATIO = 10.0
START = dt.date(2026, 5, 4)  # a Monday
EPOCH = dt.date(1970, 1, 1)

# Injected incidents: what they multiply, and the watched metric they should show in.
KINDS: dict[str, tuple[str, float]] = {
    "drop": ("dau", 0.4),
    "handoff": ("handoff_rate", 3.0),
    "errors": ("error_rate", 5.0),
    "thumbs_down": ("thumbs_down_rate", 2.0),
    "latency": ("latency_p95", 1.6),
    "cost": ("cost_usd", 2.5),
}

# The peak RSS of read + scan, measured in a fresh child; READ_ONLY is its floor.
SCAN_CHILD = """
import sys
import pyarrow.parquet as pq
from assay.anomaly._scan import scan_table
result = scan_table(pq.read_table(sys.argv[1]))
print(result.series, result.tests)
"""
READ_ONLY_CHILD = """
import sys
import pyarrow.parquet as pq
import assay.anomaly._scan
print(pq.read_table(sys.argv[1]).num_rows)
"""

Incident = tuple[int, str, int, int]  # tenant index, metric, first day, last day


def generate(tenants: int, days: int, anomalies: int, seed: int) -> tuple[pa.Table, list[Incident]]:
    """The stored daily series of ``tenants`` tenants over ``days`` days, and what was injected."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    weekend = (START.weekday() + t) % 7 >= 5
    base = np.exp(rng.uniform(np.log(5), np.log(5000), tenants))
    weekend_level = rng.uniform(0.45, 0.85, tenants)
    season = np.where(weekend[None, :], weekend_level[:, None], 1.0)
    growth = rng.uniform(-0.0006, 0.0015, tenants)
    # 15% of tenants start later: no users, and no rows, before their first day.
    first_day = np.where(rng.random(tenants) < 0.15, rng.integers(1, 120, tenants), 0)
    present = t[None, :] >= first_day[:, None]
    lam = base[:, None] * season * np.exp(growth[:, None] * t[None, :]) * present

    mult = {m: np.ones((tenants, days)) for m, _ in KINDS.values()}
    incidents: list[Incident] = []
    kinds = list(KINDS)
    for _ in range(anomalies):
        who = int(rng.integers(tenants))
        metric, factor = KINDS[kinds[int(rng.integers(len(kinds)))]]
        first = int(rng.integers(60, days - 3))
        last = min(days - 1, first + int(rng.integers(0, 4)))
        mult[metric][who, first : last + 1] *= factor
        incidents.append((who, metric, first, last))

    dau = rng.poisson(lam * mult["dau"])
    # The 7-day window: today's users plus a share of the other user-days in it.
    csum = np.cumsum(dau, axis=1)
    trailing = csum - np.concatenate([np.zeros((tenants, 7), np.int64), csum[:, :-7]], axis=1)
    active = dau + rng.binomial(trailing - dau, 0.45)
    sessions = rng.poisson(dau * 1.5)
    turns = rng.poisson(sessions * 4.0)

    def rate(mean: float, metric: str) -> Any:
        per_tenant = mean * np.exp(rng.normal(0.0, 0.3, tenants))
        return np.clip(per_tenant[:, None] * mult[metric], 0.0, 0.95)

    handoff = rng.binomial(sessions, rate(0.04, "handoff_rate"))
    errors = rng.binomial(turns, rate(0.01, "error_rate"))
    feedback = rng.binomial(turns, 0.08)
    thumbs_down = rng.binomial(feedback, rate(0.15, "thumbs_down_rate"))
    median_latency = 2500.0 * np.exp(rng.normal(0.0, 0.25, tenants))
    noise = rng.normal(0.0, 1.0, (tenants, days)) * (0.05 + 0.5 / np.sqrt(turns + 1))
    latency = median_latency[:, None] * np.exp(noise) * mult["latency_p95"]
    latency[turns == 0] = np.nan
    cost_per_turn = rng.uniform(0.002, 0.02, tenants)
    cost = turns * cost_per_turn[:, None] * np.exp(rng.normal(0.0, 0.03, (tenants, days)))
    cost *= mult["cost_usd"]

    rows, cols = np.nonzero(present)
    names = np.array([f"tenant-{i:04d}" for i in range(tenants)], dtype=object)
    day0 = (START - EPOCH).days

    def ints(m: Any) -> pa.Array:
        return pa.array(np.asarray(m)[rows, cols].astype(np.int64), pa.int64())

    table = pa.table(
        {
            "tenant_id": pa.array(names[rows], pa.string()),
            "day": pa.array((cols + day0).astype(np.int32), pa.int32()).cast(pa.date32()),
            "dau": ints(dau),
            "active_users": ints(active),
            "sessions": ints(sessions),
            "handoff_sessions": ints(handoff),
            "turns": ints(turns),
            "errors": ints(errors),
            "feedback": ints(feedback),
            "thumbs_down": ints(thumbs_down),
            "latency_p95": pa.array(latency[rows, cols], pa.float64(), from_pandas=True),
            "cost_usd": pa.array(cost[rows, cols], pa.float64()),
        }
    )
    # Incidents on days before a tenant's first day never happened.
    kept = [inc for inc in incidents if inc[3] >= first_day[inc[0]]]
    return table, kept


def peak_rss(code: str, path: Path) -> int:
    """The largest RSS of a child running ``code`` on ``path``, sampled from ``/proc``.

    Not ``wait4``'s ``ru_maxrss``: a child forked from this process inherits this process's
    high-water mark through ``exec``, which would hide the child's own peak.
    """
    run = run_child([sys.executable, "-c", code, str(path)], trace_every=0.01)
    return max((rss for _, rss in run.rss_trace), default=0)


def found(incidents: list[Incident], candidates: list[Any]) -> int:
    """Injected incidents with a scan incident of the same tenant and metric overlapping
    their days (or the two days after): a sanity check that the scan did its work."""
    day0 = (START - EPOCH).days
    spans: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for c in candidates:
        span = ((c.start - EPOCH).days - day0, (c.end - EPOCH).days - day0)
        spans.setdefault((c.tenant_id, c.metric), []).append(span)
    hits = 0
    for who, metric, first, last in incidents:
        for lo, hi in spans.get((f"tenant-{who:04d}", metric), []):
            if lo <= last + 2 and hi >= first:
                hits += 1
                break
    return hits


def _fill(x: Any) -> Any:
    """Linear interpolation over NaN (the ends held at the nearest value); zeros if all NaN."""
    ok = ~np.isnan(x)
    if ok.all():
        return x
    if not ok.any():
        return np.zeros_like(x)
    idx = np.arange(len(x))
    return np.interp(idx, idx[ok], x[ok])


def baseline_series(table: pa.Table) -> list[Any]:
    """The tenants x watched metrics as float arrays in day order, NaN filled."""
    order = pc.sort_indices(table, [("tenant_id", "ascending"), ("day", "ascending")])
    table = table.take(order)
    tenant = np.asarray(table.column("tenant_id").to_numpy(zero_copy_only=False), dtype=object)
    cuts = np.flatnonzero(tenant[1:] != tenant[:-1]) + 1
    bounds = list(zip(np.r_[0, cuts], np.r_[cuts, len(tenant)], strict=True))

    def col(name: str) -> Any:
        return np.asarray(
            pc.cast(table.column(name), pa.float64()).to_numpy(zero_copy_only=False), np.float64
        )

    values: dict[str, Any] = {}
    for m in WATCHED_METRICS:
        if m in RATE_COUNTS:
            k, n = (col(c) for c in RATE_COUNTS[m])
            with np.errstate(invalid="ignore", divide="ignore"):
                values[m] = np.where(n > 0, k / np.where(n > 0, n, 1.0), np.nan)
        else:
            values[m] = col(m)
    return [_fill(values[m][a:b].copy()) for a, b in bounds for m in WATCHED_METRICS]


def stl_loop(series: list[Any]) -> int:
    """STL (robust) per series, then a robust z of the residual; returns the flagged days."""
    from statsmodels.tsa.seasonal import STL

    flagged = 0
    for x in series:
        resid = np.asarray(STL(x, period=7, robust=True).fit().resid)
        med = np.median(resid)
        mad = np.median(np.abs(resid - med))
        if mad > 0:
            flagged += int(np.sum(np.abs(resid - med) / (1.4826 * mad) > 3.5))
    return flagged


def time_baseline(
    series: list[Any], budget: float, sample: int, seed: int
) -> tuple[float, int, str]:
    """Seconds for the STL loop over all ``series`` (measured, or scaled from a sample)."""
    order = np.random.default_rng(seed + 1).permutation(len(series))
    first = [series[i] for i in order[:100]]
    start = time.perf_counter()
    flagged = stl_loop(first)
    t_first = time.perf_counter() - start
    estimate = t_first / len(first) * len(series)
    note(f"STL loop: {len(first)} series in {t_first:.2f} s, all would take ~{estimate:.0f} s")
    if estimate <= budget:
        rest = [series[i] for i in order[100:]]
        start = time.perf_counter()
        flagged += stl_loop(rest)
        total = t_first + time.perf_counter() - start
        return total, flagged, f"measured, all {len(series):,} series"
    n = min(len(series), max(sample, 1000))
    rest = [series[i] for i in order[100:n]]
    start = time.perf_counter()
    flagged += stl_loop(rest)
    t_sample = t_first + time.perf_counter() - start
    scaled = t_sample / n * len(series)
    how = f"scaled from a random sample of {n:,} series ({t_sample:.1f} s measured)"
    return scaled, flagged, how


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--anomalies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--baseline-budget",
        type=float,
        default=900.0,
        help="longest whole STL loop (seconds, estimated from 100 series) run in full",
    )
    parser.add_argument(
        "--baseline-sample",
        type=int,
        default=1000,
        help="series timed when the whole loop would exceed the budget (at least 1,000)",
    )
    args = parser.parse_args()
    if args.days < 70:
        sys.exit("--days must be at least 70 (incidents are injected after day 60)")
    print_machine()

    note(f"generating {args.tenants:,} tenants x {args.days} days ...")
    table, incidents = generate(args.tenants, args.days, args.anomalies, args.seed)
    folder = BENCH_DIR / "scan-speed"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"health-t{args.tenants}-d{args.days}-s{args.seed}.parquet"
    pq.write_table(table, path)
    size = path.stat().st_size

    # Before the timed scans, so that this process is still small when the children fork.
    rss_scan = peak_rss(SCAN_CHILD, path)
    rss_read = peak_rss(READ_ONLY_CHILD, path)

    times: list[float] = []
    result: Any = None
    for i in range(args.repeat):
        start = time.perf_counter()
        result = scan_table(pq.read_table(path))
        times.append(time.perf_counter() - start)
        note(f"scan {i + 1}/{args.repeat}: {times[-1]:.2f} s")
    t_scan = statistics.median(times)
    hits = found(incidents, result.candidates)

    note("building the baseline's series ...")
    series = baseline_series(pq.read_table(path))
    assert len(series) == result.series, (len(series), result.series)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_stl, stl_flags, how = time_baseline(
            series, args.baseline_budget, args.baseline_sample, args.seed
        )
    speedup = t_stl / t_scan

    print_block(
        "fleet scan from stored series",
        [
            (
                "stored series",
                f"{args.tenants:,} tenants x {args.days} days: {table.num_rows:,} rows, "
                f"Parquet {size / 2**20:.1f} MiB ({path})",
            ),
            ("series, tests", f"{result.series:,} series, {result.tests:,} tests (scored days)"),
            (
                "pq.read_table + scan_table",
                f"{t_scan:.2f} s (median of {args.repeat}: "
                + ", ".join(f"{t:.2f}" for t in times)
                + " s)",
            ),
            (
                "scan incidents",
                f"{len(result.candidates):,}; injected found: {hits} of {len(incidents)} "
                "(sanity check, not a quality measure)",
            ),
            (
                "peak RSS, read + scan (child)",
                f"{mib(rss_scan)} (imports + read only: {mib(rss_read)})",
            ),
            ("STL loop (robust=True)", f"{t_stl:.1f} s, {how}"),
            ("STL loop, days |z| > 3.5", f"{stl_flags:,} (in the series timed)"),
            ("STL loop / assay", f"{speedup:.1f}x"),
            (
                "series from raw events",
                "not measured here (benchmarks/metrics_duckdb.py times dau, dau_rolling and "
                "max_active, not Metrics.health)",
            ),
        ],
    )
    print()
    print("| goal | measured | met? |\n|---|---|---|")
    print(
        markdown_row(
            [
                f"scan {args.tenants:,} tenants x 7 metrics x {args.days} days "
                f"< {GOAL_SECONDS:.0f} s (2 cores)",
                f"{t_scan:.2f} s (median of {args.repeat})",
                "yes" if t_scan < GOAL_SECONDS else "**no**",
            ]
        )
    )
    print(
        markdown_row(
            [
                f"≥ {GOAL_RATIO:.0f}x a loop of statsmodels `STL(robust=True)` per series",
                f"{speedup:.1f}x ({t_scan:.2f} s vs {t_stl:.1f} s)",
                "yes" if speedup >= GOAL_RATIO else "**no**",
            ]
        )
    )


if __name__ == "__main__":
    main()
