"""Metrics on DuckDB: ``ws.metrics`` (Ibis) against hand-written DuckDB SQL and pandas.

Goal (issue #2): on 10 M events, ``dau`` + ``dau_rolling`` + ``max_active`` (default
parameters: rolling window 7 with threshold 0.3, max-active window 30) through
``assay.Workspace.open(ws).metrics`` take at most 1.5x the time of hand-written DuckDB SQL
over the same Parquet files computing the same three tables. The speed-up over a
straightforward pandas implementation is reported too.

The sides, each computing the three tables from the workspace's current files (the file list
from ``deltalake.DeltaTable(ws/events).file_uris()``, read with
``read_parquet(files, hive_partitioning = true)``), timed in this process, best of
``--repeat`` rounds after one untimed warm-up round whose results are cross-checked:

``assay``
    ``with Workspace.open(ws) as w: w.metrics.dau(); w.metrics.dau_rolling();
    w.metrics.max_active()`` (opening the workspace and its DuckDB engine included).
``sql (expand)``
    Three independent SQL queries on a new DuckDB connection. ``max_active`` the plain way:
    every (tenant, user, active day) is expanded over the 30 window ends it falls in, then
    distinct users are counted per (tenant, window end).
``sql (spans)``
    The same, with ``max_active`` as a running sum over per-user spans of covered window
    ends (each active day read once, whatever the window).
``pandas``
    ``pd.read_parquet`` per file (the day from the partition path), then groupby, reindex
    onto the day grid, ``rolling``, and the expansion for ``max_active`` with
    ``drop_duplicates``.

The ratio is against the faster SQL side (the stricter baseline). Before timing, the results
of every side are checked to be equal to assay's (floats to 1e-9).

The workspace: ``--workspace PATH``, or else the one ``ingest_memory.py`` keeps for
``--events N``, ingested now through the CLI if missing (10 M events take several minutes).

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/metrics_duckdb.py --events 10000000
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable

import _bench
from _bench import ratio, secs

GOAL = 1.5
WINDOW = 7
THRESHOLD = 0.3
MAX_WINDOW = 30

Result = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _workspace_class() -> Any:
    import assay

    if hasattr(assay, "Workspace"):
        return assay.Workspace
    from assay._api import Workspace  # before assay re-exports it

    return Workspace


# -- hand-written SQL --------------------------------------------------------------------------

_COMMON = """
WITH ev AS NOT MATERIALIZED (
    SELECT tenant_id, user_id, event_type, event_date
    FROM read_parquet({files}, hive_partitioning = true)
),
bounds AS (SELECT max(event_date) AS until FROM ev),
user_days AS (
    SELECT DISTINCT tenant_id, user_id, event_date AS day
    FROM ev
    WHERE event_type = 'turn' AND event_date <= (SELECT until FROM bounds)
),
firsts AS (SELECT tenant_id, min(day) AS first_day FROM user_days GROUP BY tenant_id),
grid AS (
    SELECT tenant_id, first_day,
           CAST(unnest(generate_series(first_day, until, INTERVAL 1 DAY)) AS DATE) AS day
    FROM firsts, bounds
)
"""

_DAILY = """,
daily AS (
    SELECT g.tenant_id, g.first_day, g.day, count(u.user_id) AS dau
    FROM grid g LEFT JOIN user_days u ON u.tenant_id = g.tenant_id AND u.day = g.day
    GROUP BY g.tenant_id, g.first_day, g.day
)
"""

_DAU_SQL = _COMMON + _DAILY + "SELECT tenant_id, day, dau FROM daily ORDER BY tenant_id, day"

_ROLLING_SQL = (
    _COMMON
    + _DAILY
    + """,
rolled AS (
    SELECT tenant_id, day, dau,
           CAST(sum(dau) OVER (PARTITION BY tenant_id ORDER BY day
                ROWS BETWEEN {w1} PRECEDING AND CURRENT ROW) AS DOUBLE) / {w} AS dau_avg,
           CASE WHEN day - first_day >= {w2} THEN
                CAST(sum(dau) OVER (PARTITION BY tenant_id ORDER BY day
                     ROWS BETWEEN {w2} PRECEDING AND {w} PRECEDING) AS DOUBLE) / {w}
           END AS dau_prev_avg
    FROM daily
)
SELECT tenant_id, day, dau, dau_avg, dau_prev_avg,
       coalesce(dau_prev_avg > 0 AND dau_avg <= (1 - {threshold}) * dau_prev_avg, false)
           AS "drop"
FROM rolled
ORDER BY tenant_id, day
"""
)

_BEST_WINDOW = """,
best AS (
    SELECT tenant_id, window_start, n,
           row_number() OVER (PARTITION BY tenant_id ORDER BY n DESC, window_start) AS rank
    FROM windows
)
SELECT f.tenant_id, {w} AS "window", b.n AS max_active, b.window_start
FROM firsts f LEFT JOIN best b ON b.tenant_id = f.tenant_id AND b.rank = 1
ORDER BY f.tenant_id
"""

_MAX_EXPAND_SQL = (
    _COMMON
    + """,
covered AS (
    SELECT u.tenant_id, u.user_id, u.day + CAST(o.k AS INTEGER) AS window_end
    FROM user_days u CROSS JOIN range({w}) AS o(k)
),
counts AS (
    SELECT tenant_id, window_end, count(DISTINCT user_id) AS n
    FROM covered GROUP BY tenant_id, window_end
),
windows AS (
    SELECT c.tenant_id, c.window_end - {w1} AS window_start, c.n
    FROM counts c JOIN firsts f ON f.tenant_id = c.tenant_id, bounds
    WHERE c.window_end <= bounds.until AND c.window_end - {w1} >= f.first_day
)
"""
    + _BEST_WINDOW
)

_MAX_SPANS_SQL = (
    _COMMON
    + """,
gaps AS (
    SELECT tenant_id, user_id, day,
           day - lag(day) OVER (PARTITION BY tenant_id, user_id ORDER BY day) AS gap
    FROM user_days
),
numbered AS (
    SELECT tenant_id, user_id, day,
           sum(CASE WHEN gap IS NULL OR gap >= {w} THEN 1 ELSE 0 END) OVER (
               PARTITION BY tenant_id, user_id ORDER BY day ROWS UNBOUNDED PRECEDING) AS span
    FROM gaps
),
spans AS (
    SELECT tenant_id, min(day) AS opens, max(day) + {w} AS closes
    FROM numbered GROUP BY tenant_id, user_id, span
),
steps AS (
    SELECT tenant_id, day, sum(step) AS step FROM (
        SELECT tenant_id, opens AS day, 1 AS step FROM spans
        UNION ALL
        SELECT tenant_id, closes AS day, -1 AS step FROM spans
    ) GROUP BY tenant_id, day
),
coverage AS (
    SELECT g.tenant_id, g.first_day, g.day,
           sum(coalesce(s.step, 0)) OVER (
               PARTITION BY g.tenant_id ORDER BY g.day ROWS UNBOUNDED PRECEDING) AS n
    FROM grid g LEFT JOIN steps s ON s.tenant_id = g.tenant_id AND s.day = g.day
),
windows AS (
    SELECT tenant_id, day - {w1} AS window_start, n
    FROM coverage WHERE day - first_day >= {w1}
)
"""
    + _BEST_WINDOW
)


def _sql_list(files: Sequence[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def _event_files(workspace: Path) -> list[str]:
    return list(DeltaTable(str(workspace / "events")).file_uris())


def run_sql(workspace: Path, max_sql: str) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The three metrics by hand-written SQL on a new DuckDB connection."""
    files = _sql_list(_event_files(workspace))
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        dau = con.sql(_DAU_SQL.format(files=files)).to_arrow_table()
        rolling = con.sql(
            _ROLLING_SQL.format(
                files=files,
                w=WINDOW,
                w1=WINDOW - 1,
                w2=2 * WINDOW - 1,
                threshold=f"CAST({THRESHOLD!r} AS DOUBLE)",
            )
        ).to_arrow_table()
        best = con.sql(
            max_sql.format(files=files, w=MAX_WINDOW, w1=MAX_WINDOW - 1)
        ).to_arrow_table()
    finally:
        con.close()
    return dau, rolling, best


def run_sql_expand(workspace: Path) -> tuple[pa.Table, pa.Table, pa.Table]:
    return run_sql(workspace, _MAX_EXPAND_SQL)


def run_sql_spans(workspace: Path) -> tuple[pa.Table, pa.Table, pa.Table]:
    return run_sql(workspace, _MAX_SPANS_SQL)


# -- assay ------------------------------------------------------------------------------------


def run_assay(workspace: Path) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The three metrics through the public API, on the workspace's default engine."""
    with _workspace_class().open(workspace) as ws:
        metrics = ws.metrics
        dau = metrics.dau()
        rolling = metrics.dau_rolling(window=WINDOW, threshold=THRESHOLD)
        best = metrics.max_active(window=MAX_WINDOW)
    return dau, rolling, best


# -- pandas -----------------------------------------------------------------------------------


def _local_path(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def _day_of(uri: str) -> pd.Timestamp:
    for part in _local_path(uri).split("/"):
        if part.startswith("event_date="):
            return pd.Timestamp(part.split("=", 1)[1])
    raise SystemExit(f"no event_date=... partition in the file path {uri}")


def run_pandas(workspace: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three metrics the plain pandas way."""
    frames = []
    for uri in _event_files(workspace):
        frame = pd.read_parquet(_local_path(uri), columns=["tenant_id", "user_id", "event_type"])
        frame["event_date"] = _day_of(uri)
        frames.append(frame)
    events = pd.concat(frames, ignore_index=True)
    until = events["event_date"].max()
    turns = events[(events["event_type"] == "turn") & (events["event_date"] <= until)]
    user_days = turns[["tenant_id", "user_id", "event_date"]].drop_duplicates()
    firsts = user_days.groupby("tenant_id")["event_date"].min()
    per_day = user_days.groupby(["tenant_id", "event_date"]).size()

    dau_parts, rolling_parts = [], []
    for tenant, first in firsts.items():
        days = pd.date_range(first, until, freq="D")
        dau = per_day.loc[tenant].reindex(days, fill_value=0)
        avg = dau.rolling(WINDOW, min_periods=1).sum() / WINDOW
        prev = dau.rolling(WINDOW, min_periods=WINDOW).sum().shift(WINDOW) / WINDOW
        drop = (prev > 0) & (avg <= (1 - THRESHOLD) * prev)
        part = pd.DataFrame(
            {"tenant_id": tenant, "day": days, "dau": dau.to_numpy(), "dau_avg": avg.to_numpy()}
        )
        dau_parts.append(part[["tenant_id", "day", "dau"]])
        part["dau_prev_avg"] = prev.to_numpy()
        part["drop"] = drop.to_numpy()
        rolling_parts.append(part)

    epoch = pd.Timestamp("1970-01-01")
    tenant_code, tenant_names = pd.factorize(user_days["tenant_id"])
    user_code = pd.factorize(user_days["user_id"])[0]
    day = (user_days["event_date"] - epoch).dt.days.to_numpy()
    covered = pd.DataFrame(
        {
            "t": np.repeat(tenant_code, MAX_WINDOW),
            "u": np.repeat(user_code, MAX_WINDOW),
            "end": (day[:, None] + np.arange(MAX_WINDOW)).ravel(),
        }
    ).drop_duplicates()
    counts = covered.groupby(["t", "end"]).size().rename("n").reset_index()
    counts["tenant_id"] = tenant_names[counts["t"].to_numpy()]
    counts["start"] = counts["end"] - (MAX_WINDOW - 1)
    first_days = ((firsts - epoch).dt.days).rename("first")
    counts = counts.join(first_days, on="tenant_id")
    until_days = (until - epoch).days
    inside = counts[(counts["end"] <= until_days) & (counts["start"] >= counts["first"])]
    best = (
        inside.sort_values(["tenant_id", "n", "start"], ascending=[True, False, True])
        .drop_duplicates("tenant_id")
        .set_index("tenant_id")
    )
    rows: list[tuple[Any, int, int | None, Any]] = []
    for tenant in firsts.index:
        if tenant in best.index:
            start = epoch + pd.Timedelta(days=int(best.at[tenant, "start"]))
            rows.append((tenant, MAX_WINDOW, int(best.at[tenant, "n"]), start))
        else:
            rows.append((tenant, MAX_WINDOW, None, None))
    max_active = pd.DataFrame(rows, columns=["tenant_id", "window", "max_active", "window_start"])
    return pd.concat(dau_parts), pd.concat(rolling_parts), max_active


# -- checks and timing ------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """One cell as a comparable Python value: dates as ISO strings, NaN as None."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).date().isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _rows(table: pa.Table | pd.DataFrame, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    if isinstance(table, pa.Table):
        data = table.select(list(columns)).to_pylist()
        rows = [tuple(_plain(r[c]) for c in columns) for r in data]
    else:
        rows = [tuple(_plain(v) for v in row) for row in table[list(columns)].itertuples(False)]
    return sorted(rows, key=lambda r: tuple(str(v) for v in r))


_COLUMNS = (
    ("tenant_id", "day", "dau"),
    ("tenant_id", "day", "dau", "dau_avg", "dau_prev_avg", "drop"),
    ("tenant_id", "window", "max_active", "window_start"),
)


def normalise(result: Sequence[pa.Table | pd.DataFrame]) -> Result:
    dau, rolling, best = (_rows(t, c) for t, c in zip(result, _COLUMNS, strict=True))
    return dau, rolling, best


def _same_rows(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> str | None:
    if len(a) != len(b):
        return f"{len(a)} rows against {len(b)}"
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, float) and isinstance(v, float):
                if not math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9):
                    return f"row {i}: {x} against {y}"
            elif u != v:
                return f"row {i}: {x} against {y}"
    return None


def check(name: str, got: Result, want: Result) -> None:
    for metric, a, b in zip(("dau", "dau_rolling", "max_active"), got, want, strict=True):
        problem = _same_rows(a, b)
        if problem is not None:
            raise SystemExit(f"{name} disagrees with assay on {metric}: {problem}")
    _bench.note(f"  {name}: same results as assay")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="about this many events")
    parser.add_argument("--workspace", type=Path, help="use this workspace instead")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; best counts")
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas side")
    return parser.parse_args()


def main() -> None:
    args = _parse_args()
    if args.workspace is not None:
        workspace = args.workspace
        label = config = str(workspace)
    else:
        data = _bench.dataset(args.events)
        workspace = _bench.ingested_workspace(data)
        label = f"{data.events:,} events"
        config = str(data.config)
    sides: dict[str, Callable[[Path], Sequence[Any]]] = {
        "assay": run_assay,
        "sql (expand)": run_sql_expand,
        "sql (spans)": run_sql_spans,
    }
    if not args.no_pandas:
        sides["pandas"] = run_pandas

    _bench.note("warm-up round, checking that every side computes the same tables ...")
    reference: Result | None = None
    for name, fn in sides.items():
        start = time.perf_counter()
        result = normalise(fn(workspace))
        _bench.note(f"  {name}: {time.perf_counter() - start:.2f} s (untimed)")
        if reference is None:
            reference = result
        else:
            check(name, result, reference)
    assert reference is not None
    rows_out = [len(r) for r in reference]

    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(args.repeat):
        _bench.note(f"round {i + 1} of {args.repeat}")
        for name, fn in sides.items():
            start = time.perf_counter()
            fn(workspace)
            times[name].append(time.perf_counter() - start)
            _bench.note(f"  {name:14s} {times[name][-1]:7.2f} s")

    best = {name: min(ts) for name, ts in times.items()}
    sql_name = min(("sql (expand)", "sql (spans)"), key=lambda n: best[n])
    ours, base = best["assay"], best[sql_name]
    met = ours / base <= GOAL
    _bench.print_machine()
    rows = [
        ("data", f"{label} ({config})" if label != config else label),
        ("files", f"{len(_event_files(workspace))} Parquet files"),
        ("result rows", f"dau {rows_out[0]}, dau_rolling {rows_out[1]}, max_active {rows_out[2]}"),
        ("check", "every side gave the same three tables as assay"),
    ]
    for name, ts in times.items():
        rows.append((name, f"{secs(best[name])}  runs " + ", ".join(f"{t:.2f}" for t in ts)))
    rows.append(
        (
            f"RATIO assay / {sql_name}",
            f"{ratio(ours, base)} (goal <= {GOAL}x: {'MET' if met else 'MISSED'})",
        )
    )
    other = "sql (spans)" if sql_name == "sql (expand)" else "sql (expand)"
    rows.append((f"ratio assay / {other}", ratio(ours, best[other])))
    if "pandas" in best:
        rows.append(("speed-up over pandas (pandas / assay)", ratio(best["pandas"], ours)))
    _bench.print_block("metrics: dau + dau_rolling + max_active", rows)
    print("\nrow (data | assay | SQL expand | SQL spans | pandas | ratio | goal | pandas/assay):")
    print(
        _bench.markdown_row(
            [
                label,
                secs(ours),
                secs(best["sql (expand)"]),
                secs(best["sql (spans)"]),
                secs(best["pandas"]) if "pandas" in best else "-",
                ratio(ours, base),
                f"<= {GOAL}x {'met' if met else 'MISSED'}",
                ratio(best["pandas"], ours) if "pandas" in best else "-",
            ]
        )
    )


if __name__ == "__main__":
    main()
