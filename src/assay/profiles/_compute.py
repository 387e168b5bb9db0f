"""Compute profile rows from events with DuckDB, applying the k-user fold before any sketch.

Every row of events is profiled once for its tenant (``slice_field = ""``) and once per slice
field. For each day x tenant x slice:

1. a slice value seen by fewer than k distinct users of the tenant that day becomes the slice
   ``<OTHER>`` (so rare values never become slice keys);
2. per allow-listed categorical column, each item's rows and distinct users are counted
   exactly (``COUNT(DISTINCT user_id)``); items with fewer than k users are folded into
   ``<OTHER>`` in the same query, so only folded counts ever leave DuckDB;
3. numeric columns' values, sorted, go into one KLL sketch per group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from datasketches import hll_sketch, kll_doubles_sketch

from assay._errors import UsageError
from assay.profiles._columns import (
    CATEGORICAL_COLUMNS,
    COUNT_COLUMNS,
    DEFAULT_MIN_USERS,
    DEFAULT_SLICES,
    HLL_LG_K,
    KLL_K,
    NUMERIC_COLUMNS,
    OTHER,
    PROFILE_SCHEMA,
    SLICE_FIELDS,
)

#: Columns an events table must have to be profiled (the stored events schema's names).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "event_date",
    "tenant_id",
    *(c for c in COUNT_COLUMNS if c != "text"),
    "has_text",
    *NUMERIC_COLUMNS,
    *CATEGORICAL_COLUMNS,
)


def check_options(slices: Sequence[str], k: int) -> tuple[str, ...]:
    """Validate the slice fields and k; return the slice fields, deduplicated, in order."""
    if isinstance(slices, str):
        raise UsageError(
            f"slices must be a sequence of field names, not one string (got {slices[:40]!r}); "
            f"pass e.g. ({slices!r},)"
        )
    unknown = [s for s in slices if s not in SLICE_FIELDS]
    if unknown:
        raise UsageError(
            f"cannot slice profiles by {unknown[:5]}; slice fields are "
            f"{', '.join(SLICE_FIELDS)} (ids and free text are never slice keys)"
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UsageError(
            f"k (the least distinct users an item needs to be stored) must be an integer >= 1 "
            f"(got {k!r}); the default is {DEFAULT_MIN_USERS}"
        )
    return tuple(dict.fromkeys(slices))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def compute_rows(
    con: duckdb.DuckDBPyConnection,
    source: str,
    params: Sequence[object] = (),
    *,
    slices: Sequence[str] = DEFAULT_SLICES,
    k: int = DEFAULT_MIN_USERS,
) -> pa.Table:
    """Profile rows (:data:`PROFILE_SCHEMA`) of the events that ``source`` selects.

    ``source`` is a SQL ``FROM`` item over stored events (a ``read_parquet(...)`` call or a
    registered table) with ``?`` parameters ``params``. Temporary tables are created on
    ``con`` and dropped before returning.
    """
    slices = check_options(slices, k)
    cols = [
        "CAST(event_date AS DATE) AS event_date",
        "tenant_id",
        "user_id",
        *(f"({_q(c)} IS NOT NULL) AS {_q('has_' + c)}" for c in COUNT_COLUMNS if c != "text"),
        "has_text AS has_text",
        *(_q(c) for c in NUMERIC_COLUMNS),
        *(_q(c) for c in CATEGORICAL_COLUMNS),
    ]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _prof_ev AS SELECT {', '.join(cols)} FROM {source}", params
    )
    try:
        return _compute(con, slices, k)
    finally:
        con.execute("DROP TABLE IF EXISTS _prof_ev")
        con.execute("DROP TABLE IF EXISTS _prof_sl")


def _compute(con: duckdb.DuckDBPyConnection, slices: tuple[str, ...], k: int) -> pa.Table:
    parts = ["SELECT '' AS slice_field, '' AS slice_value, * FROM _prof_ev"]
    for f in slices:
        # The slice value keeps its name only with >= k distinct users that day in the tenant.
        parts.append(
            f"SELECT '{f}' AS slice_field, "
            f"CASE WHEN e.{_q(f)} IS NULL THEN NULL WHEN u.n >= {k} THEN e.{_q(f)} "
            f"ELSE '{OTHER}' END AS slice_value, e.* "
            f"FROM _prof_ev e LEFT JOIN (SELECT event_date, tenant_id, {_q(f)} AS v, "
            f"count(DISTINCT user_id) AS n FROM _prof_ev GROUP BY ALL) u "
            f"ON u.event_date = e.event_date AND u.tenant_id = e.tenant_id AND u.v = e.{_q(f)}"
        )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _prof_sl AS SELECT dense_rank() OVER (ORDER BY "
        "event_date, tenant_id, slice_field, slice_value NULLS FIRST) - 1 AS gid, * FROM ("
        + " UNION ALL ".join(parts)
        + ")"
    )
    keys = con.sql(
        "SELECT gid, any_value(event_date) AS event_date, any_value(tenant_id) AS tenant_id, "
        "any_value(slice_field) AS slice_field, any_value(slice_value) AS slice_value, "
        "count(*) AS n, "
        + ", ".join(
            [f"count({_q(c)}) AS {_q(c)}" for c in (*NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS)]
            + [f"count_if({_q('has_' + c)}) AS {_q(c)}" for c in COUNT_COLUMNS]
        )
        + " FROM _prof_sl GROUP BY gid ORDER BY gid"
    ).to_arrow_table()
    n_groups = keys.num_rows
    if n_groups == 0:
        return PROFILE_SCHEMA.empty_table()

    key_of = {
        name: keys[name].to_pylist()
        for name in ("event_date", "tenant_id", "slice_field", "slice_value")
    }
    counts_of = {
        name: keys[name].to_numpy()
        for name in ("n", *NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS, *COUNT_COLUMNS)
    }
    out: dict[str, list[Any]] = {name: [] for name in PROFILE_SCHEMA.names}

    def emit(
        column: str,
        kind: str,
        counts: np.ndarray[Any, Any],
        extra: list[dict[str, Any]] | None = None,
    ) -> None:
        total = counts_of["n"]
        for g in range(n_groups):
            for name in ("event_date", "tenant_id", "slice_field", "slice_value"):
                out[name].append(key_of[name][g])
            out["column"].append(column)
            out["kind"].append(kind)
            out["count"].append(int(total[g]))
            out["nulls"].append(int(total[g] - counts[g]))
            e = extra[g] if extra is not None else {}
            for name in ("min", "max", "kll", "hll", "items"):
                out[name].append(e.get(name))

    for c in NUMERIC_COLUMNS:
        emit(c, "numeric", counts_of[c], _numeric(con, c, n_groups))
    for c in CATEGORICAL_COLUMNS:
        emit(c, "categorical", counts_of[c], _categorical(con, c, n_groups, k))
    for c in COUNT_COLUMNS:
        emit(c, "count", counts_of[c])
    table = pa.Table.from_pydict(out, schema=PROFILE_SCHEMA)
    return table.sort_by(
        [
            ("event_date", "ascending"),
            ("tenant_id", "ascending"),
            ("slice_field", "ascending"),
            ("slice_value", "ascending"),
            ("column", "ascending"),
        ]
    )


def _groups(gids: np.ndarray[Any, Any]) -> list[tuple[int, int, int]]:
    """(gid, start, stop) of each run of equal gids in a sorted array."""
    if len(gids) == 0:
        return []
    starts = np.concatenate(([0], np.flatnonzero(np.diff(gids)) + 1))
    stops = np.concatenate((starts[1:], [len(gids)]))
    return [(int(gids[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _numeric(con: duckdb.DuckDBPyConnection, c: str, n_groups: int) -> list[dict[str, Any]]:
    # Sorted within a group so that the same events always give the same sketch bytes.
    data = con.sql(
        f"SELECT gid, CAST({_q(c)} AS DOUBLE) AS v FROM _prof_sl "
        f"WHERE {_q(c)} IS NOT NULL AND NOT isnan(CAST({_q(c)} AS DOUBLE)) ORDER BY gid, v"
    ).fetchnumpy()
    extra: list[dict[str, Any]] = [{} for _ in range(n_groups)]
    values = np.asarray(data["v"], dtype=np.float64)
    for gid, a, b in _groups(np.asarray(data["gid"])):
        sk = kll_doubles_sketch(KLL_K)
        sk.update(values[a:b])
        extra[gid] = {
            "min": float(values[a]),
            "max": float(values[b - 1]),
            "kll": bytes(sk.serialize()),
        }
    return extra


def _categorical(
    con: duckdb.DuckDBPyConnection, c: str, n_groups: int, k: int
) -> list[dict[str, Any]]:
    # The fold happens inside DuckDB: only item names with >= k distinct users come out.
    rows = con.sql(
        f"SELECT gid, CASE WHEN users >= {k} THEN item ELSE '{OTHER}' END AS item, "
        "CAST(sum(n) AS BIGINT) AS n FROM ("
        f"SELECT gid, CAST({_q(c)} AS VARCHAR) AS item, count(*) AS n, "
        f"count(DISTINCT user_id) AS users FROM _prof_sl WHERE {_q(c)} IS NOT NULL "
        "GROUP BY gid, item) GROUP BY ALL ORDER BY gid, item"
    ).fetchall()
    items: list[list[dict[str, Any]]] = [[] for _ in range(n_groups)]
    for gid, item, n in rows:
        items[gid].append({"value": item, "count": int(n)})
    extra: list[dict[str, Any]] = []
    for group in items:
        if not group:
            extra.append({})
            continue
        sk = hll_sketch(HLL_LG_K)
        for it in group:
            sk.update(it["value"])
        extra.append({"items": group, "hll": bytes(sk.serialize_compact())})
    return extra


def profile_events(
    events: pa.Table,
    *,
    slices: Sequence[str] = DEFAULT_SLICES,
    k: int = DEFAULT_MIN_USERS,
) -> pa.Table:
    """Profile rows of an in-memory table of stored events (the ``events`` table's columns).

    The same computation as :func:`build_profiles` runs on a workspace, without storing
    anything: for a model's training data, or to check a profile against the raw events.

    Parameters
    ----------
    events : rows of the stored events schema (``assay.schema.EVENTS_SCHEMA``).
    slices : fields to slice by besides the whole tenant.
    k : the least distinct users an item (or slice value) needs on a day and slice to be
        kept by name; rarer ones are counted under ``<OTHER>``.

    Returns
    -------
    pyarrow.Table
        Rows of :data:`PROFILE_SCHEMA`, one per day, tenant, slice and profiled column.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in events.column_names]
    if missing:
        raise UsageError(
            f"events to profile must have the stored events columns; missing {missing[:8]}; "
            "pass rows of assay.schema.EVENTS_SCHEMA (e.g. ws.read('events'))"
        )
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("_prof_input", events)
        return compute_rows(con, "_prof_input", slices=slices, k=k)
    finally:
        con.close()
