"""Drift statistics: two samples (or two sketches) in, numbers out.

Pure functions in the shape of :mod:`assay.evaluation`: plain columns (lists, numpy, pandas,
polars or Arrow) or category counts in, plain numbers or a small named tuple out, no storage.
Definitions, binning, tolerances and the defaults of :func:`column_verdict`: ``docs/drift.md``.

Numeric columns
    :func:`psi`, :func:`js_distance`, :func:`wasserstein_normed`, :func:`ks`; missing values
    (null, NaN) are dropped and counted (see :func:`numeric_stats`); infinite values are refused.
Categorical columns (counts per category)
    :func:`chi_square`, :func:`unseen_categories`, :func:`psi_categorical`,
    :func:`js_categorical`.
Both
    :func:`missingness_change`.
From two KLL quantile sketches (``datasketches.kll_doubles_sketch``)
    :func:`psi_sketch`, :func:`js_sketch`, :func:`wasserstein_sketch`, :func:`ks_sketch`.
Verdicts
    :func:`numeric_stats`, :func:`numeric_stats_sketch`, :func:`categorical_stats` gather every
    statistic of a column in one dict, which :func:`column_verdict` turns into drift / no drift
    with :data:`DEFAULT_THRESHOLDS`.

Binning of numeric columns (PSI and JS): ``bins`` equal-mass bins of the *reference*. The edges
are the reference's quantiles at ranks ``j / bins`` (j = 1 .. bins - 1), each the smallest
reference value whose empirical CDF reaches the rank (numpy's ``inverted_cdf``, which is also
what a KLL sketch's ``get_quantile`` returns); repeated edges (ties) are merged. Bins are closed
on the right, ``(e_{j-1}, e_j]``, and the outer two are open-ended, so every value of either
sample falls in a bin.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import special as _special
from scipy import stats as _st

from assay._errors import UsageError
from assay.evaluation._inputs import as_column, as_float

FloatArray: TypeAlias = npt.NDArray[np.float64]
Kind: TypeAlias = Literal["numeric", "categorical"]
#: A ``datasketches.kll_doubles_sketch`` (typed loosely: datasketches is imported lazily).
KLLSketch: TypeAlias = Any

#: Default number of reference-quantile bins for PSI and JS on numeric columns (deciles).
DEFAULT_BINS = 10
#: Default floor of a bin's proportion in PSI (Evidently's 0.0001).
DEFAULT_EPS = 1e-4
#: The reference standard deviation is floored at this value in the normed Wasserstein
#: distance, as Evidently does (so two different constants give a large, finite value).
STD_FLOOR = 1e-3

#: Default thresholds of :func:`column_verdict` (justified in ``docs/drift.md``).
DEFAULT_THRESHOLDS: dict[str, float] = {
    # Samples with at most this many (non-missing) values in the smaller of the two are judged
    # by a test's p-value, larger ones by a distance (Evidently's rule, at 1000 objects).
    "small_sample": 1000,
    # Small samples: p-value below which KS (numeric) or chi-square (categorical) says drift.
    "ks_p_value": 0.05,
    "chi_square_p_value": 0.05,
    # Large samples: distances at or above which a column has drifted.
    "wasserstein_normed": 0.1,
    "js_distance": 0.1,
    "psi": 0.25,
    # Missingness: drift when the share of missing values moves by at least this much
    # (absolute) and the two-proportion test is significant.
    "missing_delta": 0.1,
    "missing_p_value": 0.05,
}


class KSResult(NamedTuple):
    """Two-sample Kolmogorov-Smirnov test: the statistic ``D`` and its two-sided p-value."""

    statistic: float
    p_value: float


class ChiSquareResult(NamedTuple):
    """Pearson chi-square test of homogeneity: the statistic and its p-value."""

    statistic: float
    p_value: float


class MissingnessResult(NamedTuple):
    """Change of the missing share: ``current - reference`` and the two-sided p-value."""

    delta: float
    p_value: float


class UnseenCategories(NamedTuple):
    """Categories of the current sample that the reference never saw."""

    categories: tuple[str, ...]
    rows: int
    share: float


# --- inputs ------------------------------------------------------------------------------------


def _split_missing(x: object, name: str) -> tuple[FloatArray, int]:
    """Return the non-missing values of a numeric column and how many were missing."""
    values, nulls = as_column(x, name)
    v = as_float(values, name, "numbers")
    missing = np.isnan(v)
    if nulls is not None:
        missing |= nulls
    if np.isinf(v[~missing]).any():
        raise UsageError(
            f"{name} must hold finite numbers or missing values (null, NaN); got "
            f"{int(np.isinf(v[~missing]).sum())} infinite values; replace them with NaN or a "
            "finite cap first"
        )
    return v[~missing], int(missing.sum())


def _values(x: object, name: str) -> FloatArray:
    v, missing = _split_missing(x, name)
    return _nonempty(v, missing, name)


def _nonempty(v: FloatArray, missing: int, name: str) -> FloatArray:
    if v.size == 0:
        raise UsageError(
            f"{name} has no values to compare (0 non-missing of {missing}); pass a sample with "
            "at least one finite number"
        )
    return v


def _check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 2:
        raise UsageError(f"bins must be an integer >= 2; got {bins!r}; use the default 10")
    return int(bins)


def _check_eps(eps: float) -> float:
    if not (isinstance(eps, int | float) and 0.0 < eps < 1.0):
        raise UsageError(f"eps must be a number in (0, 1); got {eps!r}; use the default 1e-4")
    return float(eps)


def _counts(counts: Mapping[str, int], name: str) -> dict[str, int]:
    if not isinstance(counts, Mapping):
        raise UsageError(
            f"{name} must be a mapping category -> count; got a {type(counts).__name__}; pass a "
            "dict such as {'de-DE': 120, 'en-US': 300}"
        )
    out: dict[str, int] = {}
    for key, c in counts.items():
        if isinstance(c, bool) or not isinstance(c, int | np.integer) or c < 0:
            raise UsageError(
                f"{name} must map each category to a count (an integer >= 0); got a "
                f"{type(c).__name__} value {c!r} for one category; pass whole counts"
            )
        out[key] = int(c)
    if sum(out.values()) == 0:
        raise UsageError(
            f"{name} holds no observations (total count 0); pass counts of at least one value"
        )
    return out


def _aligned(
    ref_counts: Mapping[str, int], cur_counts: Mapping[str, int]
) -> tuple[list[str], FloatArray, FloatArray]:
    """The union of categories seen in either sample (count > 0) and both count vectors."""
    r = _counts(ref_counts, "ref_counts")
    c = _counts(cur_counts, "cur_counts")
    cats = sorted({k for k, v in r.items() if v} | {k for k, v in c.items() if v}, key=str)
    rv = np.array([r.get(k, 0) for k in cats], dtype=np.float64)
    cv = np.array([c.get(k, 0) for k in cats], dtype=np.float64)
    return cats, rv, cv


# --- shared formulas ---------------------------------------------------------------------------


def _psi_of(p_ref: FloatArray, p_cur: FloatArray, eps: float) -> float:
    """PSI of two proportion vectors, each floored at ``eps``."""
    r = np.maximum(p_ref, eps)
    c = np.maximum(p_cur, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def _js_of(p_ref: FloatArray, p_cur: FloatArray) -> float:
    """Jensen-Shannon distance (base 2) of two proportion vectors, clipped into [0, 1]."""
    # scipy's jensenshannon(p_ref, p_cur, base=2), without its per-call overhead.
    p, q = p_ref / p_ref.sum(), p_cur / p_cur.sum()
    m = (p + q) / 2.0
    js = float(np.sum(_special.rel_entr(p, m) + _special.rel_entr(q, m))) / 2.0
    d = math.sqrt(js / math.log(2.0)) if js > 0 else 0.0
    # Two equal vectors can give sqrt of a tiny negative rounding error (NaN) or 1 + 1e-16.
    return 0.0 if math.isnan(d) else min(max(d, 0.0), 1.0)


def _edges(reference: FloatArray, bins: int) -> FloatArray:
    """Interior bin edges: the reference's inverted-CDF quantiles at j / bins, ties merged."""
    ranks = np.arange(1, bins) / bins
    return np.unique(np.quantile(reference, ranks, method="inverted_cdf"))


def _proportions(x: FloatArray, edges: FloatArray) -> FloatArray:
    """Share of ``x`` in each right-closed bin ``(e_{j-1}, e_j]``, outer bins open-ended."""
    idx = np.searchsorted(edges, x, side="left")
    return np.bincount(idx, minlength=edges.size + 1) / x.size


# --- numeric columns ---------------------------------------------------------------------------


def psi(
    reference: object, current: object, *, bins: int = DEFAULT_BINS, eps: float = DEFAULT_EPS
) -> float:
    """Population Stability Index of a numeric column on reference-quantile bins.

    ``PSI = sum_b (c_b - r_b) * ln(c_b / r_b)`` where ``r_b`` and ``c_b`` are the shares of the
    reference and current samples in bin ``b``, each floored at ``eps`` (so an empty bin counts
    as holding ``eps``, not 0, and the logarithm stays finite). The bins are ``bins`` equal-mass
    bins of the reference (its deciles by default): interior edges at the reference's
    inverted-CDF quantiles ``j / bins``, ties merged, bins closed on the right, outer bins
    open-ended. Missing values (null, NaN) are dropped.

    Rules of thumb (Siddiqi 2006; Yurdakul 2018): below 0.1 no significant change, 0.1 to 0.25
    a moderate change, 0.25 and above a significant shift.

    Parameters
    ----------
    reference, current : array-like of numbers
        The two samples; each needs at least one non-missing value.
    bins : int, default 10
        Number of reference-quantile bins (fewer when the reference has ties).
    eps : float, default 1e-4
        Floor of a bin's share.

    Returns
    -------
    float
        PSI >= 0; 0 when both samples have the same share in every bin.

    Examples
    --------
    >>> psi([1, 2, 3, 4], [1, 2, 3, 4], bins=2)
    0.0
    >>> round(psi([1, 2, 3, 4], [1, 1, 1, 4], bins=2), 4)
    0.2747
    """
    ref = _values(reference, "reference")
    cur = _values(current, "current")
    edges = _edges(ref, _check_bins(bins))
    return _psi_of(_proportions(ref, edges), _proportions(cur, edges), _check_eps(eps))


def js_distance(reference: object, current: object, *, bins: int = DEFAULT_BINS) -> float:
    """Jensen-Shannon distance (base 2) of a numeric column on the binning of :func:`psi`.

    ``JS = sqrt((KL(r || m) + KL(c || m)) / 2)`` with ``m = (r + c) / 2``, logarithms in base 2,
    over the shares ``r`` and ``c`` of the two samples in the reference-quantile bins of
    :func:`psi` (no smoothing: empty bins are fine). It lies in [0, 1): 0 for the same shares;
    every bin holds part of the reference, so even samples with disjoint ranges stay below 1
    (the current values beyond the reference's range share its outer bin). Missing values are
    dropped.

    Parameters
    ----------
    reference, current : array-like of numbers
        The two samples; each needs at least one non-missing value.
    bins : int, default 10
        Number of reference-quantile bins.

    Returns
    -------
    float

    Examples
    --------
    >>> js_distance([1, 2, 3, 4], [1, 2, 3, 4], bins=2)
    0.0
    >>> round(js_distance([1, 2], [5, 6], bins=2), 4)
    0.5579
    """
    ref = _values(reference, "reference")
    cur = _values(current, "current")
    edges = _edges(ref, _check_bins(bins))
    return _js_of(_proportions(ref, edges), _proportions(cur, edges))


def wasserstein_normed(reference: object, current: object) -> float:
    """Wasserstein-1 distance divided by the reference's standard deviation.

    ``W1(ref, cur) / max(std(ref), 0.001)``, where ``W1 = integral |F_ref(x) - F_cur(x)| dx`` is
    scipy's ``wasserstein_distance`` and ``std`` the population standard deviation (ddof 0).
    This is Evidently's "Wasserstein distance (normed)": the average distance a unit of mass
    moves, in reference standard deviations. The floor 0.001 is Evidently's too: two equal
    constant samples give 0, two different constants a large finite value. Missing values are
    dropped.

    Examples
    --------
    >>> wasserstein_normed([0, 2], [1, 3])
    1.0
    >>> wasserstein_normed([5, 5, 5], [5, 5])
    0.0
    """
    ref = _values(reference, "reference")
    cur = _values(current, "current")
    norm = max(float(np.std(ref)), STD_FLOOR)
    return float(_st.wasserstein_distance(ref, cur)) / norm


def ks(reference: object, current: object) -> KSResult:
    """Two-sample Kolmogorov-Smirnov test (scipy's ``ks_2samp``, two-sided, method ``auto``).

    ``D = sup_x |F_ref(x) - F_cur(x)|`` over the empirical CDFs; the p-value is exact for small
    samples and asymptotic for large ones, as scipy chooses. Missing values are dropped.

    Examples
    --------
    >>> r = ks([1, 2, 3, 4], [3, 4, 5, 6])
    >>> r.statistic
    0.5
    """
    ref = _values(reference, "reference")
    cur = _values(current, "current")
    with warnings.catch_warnings():
        # scipy warns when its exact p-value fails and it falls back to the asymptotic one.
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
        res: Any = _st.ks_2samp(ref, cur)
    return KSResult(float(res.statistic), float(res.pvalue))


# --- categorical columns -----------------------------------------------------------------------


def chi_square(ref_counts: Mapping[str, int], cur_counts: Mapping[str, int]) -> ChiSquareResult:
    """Pearson chi-square test of homogeneity on the 2 x k table of category counts.

    The columns are every category with a count in either sample (a category unseen in the
    reference is a column like any other); the statistic is
    ``sum (observed - expected)^2 / expected`` with expected counts from the margins, on
    ``k - 1`` degrees of freedom: scipy's ``chi2_contingency`` without Yates' correction, so a
    two-category column gives the square of the pooled two-proportion z statistic. One
    category in all gives 0 and p-value 1.

    Examples
    --------
    >>> chi_square({"a": 10, "b": 10}, {"a": 10, "b": 10})
    ChiSquareResult(statistic=0.0, p_value=1.0)
    >>> round(chi_square({"a": 30, "b": 10}, {"a": 10, "b": 30}).statistic, 3)
    20.0
    """
    _, rv, cv = _aligned(ref_counts, cur_counts)
    return ChiSquareResult(*_chi_square_of(rv, cv, 1.0))


def _chi_square_of(rv: FloatArray, cv: FloatArray, deff: float) -> tuple[float, float]:
    """Pearson's statistic of the 2 x k table (divided by ``deff``) and its p-value."""
    if rv.size < 2:
        return 0.0, 1.0
    # What chi2_contingency(correction=False) computes, without its per-call overhead (it was
    # a third of a fleet's drift report): expected counts from the margins, Pearson's sum,
    # the chi-square survival function on k - 1 degrees of freedom.
    table = np.vstack([rv, cv])
    total = table.sum()
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(expected > 0, (table - expected) ** 2 / expected, 0.0)
    stat = float(terms.sum()) / deff
    p = float(_special.chdtrc(rv.size - 1, stat))
    return stat, min(max(p, 0.0), 1.0)


def unseen_categories(
    ref_counts: Mapping[str, int], cur_counts: Mapping[str, int]
) -> UnseenCategories:
    """Categories with a count in the current sample and none in the reference.

    Returns them most frequent first (ties by name), with the number of current rows in them
    and those rows' share of the current sample.

    Examples
    --------
    >>> unseen_categories({"a": 5}, {"a": 1, "b": 1, "c": 2})
    UnseenCategories(categories=('c', 'b'), rows=3, share=0.75)
    """
    r = _counts(ref_counts, "ref_counts")
    c = _counts(cur_counts, "cur_counts")
    new = [(k, v) for k, v in c.items() if v > 0 and r.get(k, 0) == 0]
    new.sort(key=lambda kv: (-kv[1], str(kv[0])))
    count = sum(v for _, v in new)
    return UnseenCategories(tuple(k for k, _ in new), count, count / sum(c.values()))


def psi_categorical(
    ref_counts: Mapping[str, int], cur_counts: Mapping[str, int], *, eps: float = DEFAULT_EPS
) -> float:
    """PSI of a categorical column: one bin per category seen in either sample.

    Same formula as :func:`psi`, shares floored at ``eps``.

    Examples
    --------
    >>> psi_categorical({"a": 1, "b": 1}, {"a": 1, "b": 1})
    0.0
    >>> round(psi_categorical({"a": 3, "b": 1}, {"a": 1, "b": 3}), 4)
    1.0986
    """
    _, rv, cv = _aligned(ref_counts, cur_counts)
    return _psi_of(rv / rv.sum(), cv / cv.sum(), _check_eps(eps))


def js_categorical(ref_counts: Mapping[str, int], cur_counts: Mapping[str, int]) -> float:
    """Jensen-Shannon distance (base 2) of the category shares of two samples, in [0, 1].

    Examples
    --------
    >>> js_categorical({"a": 1}, {"b": 1})
    1.0
    """
    _, rv, cv = _aligned(ref_counts, cur_counts)
    return _js_of(rv / rv.sum(), cv / cv.sum())


# --- both --------------------------------------------------------------------------------------


def _check_count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise UsageError(f"{name} must be an integer >= 0; got {value!r}; pass a row count")
    return int(value)


def missingness_change(
    ref_nulls: int, ref_count: int, cur_nulls: int, cur_count: int, *, design_effect: float = 1.0
) -> MissingnessResult:
    """Change of the share of missing values, with a two-proportion z-test.

    ``delta = cur_nulls / cur_count - ref_nulls / ref_count``, where a count is *every* row
    (missing ones included). The p-value is two-sided, from the pooled z statistic
    ``z = delta / sqrt(p (1 - p) (1 / ref_count + 1 / cur_count))`` with
    ``p = (ref_nulls + cur_nulls) / (ref_count + cur_count)``; when ``p`` is 0 or 1 nothing
    varies and the p-value is 1. ``design_effect`` (>= 1) divides the variance's sample sizes
    for rows that come in clusters (see :func:`design_effect`).

    Examples
    --------
    >>> missingness_change(0, 10, 0, 10)
    MissingnessResult(delta=0.0, p_value=1.0)
    >>> r = missingness_change(10, 100, 30, 100)
    >>> round(r.delta, 2), round(r.p_value, 4)
    (0.2, 0.0004)
    """
    rn, rc = _check_count(ref_nulls, "ref_nulls"), _check_count(ref_count, "ref_count")
    cn, cc = _check_count(cur_nulls, "cur_nulls"), _check_count(cur_count, "cur_count")
    if rc == 0 or cc == 0:
        raise UsageError(
            f"ref_count and cur_count must be >= 1; got {rc} and {cc}; a window without rows "
            "has no missing share"
        )
    if rn > rc or cn > cc:
        raise UsageError(
            f"nulls cannot exceed the row count; got ref {rn} of {rc}, cur {cn} of {cc}; "
            "pass the count of all rows, missing ones included"
        )
    deff = _check_deff(design_effect)
    delta = cn / cc - rn / rc
    pooled = (rn + cn) / (rc + cc)
    if pooled in (0.0, 1.0):
        return MissingnessResult(delta, 1.0)
    z = delta / math.sqrt(deff * pooled * (1.0 - pooled) * (1.0 / rc + 1.0 / cc))
    return MissingnessResult(delta, float(2.0 * _special.ndtr(-abs(z))))


# --- sketches ----------------------------------------------------------------------------------


def _sketch(x: KLLSketch, name: str) -> KLLSketch:
    try:
        from datasketches import kll_doubles_sketch
    except ImportError:  # pragma: no cover - datasketches is a main dependency
        raise UsageError(
            "drift from sketches needs datasketches; run: pip install 'datasketches>=5.2,<6'"
        ) from None
    if not isinstance(x, kll_doubles_sketch):
        raise UsageError(
            f"{name} must be a datasketches.kll_doubles_sketch; got a {type(x).__name__}; "
            "build one with kll_doubles_sketch(200) and update() it with the column"
        )
    if x.is_empty():
        raise UsageError(
            f"{name} is an empty sketch (no values); update it with at least one number"
        )
    return x


class _View(NamedTuple):
    """A KLL sketch's retained items, sorted, with their cumulative weights: its CDF."""

    x: FloatArray
    w: FloatArray
    cum: FloatArray
    n: float

    def cdf(self, points: FloatArray) -> FloatArray:
        """``get_cdf(points, inclusive=True)`` without the trailing 1: the weight of the
        items <= each point, over ``n``."""
        idx = np.searchsorted(self.x, points, side="right")
        return np.where(idx > 0, self.cum[np.maximum(idx - 1, 0)], 0.0) / self.n


def _parsed(sk: KLLSketch) -> tuple[FloatArray, FloatArray] | None:
    """Retained items and weights, read from the sketch's serialized form (the DataSketches
    KLL format, the same in every language): preamble, n, levels, min, max, then the items of
    each level, an item of level ``h`` weighing ``2**h``. None when the bytes do not add up
    (a format this reader does not know)."""
    blob = sk.serialize()
    count = int(sk.num_retained)
    if blob[0] == 2 and len(blob) == 16 and count == 1:  # a single item, weight 1
        return np.frombuffer(blob, "<f8", 1, offset=8).copy(), np.ones(1)
    if blob[0] != 5 or len(blob) < 20:
        return None
    levels_n = blob[18]
    start = 20 + 4 * levels_n + 16  # after the levels array, min and max
    if len(blob) != start + 8 * count:
        return None
    levels = np.frombuffer(blob, "<u4", levels_n, offset=20).astype(np.int64)
    sizes = np.diff(np.append(levels - levels[0], count))
    if (sizes < 0).any():
        return None
    weights = np.repeat(np.ldexp(1.0, np.arange(levels_n)), sizes)
    if float(weights.sum()) != float(sk.n):
        return None
    return np.frombuffer(blob, "<f8", count, offset=start).copy(), weights


def _view(sk: KLLSketch) -> _View:
    """The sorted view of a (checked, non-empty) sketch.

    Read from the serialized bytes (microseconds); should they not add up, from the public
    API: the items by iteration and the weights from ``get_cdf`` at them. (Iterating a
    merged sketch can report every weight as 1 in datasketches 5.2, so weights never come
    from the iterator.)"""
    parsed = _parsed(sk)
    if parsed is None:
        x = np.unique(np.fromiter((item for item, _ in sk), dtype=np.float64))
        cum = np.rint(np.asarray(sk.get_cdf(x.tolist(), True), dtype=np.float64)[:-1] * sk.n)
        return _View(x, np.diff(cum, prepend=0.0), cum, float(sk.n))
    x, w = parsed
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    return _View(x, w, np.cumsum(w), float(sk.n))


def _sketch_edges(ref: KLLSketch, bins: int) -> FloatArray:
    ranks = [j / bins for j in range(1, bins)]
    return np.unique(np.asarray(ref.get_quantiles(ranks, True), dtype=np.float64))


def _view_proportions(v: _View, edges: FloatArray) -> FloatArray:
    """Shares of the right-closed bins ``(e_{j-1}, e_j]`` (outer bins open-ended)."""
    return np.diff(np.concatenate([[0.0], v.cdf(edges), [1.0]]))


def psi_sketch(
    ref: KLLSketch, cur: KLLSketch, *, bins: int = DEFAULT_BINS, eps: float = DEFAULT_EPS
) -> float:
    """:func:`psi` from two KLL sketches.

    The edges are the reference sketch's quantiles at ``j / bins`` (``get_quantiles``, inclusive
    ranks: the inverted-CDF quantiles of the sketch), the bin shares differences of the
    sketches' CDFs at them (``get_cdf(edges, inclusive=True)``). While both sketches hold every
    value (``n`` at most about ``k``), the result equals :func:`psi` on the data.

    Examples
    --------
    >>> from datasketches import kll_doubles_sketch
    >>> a, b = kll_doubles_sketch(200), kll_doubles_sketch(200)
    >>> for v in [1, 2, 3, 4]:
    ...     a.update(v)
    >>> for v in [1, 1, 1, 4]:
    ...     b.update(v)
    >>> round(psi_sketch(a, b, bins=2), 4)
    0.2747
    """
    r, c = _sketch(ref, "ref"), _sketch(cur, "cur")
    edges = _sketch_edges(r, _check_bins(bins))
    return _psi_of(
        _view_proportions(_view(r), edges), _view_proportions(_view(c), edges), _check_eps(eps)
    )


def js_sketch(ref: KLLSketch, cur: KLLSketch, *, bins: int = DEFAULT_BINS) -> float:
    """:func:`js_distance` from two KLL sketches, on the binning of :func:`psi_sketch`.

    Examples
    --------
    >>> from datasketches import kll_doubles_sketch
    >>> a, b = kll_doubles_sketch(200), kll_doubles_sketch(200)
    >>> a.update(1.0); a.update(2.0); b.update(5.0); b.update(6.0)
    >>> round(js_sketch(a, b, bins=2), 4)
    0.5579
    """
    r, c = _sketch(ref, "ref"), _sketch(cur, "cur")
    edges = _sketch_edges(r, _check_bins(bins))
    return _js_of(_view_proportions(_view(r), edges), _view_proportions(_view(c), edges))


#: Up to this effective sample size the KS p-value is Kolmogorov's exact distribution; above
#: it, Stephens' corrected limit.
_KS_EXACT_MAX = 1_000


def _ks_p_value(d: float, n: float, m: float) -> float:
    """Two-sided KS p-value of ``d`` for samples of ``n`` and ``m`` values (see ks_sketch)."""
    big, small = max(n, m), min(n, m)
    en = max(1, round(big * small / (big + small)))
    if en > _KS_EXACT_MAX:
        # Stephens (1970): Kolmogorov's limit at (sqrt(en) + 0.12 + 0.11 / sqrt(en)) d.
        root = math.sqrt(en)
        p = float(_special.kolmogorov((root + 0.12 + 0.11 / root) * d))
    else:
        p = float(_st.kstwo.sf(d, en))
    return min(max(p, 0.0), 1.0)


def _gaps(r: _View, c: _View) -> tuple[FloatArray, FloatArray]:
    """The union of both sketches' items (where either CDF steps) and ``|F_ref - F_cur|``
    there: its maximum is KS's D, its integral W1."""
    points = np.union1d(r.x, c.x)
    return points, np.abs(r.cdf(points) - c.cdf(points))


def ks_sketch(ref: KLLSketch, cur: KLLSketch) -> KSResult:
    """:func:`ks` from two KLL sketches.

    ``D = max |F_ref(x) - F_cur(x)|`` of the two sketches' CDFs (``get_cdf``, inclusive), taken
    over the union of both sketches' retained items: each sketch CDF is a step function that
    jumps only there, so this is the exact supremum of the sketched difference. Each sketch CDF
    is within ``eps = sketch.normalized_rank_error(False)`` of the data's (with 99% confidence,
    per query), hence ``|D_sketch - D_exact| <= eps_ref + eps_cur`` (0.0133 each for k = 200).
    The p-value is that of ``ks_2samp(method="asymp")``, Kolmogorov's distribution at
    ``en = round(n m / (n + m))`` for the sketches' counts ``n`` and ``m``, while ``en <= 1000``;
    above, Stephens' approximation ``kolmogorov((sqrt(en) + 0.12 + 0.11 / sqrt(en)) D)``, within
    about 2.5 % of it for p-values above 1e-4 (``docs/drift.md``) and a thousand times faster.
    While both sketches still hold every value (not in estimation mode), the result is
    :func:`ks` of the data.

    Examples
    --------
    >>> from datasketches import kll_doubles_sketch
    >>> a, b = kll_doubles_sketch(200), kll_doubles_sketch(200)
    >>> for v in [1, 2, 3, 4]:
    ...     a.update(v)
    >>> for v in [3, 4, 5, 6]:
    ...     b.update(v)
    >>> ks_sketch(a, b).statistic
    0.5
    """
    r, c = _sketch(ref, "ref"), _sketch(cur, "cur")
    return _ks_of(r, c, _view(r), _view(c))


def _ks_of(r: KLLSketch, c: KLLSketch, vr: _View, vc: _View, d: float | None = None) -> KSResult:
    if not (r.is_estimation_mode() or c.is_estimation_mode()):
        # Both sketches still hold every value: test the data itself.
        return ks(np.repeat(vr.x, vr.w.astype(np.int64)), np.repeat(vc.x, vc.w.astype(np.int64)))
    d = float(np.max(_gaps(vr, vc)[1])) if d is None else d
    return KSResult(d, _ks_p_value(d, float(r.n), float(c.n)))


def _std_of(v: _View) -> float:
    mean = float(np.dot(v.x, v.w)) / v.n
    return math.sqrt(max(float(np.dot((v.x - mean) ** 2, v.w)) / v.n, 0.0))


def sketch_std(sk: KLLSketch) -> float:
    """Population standard deviation of a KLL sketch's weighted retained items.

    An estimate of the data's standard deviation: the items are a weighted sample of the data
    whose CDF is within the sketch's rank error of the data's. Store exact moments (count, sum,
    sum of squares) next to a sketch when the standard deviation must be exact.

    Examples
    --------
    >>> from datasketches import kll_doubles_sketch
    >>> a = kll_doubles_sketch(200)
    >>> for v in [0.0, 2.0]:
    ...     a.update(v)
    >>> sketch_std(a)
    1.0
    """
    return _std_of(_view(_sketch(sk, "sketch")))


def _w1_of(points: FloatArray, gaps: FloatArray) -> float:
    """``integral |F_ref(x) - F_cur(x)| dx`` from :func:`_gaps` (what scipy's weighted
    ``wasserstein_distance`` gives on the items): the gap is constant from a point to the next."""
    return float(np.dot(gaps[:-1], np.diff(points))) if points.size > 1 else 0.0


def _check_std(reference_std: float | None) -> float | None:
    if reference_std is not None and (
        not (isinstance(reference_std, int | float) and math.isfinite(reference_std))
        or reference_std < 0
    ):
        raise UsageError(
            f"reference_std must be a finite number >= 0; got {reference_std!r}; omit it to "
            "estimate it from the sketch"
        )
    return reference_std


def wasserstein_sketch(
    ref: KLLSketch, cur: KLLSketch, *, reference_std: float | None = None
) -> float:
    """:func:`wasserstein_normed` from two KLL sketches.

    ``W1 = integral |F_ref(x) - F_cur(x)| dx`` over the sketches' CDFs, computed exactly for the
    two step functions (what scipy's weighted ``wasserstein_distance`` gives on the retained
    items and their weights), divided by ``max(reference_std, 0.001)``. ``reference_std``
    defaults to :func:`sketch_std` of ``ref``; pass the exact one when the profile stores it.

    Approximation: since each sketch CDF is within its rank error ``eps`` of the data's,
    ``|W1_sketch - W1_exact| <= (eps_ref + eps_cur) * (max - min)`` over both samples' range; in
    practice the error is far smaller (see ``docs/drift.md``), plus the error of the estimated
    standard deviation.

    Examples
    --------
    >>> from datasketches import kll_doubles_sketch
    >>> a, b = kll_doubles_sketch(200), kll_doubles_sketch(200)
    >>> a.update(0.0); a.update(2.0); b.update(1.0); b.update(3.0)
    >>> wasserstein_sketch(a, b)
    1.0
    """
    r, c = _view(_sketch(ref, "ref")), _view(_sketch(cur, "cur"))
    std = _check_std(reference_std)
    return _w1_of(*_gaps(r, c)) / max(_std_of(r) if std is None else float(std), STD_FLOOR)


# --- every statistic of a column, and the verdict ----------------------------------------------


def _missing_stats(
    ref_missing: int, ref_n: int, cur_missing: int, cur_n: int, deff: float = 1.0
) -> dict[str, float]:
    m = missingness_change(
        ref_missing, ref_n + ref_missing, cur_missing, cur_n + cur_missing, design_effect=deff
    )
    return {
        "missing_reference": ref_missing,
        "missing_current": cur_missing,
        "missing_delta": m.delta,
        "missing_p_value": m.p_value,
    }


def numeric_stats(
    reference: object, current: object, *, bins: int = DEFAULT_BINS
) -> dict[str, float]:
    """Every drift statistic of a numeric column, as the input of :func:`column_verdict`.

    Keys: ``n_reference``, ``n_current`` (non-missing values), ``missing_reference``,
    ``missing_current`` (null or NaN, dropped from the rest), ``missing_delta``,
    ``missing_p_value`` (:func:`missingness_change`), ``psi``, ``js_distance``,
    ``wasserstein_normed``, ``ks_statistic``, ``ks_p_value``.

    Examples
    --------
    >>> s = numeric_stats([1.0, 2.0, None], [1.0, 2.0, 3.0])
    >>> s["n_reference"], s["missing_reference"], s["wasserstein_normed"]
    (2, 1, 1.0)
    """
    ref, ref_missing = _split_missing(reference, "reference")
    cur, cur_missing = _split_missing(current, "current")
    _nonempty(ref, ref_missing, "reference")
    _nonempty(cur, cur_missing, "current")
    k = ks(ref, cur)
    return {
        "n_reference": int(ref.size),
        "n_current": int(cur.size),
        **_missing_stats(ref_missing, ref.size, cur_missing, cur.size),
        "psi": psi(ref, cur, bins=bins),
        "js_distance": js_distance(ref, cur, bins=bins),
        "wasserstein_normed": wasserstein_normed(ref, cur),
        "ks_statistic": k.statistic,
        "ks_p_value": k.p_value,
    }


def numeric_stats_sketch(
    ref: KLLSketch,
    cur: KLLSketch,
    *,
    bins: int = DEFAULT_BINS,
    ref_missing: int = 0,
    cur_missing: int = 0,
    reference_std: float | None = None,
    design_effect: float = 1.0,
) -> dict[str, float]:
    """:func:`numeric_stats` from two KLL sketches (the same keys).

    A sketch does not see missing values: pass their counts as ``ref_missing`` and
    ``cur_missing`` (from the profile). ``design_effect`` corrects the missingness test for
    rows that come in clusters (see :func:`missingness_change`); the value tests stay per row.
    Each sketch is read once, so this is much faster than calling the four functions.
    """
    r, c = _sketch(ref, "ref"), _sketch(cur, "cur")
    std = _check_std(reference_std)
    vr, vc = _view(r), _view(c)
    points, gaps = _gaps(vr, vc)
    k = _ks_of(r, c, vr, vc, float(np.max(gaps)))
    edges = _sketch_edges(r, _check_bins(bins))
    pr, pc = _view_proportions(vr, edges), _view_proportions(vc, edges)
    return {
        "n_reference": int(r.n),
        "n_current": int(c.n),
        **_missing_stats(
            _check_count(ref_missing, "ref_missing"),
            int(r.n),
            _check_count(cur_missing, "cur_missing"),
            int(c.n),
            design_effect,
        ),
        "psi": _psi_of(pr, pc, DEFAULT_EPS),
        "js_distance": _js_of(pr, pc),
        "wasserstein_normed": _w1_of(points, gaps)
        / max(_std_of(vr) if std is None else float(std), STD_FLOOR),
        "ks_statistic": k.statistic,
        "ks_p_value": k.p_value,
    }


def categorical_stats(
    ref_counts: Mapping[str, int],
    cur_counts: Mapping[str, int],
    *,
    ref_missing: int = 0,
    cur_missing: int = 0,
    design_effect: float = 1.0,
) -> dict[str, float]:
    """Every drift statistic of a categorical column, as the input of :func:`column_verdict`.

    Keys: ``n_reference``, ``n_current`` (total counts), ``missing_reference``,
    ``missing_current``, ``missing_delta``, ``missing_p_value``, ``psi``
    (:func:`psi_categorical`), ``js_distance`` (:func:`js_categorical`), ``chi_square``,
    ``chi_square_p_value``, ``unseen_share`` (share of the current sample in categories the
    reference never saw), ``design_effect``.

    ``design_effect`` (>= 1) is for counts of rows that come in clusters, such as the events
    of one user: the chi-square statistic and the missingness z statistic squared are divided
    by it before their p-values are taken (Rao and Scott's first-order correction). The
    default 1 treats rows as independent. :func:`design_effect` gives the bound the drift
    report uses.

    Examples
    --------
    >>> s = categorical_stats({"a": 5, "b": 5}, {"a": 5, "b": 5})
    >>> s["js_distance"], s["chi_square_p_value"]
    (0.0, 1.0)
    >>> round(categorical_stats({"a": 30, "b": 10}, {"a": 10, "b": 30})["chi_square"], 3)
    20.0
    >>> round(categorical_stats({"a": 30, "b": 10}, {"a": 10, "b": 30},
    ...                         design_effect=4.0)["chi_square"], 3)
    5.0
    """
    deff = _check_deff(design_effect)
    _, rv, cv = _aligned(ref_counts, cur_counts)
    nr, nc = int(rv.sum()), int(cv.sum())
    stat, p = _chi_square_of(rv, cv, deff)
    unseen = int(cv[rv == 0].sum())
    return {
        "n_reference": nr,
        "n_current": nc,
        **_missing_stats(
            _check_count(ref_missing, "ref_missing"),
            nr,
            _check_count(cur_missing, "cur_missing"),
            nc,
            deff,
        ),
        "psi": _psi_of(rv / nr, cv / nc, DEFAULT_EPS),
        "js_distance": _js_of(rv / nr, cv / nc),
        "chi_square": stat,
        "chi_square_p_value": p,
        "unseen_share": unseen / nc,
        "design_effect": deff,
    }


def _check_deff(design_effect: float) -> float:
    if not (
        isinstance(design_effect, int | float)
        and not isinstance(design_effect, bool)
        and math.isfinite(design_effect)
        and design_effect >= 1.0
    ):
        raise UsageError(
            f"design_effect must be a finite number >= 1; got {design_effect!r}; use 1 for "
            "independent rows, or events per distinct user (assay.drift.design_effect)"
        )
    return float(design_effect)


def design_effect(
    rows: int, sum_squares: float, *, share: float = 1.0, clustering: float = 1.0
) -> float:
    """The design effect of rows sent in clusters whose category never changes within one.

    For clusters (a user's events) of sizes ``m_j`` with ``rows = sum m_j``, the variance of a
    category's share is the simple-random-sample variance times ``sum m_j**2 / sum m_j`` when
    every cluster has one category (Kish 1965: ``1 + (m - 1) rho`` with intra-cluster
    correlation ``rho = 1``, for clusters of unequal size). Dividing a chi-square statistic by it
    tests the clusters, not the rows: right for per-user attributes (locale, platform, app
    version), conservative for columns that vary within a user (event type). Equal clusters of
    ``m`` rows give ``m``.

    ``share`` is for a column present on only part of the rows (a random share ``f`` of each
    cluster's rows): its clusters shrink to ``f m_j`` and the effect to ``f deff + (1 - f)``.
    ``clustering`` is the intra-cluster correlation ``rho`` when it is known (0 for a column
    drawn independently for each event): the effect is ``1 + rho (deff - 1)``; the default 1
    is the bound, which the drift report uses.

    Parameters
    ----------
    rows : the rows (events) of all clusters.
    sum_squares : ``sum over clusters of size**2`` (``SliceProfile.user_sum_squares``).
    share : the share of rows where the column has a value, in (0, 1].
    clustering : the intra-cluster correlation, in [0, 1].

    Returns
    -------
    float
        At least 1 (1 when there is nothing to correct).

    Examples
    --------
    >>> design_effect(1000, 1000 * 20)  # 50 users of 20 events each
    20.0
    >>> design_effect(1000, 1000 * 20, share=0.1)
    2.9
    >>> design_effect(5, 5)  # one event per user
    1.0
    >>> design_effect(1000, 1000 * 20, clustering=0.5)
    10.5
    """
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 0:
        raise UsageError(f"rows must be an integer >= 0; got {rows!r}; pass a row count")
    if not (isinstance(sum_squares, int | float | np.integer | np.floating) and sum_squares >= 0):
        raise UsageError(
            f"sum_squares must be a number >= 0; got {sum_squares!r}; pass the sum over users "
            "of their rows squared"
        )
    if not (isinstance(share, int | float) and 0.0 < share <= 1.0):
        raise UsageError(f"share must be in (0, 1]; got {share!r}; pass values / rows")
    if not (isinstance(clustering, int | float) and 0.0 <= clustering <= 1.0):
        raise UsageError(
            f"clustering must be in [0, 1]; got {clustering!r}; pass the intra-user "
            "correlation, or 1 for the bound"
        )
    if rows == 0:
        return 1.0
    deff = float(sum_squares) / float(rows)
    return max(1.0, 1.0 + clustering * (share * deff + (1.0 - share) - 1.0))


def _need(stats: Mapping[str, float], keys: tuple[str, ...], why: str) -> None:
    missing = [k for k in keys if k not in stats or stats[k] is None]
    if missing:
        raise UsageError(
            f"column_verdict needs {', '.join(missing)} in stats ({why}); got keys "
            f"{sorted(stats)}; compute them with numeric_stats or categorical_stats"
        )


def column_verdict(
    stats: Mapping[str, float],
    kind: Kind,
    *,
    thresholds: Mapping[str, float] | None = None,
) -> bool:
    """Has this column drifted? True when any rule below fires.

    With ``n = min(n_reference, n_current) / design_effect`` (the smaller sample in independent
    units: users rather than events when ``stats`` has a ``design_effect``, as the drift
    report's categorical columns do) and the thresholds ``t`` (:data:`DEFAULT_THRESHOLDS`
    updated with ``thresholds``):

    - ``n <= t["small_sample"]`` (1000): a test decides. Numeric: ``ks_p_value <
      t["ks_p_value"]`` (0.05); categorical: ``chi_square_p_value < t["chi_square_p_value"]``
      (0.05).
    - larger samples: a distance decides (any p-value would flag negligible changes). Numeric:
      ``wasserstein_normed >= t["wasserstein_normed"]`` (0.1) or ``psi >= t["psi"]`` (0.25);
      categorical: ``js_distance >= t["js_distance"]`` (0.1) or ``psi >= t["psi"]``.
    - missingness, at any size, when ``missing_delta`` and ``missing_p_value`` are present:
      ``|missing_delta| >= t["missing_delta"]`` (0.1) and ``missing_p_value <
      t["missing_p_value"]`` (0.05).

    ``psi`` votes only when present in ``stats``. Sources of the defaults: ``docs/drift.md``.

    Examples
    --------
    >>> column_verdict({"n_reference": 5000, "n_current": 5000, "wasserstein_normed": 0.02,
    ...                 "psi": 0.01}, "numeric")
    False
    >>> column_verdict({"n_reference": 200, "n_current": 5000, "ks_p_value": 0.01}, "numeric")
    True
    """
    if kind not in ("numeric", "categorical"):
        raise UsageError(f"kind must be 'numeric' or 'categorical'; got {kind!r}")
    t = dict(DEFAULT_THRESHOLDS)
    if thresholds is not None:
        unknown = sorted(set(thresholds) - set(t))
        if unknown:
            raise UsageError(
                f"unknown thresholds {unknown}; expected some of {sorted(t)}; check the names"
            )
        t.update({k: float(v) for k, v in thresholds.items()})
    _need(stats, ("n_reference", "n_current"), "the sample sizes choose the rule")
    n = min(stats["n_reference"], stats["n_current"]) / (stats.get("design_effect") or 1.0)
    drift = False
    if n <= t["small_sample"]:
        key = "ks_p_value" if kind == "numeric" else "chi_square_p_value"
        _need(stats, (key,), f"a {kind} column of at most {t['small_sample']:g} values")
        drift = stats[key] < t[key]
    else:
        key = "wasserstein_normed" if kind == "numeric" else "js_distance"
        _need(stats, (key,), f"a {kind} column of more than {t['small_sample']:g} values")
        drift = stats[key] >= t[key]
        if stats.get("psi") is not None:
            drift = drift or stats["psi"] >= t["psi"]
    if stats.get("missing_delta") is not None and stats.get("missing_p_value") is not None:
        drift = drift or (
            abs(stats["missing_delta"]) >= t["missing_delta"]
            and stats["missing_p_value"] < t["missing_p_value"]
        )
    return bool(drift)
