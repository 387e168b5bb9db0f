"""Column profiles: counts and mergeable sketches, and how they merge.

A :class:`ColumnProfile` holds one column's summary for some days and some events: the row
count, the null count, and (by kind) a KLL quantile sketch with the exact min and max, or the
item counts that survived the k-user fold with an HLL sketch of those items. Profiles merge
exactly for counts and item counts, and within the sketches' error for quantiles and distinct
counts, so days merge into weeks, slices into a tenant and workspaces into one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import hll_sketch, hll_union, kll_doubles_sketch

from assay._errors import UsageError
from assay.profiles._columns import HLL_LG_K, KIND_OF, PROFILE_SCHEMA, ColumnKind
from assay.profiles._f2 import f2_estimate, merge_f2


@dataclass(frozen=True)
class ColumnProfile:
    """The profile of one column over some events.

    Attributes
    ----------
    column : the event field.
    kind : ``numeric`` (KLL sketch, min, max), ``categorical`` (item counts, HLL sketch) or
        ``count`` (ids and free text: only ``count`` and ``nulls``).
    count : events profiled (nulls included).
    nulls : events where the column is null (for ``text``: events sent without text).
    min, max : the exact smallest and largest value of a numeric column (None if no value).
    kll : the serialized KLL doubles sketch of a numeric column's values (None if no value).
    hll : the serialized HLL sketch of a categorical column's stored items, or for the
        ``user_id`` column of the distinct (pseudonymised) users (None if none).
    items : item counts of a categorical column after the k-user fold: values seen by fewer
        than k distinct users on a day and slice are counted under ``<OTHER>``. Their sum is
        ``count - nulls``.
    f2 : ``user_id`` only: the AMS sketch of the users' event counts (:mod:`._f2`), None
        otherwise and for profiles built before it was stored.

    Examples
    --------
    >>> a = ColumnProfile("intent", "categorical", count=5, nulls=1, items={"oos": 4})
    >>> b = ColumnProfile("intent", "categorical", count=2, nulls=0, items={"oos": 1, "<OTHER>": 1})
    >>> m = a.merge(b)
    >>> m.count, m.nulls, dict(m.items)
    (7, 1, {'<OTHER>': 1, 'oos': 5})
    """

    column: str
    kind: ColumnKind
    count: int
    nulls: int
    min: float | None = None
    max: float | None = None
    kll: bytes | None = None
    hll: bytes | None = None
    items: Mapping[str, int] = field(default_factory=dict)
    f2: bytes | None = None

    @property
    def non_null(self) -> int:
        """Events where the column has a value: ``count - nulls``."""
        return self.count - self.nulls

    @property
    def null_fraction(self) -> float:
        """``nulls / count`` (0.0 for no events)."""
        return self.nulls / self.count if self.count else 0.0

    def sketch(self) -> kll_doubles_sketch | None:
        """A fresh copy of the KLL sketch (None for a non-numeric or an all-null column)."""
        return None if self.kll is None else kll_doubles_sketch.deserialize(self.kll)

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        """Approximate quantiles of a numeric column (within :attr:`rank_error` in rank).

        Raises
        ------
        UsageError
            If the column has no values to take quantiles of.
        """
        sk = self.sketch()
        if sk is None or sk.is_empty():
            raise UsageError(
                f"column {self.column} has no {'values' if self.kind == 'numeric' else 'numbers'}"
                f" to take quantiles of (kind {self.kind}, {self.non_null} non-null); use a "
                "numeric column and a range that has events"
            )
        return [float(sk.get_quantile(q)) for q in qs]

    @property
    def rank_error(self) -> float:
        """The KLL sketch's normalized rank error (single-sided, 99 % confidence); 0 when the
        sketch still holds every value exactly (no compaction yet) or has none."""
        sk = self.sketch()
        if sk is None or not sk.is_estimation_mode():
            return 0.0
        return float(sk.normalized_rank_error(False))

    @property
    def sum_squares(self) -> float | None:
        """``user_id`` only: the estimate of ``sum over users of (their events) ** 2`` (about
        12.5 % relative standard error), or None without the sketch."""
        return None if self.f2 is None else f2_estimate(self.f2)

    @property
    def distinct(self) -> float | None:
        """HLL estimate of the distinct stored items (``<OTHER>`` counts as one), or for
        ``user_id`` of the distinct users; None without a sketch."""
        if self.hll is None:
            return None
        return float(hll_sketch.deserialize(self.hll).get_estimate())

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """The profile of both profiles' events together (see :func:`merge_profiles`)."""
        return merge_profiles([self, other])[self.column]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no sketch bytes): counts, min, max, items, distinct."""
        return {
            "column": self.column,
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "min": self.min,
            "max": self.max,
            "distinct": self.distinct,
            "items": dict(self.items),
        }


def merge_profiles(profiles: Iterable[ColumnProfile]) -> dict[str, ColumnProfile]:
    """Merge column profiles, per column: days into weeks, slices into a tenant, profiles of
    two workspaces into one.

    Counts, null counts and item counts add up exactly; min and max are exact; KLL sketches
    merge with the rank error of one sketch of all the values; HLL sketches merge as a union.
    Item counts that were folded into ``<OTHER>`` on some day stay there: a merged item count
    is the sum of that item's counts on the days and slices where it had at least k users, so
    rare items are undercounted (and ``<OTHER>`` overcounted) in a merge.

    Parameters
    ----------
    profiles : any number of profiles; those of one column must have one kind.

    Returns
    -------
    dict
        Column name to its merged profile, in the order columns were first seen.

    Raises
    ------
    UsageError
        If one column comes with two kinds.

    Examples
    --------
    >>> import datasketches
    >>> def numeric(values):
    ...     sk = datasketches.kll_doubles_sketch(200)
    ...     for v in values:
    ...         sk.update(v)
    ...     return ColumnProfile("latency_ms", "numeric", count=len(values), nulls=0,
    ...                          min=min(values), max=max(values), kll=sk.serialize())
    >>> week = merge_profiles([numeric([1.0, 2.0]), numeric([3.0, 4.0, 5.0])])["latency_ms"]
    >>> week.count, week.min, week.max, week.quantiles([0.5])
    (5, 1.0, 5.0, [3.0])
    """
    groups: dict[str, list[ColumnProfile]] = defaultdict(list)
    for p in profiles:
        groups[p.column].append(p)
    return {name: _merge_one(name, group) for name, group in groups.items()}


def _merge_one(name: str, group: list[ColumnProfile]) -> ColumnProfile:
    kinds = {p.kind for p in group}
    if len(kinds) != 1:
        raise UsageError(
            f"cannot merge profiles of column {name} with different kinds {sorted(kinds)}; "
            "merge only profiles built by assay.profiles (one kind per column)"
        )
    if len(group) == 1:
        return group[0]
    kind = group[0].kind
    mins = [p.min for p in group if p.min is not None]
    maxs = [p.max for p in group if p.max is not None]
    kll: bytes | None = None
    klls = [p.kll for p in group if p.kll is not None]
    if klls:
        sk = kll_doubles_sketch.deserialize(klls[0])
        for blob in klls[1:]:
            sk.merge(kll_doubles_sketch.deserialize(blob))
        kll = bytes(sk.serialize())
    hll: bytes | None = None
    hlls = [p.hll for p in group if p.hll is not None]
    if hlls:
        union = hll_union(HLL_LG_K)
        for blob in hlls:
            union.update(hll_sketch.deserialize(blob))
        hll = bytes(union.get_result().serialize_compact())
    items: dict[str, int] = defaultdict(int)
    for p in group:
        for value, n in p.items.items():
            items[value] += n
    f2s = [p.f2 for p in group if p.f2 is not None]
    return ColumnProfile(
        column=name,
        kind=kind,
        count=sum(p.count for p in group),
        nulls=sum(p.nulls for p in group),
        min=min(mins) if mins else None,
        max=max(maxs) if maxs else None,
        kll=kll,
        hll=hll,
        items=dict(sorted(items.items())),
        f2=merge_f2(f2s) if f2s else None,
    )


@dataclass(frozen=True)
class SliceProfile:
    """The merged column profiles of one tenant and slice over a range of days.

    Attributes
    ----------
    tenant_id : the tenant.
    slice_field : the field sliced by, or ``""`` for the whole tenant.
    slice_value : the slice's value (``""`` for the whole tenant, None for events where the
        field is null, ``<OTHER>`` for values seen by fewer than k users on a day).
    first_day, last_day : the first and last day with events in the merged profiles.
    days : the number of days merged.
    columns : column name to its merged :class:`ColumnProfile`.
    """

    tenant_id: str
    slice_field: str
    slice_value: str | None
    first_day: date
    last_day: date
    days: int
    columns: Mapping[str, ColumnProfile]

    @property
    def users(self) -> float | None:
        """HLL estimate of the distinct users with events in the slice over its days (about
        1.6 % relative standard error); None for profiles built before it was stored."""
        column = self.columns.get("user_id")
        return None if column is None else column.distinct

    @property
    def user_sum_squares(self) -> float | None:
        """The estimate of ``sum over users of (their events in the slice) ** 2`` over the
        slice's days (AMS sketch, about 12.5 % relative standard error); None for profiles
        built before it was stored. Divided by the events, it is the design effect of a
        per-user attribute (``docs/drift.md``)."""
        column = self.columns.get("user_id")
        return None if column is None else column.sum_squares


def column_profile(row: Mapping[str, Any]) -> ColumnProfile:
    """One stored profile row (a dict of :data:`PROFILE_SCHEMA`) as a :class:`ColumnProfile`."""
    column = str(row["column"])
    kind = KIND_OF.get(column)
    if kind is None or kind != row["kind"]:
        raise UsageError(
            f"a profile row for column {column!r} has kind {row['kind']!r}, expected "
            f"{kind!r}; rebuild the profiles with `assay profile build --since <first day>`"
        )
    items = row.get("items") or []
    return ColumnProfile(
        column=column,
        kind=kind,
        count=int(row["count"]),
        nulls=int(row["nulls"]),
        min=row.get("min"),
        max=row.get("max"),
        kll=row.get("kll"),
        hll=row.get("hll"),
        items={str(i["value"]): int(i["count"]) for i in items},
        f2=row.get("f2"),
    )


def slice_profiles(rows: pa.Table) -> list[SliceProfile]:
    """Merge stored profile rows over their days, per tenant and slice.

    Rows from several workspaces may be concatenated first: their profiles merge like days.

    Parameters
    ----------
    rows : a table of :data:`PROFILE_SCHEMA` (from :func:`read_profiles`).

    Returns
    -------
    list of SliceProfile
        Sorted by tenant, slice field and slice value (None first).
    """
    missing = [n for n in PROFILE_SCHEMA.names if n not in rows.column_names]
    if missing:
        raise UsageError(
            f"profile rows must have the columns of PROFILE_SCHEMA; missing {missing}; "
            "pass a table from assay.profiles.read_profiles"
        )
    if rows.num_rows == 0:
        return []
    _check_kinds(rows)
    # Sort the rows by tenant, slice field, slice value (None first) and column, keeping their
    # stored order within each (the order sketches merge in), with integer ranks of each key.
    tenant = _sort_ranks(rows["tenant_id"])
    field_ = _sort_ranks(rows["slice_field"])
    value = _sort_ranks(rows["slice_value"])
    column = _codes(rows["column"])
    order = np.lexsort((column, value, field_, tenant))
    tenant, field_, value, column = tenant[order], field_[order], value[order], column[order]
    n = len(order)
    new_slice = np.ones(n, dtype=bool)
    new_slice[1:] = (tenant[1:] != tenant[:-1]) | (field_[1:] != field_[:-1])
    new_slice[1:] |= value[1:] != value[:-1]
    new_col = new_slice.copy()
    new_col[1:] |= column[1:] != column[:-1]
    col_start = np.flatnonzero(new_col)  # first sorted row of each (slice, column) group
    col_size = np.diff(np.append(col_start, n))
    col_gid = np.cumsum(new_col) - 1  # sorted row -> its (slice, column) group
    slice_start = np.flatnonzero(new_slice)
    slice_gid = np.cumsum(new_slice) - 1  # sorted row -> its slice group
    # Sorted position of each stored row: gathers below stay in stored (chunked) order.
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n, dtype=np.int64)
    row_gid = col_gid[position]  # stored row -> its (slice, column) group

    def numbers(name: str) -> np.ndarray[Any, Any]:
        return np.asarray(rows[name].to_numpy(), dtype=np.int64)[order]

    counts = np.add.reduceat(numbers("count"), col_start).tolist()
    nulls = np.add.reduceat(numbers("nulls"), col_start).tolist()
    mins = _reduce_floats(rows["min"], order, col_start, np.minimum, np.inf)
    maxs = _reduce_floats(rows["max"], order, col_start, np.maximum, -np.inf)
    days = np.asarray(pc.cast(rows["event_date"], pa.int32()).to_numpy(), dtype=np.int64)[order]
    first_day = np.minimum.reduceat(days, slice_start).tolist()
    last_day = np.maximum.reduceat(days, slice_start).tolist()
    span = int(days.max()) - int(days.min()) + 1
    pairs = np.unique(slice_gid * span + (days - days.min()))  # distinct (slice, day)
    day_count = np.bincount(pairs // span, minlength=len(slice_start)).tolist()
    klls = _merged_sketches(rows["kll"], position, row_gid, col_size, _merge_kll)
    hlls = _merged_sketches(rows["hll"], position, row_gid, col_size, _merge_hll)
    f2s = _merged_sketches(rows["f2"], position, row_gid, col_size, merge_f2)
    items = _merged_items(rows["items"], row_gid, col_size)

    first = order[col_start]  # stored position of each group's first row
    names = rows["column"].take(pa.array(first)).to_pylist()
    first_row = first.tolist()
    head = rows.select(["tenant_id", "slice_field", "slice_value"]).take(
        pa.array(order[slice_start])
    )
    tenants = head["tenant_id"].to_pylist()
    fields = head["slice_field"].to_pylist()
    values = head["slice_value"].to_pylist()
    col_slice = slice_gid[col_start].tolist()
    bounds = np.searchsorted(col_slice, np.arange(len(slice_start) + 1)).tolist()
    epoch = date(1970, 1, 1).toordinal()
    out = []
    for s in range(len(slice_start)):
        lo, hi = bounds[s], bounds[s + 1]
        # Columns in the order they were first seen in the stored rows.
        gids = sorted(range(lo, hi), key=lambda g: first_row[g])
        out.append(
            SliceProfile(
                tenant_id=tenants[s],
                slice_field=fields[s],
                slice_value=values[s],
                first_day=date.fromordinal(epoch + first_day[s]),
                last_day=date.fromordinal(epoch + last_day[s]),
                days=day_count[s],
                columns={
                    names[g]: ColumnProfile(
                        column=names[g],
                        kind=KIND_OF[names[g]],
                        count=counts[g],
                        nulls=nulls[g],
                        min=mins[g],
                        max=maxs[g],
                        kll=klls[g],
                        hll=hlls[g],
                        items=items[g],
                        f2=f2s[g],
                    )
                    for g in gids
                },
            )
        )
    return out


def _check_kinds(rows: pa.Table) -> None:
    """Every stored (column, kind) pair must be the column's kind in :data:`KIND_OF`."""
    pairs = rows.select(["column", "kind"]).group_by(["column", "kind"]).aggregate([])
    for column, kind in zip(pairs["column"].to_pylist(), pairs["kind"].to_pylist(), strict=True):
        if KIND_OF.get(column) is None or KIND_OF[column] != kind:
            raise UsageError(
                f"a profile row for column {column!r} has kind {kind!r}, expected "
                f"{KIND_OF.get(column)!r}; rebuild the profiles with "
                "`assay profile build --since <first day>`"
            )


def _codes(values: pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """Integer codes of a string column (equal strings, equal codes; nulls one code)."""
    encoded = pc.dictionary_encode(values.combine_chunks(), null_encoding="encode")
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def _sort_ranks(values: pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """Per row, the rank of its value among the distinct values in Python's order (None
    first): rows sort by rank as :func:`sorted` sorts their values."""
    encoded = pc.dictionary_encode(values.combine_chunks(), null_encoding="encode")
    distinct = encoded.dictionary.to_pylist()
    by_value = sorted(
        range(len(distinct)), key=lambda i: (distinct[i] is not None, distinct[i] or "")
    )
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[by_value] = np.arange(len(distinct))
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return rank[codes] if len(distinct) else codes


def _reduce_floats(
    values: pa.ChunkedArray,
    order: np.ndarray[Any, Any],
    starts: np.ndarray[Any, Any],
    ufunc: Any,
    fill: float,
) -> list[float | None]:
    """Per group of the rows taken in ``order`` (from each start to the next), the ufunc
    reduction of the non-null values, or None for a group with none."""
    valid = np.asarray(values.is_valid().to_numpy(), dtype=np.int64)[order]
    filled = np.asarray(pc.fill_null(values, fill).to_numpy(), dtype=np.float64)[order]
    reduced = ufunc.reduceat(filled, starts).tolist()
    present = np.add.reduceat(valid, starts).tolist()
    return [float(r) if p else None for r, p in zip(reduced, present, strict=True)]


def _merge_kll(blobs: list[bytes]) -> bytes:
    sk = kll_doubles_sketch.deserialize(blobs[0])
    for blob in blobs[1:]:
        sk.merge(kll_doubles_sketch.deserialize(blob))
    return bytes(sk.serialize())


def _merge_hll(blobs: list[bytes]) -> bytes:
    union = hll_union(HLL_LG_K)
    for blob in blobs:
        union.update(hll_sketch.deserialize(blob))
    return bytes(union.get_result().serialize_compact())


def _merged_sketches(
    blobs: pa.ChunkedArray,
    position: np.ndarray[Any, Any],
    gid: np.ndarray[Any, Any],
    size: np.ndarray[Any, Any],
    merge: Any,
) -> list[bytes | None]:
    """Per group, its rows' sketches merged in sorted-row order (a one-row group keeps its
    bytes, as :func:`merge_profiles` does); None for a group without sketches.

    ``position`` and ``gid`` give each stored row its sorted position and its group."""
    out: list[bytes | None] = [None] * len(size)
    if blobs.null_count == len(blobs):
        return out
    valid = np.flatnonzero(np.asarray(blobs.is_valid().to_numpy()))
    stored = blobs.to_pylist()  # (drop_null first would copy every sketch once more)
    by_position = np.argsort(position[valid], kind="stable")
    present = [stored[i] for i in valid[by_position].tolist()]
    groups = gid[valid][by_position]
    cut = np.flatnonzero(np.diff(groups)) + 1
    lows = np.concatenate(([0], cut)).astype(np.int64).tolist()
    highs = np.concatenate((cut, [len(groups)])).astype(np.int64).tolist()
    single = (size == 1).tolist()
    for lo, hi, g in zip(lows, highs, groups[lows].tolist(), strict=True):
        out[g] = present[lo] if single[g] else merge(present[lo:hi])
    return out


def _merged_items(
    lists: pa.ChunkedArray, gid: np.ndarray[Any, Any], size: np.ndarray[Any, Any]
) -> list[dict[str, int]]:
    """Per group (``gid``: each stored row's group), the summed item counts: in stored order
    for a one-row group, sorted by value otherwise (as :func:`merge_profiles` returns them)."""
    out: list[dict[str, int]] = [{} for _ in range(len(size))]
    parents = np.asarray(pc.list_parent_indices(lists).to_numpy(), dtype=np.int64)
    if len(parents) == 0:
        return out
    flat = pc.list_flatten(lists).combine_chunks()
    entries = pa.table(
        {
            "g": pa.array(gid[parents]),
            "value": flat.field("value"),
            "count": flat.field("count"),
            "pos": pa.array(np.arange(len(parents), dtype=np.int64)),
        }
    )
    summed = entries.group_by(["g", "value"], use_threads=False).aggregate(
        [("count", "sum"), ("pos", "min")]
    )
    summed = summed.sort_by([("g", "ascending"), ("value", "ascending")])
    g = np.asarray(summed["g"].to_numpy(), dtype=np.int64)
    pos = np.asarray(summed["pos_min"].to_numpy(), dtype=np.int64)
    # Within a group: by value, except one-row groups keep their stored order.
    rank = np.where(size[g] == 1, pos, np.arange(len(g), dtype=np.int64))
    order = np.lexsort((rank, g))
    g = g[order]
    names = summed["value"].take(pa.array(order)).to_pylist()
    sums = summed["count_sum"].take(pa.array(order)).to_pylist()
    cut = np.flatnonzero(np.diff(g)) + 1
    lows = np.concatenate(([0], cut)).tolist()
    highs = np.concatenate((cut, [len(g)])).tolist()
    for lo, hi, grp in zip(lows, highs, g[lows].tolist(), strict=True):
        out[grp] = dict(zip(names[lo:hi], sums[lo:hi], strict=True))
    return out
