"""Proportion intervals and multiple-testing adjustment shared by the analysis layer.

One definition each of the Wilson score interval and the Benjamini-Hochberg adjustment, used by
the slice reports here, the fleet scan (``assay.anomaly``) and the release regressions
(``assay.drift``).
"""

from __future__ import annotations

from typing import overload

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

Z95 = 1.959963984540054
"""The two-sided 95% normal quantile, ``scipy.stats.norm.ppf(0.975)``."""


@overload
def wilson_interval(k: float, n: float, z: float = Z95) -> tuple[float, float]: ...


@overload
def wilson_interval(
    k: FloatArray, n: FloatArray, z: float = Z95
) -> tuple[FloatArray, FloatArray]: ...


def wilson_interval(
    k: float | FloatArray, n: float | FloatArray, z: float = Z95
) -> tuple[float, float] | tuple[FloatArray, FloatArray]:
    """Wilson score interval of the proportion ``k / n`` (Wilson, 1927), scalars or arrays.

    ``centre = (p + z^2 / 2n) / (1 + z^2 / n)`` and
    ``half = z sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n)``; unlike the Wald interval it
    stays inside [0, 1] and keeps its coverage for small counts and rates near 0 or 1. Where
    ``n`` is 0 (arrays only) both bounds are NaN.

    Examples
    --------
    >>> lo, hi = wilson_interval(20, 100)
    >>> round(lo, 4), round(hi, 4)
    (0.1334, 0.2888)
    """
    scalar = np.ndim(k) == 0 and np.ndim(n) == 0
    kk = np.asarray(k, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = kk / nn
        denom = 1.0 + z * z / nn
        centre = (p + z * z / (2.0 * nn)) / denom
        half = z * np.sqrt(p * (1.0 - p) / nn + z * z / (4.0 * nn * nn)) / denom
    if scalar:
        if nn == 0:
            raise ValueError(f"wilson_interval needs n > 0, got n = {float(nn):g}")
        return float(centre - half), float(centre + half)
    return centre - half, centre + half


def benjamini_hochberg(p_values: FloatArray) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (q-values) of the non-NaN entries; NaN stays NaN.

    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` over the ``m`` present p-values sorted
    ascending (Benjamini and Hochberg, 1995); a hypothesis is a discovery at false discovery
    rate ``alpha`` when its q-value is at most ``alpha``. Any array shape; the family is every
    present entry.

    Examples
    --------
    >>> benjamini_hochberg(np.array([0.01, 0.04, np.nan, 0.03])).round(3)
    array([0.03, 0.04,  nan, 0.04])
    """
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    q = np.full(flat.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(flat))
    m = len(idx)
    if m == 0:
        return q.reshape(p.shape)
    order = idx[np.argsort(flat[idx], kind="stable")]
    ranked = flat[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    q[order] = np.minimum(ranked, 1.0)
    return q.reshape(p.shape)
