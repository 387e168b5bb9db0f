"""The ranking kernel of :mod:`assay.evaluation`: one sort, groups of ties, pair counts.

ROC AUC, average precision, the precision-recall curve and equal-mass calibration bins are all
read off the same structure, whether one cohort or many, one weight vector or a matrix of
bootstrap replicates. :func:`cohort_auc`, the metric functions, :func:`bootstrap_ci` and
:func:`slice_report` all build it here.

The ranking
-----------
Rows are ordered by cohort code (ascending), then by score (descending, as thresholds are read:
from the top). Rows with the same (cohort, score) form a *group*; a group is never split, it is
one threshold. :func:`rank` sorts with an unstable argsort of the scores and then a stable
argsort of the cohort codes (a linear-time radix sort on uint16 codes for up to 65,536
cohorts), which is cheaper than ``np.lexsort``'s two stable passes. The order of rows inside a
group is unspecified; nothing here depends on it beyond the rounding of float weight sums.

Sums
----
Per-group sums are ``np.add.reduceat`` over the group starts (or the rows themselves when no
score is tied); per-cohort sums are ``np.add.reduceat`` over each cohort's first group. Every
operation works on the last axis, so a ``(replicates x rows)`` weight matrix gives
``(replicates x groups)`` sums in the same passes. Cumulative sums within a cohort are global
cumulative sums minus the value before the cohort's first group: exact for integer counts and
integer-valued floats (every bootstrap replicate of unweighted data); with fractional weights a
cohort's rounding error is about ``1e-16 * (weight before the cohort) / (the cohort's weight)``.

Pair counts
-----------
With ``p_g`` and ``q_g`` the positive and negative weight of group ``g`` and ``A_g`` the positive
weight strictly above it in its cohort, each negative is outranked by the positives above it and
ties with those of its own group, counted 1/2::

    2U  = sum_g q_g (2 A_g + p_g)           AUC = 2U / (2 P N)
    AP  = sum_g p_g TP_g / (TP_g + FP_g) / P

where ``TP_g``, ``FP_g`` are the weights at scores at or above group ``g`` (inclusive
cumulative sums). With integer counts ``2U`` is an integer and is computed in int64, so the only
rounding is the final division. A cohort without rows is reported as NaN (``fill``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from assay.evaluation._inputs import BoolArray, FloatArray, IntArray

#: Numbers per group or cohort: int64 counts, float64 weights, or longdouble where a caller
#: needs the extra precision; 1-D, or 2-D with one row per weight vector.
Values = npt.NDArray[Any]

#: Cohort codes up to this count are sorted as uint16, which numpy sorts stably by radix sort.
_RADIX_MAX_COHORTS = 1 << 16


def score_order(scores: FloatArray) -> IntArray:
    """Ascending argsort of the scores, to share between several :func:`rank` calls.

    Unstable (and so faster than a stable sort): the order of equal scores does not matter.
    """
    return np.asarray(np.argsort(scores), dtype=np.int64)


def _sort_order(
    codes: IntArray | None, k: int, scores: FloatArray, by_score: IntArray | None
) -> IntArray:
    """The permutation that sorts rows by (code ascending, score descending)."""
    ascending = score_order(scores) if by_score is None else by_score
    descending = ascending[::-1]
    if codes is None or k == 1:
        return np.ascontiguousarray(descending, dtype=np.int64)
    c = codes[descending]
    if k <= _RADIX_MAX_COHORTS:
        c = c.astype(np.uint16)
    return np.asarray(descending[np.argsort(c, kind="stable")], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Groups:
    """Groups in ranking order, cohort by cohort: where each cohort's groups begin.

    ``present`` lists the cohort codes (of ``0..k-1``) that have at least one group, ascending;
    the groups of cohort ``present[j]`` are ``first[j]`` up to ``first[j + 1]`` (or ``size``).
    Per-cohort results have one entry per present cohort; :meth:`scatter` spreads them over
    all ``k`` codes.
    """

    k: int
    present: IntArray
    first: IntArray
    size: int  # number of groups

    @cached_property
    def sizes(self) -> IntArray:
        """The number of groups of each present cohort."""
        return np.diff(np.append(self.first, self.size))

    @cached_property
    def code(self) -> IntArray:
        """The cohort code of each group."""
        return self.spread(self.present)

    def spread(self, values: Values) -> Values:
        """Per-present-cohort ``values`` (last axis) repeated for each group of the cohort."""
        return np.repeat(values, self.sizes, axis=-1)

    def sums(self, values: Values, dtype: Any = None) -> Values:
        """Per-cohort sums of per-group ``values`` (last axis), one per present cohort."""
        if self.present.size == 0:
            return np.zeros((*values.shape[:-1], 0), dtype=dtype or values.dtype)
        return np.asarray(np.add.reduceat(values, self.first, axis=-1, dtype=dtype))

    def within(self, values: Values) -> Values:
        """Inclusive cumulative sums of per-group ``values`` within each cohort (last axis)."""
        c = np.cumsum(values, axis=-1)
        return c if self.present.size <= 1 else self.rebase(c)

    def rebase(self, cumulative: Values) -> Values:
        """Global cumulative sums (last axis) made cumulative within each cohort (a new array)."""
        if self.present.size <= 1:
            return cumulative.copy()
        before = cumulative[..., self.first[1:] - 1]
        base = np.concatenate([np.zeros_like(before[..., :1]), before], axis=-1)
        return np.asarray(cumulative - self.spread(base))

    def scatter(self, values: Values, fill: float = np.nan) -> Values:
        """Per-present-cohort ``values`` spread over the codes ``0..k-1``, ``fill`` elsewhere."""
        if self.present.size == self.k:
            return values
        out = np.full((*values.shape[:-1], self.k), fill, dtype=np.result_type(values, fill))
        out[..., self.present] = values
        return out


@dataclass(frozen=True, eq=False)
class Ranking:
    """Rows sorted by (cohort, descending score) and cut into groups of tied (cohort, score).

    ``order`` maps sorted positions to input rows; ``start`` is the first sorted row of each
    group, ``row_first`` the first sorted row of each present cohort, ``score`` the score of each
    group. Arrays passed to :meth:`group_sums` and :meth:`class_sums` are in sorted order
    (``x[..., ranking.order]``).
    """

    order: IntArray
    start: IntArray
    row_first: IntArray
    score: FloatArray
    groups: Groups

    @property
    def n(self) -> int:
        return int(self.order.size)

    @property
    def ties(self) -> bool:
        """Whether some group has more than one row."""
        return self.start.size < self.order.size

    def group_sums(self, values: Values) -> Values:
        """Per-group sums of sorted per-row ``values`` (last axis)."""
        if not self.ties:
            return values
        return np.add.reduceat(values, self.start, axis=-1)

    def class_sums(self, y: BoolArray, w: Values | None = None) -> tuple[Values, Values]:
        """Positive and negative weight of each group, from sorted labels and weights.

        Without weights the counts are int64; with a weight vector or matrix (rows sorted on
        the last axis) they are float sums of ``w * y`` and ``w * (1 - y)``.
        """
        if w is not None:
            return self.group_sums(w * y), self.group_sums(w * ~y)
        if not self.ties:
            pos = y.astype(np.int64)
            return pos, 1 - pos
        # Counts via an integer cumulative sum read at the group ends (faster than reduceat).
        ends = np.append(self.start[1:], self.n) - 1
        pos = np.diff(np.cumsum(y, dtype=np.int64)[ends], prepend=0)
        return pos, np.diff(ends, prepend=-1) - pos


def rank(
    scores: FloatArray,
    codes: IntArray | None = None,
    k: int = 1,
    *,
    by_score: IntArray | None = None,
) -> Ranking:
    """Sort rows by (cohort code, descending score) and group the ties.

    Parameters
    ----------
    scores : finite floats, one per row.
    codes : cohort code ``0..k-1`` per row, or None for one cohort.
    k : number of cohort codes (some may have no rows).
    by_score : :func:`score_order` of ``scores``, when several rankings share one score sort.
    """
    n = scores.size
    order = _sort_order(codes, k, scores, by_score)
    if codes is None or k == 1:
        present = np.zeros(min(n, 1), dtype=np.int64)
        row_first = present.copy()
    else:
        counts = np.bincount(codes, minlength=k)
        present = np.flatnonzero(counts).astype(np.int64, copy=False)
        row_first = (np.cumsum(counts) - counts)[present].astype(np.int64, copy=False)
    s = scores[order]
    new = np.empty(n, dtype=bool)
    new[:1] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    new[row_first] = True
    if np.count_nonzero(new) == n:  # no tied scores: every row is its own group
        start = np.arange(n, dtype=np.int64)
        first = row_first
        score = s
    else:
        start = np.flatnonzero(new).astype(np.int64, copy=False)
        first = np.searchsorted(start, row_first).astype(np.int64, copy=False)
        score = s[start]
    return Ranking(order, start, row_first, score, Groups(k, present, first, int(start.size)))


def safe_div(num: Values, den: Values) -> Values:
    """``num / den`` with NaN where ``den`` is not positive (an undefined metric)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


class Counts:
    """Positive and negative weight per group, and the ranking metrics of each cohort.

    ``pos`` and ``neg`` have the groups on their last axis (int64 counts, or float sums,
    optionally one row per weight vector). Results have one entry per present cohort of
    ``groups``; NaN where undefined.
    """

    def __init__(self, groups: Groups, pos: Values, neg: Values) -> None:
        self.groups = groups
        self.pos = pos
        self.neg = neg

    @cached_property
    def positives(self) -> Values:
        return self.groups.sums(self.pos)

    @cached_property
    def negatives(self) -> Values:
        return self.groups.sums(self.neg)

    @cached_property
    def _cum_pos(self) -> Values:
        return np.cumsum(self.pos, axis=-1)

    def roc_auc(self) -> Values:
        """AUC per cohort (the weighted Mann-Whitney statistic, ties 1/2); NaN without pairs.

        Positives above each group are counted over all cohorts in order; for cohort ``c`` that
        exceeds the within-cohort count by the same offset for every group of ``c``, subtracted
        once per cohort after the sum (exact in int64).
        """
        g = self.groups
        # 2U = sum_g q_g (2 A_g + p_g), built in place: B x groups temporaries are the cost.
        x = self._cum_pos - self.pos
        offset = x[..., g.first] if g.present.size else None
        x *= 2
        x += self.pos
        x *= self.neg
        u2 = g.sums(x)
        if offset is not None:
            u2 -= 2 * offset * self.negatives
        pairs = self.positives * self.negatives
        return safe_div(u2, 2 * pairs)

    def average_precision(self) -> Values:
        """Average precision per cohort (step-wise, one threshold per group); NaN without a
        positive of positive weight, at most 1."""
        g = self.groups
        tp = g.rebase(self._cum_pos)
        fp = g.within(self.neg)
        predicted = tp + fp
        precision = np.zeros(predicted.shape)
        np.divide(tp, predicted, out=precision, where=predicted > 0)
        return np.minimum(safe_div(g.sums(self.pos * precision), self.positives), 1.0)


__all__ = ["Counts", "Groups", "Ranking", "Values", "rank", "safe_div", "score_order"]
