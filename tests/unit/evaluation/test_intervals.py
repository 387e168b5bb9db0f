"""The shared Wilson interval against statsmodels and by hand (Benjamini-Hochberg: test_scan.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from assay.evaluation import wilson_interval


def test_wilson_by_hand() -> None:
    # k = 20, n = 100, z = 1.96: p = 0.2, denom = 1.038416, centre = 0.219208 / 1.038416
    # = 0.211098, half = 1.96 * sqrt(0.0016 + 0.00009604) / 1.038416 = 0.077732.
    lo, hi = wilson_interval(20, 100, 1.96)
    assert lo == pytest.approx(0.133366, abs=2e-6)
    assert hi == pytest.approx(0.288830, abs=2e-6)


@given(
    n=st.integers(min_value=1, max_value=100_000),
    frac=st.floats(min_value=0.0, max_value=1.0),
)
def test_wilson_matches_statsmodels_scalar_and_array(n: int, frac: float) -> None:
    k = round(frac * n)
    ref_lo, ref_hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(ref_lo, abs=1e-9)
    assert hi == pytest.approx(ref_hi, abs=1e-9)
    alo, ahi = wilson_interval(np.array([k, k], dtype=float), np.array([n, n], dtype=float))
    assert alo.tolist() == pytest.approx([ref_lo, ref_lo], abs=1e-9)
    assert ahi.tolist() == pytest.approx([ref_hi, ref_hi], abs=1e-9)


def test_wilson_empty_counts() -> None:
    lo, hi = wilson_interval(np.array([1.0, 0.0]), np.array([4.0, 0.0]))
    assert np.isnan(lo[1])
    assert np.isnan(hi[1])
    with pytest.raises(ValueError, match="n > 0"):
        wilson_interval(0, 0)
