"""The key index against a plain Python set of (tenant_id, event_id) pairs."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.store import KeyIndex, key_digests


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    yield c
    c.close()


def _keys(pairs: list[tuple[str, str]], fps: list[int] | None = None) -> pa.Table:
    cols = {
        "tenant_id": pa.array([p[0] for p in pairs], pa.string()),
        "event_id": pa.array([p[1] for p in pairs], pa.string()),
    }
    if fps is not None:
        cols["fingerprint"] = pa.array(fps, pa.int64())
    return pa.table(cols)


def test_same_event_id_in_two_tenants_is_two_keys(con: duckdb.DuckDBPyConnection) -> None:
    index = KeyIndex()
    d = key_digests(con, _keys([("a", "e1"), ("b", "e1"), ("a", "e1")]))
    new, conflicting = index.classify(d)
    assert new.tolist() == [True, True, False]
    assert conflicting.tolist() == [False, False, False]


def test_separator_makes_keys_unambiguous(con: duckdb.DuckDBPyConnection) -> None:
    d = key_digests(con, _keys([("ab", "c"), ("a", "bc")]))
    assert KeyIndex().classify(d)[0].tolist() == [True, True]


def test_conflicting_repeat_is_counted_against_the_first_copy(
    con: duckdb.DuckDBPyConnection,
) -> None:
    index = KeyIndex()
    first = key_digests(con, _keys([("t", "1"), ("t", "2")], [10, 20]))
    index.add(first.take(index.classify(first)[0]))
    batch = key_digests(
        con, _keys([("t", "1"), ("t", "2"), ("t", "3"), ("t", "3")], [10, 99, 5, 6])
    )
    new, conflicting = index.classify(batch)
    assert new.tolist() == [False, False, True, False]
    assert conflicting.tolist() == [False, True, False, True]


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(
        st.lists(
            st.tuples(st.sampled_from(["t1", "t2", "t\x1f"]), st.text(min_size=1, max_size=4)),
            max_size=40,
        ),
        max_size=20,
    )
)
def test_classify_matches_a_python_set(batches: list[list[tuple[str, str]]]) -> None:
    con = duckdb.connect()
    index = KeyIndex()
    seen: set[tuple[str, str]] = set()
    for batch in batches:
        d = key_digests(con, _keys(batch))
        new, _ = index.classify(d)
        expected = []
        local: set[tuple[str, str]] = set()
        for pair in batch:
            expected.append(pair not in seen and pair not in local)
            local.add(pair)
        assert new.tolist() == expected
        index.add(d.take(new))
        seen |= local
    assert len(index) == len(seen)
    con.close()


def test_many_runs_are_merged_without_losing_keys(con: duckdb.DuckDBPyConnection) -> None:
    index = KeyIndex()
    for b in range(30):
        d = key_digests(con, _keys([("t", f"{b}-{i}") for i in range(50)]))
        index.add(d)
    probe = key_digests(con, _keys([("t", "0-0"), ("t", "29-49"), ("t", "30-0")]))
    found, _ = index.lookup(probe)
    assert found.tolist() == [True, True, False]
    assert len(index) == 1500
    assert np.all(index.classify(probe)[0] == [False, False, True])


def test_keys_sharing_the_first_half_are_told_apart() -> None:
    from assay.store import KeyDigests

    def digests(h1: list[int], h2: list[int], fp: list[int]) -> KeyDigests:
        return KeyDigests(
            np.array(h1, dtype=np.uint64), np.array(h2, dtype=np.uint64), np.array(fp)
        )

    index = KeyIndex()
    # The index keeps the high 32 bits of the second half of a key's digest.
    h = 1 << 32
    index.add(digests([5, 5, 5, 9], [1 * h, 2 * h, 3 * h, 1 * h], [10, 20, 30, 40]))
    found, fp = index.lookup(
        digests([5, 5, 5, 9, 9], [3 * h, 4 * h, 1 * h, 1 * h, 2 * h], [0, 0, 0, 0, 0])
    )
    assert found.tolist() == [True, False, True, True, False]
    assert fp.tolist() == [30, 0, 10, 40, 0]


def test_runs_are_merged_by_size() -> None:
    con = duckdb.connect()
    index = KeyIndex()
    for b in range(64):
        index.add(key_digests(con, _keys([("t", f"{b}-{i}") for i in range(10)])))
    # Merging by size keeps O(log n) runs, each sorted.
    assert len(index._runs) <= 7
    assert all(bool(np.all(r.k1[1:] >= r.k1[:-1])) for r in index._runs)
    assert len(index) == 640
    con.close()


@settings(max_examples=50, deadline=None)
@given(
    a=st.lists(st.integers(0, 50), max_size=30),
    b=st.lists(st.integers(0, 50), max_size=30),
)
def test_merging_two_sorted_runs_equals_sorting_their_union(a: list[int], b: list[int]) -> None:
    from assay.store._keyindex import _merge, _Run

    def run(values: list[int], tag: int) -> _Run:
        k1 = np.array(sorted(values), dtype=np.uint64)
        return _Run(k1, np.full(len(values), tag, dtype=np.uint64))

    merged = _merge(run(a, 1), run(b, 2))
    assert merged.k1.tolist() == sorted(a + b)
    # Equal keys keep a's entries before b's.
    expected_tags = [t for _, t in sorted([(v, 1) for v in a] + [(v, 2) for v in b])]
    assert merged.k2.tolist() == expected_tags
