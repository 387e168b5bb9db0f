"""Exact ROC AUC per cohort at the cost of one sort, and its streaming / mergeable form.

How it works: rows are ranked by (cohort, score) once, for all cohorts together, by the ranking
kernel of :mod:`assay.evaluation._rank` (an argsort of the scores followed by a stable radix
argsort of the cohort codes). Equal scores inside a cohort then form contiguous *runs*; for each
run we sum the positive and the negative weight, and the AUC of every cohort is a handful of
linear, vectorised passes over the runs (no Python loop per cohort).

For a cohort with runs ``r = 1..m`` in decreasing score order, positive weights ``p_r``,
negative weights ``q_r``, and ``A_r = p_1 + ... + p_{r-1}`` the positive weight strictly above
run ``r``::

    U   = sum_r q_r * (A_r + p_r / 2)         # pairs ranked correctly, ties counted 1/2
    AUC = U / (P * N)                          # P = sum p_r, N = sum q_r

Unweighted, ``p_r`` and ``q_r`` are counts and this is exactly the rank form
``(sum of the average ranks of the positives - P(P+1)/2) / (P N)``; ``2U`` is then an integer and
is computed in integer arithmetic, so the only rounding is the final division.

What is this module's own: the scale-free weighted path (each cohort's weights rescaled to sum to
one, in extended precision) and the accumulator, which keeps runs and merges them.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt

from assay._errors import UsageError
from assay.evaluation import _inputs
from assay.evaluation._inputs import BoolArray, FloatArray, IntArray
from assay.evaluation._rank import Counts, Groups, Values, rank


class _Runs:
    """Runs of equal (cohort, score), in ranking order (cohort, then descending score).

    ``key`` is the score of each run, ``pos`` / ``neg`` its positive and negative weight (int64
    counts when unweighted, float64 weight sums otherwise). The runs of cohort ``present[j]``
    start at run ``first[j]``; every listed cohort has at least one run.
    """

    __slots__ = ("first", "key", "neg", "pos", "present")

    def __init__(
        self,
        present: IntArray,
        first: IntArray,
        key: FloatArray,
        pos: npt.NDArray[Any],
        neg: npt.NDArray[Any],
    ) -> None:
        self.present = present
        self.first = first
        self.key = key
        self.pos = pos
        self.neg = neg

    def groups(self, k: int) -> Groups:
        """The runs as the ranking kernel's groups, for cohort codes ``0..k-1``."""
        return Groups(k, self.present, self.first, int(self.key.size))


def _runs(codes: IntArray, k: int, s: FloatArray, y: BoolArray, w: FloatArray | None) -> _Runs:
    """Rank rows once and collapse them into runs of equal (cohort, score)."""
    r = rank(s, codes, k)
    pos, neg = r.class_sums(y[r.order], None if w is None else w[r.order])
    return _Runs(r.groups.present, r.groups.first, r.score, pos, neg)


def _auc_from_runs(runs: _Runs, k: int) -> tuple[FloatArray, FloatArray]:
    """Return (AUC, error bound of binning) per code ``0..k-1``; NaN where a class is missing.

    The second array is ``sum_r p_r q_r / (2 P N)``: the weight of the tied pairs over twice
    the weight of all pairs.
    """
    groups = runs.groups(k)
    pos: Values = runs.pos
    neg: Values = runs.neg
    if pos.dtype.kind != "i":
        # Weights: AUC does not change when a cohort's positive (or negative) weights are
        # scaled, so each cohort's are scaled to sum to 1 first. Tiny or huge weights then
        # neither underflow nor overflow in P * N, and the global running sum of the kernel (in
        # extended precision where the platform has it) grows by at most 1 per cohort, which
        # bounds the cancellation error of the per-cohort offset in units of AUC rather than
        # of weight.
        acc = np.longdouble
        p = groups.sums(pos, dtype=acc)
        q = groups.sums(neg, dtype=acc)
        ok = (p > 0) & (q > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            pos = pos * groups.spread(np.where(ok, 1 / p, 0))
            neg = neg * groups.spread(np.where(ok, 1 / q, 0))
    counts = Counts(groups, pos, neg)
    auc = counts.roc_auc()
    with np.errstate(invalid="ignore", divide="ignore"):
        tied = groups.sums(pos * neg) / (2 * counts.positives * counts.negatives)
    tied = np.where(np.isnan(auc), np.nan, tied)
    return (
        groups.scatter(np.asarray(auc, dtype=np.float64)),
        groups.scatter(np.asarray(tied, dtype=np.float64)),
    )


def _aggregate(code: IntArray, key: FloatArray, pos: FloatArray, neg: FloatArray, k: int) -> _Runs:
    """Merge rows of (code, key, pos, neg) with equal (code, key) into ranked runs."""
    r = rank(key, code, k)
    return _Runs(
        r.groups.present,
        r.groups.first,
        r.score,
        r.group_sums(pos[r.order]),
        r.group_sums(neg[r.order]),
    )


def _as_dict(values: list[Any], numbers: FloatArray) -> dict[Any, float | None]:
    out: list[float | None] = numbers.tolist()
    for i in np.flatnonzero(np.isnan(numbers)).tolist():
        out[i] = None
    return dict(zip(values, out, strict=True))


def cohort_auc(
    y_true: object,
    y_score: object,
    cohort_id: object,
    *,
    sample_weight: object = None,
    nan: Literal["raise", "drop"] = "raise",
) -> dict[Any, float | None]:
    """ROC AUC per cohort, exact, for all cohorts at the cost of one sort.

    Definition: within each cohort, with 1-based ranks of the scores (tied scores get the average
    of their ranks), ``n+`` positives and ``n-`` negatives::

        AUC = (sum of the ranks of the positives - n+ (n+ + 1) / 2) / (n+ n-)

    that is, the share of (positive, negative) pairs where the positive scores higher, a tied
    pair counting 1/2. With ``sample_weight`` each pair weighs the product of its two weights
    (the weighted Mann-Whitney statistic); this equals scikit-learn's weighted
    ``roc_auc_score`` on the cohort.

    Parameters
    ----------
    y_true : array-like of 0/1 or bool
        Labels. A list, numpy array, pandas or polars Series, or pyarrow (Chunked)Array.
    y_score : array-like of float
        Scores; higher means more likely positive. Must be finite (see ``nan``).
    cohort_id : array-like
        Cohort of each row: integers, strings or any hashable values. Nulls (``None``, NaN,
        pandas / polars / Arrow nulls) form one cohort of their own, keyed ``None``.
    sample_weight : array-like of float, optional
        Non-negative, finite weights; zero weights are allowed.
    nan : {"raise", "drop"}
        What to do with NaN, infinite or missing scores: raise a ``UsageError`` naming how many
        and where (default), or drop those rows with a warning that gives the count. A cohort
        whose rows are all dropped maps to ``None``.

    Returns
    -------
    dict
        Cohort value -> AUC. Keys are in the sorted order of the cohort values when they can be
        sorted (else first appearance), the null cohort last. The value is ``None`` when the
        cohort lacks positives or negatives (or, weighted, when their total weight is zero).

    Raises
    ------
    UsageError
        Labels outside {0, 1}, non-finite scores (with ``nan="raise"``), negative or non-finite
        weights, columns of different lengths, or empty input.

    Examples
    --------
    >>> y_true = [0, 1, 0, 1, 1, 0]
    >>> y_score = [0.1, 0.9, 0.5, 0.5, 0.3, 0.2]
    >>> cohort_auc(y_true, y_score, ["a", "a", "a", "a", "b", "b"])
    {'a': 0.875, 'b': 1.0}
    >>> cohort_auc([1, 1, 0], [0.2, 0.4, 0.1], [7, 7, 8])
    {7: None, 8: None}
    """
    n = _inputs.check_same_length(
        y_true=y_true, y_score=y_score, cohort_id=cohort_id, sample_weight=sample_weight
    )
    y = _inputs.labels(y_true)
    s = _inputs.scores(y_score, n, nan=nan)
    codes, values = _inputs.cohorts(cohort_id, n)
    w = _inputs.weights(sample_weight, n)
    k = len(values)
    if nan == "drop":
        keep = np.isfinite(s)
        if not keep.all():
            dropped = int(keep.size - np.count_nonzero(keep))
            warnings.warn(
                f"cohort_auc dropped {dropped} of {n} rows whose y_score is NaN, infinite or "
                "missing",
                UserWarning,
                stacklevel=2,
            )
            if not keep.any():
                raise UsageError(
                    f"every y_score is NaN, infinite or missing ({n} rows); nothing to evaluate"
                )
            y, s, codes = y[keep], s[keep], codes[keep]
            w = None if w is None else w[keep]
    auc, _ = _auc_from_runs(_runs(codes, k, s, y, w), k)
    return _as_dict(values, auc)


class AUCAccumulator:
    """ROC AUC per cohort over a stream of batches or over partitions, exact or binned.

    ``update`` adds a batch; ``merge`` adds another accumulator's data (from another partition
    or machine: accumulators pickle); ``result`` returns AUC per cohort like :func:`cohort_auc`.

    - ``bins=None`` (exact): keeps, per cohort and per distinct score, the positive and negative
      weight. ``result()`` equals :func:`cohort_auc` on all the data seen (up to float rounding
      of weight sums). Memory grows with the number of distinct (cohort, score) pairs, so this
      suits scores of bounded precision (rounded, or float16/float32 model outputs).
    - ``bins=K`` (approximate): scores are first mapped to ``K`` equal-width bins over [0, 1]
      (bin ``i`` holds ``[i/K, (i+1)/K)``, the last bin also holds 1; scores below 0 or above 1
      are clipped into the first or last bin). Memory is at most ``K`` entries per cohort.

    Error bound (``bins=K``): binning is monotone, so a (positive, negative) pair in different
    bins is ordered exactly as by the raw scores. Only pairs in the same bin can be wrong: they
    are counted as ties (1/2) while their true contribution is 0, 1/2 or 1. Hence, for a cohort
    with positive weight ``p_b`` and negative weight ``q_b`` in bin ``b``::

        |AUC_binned - AUC_exact| <= sum_b p_b q_b / (2 P N)

    which :meth:`error_bound` reports (0.0 in exact mode; NaN where AUC is undefined). The bound
    is attained when every tied pair is ordered the same way inside its bin.

    Parameters
    ----------
    bins : int, optional
        Number of equal-width score bins over [0, 1]; ``None`` (default) for the exact mode.

    Examples
    --------
    >>> acc = AUCAccumulator()
    >>> _ = acc.update([0, 1], [0.1, 0.9], ["a", "a"])
    >>> _ = acc.update([0, 1, 1], [0.5, 0.5, 0.2], ["a", "a", "b"])
    >>> acc.result()
    {'a': 0.875, 'b': None}
    >>> binned = AUCAccumulator(bins=2).update([0, 1, 0, 1], [0.1, 0.9, 0.6, 0.7], [1, 1, 1, 1])
    >>> binned.result(), binned.error_bound()
    ({1: 0.75}, {1: 0.25})
    """

    def __init__(self, bins: int | None = None) -> None:
        if bins is not None and (
            isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1
        ):
            raise UsageError(
                f"bins must be a positive integer or None (exact); got {bins!r}; "
                "pass e.g. bins=1000"
            )
        self._bins = None if bins is None else int(bins)
        self._index: dict[Any, int] = {}
        self._values: list[Any] = []
        self._chunks: list[_Runs] = []
        self._pending = 0  # rows in chunks added since the last compaction
        self._compacted = 0  # rows in the compacted chunk

    def __setstate__(self, state: dict[str, Any]) -> None:
        # The runs are re-ranked once after unpickling. Accumulators pickled before the ranking
        # kernel (commit 4e21f2f and earlier) hold their runs in ascending score order, and
        # runs read in the wrong direction give 1 - AUC; re-ranking puts any order right.
        self.__dict__.update(state)
        self._pending = max(self._pending, sum(int(c.key.size) for c in self._chunks))

    @property
    def bins(self) -> int | None:
        """Number of score bins, or ``None`` in exact mode."""
        return self._bins

    def _ids(self, values: list[Any]) -> IntArray:
        """Map a batch's cohort values to this accumulator's ids (one dict lookup per value)."""
        index = self._index
        out = np.empty(len(values), dtype=np.int64)
        for i, v in enumerate(values):
            gid = index.get(v)
            if gid is None:
                gid = index[v] = len(self._values)
                self._values.append(v)
            out[i] = gid
        return out

    def _add(self, runs: _Runs) -> None:
        self._chunks.append(runs)
        self._pending += runs.key.size
        # Compact when the new rows outnumber the compacted ones: amortised O(n log n).
        if self._pending > max(self._compacted, 1 << 16):
            self._compact()

    def _compact(self) -> _Runs:
        if len(self._chunks) == 1 and self._pending == 0:
            return self._chunks[0]
        if not self._chunks:
            empty_i = np.empty(0, dtype=np.int64)
            empty_f = np.empty(0, dtype=np.float64)
            return _Runs(empty_i, empty_i, empty_f, empty_f, empty_f)
        merged = _aggregate(
            np.concatenate([c.groups(len(self._values)).code for c in self._chunks]),
            np.concatenate([c.key for c in self._chunks]),
            np.concatenate([c.pos for c in self._chunks]),
            np.concatenate([c.neg for c in self._chunks]),
            len(self._values),
        )
        self._chunks = [merged]
        self._compacted = merged.key.size
        self._pending = 0
        return merged

    def update(
        self,
        y_true: object,
        y_score: object,
        cohort_id: object,
        sample_weight: object = None,
    ) -> Self:
        """Add a batch of rows; inputs as for :func:`cohort_auc` (scores must be finite)."""
        n = _inputs.check_same_length(
            y_true=y_true, y_score=y_score, cohort_id=cohort_id, sample_weight=sample_weight
        )
        y = _inputs.labels(y_true)
        s = _inputs.scores(y_score, n)
        codes, values = _inputs.cohorts(cohort_id, n)
        w = _inputs.weights(sample_weight, n)
        if self._bins is not None:
            s = np.clip(np.floor(s * self._bins), 0, self._bins - 1)
        runs = _runs(codes, len(values), s, y, w)
        runs.present = self._ids(values)[runs.present]
        runs.pos = runs.pos.astype(np.float64)
        runs.neg = runs.neg.astype(np.float64)
        self._add(runs)
        return self

    def merge(self, other: AUCAccumulator) -> Self:
        """Add everything ``other`` has seen (``other`` is left unchanged)."""
        if not isinstance(other, AUCAccumulator):
            raise UsageError(f"merge takes another AUCAccumulator; got {type(other).__name__}")
        if other._bins != self._bins:
            raise UsageError(
                f"cannot merge accumulators with different bins ({self._bins} and "
                f"{other._bins}); create all partitions' accumulators with the same bins"
            )
        if other is self:
            runs = self._compact()
            self._add(_Runs(runs.present, runs.first, runs.key, runs.pos, runs.neg))
            return self
        ids = self._ids(other._values)
        for c in other._chunks:
            self._add(_Runs(ids[c.present], c.first, c.key, c.pos, c.neg))
        return self

    def _numbers(self) -> tuple[FloatArray, FloatArray]:
        return _auc_from_runs(self._compact(), len(self._values))

    def result(self) -> dict[Any, float | None]:
        """AUC per cohort seen so far; ``None`` where a cohort lacks a class (see cohort_auc).

        Keys are in the order the cohorts were first seen (by updates, then merges).
        """
        auc, _ = self._numbers()
        return _as_dict(list(self._values), auc)

    def error_bound(self) -> dict[Any, float]:
        """Upper bound of ``|result() - exact AUC|`` per cohort (see the class docstring).

        0.0 in exact mode; NaN for a cohort whose AUC is ``None``.
        """
        auc, tied = self._numbers()
        bound = tied if self._bins is not None else np.where(np.isnan(auc), np.nan, 0.0)
        return {
            v: (math.nan if math.isnan(b) else b)
            for v, b in zip(self._values, bound.tolist(), strict=True)
        }
