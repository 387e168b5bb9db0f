"""The sorted view of a KLL sketch that every sketch statistic reads.

The view is parsed from the serialized bytes. These tests hold it against the sketch's own
C++ answers (``get_cdf``, ``n``, ``get_min_value``), on merged sketches too, where iterating
the sketch in Python reports wrong weights (datasketches 5.2).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
from datasketches import kll_doubles_sketch
from hypothesis import given, settings
from hypothesis import strategies as st_h

from assay.drift import _stats, ks_sketch, numeric_stats_sketch, sketch_std, wasserstein_sketch


def _merged(seed: int, parts: int, k: int) -> kll_doubles_sketch:
    rng = np.random.default_rng(seed)
    out = kll_doubles_sketch(k)
    for _ in range(parts):
        one = kll_doubles_sketch(k)
        one.update(rng.lognormal(size=int(rng.integers(1, 4_000))))
        out.merge(kll_doubles_sketch.deserialize(one.serialize()))
    return out


sketches = st_h.tuples(
    st_h.integers(0, 2**32 - 1), st_h.integers(1, 30), st_h.sampled_from([8, 20, 200])
).map(lambda t: _merged(*t))


@settings(max_examples=60, deadline=None)
@given(sketches)
def test_the_view_is_the_sketchs_own_cdf(sk) -> None:
    view = _stats._view(sk)
    assert view.n == sk.n
    assert view.w.sum() == sk.n
    assert len(view.x) == sk.num_retained
    assert sk.get_min_value() <= view.x[0]
    assert view.x[-1] <= sk.get_max_value()
    assert np.all(np.diff(view.x) >= 0)
    # At every retained item and between them, the CDF is get_cdf's (inclusive ranks).
    points = np.unique(np.concatenate([view.x, (view.x[:-1] + view.x[1:]) / 2]))
    expected = np.asarray(sk.get_cdf(points.tolist(), True))[:-1]
    np.testing.assert_allclose(view.cdf(points), expected, rtol=0, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(sketches)
def test_the_fallback_reader_gives_the_same_cdf(sk) -> None:
    parsed = _stats._view(sk)
    original = _stats._parsed
    try:
        _stats._parsed = lambda _sk: None  # as if the bytes were of an unknown format
        fallback = _stats._view(sk)
    finally:
        _stats._parsed = original
    points = np.unique(parsed.x)
    np.testing.assert_allclose(fallback.cdf(points), parsed.cdf(points), rtol=0, atol=1e-12)
    assert fallback.w.sum() == pytest.approx(sk.n)


def test_statistics_of_merged_sketches_agree_with_scipy_on_the_weighted_items() -> None:
    """On merged sketches the weights differ from 1 (iterating the sketch would say 1)."""
    a, b = _merged(1, 25, 200), _merged(2, 25, 200)
    va, vb = _stats._view(a), _stats._view(b)
    assert set(np.unique(va.w)) != {1.0}
    w1 = st.wasserstein_distance(va.x, vb.x, va.w, vb.w)
    std = float(np.sqrt(np.cov(va.x, aweights=va.w, ddof=0)))
    assert sketch_std(a) == pytest.approx(std, rel=1e-9)
    assert wasserstein_sketch(a, b) == pytest.approx(w1 / std, rel=1e-9)
    # KS: the largest CDF gap, by get_cdf at the union of the items
    pts = np.union1d(va.x, vb.x).tolist()
    gap = np.max(np.abs(np.subtract(a.get_cdf(pts, True), b.get_cdf(pts, True))))
    assert ks_sketch(a, b).statistic == pytest.approx(gap, abs=1e-12)
    stats = numeric_stats_sketch(a, b)
    assert stats["ks_statistic"] == pytest.approx(gap, abs=1e-12)
    assert stats["wasserstein_normed"] == pytest.approx(w1 / std, rel=1e-9)


def test_a_single_value_sketch() -> None:
    one = kll_doubles_sketch(200)
    one.update(3.5)
    view = _stats._view(one)
    assert view.x.tolist() == [3.5]
    assert view.w.tolist() == [1.0]
