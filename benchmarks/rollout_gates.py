"""Gate evaluation time on a day of telemetry for many tenants (issue 15 goal: under 10 s for
2,000 tenants), with a baseline in the same run: one hand-written DuckDB GROUP BY of the same
events by version, tenant, locale and platform (the counting alone, no statistics).

Usage: PYTHONPATH=src .venv/bin/python benchmarks/rollout_gates.py [TENANTS] [SESSIONS_PER_TENANT]
"""

from __future__ import annotations

import datetime as dt
import sys
import time

import ibis
import numpy as np
import pyarrow as pa

from assay.rollout._evaluate import judge, release_slice_counts
from assay.rollout._gates import DEFAULT_GATES
from assay.schema import EVENTS_SCHEMA


def make_events(tenants: int, sessions_per_tenant: int, seed: int = 0) -> pa.Table:
    """One day, 3 events per session, 25% of sessions on the candidate v2 (equal arms)."""
    rng = np.random.default_rng(seed)
    day = dt.date(2026, 5, 4)
    t0 = dt.datetime(2026, 5, 4, tzinfo=dt.UTC)
    n_s = tenants * sessions_per_tenant
    tenant = np.repeat(np.arange(tenants), sessions_per_tenant)
    version = np.where(rng.random(n_s) < 0.25, "v2", "v1")
    locale = rng.choice(["en", "fr", "de", "es"], n_s)
    platform = rng.choice(["web", "ios", "android"], n_s)
    idx = np.repeat(np.arange(n_s), 3)
    n = len(idx)
    fb = rng.random(n)
    cols = {
        "event_id": pa.array([f"e{i}" for i in range(n)]),
        "tenant_id": pa.array([f"t{x:04d}" for x in tenant[idx]]),
        "user_id": pa.array([f"u{x}" for x in idx]),
        "session_id": pa.array([f"s{x}" for x in idx]),
        "event_type": pa.array(np.where(rng.random(n) < 0.02, "error", "turn")),
        "locale": pa.array(locale[idx]),
        "platform": pa.array(platform[idx]),
        "model_version": pa.array(version[idx]),
        "latency_ms": pa.array(rng.lognormal(6, 0.5, n)),
        "cost_usd": pa.array(rng.random(n) / 100),
        "feedback": pa.array(
            np.where(fb < 0.05, -1, np.where(fb < 0.2, 1, 0)), mask=fb >= 0.2, type=pa.int8()
        ),
        "handoff": pa.array(rng.random(n) < 0.012),
        "has_text": pa.array(np.zeros(n, bool)),
        "event_date": pa.array([day] * n, pa.date32()),
        "event_time": pa.array([t0] * n, pa.timestamp("us", tz="UTC")),
    }
    cols["ingested_at"] = cols["event_time"]
    arrays = [
        pa.nulls(n, f.type) if f.name not in cols else cols[f.name].cast(f.type)
        for f in EVENTS_SCHEMA
    ]
    schema = pa.schema([f.with_nullable(True) for f in EVENTS_SCHEMA])
    return pa.Table.from_arrays(arrays, schema=schema)


BASELINE_SQL = """
SELECT model_version, tenant_id, locale, platform,
       count(DISTINCT session_id) AS sessions,
       count(*) FILTER (WHERE event_type = 'turn') AS turns,
       count(*) FILTER (WHERE event_type = 'error') AS errors,
       count(DISTINCT session_id) FILTER (WHERE handoff) AS handoffs,
       count(*) FILTER (WHERE feedback = -1) AS thumbs_down,
       sum(cost_usd) AS cost
FROM events WHERE event_date = DATE '2026-05-04'
GROUP BY ALL
"""


def main() -> None:
    tenants = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    table = make_events(tenants, per)
    day = dt.date(2026, 5, 4)
    con = ibis.duckdb.connect(threads=2)
    events = con.create_table("events", table)
    for run in range(2):
        a = time.perf_counter()
        con.raw_sql(BASELINE_SQL).to_arrow_table()
        b = time.perf_counter()
        counts = release_slice_counts(
            events, field="model_version", stable="v1", candidate="v2", since=day, until=day
        )
        c = time.perf_counter()
        result = judge(counts, DEFAULT_GATES, last_step=False)
        d = time.perf_counter()
        print(
            f"run {run}: {table.num_rows:,} events, {tenants:,} tenants; baseline GROUP BY "
            f"{b - a:.2f} s; assay counts {c - b:.2f} s, judge {d - c:.2f} s, total {d - b:.2f} s "
            f"= {(d - b) / (b - a):.1f}x the baseline; {len(result.gates):,} gate rows, verdict "
            f"{result.verdict}",
            flush=True,
        )


if __name__ == "__main__":
    main()
