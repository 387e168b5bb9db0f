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

import pyarrow as pa
from datasketches import hll_sketch, hll_union, kll_doubles_sketch

from assay._errors import UsageError
from assay.profiles._columns import HLL_LG_K, KIND_OF, PROFILE_SCHEMA, ColumnKind


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
    hll : the serialized HLL sketch of a categorical column's stored items (None if none).
    items : item counts of a categorical column after the k-user fold: values seen by fewer
        than k distinct users on a day and slice are counted under ``<OTHER>``. Their sum is
        ``count - nulls``.

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
    def distinct(self) -> float | None:
        """HLL estimate of the distinct stored items (``<OTHER>`` counts as one), or None."""
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
    Key = tuple[str, str, str | None]
    groups: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for row in rows.to_pylist():
        groups[(row["tenant_id"], row["slice_field"], row["slice_value"])].append(row)
    out = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2] is not None, k[2] or "")):
        group = groups[key]
        days = sorted({r["event_date"] for r in group})
        out.append(
            SliceProfile(
                tenant_id=key[0],
                slice_field=key[1],
                slice_value=key[2],
                first_day=days[0],
                last_day=days[-1],
                days=len(days),
                columns=merge_profiles(column_profile(r) for r in group),
            )
        )
    return out
