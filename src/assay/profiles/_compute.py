"""Compute profile rows from events with DuckDB, applying the k-user fold before any sketch.

Every row of events is profiled once for its tenant (``slice_field = ""``) and once per slice
field. For each day x tenant x slice:

1. a slice value seen by fewer than k distinct users of the tenant that day becomes the slice
   ``<OTHER>`` (so rare values never become slice keys);
2. per allow-listed categorical column, each item's rows and distinct users are counted
   exactly (``COUNT(DISTINCT user_id)``); items with fewer than k users are folded into
   ``<OTHER>`` in the same query, so only folded counts ever leave DuckDB;
3. numeric columns' values, sorted, go into one KLL sketch per group;
4. the group's distinct (pseudonymised) user ids go into one HLL sketch, and their event
   counts into one AMS sketch (:mod:`assay.profiles._f2`), stored on the ``user_id`` row: the
   drift tests count users, not events, from them (``docs/drift.md``).
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
    PROFILE_SLICE_FIELDS,
)
from assay.profiles._f2 import f2_sketches

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
    unknown = [s for s in slices if s not in PROFILE_SLICE_FIELDS]
    if unknown:
        raise UsageError(
            f"cannot slice profiles by {unknown[:5]}; slice fields are "
            f"{', '.join(PROFILE_SLICE_FIELDS)} (ids and free text are never slice keys)"
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UsageError(
            f"k (the least distinct users an item needs to be stored) must be an integer >= 1 "
            f"(got {k!r}); the default is {DEFAULT_MIN_USERS}"
        )
    return tuple(dict.fromkeys(slices))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
    # One row id per event ties the per-row numpy arrays to the slice map built in SQL.
    cols = [
        "CAST(row_number() OVER () - 1 AS BIGINT) AS rid",
        "CAST(event_date AS DATE) AS event_date",
        "tenant_id",
        "user_id",
        *(f"({_q(c)} IS NOT NULL) AS {_q('has_' + c)}" for c in COUNT_COLUMNS if c != "text"),
        "coalesce(has_text, false) AS has_text",
        *(_q(c) for c in NUMERIC_COLUMNS),
        # Items are the columns' text (DuckDB's cast: 'true', '-1'), as stored.
        *(f"CAST({_q(c)} AS VARCHAR) AS {_q(c)}" for c in CATEGORICAL_COLUMNS),
    ]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _prof_ev AS SELECT {', '.join(cols)} FROM {source}", params
    )
    try:
        return _compute(con, slices, k)
    finally:
        con.execute("DROP TABLE IF EXISTS _prof_ev")
        con.execute("DROP TABLE IF EXISTS _prof_map")


def _compute(con: duckdb.DuckDBPyConnection, slices: tuple[str, ...], k: int) -> pa.Table:
    n_rows = int(con.sql("SELECT count(*) FROM _prof_ev").fetchall()[0][0])
    if n_rows == 0:
        return PROFILE_SCHEMA.empty_table()
    _slice_map(con, slices, k)
    keys = con.sql(
        "SELECT gid, any_value(event_date) AS event_date, any_value(tenant_id) AS tenant_id, "
        "any_value(slice_field) AS slice_field, any_value(slice_value) AS slice_value "
        "FROM _prof_map GROUP BY gid ORDER BY gid"
    ).to_arrow_table()
    n_groups = keys.num_rows
    # gid_of[s, rid]: the group of event rid in slice s (0 is the whole tenant).
    m = con.sql("SELECT sid, rid, gid FROM _prof_map").fetchnumpy()
    gid_of = np.empty((len(slices) + 1, n_rows), dtype=np.int64)
    gid_of[np.asarray(m["sid"]), np.asarray(m["rid"])] = np.asarray(m["gid"])
    del m

    ev = con.sql(
        "SELECT "
        + ", ".join(
            [f"{_q('has_' + c)}" for c in COUNT_COLUMNS]
            + [f"({_q(c)} IS NOT NULL) AS {_q('nn_' + c)}" for c in CATEGORICAL_COLUMNS]
            + [f"({_q(c)} IS NOT NULL) AS {_q('nn_' + c)}" for c in NUMERIC_COLUMNS]
            # Nulls become NaN; NaN values are counted as values but never sketched.
            + [
                f"coalesce(CAST({_q(c)} AS DOUBLE), 'NaN'::DOUBLE) AS {_q(c)}"
                for c in NUMERIC_COLUMNS
            ]
        )
        + " FROM _prof_ev ORDER BY rid"
    ).fetchnumpy()

    def per_group(flags: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """How many rows of each group have the flag set (every slice's groups)."""
        w = np.asarray(flags, dtype=np.float64)
        total = np.zeros(n_groups, dtype=np.int64)
        for g in gid_of:
            total += np.bincount(g, weights=w, minlength=n_groups).astype(np.int64)
        return total

    total = per_group(np.ones(n_rows, dtype=bool))
    blocks: list[pa.Table] = []
    for c in NUMERIC_COLUMNS:
        mins, maxs, klls = _numeric(np.asarray(ev[c], dtype=np.float64), gid_of, n_groups)
        blocks.append(_block(keys, c, "numeric", total, per_group(ev["nn_" + c]), mins, maxs, klls))
    items = _categorical(con, k, n_groups)
    for c in CATEGORICAL_COLUMNS:
        group_items, hlls = items[c]
        blocks.append(
            _block(
                keys,
                c,
                "categorical",
                total,
                per_group(ev["nn_" + c]),
                hll=hlls,
                items=group_items,
            )
        )
    users, f2 = _user_sketches(con, n_groups)
    for c in COUNT_COLUMNS:
        blocks.append(
            _block(
                keys,
                c,
                "count",
                total,
                per_group(ev["has_" + c]),
                hll=users if c == "user_id" else None,
                f2=f2 if c == "user_id" else None,
            )
        )
    table = pa.concat_tables(blocks)
    return table.sort_by(
        [
            ("event_date", "ascending"),
            ("tenant_id", "ascending"),
            ("slice_field", "ascending"),
            ("slice_value", "ascending"),
            ("column", "ascending"),
        ]
    )


def _slice_map(con: duckdb.DuckDBPyConnection, slices: tuple[str, ...], k: int) -> None:
    """``_prof_map``: (rid, sid, gid, event_date, tenant_id, slice_field, slice_value), one row
    per event and slice (sid 0 is the whole tenant, sid i the i-th slice field)."""
    parts = [
        "SELECT rid, 0 AS sid, event_date, tenant_id, '' AS slice_field, '' AS slice_value "
        "FROM _prof_ev"
    ]
    for i, f in enumerate(slices, start=1):
        # The slice value keeps its name only with >= k distinct users that day in the tenant.
        parts.append(
            f"SELECT e.rid, {i} AS sid, e.event_date, e.tenant_id, {_lit(f)} AS slice_field, "
            f"CASE WHEN e.{_q(f)} IS NULL THEN NULL WHEN u.n >= {k} THEN e.{_q(f)} "
            f"ELSE '{OTHER}' END AS slice_value "
            f"FROM _prof_ev e LEFT JOIN (SELECT event_date, tenant_id, {_q(f)} AS v, "
            f"count(DISTINCT user_id) AS n FROM _prof_ev GROUP BY ALL) u "
            f"ON u.event_date = e.event_date AND u.tenant_id = e.tenant_id AND u.v = e.{_q(f)}"
        )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _prof_map AS SELECT rid, sid, CAST(dense_rank() OVER ("
        "ORDER BY event_date, tenant_id, slice_field, slice_value NULLS FIRST) - 1 AS BIGINT) "
        "AS gid, event_date, tenant_id, slice_field, slice_value FROM ("
        + " UNION ALL ".join(parts)
        + ")"
    )


def _groups(gids: np.ndarray[Any, Any]) -> list[tuple[int, int, int]]:
    """(gid, start, stop) of each run of equal gids in a sorted array."""
    if len(gids) == 0:
        return []
    starts = np.concatenate(([0], np.flatnonzero(np.diff(gids)) + 1))
    stops = np.concatenate((starts[1:], [len(gids)]))
    return [(int(gids[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _stable_order(gids: np.ndarray[Any, Any], n_groups: int) -> np.ndarray[Any, Any]:
    """The permutation that sorts ``gids`` and keeps equal gids in their order."""
    if n_groups <= 1 << 16:
        # numpy's stable sort of 16-bit integers is a radix sort: linear in the rows.
        return np.argsort(gids.astype(np.uint16), kind="stable")
    return np.argsort(gids, kind="stable")


def _numeric(
    values: np.ndarray[Any, Any], gid_of: np.ndarray[Any, Any], n_groups: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], list[bytes | None]]:
    """Per group: the least and greatest value (NaN if none) and the KLL sketch's bytes."""
    idx = np.flatnonzero(~np.isnan(values))
    # Sorted once by value; a stable sort by group then keeps each group's values sorted, so
    # the same events always feed a sketch the same sequence.
    by_value = idx[np.argsort(values[idx], kind="stable")]
    ordered = values[by_value]
    mins = np.full(n_groups, np.nan)
    maxs = np.full(n_groups, np.nan)
    klls: list[bytes | None] = [None] * n_groups
    for gids in gid_of:
        g = gids[by_value]
        perm = _stable_order(g, n_groups)
        g, v = g[perm], ordered[perm]
        for gid, a, b in _groups(g):
            sk = kll_doubles_sketch(KLL_K)
            sk.update(v[a:b])
            klls[gid] = bytes(sk.serialize())
            mins[gid] = v[a]
            maxs[gid] = v[b - 1]
    return mins, maxs, klls


_ITEM_TYPE = PROFILE_SCHEMA.field("items").type


def _categorical(
    con: duckdb.DuckDBPyConnection, k: int, n_groups: int
) -> dict[str, tuple[pa.Array, list[bytes | None]]]:
    """Per categorical column: each group's folded item counts (a list array, null for a
    group without values) and the HLL sketch of its stored items."""
    names = ", ".join(_q(c) for c in CATEGORICAL_COLUMNS)
    # One query for every column and slice. The fold happens inside DuckDB: only item names
    # with >= k distinct users (counted exactly) come out.
    rows = con.sql(
        f"SELECT col, gid, CASE WHEN users >= {k} THEN item ELSE '{OTHER}' END AS item, "
        "CAST(sum(n) AS BIGINT) AS n FROM ("
        "SELECT m.gid, u.col, u.item, count(*) AS n, count(DISTINCT u.user_id) AS users "
        f"FROM (UNPIVOT (SELECT rid, user_id, {names} FROM _prof_ev) ON {names} "
        "INTO NAME col VALUE item) u JOIN _prof_map m ON m.rid = u.rid GROUP BY ALL"
        ") GROUP BY ALL ORDER BY col, gid, item"
    ).to_arrow_table()
    cols = rows["col"].to_numpy(zero_copy_only=False)
    gids = np.asarray(rows["gid"].to_numpy(), dtype=np.int64)
    item_col = rows["item"].combine_chunks()
    n_col = rows["n"].combine_chunks()
    out: dict[str, tuple[pa.Array, list[bytes | None]]] = {}
    for c in CATEGORICAL_COLUMNS:
        sel = np.flatnonzero(cols == c)
        a, b = (int(sel[0]), int(sel[-1]) + 1) if len(sel) else (0, 0)
        g = gids[a:b]
        sizes = np.bincount(g, minlength=n_groups)
        offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int32)
        values = pa.StructArray.from_arrays(
            [item_col.slice(a, b - a), n_col.slice(a, b - a)], fields=list(_ITEM_TYPE.value_type)
        )
        items = pa.ListArray.from_arrays(
            pa.array(offsets), values, type=_ITEM_TYPE, mask=pa.array(sizes == 0)
        )
        hlls: list[bytes | None] = [None] * n_groups
        texts = item_col.slice(a, b - a).to_pylist()
        for gid, lo, hi in _groups(g):
            sk = hll_sketch(HLL_LG_K)
            for text in texts[lo:hi]:
                sk.update(text)
            hlls[gid] = bytes(sk.serialize_compact())
        out[c] = (items, hlls)
    return out


def _user_sketches(
    con: duckdb.DuckDBPyConnection, n_groups: int
) -> tuple[list[bytes | None], list[bytes | None]]:
    """Per group, the HLL sketch of its distinct user ids and the AMS sketch of their event
    counts (None for a group without a user id).

    Only sketches leave: HLL registers hold hash bits of the (already pseudonymised) ids, AMS
    counters signed sums of many users' counts; neither holds an id. They give a slice's
    distinct users and how its events spread over them, for any merged range of days."""
    pairs = con.sql(
        "SELECT m.gid, e.user_id, count(*) AS n FROM _prof_ev e JOIN _prof_map m "
        "ON m.rid = e.rid WHERE e.user_id IS NOT NULL GROUP BY ALL ORDER BY m.gid, e.user_id"
    ).to_arrow_table()
    gids = np.asarray(pairs["gid"].to_numpy(), dtype=np.int64)
    ids = pairs["user_id"].to_pylist()
    hlls: list[bytes | None] = [None] * n_groups
    for gid, lo, hi in _groups(gids):
        sk = hll_sketch(HLL_LG_K)
        for user in ids[lo:hi]:
            sk.update(user)
        hlls[gid] = bytes(sk.serialize_compact())
    return hlls, f2_sketches(gids, ids, pairs["n"].to_numpy(), n_groups)


def _block(
    keys: pa.Table,
    column: str,
    kind: str,
    total: np.ndarray[Any, Any],
    non_null: np.ndarray[Any, Any],
    mins: np.ndarray[Any, Any] | None = None,
    maxs: np.ndarray[Any, Any] | None = None,
    klls: list[bytes | None] | None = None,
    *,
    hll: list[bytes | None] | None = None,
    items: pa.Array | None = None,
    f2: list[bytes | None] | None = None,
) -> pa.Table:
    """The profile rows of one column: one per group."""
    n = keys.num_rows

    def floats(x: np.ndarray[Any, Any] | None) -> pa.Array:
        if x is None:
            return pa.nulls(n, pa.float64())
        return pa.array(x, pa.float64(), mask=np.isnan(x))

    arrays = [
        keys["event_date"],
        keys["tenant_id"],
        keys["slice_field"],
        keys["slice_value"],
        pa.array(np.full(n, column, dtype=object), pa.string()),
        pa.array(np.full(n, kind, dtype=object), pa.string()),
        pa.array(total, pa.int64()),
        pa.array(total - non_null, pa.int64()),
        floats(mins),
        floats(maxs),
        pa.array(klls if klls is not None else [None] * n, pa.binary()),
        pa.array(hll if hll is not None else [None] * n, pa.binary()),
        pa.array(f2 if f2 is not None else [None] * n, pa.binary()),
        items if items is not None else pa.nulls(n, _ITEM_TYPE),
    ]
    return pa.Table.from_arrays(arrays, schema=PROFILE_SCHEMA)


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
