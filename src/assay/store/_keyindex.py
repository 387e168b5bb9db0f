"""An in-memory index of the idempotency keys (tenant_id, event_id) already stored.

Keys are kept as 128-bit MD5 digests of ``tenant_id + U+001F + event_id`` computed in DuckDB
(C++), as two uint64 halves in sorted runs (a small log-structured merge), with each stored
event's ``fingerprint`` beside them, so the index costs 24 bytes a key and a lookup is a binary
search. Two different keys share a digest with probability about n**2 / 2**129: for a billion
keys, about 1e-21.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

_HASH_SQL = """
SELECT (h >> 64)::UBIGINT AS h1, (h & 18446744073709551615::UHUGEINT)::UBIGINT AS h2, fp
FROM (SELECT md5_number(tenant_id || chr(31) || event_id) AS h, {fp} AS fp FROM {source})
"""

_MAX_RUNS = 12


@dataclass(frozen=True)
class KeyDigests:
    """Digests of a batch of keys, aligned with its rows."""

    h1: U64
    h2: U64
    fingerprint: I64

    def __len__(self) -> int:
        return len(self.h1)

    def take(self, mask: Mask | npt.NDArray[np.intp]) -> KeyDigests:
        return KeyDigests(self.h1[mask], self.h2[mask], self.fingerprint[mask])


def _digests(out: pa.Table) -> KeyDigests:
    return KeyDigests(
        out.column("h1").to_numpy().astype(np.uint64, copy=False),
        out.column("h2").to_numpy().astype(np.uint64, copy=False),
        out.column("fp").to_numpy().astype(np.int64, copy=False),
    )


def _empty() -> KeyDigests:
    return KeyDigests(
        np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    )


def key_digests(
    con: duckdb.DuckDBPyConnection, keys: pa.Table, *, fingerprint_sql: str | None = None
) -> KeyDigests:
    """Digest each (tenant_id, event_id) row of ``keys``.

    The fingerprint is the ``fingerprint`` column if there is one, else ``fingerprint_sql``
    (an expression over the columns of ``keys``, computed in the same pass), else 0.
    """
    if keys.num_rows == 0:
        return _empty()
    cols = ["tenant_id", "event_id"]
    fp = "0::BIGINT"
    if "fingerprint" in keys.column_names:
        cols.append("fingerprint")
        fp = "fingerprint"
    elif fingerprint_sql is not None:
        cols = keys.column_names
        fp = fingerprint_sql
    con.register("_assay_keys", keys.select(cols))
    try:
        out = con.sql(_HASH_SQL.format(fp=fp, source="_assay_keys")).to_arrow_table()
    finally:
        con.unregister("_assay_keys")
    return _digests(out)


def file_key_digests(
    con: duckdb.DuckDBPyConnection, files: Sequence[str], *, with_fingerprint: bool
) -> KeyDigests:
    """Digest the keys stored in the given Parquet files of a table."""
    if not files:
        return _empty()
    fp = "fingerprint" if with_fingerprint else "0::BIGINT"
    sql = _HASH_SQL.format(fp=fp, source="read_parquet($files)")
    return _digests(con.sql(sql, params={"files": list(files)}).to_arrow_table())


_LOW32 = np.uint64(0xFFFFFFFF)
_HIGH32 = np.uint64(0xFFFFFFFF00000000)


@dataclass(frozen=True)
class _Run:
    """A sorted run of the index: ``k1`` the key's first 64 bits; ``k2`` the next 32 bits of
    the key (high half) and the low 32 bits of the stored fingerprint (low half)."""

    k1: U64
    k2: U64


def _pack(keys: KeyDigests) -> tuple[U64, U64]:
    fp = keys.fingerprint.astype(np.uint64, copy=False) & _LOW32
    return keys.h1, (keys.h2 & _HIGH32) | fp


class KeyIndex:
    """The set of stored keys, as digests; see the module docstring.

    Each stored key costs 16 bytes: 96 bits of its MD5 digest (two different keys collide
    with probability about n**2 / 2**97, some 1e-15 for ten million keys) and 32 bits of its
    event's fingerprint (a changed repeat goes uncounted as conflicting with probability
    2**-32).
    """

    def __init__(self) -> None:
        self._runs: list[_Run] = []
        self._size = 0
        #: Files of the table whose keys are in the index (see :meth:`Workspace` ingest sync).
        self.files: set[str] = set()

    def __len__(self) -> int:
        return self._size

    def add(self, keys: KeyDigests) -> None:
        """Add digests of keys not present yet.

        Runs are merged by size (a new run merges with the last one while it is at least half
        as large), so there are O(log n) runs and each key is copied O(log n) times in all. A
        merge writes the two runs straight into their merged place (no sort, no index array),
        so it needs the merged run's memory and no more.
        """
        if len(keys) == 0:
            return
        order = np.argsort(keys.h1, kind="stable")
        k1, k2 = _pack(keys)
        self._runs.append(_Run(k1[order], k2[order]))
        self._size += len(keys)
        while len(self._runs) > 1 and (
            2 * len(self._runs[-1].k1) >= len(self._runs[-2].k1) or len(self._runs) > _MAX_RUNS
        ):
            b, a = self._runs.pop(), self._runs.pop()
            self._runs.append(_merge(a, b))

    def lookup(self, keys: KeyDigests) -> tuple[Mask, I64]:
        """Which keys are stored, and the low 32 bits of each one's stored fingerprint (0
        where absent)."""
        n = len(keys)
        found = np.zeros(n, dtype=np.bool_)
        stored_fp = np.zeros(n, dtype=np.int64)
        if n == 0 or not self._runs:
            return found, stored_fp
        # Probing in sorted order keeps the binary searches cache-friendly.
        order = np.argsort(keys.h1)
        q1, q2 = keys.h1[order], keys.h2[order] & _HIGH32
        for run in self._runs:
            size = len(run.k1)
            lo = np.searchsorted(run.k1, q1, side="left")
            at = np.minimum(lo, size - 1)
            hit = (lo < size) & (run.k1[at] == q1)
            exact = hit & ((run.k2[at] & _HIGH32) == q2)
            found[order[exact]] = True
            stored_fp[order[exact]] = (run.k2[at[exact]] & _LOW32).astype(np.int64)
            # A first half shared by several stored keys happens with vanishing probability;
            # check the neighbours exactly rather than assume it away.
            for j in np.flatnonzero(hit & ~exact):
                k = int(lo[j])
                while k < size and run.k1[k] == q1[j]:
                    if (run.k2[k] & _HIGH32) == q2[j]:
                        found[order[j]] = True
                        stored_fp[order[j]] = int(run.k2[k] & _LOW32)
                        break
                    k += 1
        return found, stored_fp

    def classify(self, keys: KeyDigests) -> tuple[Mask, Mask]:
        """Split a batch into new rows and duplicates.

        Returns
        -------
        new : rows whose key is neither stored nor repeated earlier in the batch.
        conflicting : duplicates whose fingerprint differs from the first copy's.
        """
        found, first_fp = self.lookup(keys)
        duplicate = found.copy()
        if len(keys) > 1:
            order = np.lexsort((keys.h2, keys.h1))  # stable: equal keys keep row order
            a, b = keys.h1[order], keys.h2[order]
            same = np.zeros(len(keys), dtype=np.bool_)
            same[1:] = (a[1:] == a[:-1]) & (b[1:] == b[:-1])
            # For every row, the position (in sorted order) of the first row of its key.
            run_start = np.maximum.accumulate(np.where(same, 0, np.arange(len(keys))))
            first_row = order[run_start]
            repeat = np.zeros(len(keys), dtype=np.bool_)
            repeat[order[same]] = True
            in_batch_fp = keys.fingerprint[first_row[np.argsort(order)]]
            first_fp = np.where(found, first_fp, in_batch_fp)
            duplicate |= repeat
        # The index keeps 32 bits of each fingerprint: compare those.
        low = np.int64(0xFFFFFFFF)
        conflicting = duplicate & ((first_fp & low) != (keys.fingerprint & low))
        return ~duplicate, conflicting


def _merge(a: _Run, b: _Run) -> _Run:
    """Merge two sorted runs in linear time, writing each element once."""
    n = len(a.k1) + len(b.k1)
    # Where each element of b lands: after the elements of a not greater than it.
    pos_b = np.searchsorted(a.k1, b.k1, side="right") + np.arange(len(b.k1))
    in_b = np.zeros(n, dtype=np.bool_)
    in_b[pos_b] = True
    k1 = np.empty(n, dtype=np.uint64)
    k2 = np.empty(n, dtype=np.uint64)
    k1[pos_b], k2[pos_b] = b.k1, b.k2
    k1[~in_b], k2[~in_b] = a.k1, a.k2
    return _Run(k1, k2)
