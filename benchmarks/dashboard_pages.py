"""Dashboard page speed: server time of the fleet page and a tenant page on 2,000 tenants x 180
days, against the one grouped DuckDB query over the same events.

Goal (issue #16): the fleet and tenant pages answer in under 300 ms of server time for 2,000
tenants x 180 days, without recomputing from raw events on every request.

The workspace (built once and kept under ``$ASSAY_BENCH_DIR/dashboard-pages/``; delete it to
start over) holds events generated here with a seeded numpy RNG and written with the store's
own ``Workspace.append`` (the ingest pipeline is measured elsewhere; its output has the same
shape): ``--tenants`` tenants over ``--days`` days, tenant sizes log-uniform over 1 to
``--max-users`` (12) daily users, a weekly season, one session per active user and day of a
``session_start``, 1 + Poisson(1.5) ``turn`` events, sometimes a ``feedback`` (30%,
thumbs-down 15% of those), a ``handoff`` (4%) and an ``error`` (2%), and a ``session_end``.
The ids in it are already pseudonyms.

The sides, all in this process:

``page``
    ``GET /ui/`` (the fleet page, default range, first page), then ``GET /ui/tenants/T`` (the
    largest tenant), then another tenant's page, through FastAPI's ``TestClient`` on
    ``assay.service.create_app(ws)``, signed in with an admin ``read`` key, in that order. The
    first request of each is reported apart: the fleet's is *cold* (the app has just started:
    the fleet's daily per-tenant summary is built then); a tenant's first view pays for what
    is read per tenant (its release events, retention cohorts and scan). The figure is the
    median of ``--repeat`` later requests (*warm*). The ``Server-Timing`` header is reported
    when the app sends one; the wall time around the in-process request is the figure
    otherwise (it includes the test client's own small cost, against the pages).
``summary``
    The dashboard's library function that builds that summary
    (``assay.dashboard._fleet.daily_summary``, when present), called directly once: the cold
    page's main cost, without HTTP.
``baseline``
    One grouped DuckDB query over the events' current Parquet files (hand-written SQL: per
    tenant and day, active users, sessions, handoff sessions, turns, errors, feedback,
    thumbs-down, p95 latency, cost): what any page that recomputed from raw events would pay
    at least once. Median of ``--repeat`` runs on a fresh connection each.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/dashboard_pages.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import _bench

GOAL_MS = 300.0
END = dt.date(2026, 2, 25)
LOCALES = ["en-US", "de-DE", "fr-FR", "ja-JP", "es-ES"]
PLATFORMS = ["web", "ios", "android"]
MODELS = ["v2.0", "v2.1"]
TEMPLATES = ["rag-v2", "rag-v3"]
APPS = ["4.2.0", "4.3.0"]


def _choice(rng: np.random.Generator, values: list[str], n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(
        pa.array(rng.integers(0, len(values), n), pa.int32()), pa.array(values)
    ).cast(pa.string())


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def generate(tenants: range, days: int, seed: int, sizes: np.ndarray) -> pa.Table:
    """The events of ``tenants`` (indices into ``sizes``) over ``days`` days ending on END."""
    rng = np.random.default_rng([seed, tenants.start])
    first = END - dt.timedelta(days=days - 1)
    t_idx = np.repeat(np.array(tenants), days)
    d_idx = np.tile(np.arange(days), len(tenants))
    weekday = (np.datetime64(first) + d_idx).astype("datetime64[D]").astype(int) % 7
    # 1970-01-01 was a Thursday: weekday 2 and 3 are Saturday and Sunday.
    season = np.where((weekday == 2) | (weekday == 3), 0.6, 1.0)
    users_today = rng.poisson(sizes[t_idx] * season)
    # One session per active user and day: a user drawn from the tenant's pool of 3x its size.
    s_tenant = np.repeat(t_idx, users_today)
    s_day = np.repeat(d_idx, users_today)
    n_s = len(s_tenant)
    pool = np.maximum(3 * sizes[s_tenant], 1).astype(np.int64)
    s_user = (rng.random(n_s) * pool).astype(np.int64)
    s_number = np.arange(n_s, dtype=np.int64) + tenants.start * 10_000_000
    turns = 1 + rng.poisson(1.5, n_s)
    fb = rng.random(n_s) < 0.30
    ho = rng.random(n_s) < 0.04
    er = rng.random(n_s) < 0.02
    count = 2 + turns + fb + ho + er
    start = np.cumsum(count) - count
    e_session = np.repeat(np.arange(n_s), count)
    pos = np.arange(int(count.sum())) - start[e_session]
    k = turns[e_session]
    # Positions: 0 start, 1..k turns, then feedback, handoff, error where present, last end.
    after = pos - k - 1
    kinds = np.full(len(pos), "session_end", dtype=object)
    kinds[pos == 0] = "session_start"
    kinds[(pos >= 1) & (pos <= k)] = "turn"
    fb_e, ho_e, er_e = fb[e_session], ho[e_session], er[e_session]
    kinds[(after == 0) & fb_e] = "feedback"
    ho_at = fb_e.astype(np.int64)
    kinds[(after == ho_at) & ho_e] = "handoff"
    er_at = ho_at + ho_e
    kinds[(after == er_at) & er_e] = "error"
    n = len(pos)
    is_turn = kinds == "turn"
    day_us = (np.datetime64(first, "us").astype(np.int64)) + s_day[e_session] * 86_400_000_000
    offset = (rng.random(n_s) * 80_000).astype(np.int64)[e_session] + pos * 20
    time_us = day_us + offset * 1_000_000
    latency = np.where(is_turn, rng.lognormal(7.3, 0.5, n), np.nan)
    cost = np.where(is_turn, rng.gamma(2.0, 0.001, n), np.nan)
    feedback = np.where(kinds == "feedback", np.where(rng.random(n) < 0.15, -1, 1), 0)
    names = pa.array([f"tenant-{i + 1:04d}" for i in range(int(t_idx.max()) + 1)])
    tenant_ids = names.take(pa.array(s_tenant))
    session_ids = _ids("s", s_number)
    user_ids = pc.binary_join_element_wise(
        tenant_ids, _ids("-u", s_user), ""
    )  # a pseudonym stands in: any opaque string
    take = pa.array(e_session)
    session_fields = {
        "locale": _choice(rng, LOCALES, n_s),
        "platform": _choice(rng, PLATFORMS, n_s),
        "app_version": _choice(rng, APPS, n_s),
        "model_version": _choice(rng, MODELS, n_s),
        "prompt_template": _choice(rng, TEMPLATES, n_s),
    }
    columns: dict[str, Any] = {
        "event_id": pc.binary_join_element_wise(session_ids.take(take), _ids("-", pos), ""),
        "event_time": pa.array(time_us, pa.timestamp("us", tz="UTC")),
        "tenant_id": tenant_ids.take(take),
        "user_id": user_ids.take(take),
        "session_id": session_ids.take(take),
        "event_type": pa.array(kinds.astype(str)),
        "turn_index": pa.array(np.where(is_turn, pos - 1, 0), mask=~is_turn),
        **{name: values.take(take) for name, values in session_fields.items()},
        "latency_ms": pa.array(latency, from_pandas=True),
        "cost_usd": pa.array(cost, from_pandas=True),
        "feedback": pa.array(feedback, mask=kinds != "feedback"),
        "handoff": pa.array(kinds == "handoff", mask=kinds != "handoff"),
        "event_date": pa.array((day_us // 86_400_000_000).astype("int32"), pa.date32()),
        "has_text": pa.array(np.zeros(n, dtype=bool)),
        "fingerprint": pa.array(rng.integers(-(2**62), 2**62, n)),
        "ingested_at": pa.array(
            np.full(n, np.datetime64(dt.datetime.now(dt.UTC).replace(tzinfo=None), "us"))
        ).cast(pa.timestamp("us", tz="UTC")),
    }
    table = pa.table(columns)
    from assay.schema import EVENTS_SCHEMA

    missing = [f for f in EVENTS_SCHEMA if f.name not in columns]
    for f in missing:
        table = table.append_column(f, pa.nulls(n, f.type))
    return table.select(EVENTS_SCHEMA.names).sort_by([("tenant_id", "ascending")])


def build(path: Path, tenants: int, days: int, seed: int, max_users: float) -> dict[str, Any]:
    """Make (or reuse) the workspace at ``path``; return its facts and an admin read key."""
    from assay.store import Workspace

    marker = path.with_suffix(".json")
    wanted = {
        "tenants": tenants,
        "days": days,
        "seed": seed,
        "max_users": max_users,
        "end": END.isoformat(),
    }
    if marker.exists():
        facts: dict[str, Any] = json.loads(marker.read_text())
        if {k: facts.get(k) for k in wanted} == wanted:
            return facts
    if path.exists():
        import shutil

        shutil.rmtree(path)
    rng = np.random.default_rng(seed)
    sizes = np.exp(rng.uniform(np.log(1), np.log(max_users), tenants))
    started = time.perf_counter()
    events = 0
    with Workspace.open(path, create=True) as ws:
        with ws.lock.hold(ws.settings.lock_timeout_seconds):
            for lo in range(0, tenants, 250):
                table = generate(range(lo, min(lo + 250, tenants)), days, seed, sizes)
                ws.append("events", table)
                events += table.num_rows
                _bench.note(f"  {min(lo + 250, tenants):,} tenants, {events:,} events")
        _, key = ws.keys.create(tenant_id=None, scopes=("read",))
    largest = f"tenant-{int(np.argmax(sizes)) + 1:04d}"
    facts = {
        **wanted,
        "events": events,
        "build_seconds": time.perf_counter() - started,
        "key": key,
        "largest_tenant": largest,
    }
    marker.write_text(json.dumps(facts))
    return facts


BASELINE_SQL = """
WITH s AS (
  SELECT tenant_id, session_id, min(event_date) AS day,
         bool_or(event_type = 'handoff' OR coalesce(handoff, false)) AS handed_off
  FROM ev GROUP BY tenant_id, session_id
), sd AS (
  SELECT tenant_id, day, count(*) AS sessions, count(*) FILTER (WHERE handed_off) AS handoffs
  FROM s GROUP BY tenant_id, day
), e AS (
  SELECT tenant_id, event_date AS day,
         count(DISTINCT user_id) FILTER (WHERE event_type = 'turn') AS dau,
         count(*) FILTER (WHERE event_type = 'turn') AS turns,
         count(*) FILTER (WHERE event_type = 'error') AS errors,
         count(feedback) AS feedback,
         count(*) FILTER (WHERE feedback = -1) AS thumbs_down,
         quantile_cont(latency_ms, 0.95) FILTER (WHERE event_type = 'turn') AS latency_p95,
         sum(cost_usd) AS cost_usd
  FROM ev GROUP BY tenant_id, event_date
)
SELECT * FROM e LEFT JOIN sd USING (tenant_id, day)
"""


def baseline(path: Path) -> tuple[float, int]:
    """Seconds of the one grouped query over the events' files, and its row count."""
    import duckdb
    from deltalake import DeltaTable

    files = [unquote(urlparse(u).path) for u in DeltaTable(str(path / "events")).file_uris()]
    started = time.perf_counter()
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.read_parquet(files, hive_partitioning=True).create_view("ev")
        rows = con.execute(f"SELECT count(*) FROM ({BASELINE_SQL})").fetchone()
    return time.perf_counter() - started, int(rows[0]) if rows else 0


def ratio(a: float, b: float) -> str:
    """``a / b`` with three significant digits (a warm page is a small fraction of a query)."""
    return f"{a / b:.3g}x" if b > 0 else "n/a"


_TIMING = re.compile(r"dur=([0-9.]+)")


def server_ms(response: Any, wall: float) -> tuple[float, str]:
    """The request's server time in ms: the ``Server-Timing`` header's total when sent, else the
    in-process wall time; and which of the two it was."""
    header = response.headers.get("server-timing", "")
    durations = [float(d) for d in _TIMING.findall(header)]
    if durations:
        return max(durations), "Server-Timing"
    return wall * 1000, "wall"


def timed_get(client: Any, url: str) -> tuple[float, str, int]:
    started = time.perf_counter()
    response = client.get(url)
    wall = time.perf_counter() - started
    ms, source = server_ms(response, wall)
    if response.status_code != 200 or b"/ui/tenants/tenant-" not in response.content:
        raise SystemExit(
            f"GET {url} answered {response.status_code} (expected 200 and a page linking to "
            f"tenants): {response.text[:300]}"
        )
    return ms, source, len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--max-users", type=float, default=12, help="Largest tenant's mean daily users."
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("/tmp/assay-results-D3.md"))
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    load = os.getloadavg()[0]
    path = _bench.BENCH_DIR / "dashboard-pages" / f"ws-{args.tenants}x{args.days}"
    path.parent.mkdir(parents=True, exist_ok=True)
    _bench.note(f"workspace {path} ...")
    facts = build(path, args.tenants, args.days, args.seed, args.max_users)
    _bench.note(f"  {facts['events']:,} events (built in {facts['build_seconds']:.0f} s)")

    base = sorted(baseline(path)[0] for _ in range(max(1, args.repeat // 2)))
    base_s = statistics.median(base)

    from fastapi.testclient import TestClient

    from assay.service import create_app

    tenant = facts["largest_tenant"]
    other = "tenant-0001" if tenant != "tenant-0001" else "tenant-0002"
    pages = {
        "fleet": "/ui/",
        "tenant": f"/ui/tenants/{tenant}",
        "another tenant": f"/ui/tenants/{other}",
    }
    rows: list[tuple[str, str]] = []
    table: list[list[str]] = []
    with TestClient(create_app(path), base_url="http://127.0.0.1") as client:
        signed = client.post(
            "/ui/login",
            data={"api_key": facts["key"]},
            headers={"origin": "http://127.0.0.1"},
            follow_redirects=False,
        )
        if signed.status_code not in (302, 303):
            raise SystemExit(f"sign-in answered {signed.status_code} (expected a redirect)")
        for name, url in pages.items():
            cold, source, size = timed_get(client, url)
            warm = statistics.median(timed_get(client, url)[0] for _ in range(args.repeat))
            rows += [
                (f"{name} cold ({source})", f"{cold:,.0f} ms"),
                (f"{name} warm, median of {args.repeat}", f"{warm:,.0f} ms ({size:,} bytes)"),
                (f"{name} first / baseline", ratio(cold / 1000, base_s)),
                (f"{name} warm / baseline", ratio(warm / 1000, base_s)),
            ]
            table.append(
                [
                    f"{name} `{url}`",
                    f"{cold:,.0f}",
                    f"{warm:,.0f}",
                    "yes" if warm < GOAL_MS else "**no**",
                    ratio(cold / 1000, base_s),
                    ratio(warm / 1000, base_s),
                ]
            )
    summary_s = _summary_seconds(path)
    if summary_s is not None:
        rows.append(("summary build (library, cold)", f"{summary_s * 1000:,.0f} ms"))
        rows.append(("summary build / baseline", ratio(summary_s, base_s)))
    rows.append(("baseline: grouped DuckDB query", f"{base_s * 1000:,.0f} ms"))
    _bench.print_machine()
    _bench.print_block(
        f"dashboard pages, {args.tenants:,} tenants x {args.days} days, {facts['events']:,} events",
        rows,
    )
    _write_results(args, facts, table, base_s, summary_s, started, (load, os.getloadavg()[0]))


SUMMARY_CHILD = """
import sys, time
from assay._api import Workspace
from assay.dashboard._fleet import daily_summary
with Workspace.open(sys.argv[1]) as ws:
    started = time.perf_counter()
    daily_summary(ws)
    print(time.perf_counter() - started)
"""


def _summary_seconds(path: Path) -> float | None:
    """One cold call of the dashboard's summary function (``daily_summary``, where it exists),
    in a child process: this one's app has already cached it."""
    import subprocess
    import sys

    try:
        from assay.dashboard._fleet import daily_summary  # noqa: F401
    except ImportError:
        return None
    run = subprocess.run(
        [sys.executable, "-c", SUMMARY_CHILD, str(path)],
        capture_output=True,
        text=True,
        env=_bench.child_env(),
        check=False,
    )
    if run.returncode != 0:
        _bench.note(f"the summary child failed: {run.stderr[-2000:]}")
        return None
    return float(run.stdout.strip().splitlines()[-1])


def _write_results(
    args: argparse.Namespace,
    facts: dict[str, Any],
    table: list[list[str]],
    base_s: float,
    summary_s: float | None,
    started: dt.datetime,
    load: tuple[float, float],
) -> None:
    import subprocess

    m = _bench.machine()
    ended = dt.datetime.now(dt.UTC)
    git = ["git", "-C", str(_bench.ROOT)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "src"], capture_output=True, text=True, check=False
    ).stdout.strip()
    lines = [
        f"## Dashboard pages (issue #16) — {started:%Y-%m-%d %H:%M} to {ended:%H:%M} UTC",
        "",
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory']}, Python {m['python']}, "
        f"DuckDB {m['duckdb']}, pyarrow {m['pyarrow']}; code: commit {commit}"
        + (" with uncommitted changes under src/" if dirty else "")
        + f" (src digest {m['assay src']}).",
        f"Data: {args.tenants:,} tenants x {args.days} days, {facts['events']:,} events "
        f"generated by the script (seed {args.seed}) and appended with the store's API.",
        f"Command: `{_bench.command_line()}`",
        "",
        _bench.markdown_row(
            [
                "page",
                "first request ms",
                f"warm ms (median of {args.repeat})",
                "warm < 300 ms",
                "first / baseline",
                "warm / baseline",
            ]
        ),
        _bench.markdown_row(["---"] * 6),
        *(_bench.markdown_row(r) for r in table),
        "",
        f"Baseline: one grouped DuckDB query over the same events' Parquet files, "
        f"{base_s * 1000:,.0f} ms (median)."
        + (
            ""
            if summary_s is None
            else f" The dashboard's summary build called directly: {summary_s * 1000:,.0f} ms."
        ),
        "",
        f"Caveats: the machine was shared (load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end, on {m['cpus']} CPUs), so every time here is inflated; the "
        "ratios to the baseline, measured in the same run, hold better. Server time is the "
        "in-process wall time of each request (TestClient; no Server-Timing header is sent). "
        "A page's first request builds what it then keeps in memory: the fleet's first builds "
        "the per-tenant daily summary (one query over all events); a tenant's first view reads "
        "that tenant's release events and retention cohorts from the events and scores its "
        "series. The events are generated, not ingested (same stored shape).",
        "",
    ]
    args.out.write_text("\n".join(lines))
    _bench.note(f"results written to {args.out}")


if __name__ == "__main__":
    main()
