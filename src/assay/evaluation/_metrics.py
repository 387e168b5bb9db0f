"""Binary-classification metrics in scikit-learn's shape, per cohort, with bootstrap intervals.

Every metric here takes plain columns (``y_true`` labels in {0, 1} or booleans, ``y_score``
scores or probabilities, optional non-negative ``sample_weight``) and returns plain numbers.

How they are computed
---------------------
Ranking metrics (ROC AUC, average precision, the precision/recall operating points, the
thresholds) and the equal-mass calibration error are all read off **one sort** of the scores by
(cohort, descending score), made by the ranking kernel of :mod:`assay.evaluation._rank` (shared
with :func:`cohort_auc` and :func:`slice_report`). Rows with the same (cohort, score) form a
*group*: ties are never split, each group is one threshold. Per-group weighted counts of
positives and negatives, cumulative counts within each cohort and per-cohort totals come from
that kernel (``np.add.reduceat`` and ``cumsum`` passes). Nothing loops in Python over thresholds,
cohorts or bootstrap replicates: :func:`bootstrap_ci` loops only over chunks of replicates (to
bound memory), except on a metric this module does not know, which it calls once per replicate.

The same kernels take a *matrix* of weights, one row per bootstrap replicate, which is how
:func:`bootstrap_ci` evaluates hundreds of replicates without a Python loop.

Numerical note: within-cohort cumulative sums are global cumulative sums minus the value at the
end of the previous cohort. With unit or integer weights (and so for every bootstrap replicate of
unweighted data) this is exact; with fractional weights the rounding error of a cohort's value is
about ``1e-16 * (total weight before the cohort) / (the cohort's weight)``.

Undefined values are ``None``: ROC AUC without both classes, average precision and the
precision/recall operating points without a positive, any metric of a cohort whose weights are
all zero.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, overload

import numpy as np
import numpy.typing as npt

from assay._errors import UsageError
from assay.evaluation._inputs import (
    BoolArray,
    FloatArray,
    IntArray,
    cohorts,
    labels,
    scores,
    weights,
)
from assay.evaluation._rank import Counts, Ranking, rank, safe_div

_log = logging.getLogger("assay.evaluation")

NanPolicy: TypeAlias = Literal["raise", "drop"]
Strategy: TypeAlias = Literal["uniform", "quantile"]
#: 2-D float arrays: one row per weight vector (the data's own weights, or one per replicate).
_Matrix: TypeAlias = npt.NDArray[np.float64]

#: Default clipping of probabilities in :func:`log_loss`: float64 machine epsilon, as
#: scikit-learn does.
LOG_LOSS_EPS = float(np.finfo(np.float64).eps)
#: Bootstrap replicates are drawn in chunks whose weight matrix holds at most this many cells,
#: so memory stays bounded (about 8 bytes times this, times a few temporaries).
_BOOT_CELLS = 1 << 21


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    """Validated columns, with non-finite scores already dropped when asked."""

    y: BoolArray
    s: FloatArray
    w: FloatArray | None
    codes: IntArray | None  # None: one cohort (the whole input)
    keys: list[Any]

    @property
    def k(self) -> int:
        return 1 if self.codes is None else len(self.keys)


def _read(
    y_true: object,
    y_score: object,
    sample_weight: object,
    cohort_id: object,
    nan: NanPolicy,
    *,
    score_name: str = "y_score",
    probabilities: bool = False,
) -> _Data:
    y = labels(y_true)
    n = y.size
    s = scores(y_score, n, name=score_name, nan=nan)
    w = weights(sample_weight, n)
    codes: IntArray | None = None
    keys: list[Any] = []
    if cohort_id is not None:
        codes, keys = cohorts(cohort_id, n)
    if nan == "drop":
        keep = np.isfinite(s)
        dropped = int(n - np.count_nonzero(keep))
        if dropped:
            if dropped == n:
                raise UsageError(
                    f"{score_name} has no finite values ({n} rows are NaN, infinite or "
                    "missing); nothing is left to evaluate after nan='drop'"
                )
            _log.warning(
                "dropped %d of %d rows whose %s is NaN, infinite or missing",
                dropped,
                n,
                score_name,
                extra={"assay": {"dropped_rows": dropped, "rows": n}},
            )
            y, s = y[keep], s[keep]
            w = None if w is None else w[keep]
            codes = None if codes is None else codes[keep]
    if probabilities:
        bad = (s < 0) | (s > 1)
        if bad.any():
            where = np.flatnonzero(bad)
            first = ", ".join(str(int(i)) for i in where[:5])
            raise UsageError(
                f"{score_name} must be probabilities in [0, 1]; {where.size} of {s.size} values "
                f"are outside (first at positions [{first}{', ...' if where.size > 5 else ''}]); "
                "pass predicted probabilities (apply a sigmoid or calibrate raw scores first)"
            )
    return _Data(y, s, w, codes, keys)


def _check_fraction(value: float, name: str, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise UsageError(f"{name} must be a number in [0, 1]; got a {type(value).__name__}")
    v = float(value)
    ok = (0.0 < v <= 1.0) if low_open else (0.0 <= v <= 1.0)
    if not ok:
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise UsageError(f"{name} must be in {interval}; got {v}; pass a fraction such as 0.9")
    return v


# --- layout: the ranking kernel's sort, or the input order -------------------------------------


@dataclass(frozen=True)
class _Layout:
    """The rows in evaluation order.

    With a ``ranking`` (:func:`assay.evaluation._rank.rank`) the rows are sorted by cohort, then
    by descending score, in groups of tied (cohort, score); ``order`` maps layout positions to
    input rows. Without one, rows keep their input order.
    """

    ranking: Ranking | None
    y: BoolArray
    w: FloatArray | None
    rc: IntArray | None  # cohort code per row (None: one cohort)
    k: int

    @property
    def order(self) -> IntArray | None:
        return None if self.ranking is None else self.ranking.order

    @property
    def n(self) -> int:
        return int(self.y.size)

    def ranked(self) -> Ranking:
        assert self.ranking is not None, "a ranking metric needs a ranked layout"
        return self.ranking

    def base_weights(self) -> _Matrix:
        """The data's own weights as a one-row matrix."""
        w = np.ones(self.n) if self.w is None else self.w
        return w[None, :]


def _layout(data: _Data, *, ranked: bool) -> _Layout:
    if not ranked:
        return _Layout(None, data.y, data.w, data.codes, data.k)
    r = rank(data.s, data.codes, data.k)
    return _Layout(
        r,
        data.y[r.order],
        None if data.w is None else data.w[r.order],
        None if data.codes is None else data.codes[r.order],
        data.k,
    )


def _seg_sum(x: _Matrix, ids: IntArray | None, k: int) -> _Matrix:
    """Sum the columns of ``x`` (B x m) into ``k`` segments by ``ids`` (m,) or (B, m)."""
    if ids is None or k == 1:
        return np.asarray(x.sum(axis=1, keepdims=True), dtype=np.float64)
    b = x.shape[0]
    flat = ids + (k * np.arange(b, dtype=np.int64))[:, None]
    out = np.bincount(flat.ravel(), weights=x.ravel(), minlength=b * k)
    return np.asarray(out, dtype=np.float64).reshape(b, k)


# --- kernels: (layout, weight matrix B x n) -> values B x k, NaN where undefined ---------------


def _counts(lay: _Layout, w: _Matrix) -> Counts:
    r = lay.ranked()
    pos, neg = r.class_sums(lay.y, w)
    return Counts(r.groups, pos, neg)


def _auc_kernel(lay: _Layout, w: _Matrix) -> _Matrix:
    return np.asarray(lay.ranked().groups.scatter(_counts(lay, w).roc_auc()), dtype=np.float64)


def _ap_kernel(lay: _Layout, w: _Matrix) -> _Matrix:
    ap = _counts(lay, w).average_precision()
    return np.asarray(lay.ranked().groups.scatter(ap), dtype=np.float64)


def _ece_kernel(lay: _Layout, w: _Matrix, n_bins: int, strategy: Strategy) -> _Matrix:
    r = lay.ranked()
    g = r.groups
    sw = r.group_sums(w)
    sy = r.group_sums(w * lay.y)
    p = r.score
    d = sy - p * sw
    gc = g.code
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        bins: IntArray = np.searchsorted(edges[1:-1], p, side="left").astype(np.int64)
        ids = gc * n_bins + bins
    else:
        upto = g.within(sw)
        tot = g.spread(g.sums(sw))
        # Weight strictly below the group's score, as a multiple of total / n_bins: the group
        # lies above exactly floor(that) of the edges q_1..q_{K-1} (see the docstring).
        below = np.zeros_like(upto)
        np.divide(n_bins * (tot - upto), tot, out=below, where=tot > 0)
        q = np.clip(np.floor(below), 0, n_bins - 1).astype(np.int64)
        ids = gc[None, :] * n_bins + q
    per_bin = _seg_sum(d, ids, lay.k * n_bins).reshape(w.shape[0], lay.k, n_bins)
    weight = g.scatter(g.sums(sw), fill=0.0)
    return safe_div(np.abs(per_bin).sum(axis=2), weight)


def _mean_loss(lay: _Layout, w: _Matrix, loss: FloatArray) -> _Matrix:
    if lay.rc is None:
        return safe_div((w @ loss)[:, None], w.sum(axis=1, keepdims=True))
    return safe_div(_seg_sum(w * loss, lay.rc, lay.k), _seg_sum(w, lay.rc, lay.k))


def _brier_losses(y: BoolArray, p: FloatArray) -> FloatArray:
    return np.asarray((p - y) ** 2, dtype=np.float64)


def _log_losses(y: BoolArray, p: FloatArray, eps: float) -> FloatArray:
    # Clipped as scikit-learn does: each of p and 1 - p to [eps, 1 - eps].
    p1 = np.clip(p, eps, 1.0 - eps)
    p0 = np.clip(1.0 - p, eps, 1.0 - eps)
    return np.asarray(-np.where(y, np.log(p1), np.log(p0)), dtype=np.float64)


@dataclass(frozen=True)
class _Spec:
    """How to evaluate one metric: whether it needs the sort, and its kernel."""

    ranked: bool
    probabilities: bool
    kernel: Callable[[_Layout, _Matrix, FloatArray], _Matrix]


def _spec(name: str, options: Mapping[str, Any]) -> _Spec:
    """The kernel of a registered metric with its options bound (options are validated)."""
    extra = set(options)
    if name == "roc_auc" or name == "average_precision":
        fn = _auc_kernel if name == "roc_auc" else _ap_kernel
        _no_options(name, extra)
        return _Spec(True, False, lambda lay, w, s: fn(lay, w))
    if name == "brier_score":
        _no_options(name, extra)
        return _Spec(False, True, lambda lay, w, s: _mean_loss(lay, w, _brier_losses(lay.y, s)))
    if name == "log_loss":
        _no_options(name, extra - {"eps"})
        eps = _check_eps(options.get("eps", LOG_LOSS_EPS))
        return _Spec(False, True, lambda lay, w, s: _mean_loss(lay, w, _log_losses(lay.y, s, eps)))
    if name == "ece":
        _no_options(name, extra - {"n_bins", "strategy"})
        n_bins = _check_bins(options.get("n_bins", 10))
        strategy = _check_strategy(options.get("strategy", "uniform"))
        return _Spec(True, True, lambda lay, w, s: _ece_kernel(lay, w, n_bins, strategy))
    raise UsageError(f"unknown metric {name!r}; use one of {sorted(METRICS)} or pass a callable")


def _no_options(name: str, extra: set[str]) -> None:
    if extra:
        raise UsageError(f"metric {name!r} takes no option(s) {sorted(extra)}; remove them")


def _check_eps(eps: object) -> float:
    if not isinstance(eps, int | float | np.floating) or not 0.0 < float(eps) < 0.5:
        raise UsageError(f"eps must be a number in (0, 0.5); got {eps!r}")
    return float(eps)


def _check_bins(n_bins: object) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise UsageError(f"n_bins must be a positive integer; got {n_bins!r}")
    return int(n_bins)


def _check_strategy(strategy: object) -> Strategy:
    if strategy == "uniform":
        return "uniform"
    if strategy == "quantile":
        return "quantile"
    raise UsageError(f"strategy must be 'uniform' or 'quantile'; got {strategy!r}")


def _sorted_scores(lay: _Layout, data: _Data) -> FloatArray:
    return data.s if lay.order is None else data.s[lay.order]


def _evaluate(name: str, data: _Data, options: Mapping[str, Any]) -> FloatArray:
    """Point values per cohort (length k), NaN where undefined."""
    spec = _spec(name, options)
    lay = _layout(data, ranked=spec.ranked)
    values = spec.kernel(lay, lay.base_weights(), _sorted_scores(lay, data))
    return np.asarray(values[0], dtype=np.float64)


def _as_optional(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def _result(values: FloatArray, data: _Data) -> float | dict[Any, float | None] | None:
    if data.codes is None:
        return _as_optional(float(values[0]))
    return {key: _as_optional(float(v)) for key, v in zip(data.keys, values, strict=True)}


# --- public metrics ----------------------------------------------------------------------------


@overload
def roc_auc(
    y_true: object,
    y_score: object,
    *,
    sample_weight: object = None,
    cohort_id: None = None,
    nan: NanPolicy = "raise",
) -> float | None: ...
@overload
def roc_auc(
    y_true: object,
    y_score: object,
    *,
    sample_weight: object = None,
    cohort_id: object,
    nan: NanPolicy = "raise",
) -> dict[Any, float | None]: ...
def roc_auc(
    y_true: object,
    y_score: object,
    *,
    sample_weight: object = None,
    cohort_id: object = None,
    nan: NanPolicy = "raise",
) -> float | dict[Any, float | None] | None:
    r"""Area under the ROC curve, overall or per cohort.

    Definition: with weights :math:`w` (1 when omitted), the weighted Mann-Whitney statistic

    .. math:: \mathrm{AUC} = \frac{\sum_{i: y_i=1} \sum_{j: y_j=0} w_i w_j
              \left([s_i > s_j] + \tfrac12 [s_i = s_j]\right)}{W_+ W_-}

    where :math:`W_\pm` are the total weights of positives and negatives. It equals the
    trapezoidal area under the weighted ROC curve, i.e. scikit-learn's ``roc_auc_score``
    (unweighted, the rank form :math:`(\sum \mathrm{rank}_+ - n_+(n_++1)/2)/(n_+ n_-)`).

    Parameters
    ----------
    y_true : column of 0/1 or booleans
    y_score : column of finite scores (higher means more likely positive)
    sample_weight : column of non-negative weights, optional
    cohort_id : column of hashable cohort ids, optional
        When given, the AUC of each cohort is returned as a dict (a null id is its own cohort,
        key ``None``).
    nan : {"raise", "drop"}
        What to do with NaN, infinite or missing scores: raise (default), or drop those rows
        (a warning on the ``assay.evaluation`` logger gives the count).

    Returns
    -------
    float or None, or dict of cohort -> float or None
        ``None`` when the data (or the cohort) lacks positives or negatives of positive weight.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> roc_auc([0, 1, 0, 1, 1], [0.2, 0.9, 0.5, 0.5, 0.1], cohort_id=["a", "a", "b", "b", "c"])
    {'a': 1.0, 'b': 0.5, 'c': None}
    """
    data = _read(y_true, y_score, sample_weight, cohort_id, nan)
    return _result(_evaluate("roc_auc", data, {}), data)


@overload
def average_precision(
    y_true: object,
    y_score: object,
    *,
    sample_weight: object = None,
    cohort_id: None = None,
    nan: NanPolicy = "raise",
) -> float | None: ...
@overload
def average_precision(
    y_true: object,
    y_score: object,
    *,
    sample_weight: object = None,
    cohort_id: object,
    nan: NanPolicy = "raise",
) -> dict[Any, float | None]: ...
def average_precision(
    y_true: object,
    y_score: object,
    *,
    sample_weight: object = None,
    cohort_id: object = None,
    nan: NanPolicy = "raise",
) -> float | dict[Any, float | None] | None:
    r"""Average precision (step-wise area under the precision-recall curve), overall or per cohort.

    Definition (scikit-learn's ``average_precision_score``, no interpolation): over the distinct
    scores :math:`t_1 > t_2 > \dots` used as thresholds (predict positive when
    :math:`s \ge t_n`; tied scores form one threshold),

    .. math:: \mathrm{AP} = \sum_n (R_n - R_{n-1}) P_n, \qquad R_0 = 0,

    with weighted precision :math:`P_n = TP_n / (TP_n + FP_n)` and recall
    :math:`R_n = TP_n / W_+`. Rows of weight zero do not count.

    Parameters
    ----------
    y_true, y_score, sample_weight, cohort_id, nan
        As in :func:`roc_auc`.

    Returns
    -------
    float or None, or dict of cohort -> float or None
        ``None`` without positives of positive weight. Without negatives it is 1.

    Examples
    --------
    >>> average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.8333333333333333
    """
    data = _read(y_true, y_score, sample_weight, cohort_id, nan)
    return _result(_evaluate("average_precision", data, {}), data)


@overload
def brier_score(
    y_true: object,
    y_prob: object,
    *,
    sample_weight: object = None,
    cohort_id: None = None,
    nan: NanPolicy = "raise",
) -> float: ...
@overload
def brier_score(
    y_true: object,
    y_prob: object,
    *,
    sample_weight: object = None,
    cohort_id: object,
    nan: NanPolicy = "raise",
) -> dict[Any, float | None]: ...
def brier_score(
    y_true: object,
    y_prob: object,
    *,
    sample_weight: object = None,
    cohort_id: object = None,
    nan: NanPolicy = "raise",
) -> float | dict[Any, float | None]:
    r"""Brier score: the weighted mean squared error of predicted probabilities.

    Definition: :math:`\sum_i w_i (p_i - y_i)^2 / \sum_i w_i`, as scikit-learn's
    ``brier_score_loss``. Lower is better; 0 is perfect.

    Parameters
    ----------
    y_true : column of 0/1 or booleans
    y_prob : column of probabilities in [0, 1] (anything else raises)
    sample_weight, cohort_id, nan
        As in :func:`roc_auc`.

    Returns
    -------
    float, or dict of cohort -> float or None
        Per cohort, ``None`` for a cohort whose weights are all zero. Overall, all-zero weights
        raise :class:`~assay._errors.UsageError`.

    Examples
    --------
    >>> brier_score([0, 1, 1], [0.25, 0.75, 0.5])
    0.125
    """
    data = _read(
        y_true, y_prob, sample_weight, cohort_id, nan, score_name="y_prob", probabilities=True
    )
    return _defined(_result(_evaluate("brier_score", data, {}), data), "brier_score")


@overload
def log_loss(
    y_true: object,
    y_prob: object,
    *,
    sample_weight: object = None,
    cohort_id: None = None,
    eps: float = LOG_LOSS_EPS,
    nan: NanPolicy = "raise",
) -> float: ...
@overload
def log_loss(
    y_true: object,
    y_prob: object,
    *,
    sample_weight: object = None,
    cohort_id: object,
    eps: float = LOG_LOSS_EPS,
    nan: NanPolicy = "raise",
) -> dict[Any, float | None]: ...
def log_loss(
    y_true: object,
    y_prob: object,
    *,
    sample_weight: object = None,
    cohort_id: object = None,
    eps: float = LOG_LOSS_EPS,
    nan: NanPolicy = "raise",
) -> float | dict[Any, float | None]:
    r"""Log loss (binary cross-entropy) of predicted probabilities, in nats.

    Definition: :math:`-\sum_i w_i [y_i \log \tilde p_i + (1 - y_i) \log \tilde q_i] /
    \sum_i w_i` where :math:`\tilde p_i = \mathrm{clip}(p_i, \epsilon, 1-\epsilon)` and
    :math:`\tilde q_i = \mathrm{clip}(1 - p_i, \epsilon, 1-\epsilon)`. Clipping keeps a confident
    mistake finite: with the default :math:`\epsilon` (float64 machine epsilon, about 2.2e-16,
    scikit-learn's choice) one row predicted 0 that is positive costs
    :math:`-\log\epsilon \approx 36.04`. Equal to scikit-learn's ``log_loss``.

    Parameters
    ----------
    y_true : column of 0/1 or booleans
    y_prob : column of probabilities in [0, 1] (anything else raises)
    sample_weight, cohort_id, nan
        As in :func:`roc_auc`.
    eps : float in (0, 0.5)
        The clipping margin.

    Returns
    -------
    float, or dict of cohort -> float or None
        As in :func:`brier_score`.

    Examples
    --------
    >>> round(log_loss([0, 1], [0.5, 0.5]), 6)
    0.693147
    >>> round(log_loss([1], [0.0]), 2)
    36.04
    """
    data = _read(
        y_true, y_prob, sample_weight, cohort_id, nan, score_name="y_prob", probabilities=True
    )
    return _defined(_result(_evaluate("log_loss", data, {"eps": eps}), data), "log_loss")


@overload
def expected_calibration_error(
    y_true: object,
    y_prob: object,
    *,
    n_bins: int = 10,
    strategy: Strategy = "uniform",
    sample_weight: object = None,
    cohort_id: None = None,
    nan: NanPolicy = "raise",
) -> float: ...
@overload
def expected_calibration_error(
    y_true: object,
    y_prob: object,
    *,
    n_bins: int = 10,
    strategy: Strategy = "uniform",
    sample_weight: object = None,
    cohort_id: object,
    nan: NanPolicy = "raise",
) -> dict[Any, float | None]: ...
def expected_calibration_error(
    y_true: object,
    y_prob: object,
    *,
    n_bins: int = 10,
    strategy: Strategy = "uniform",
    sample_weight: object = None,
    cohort_id: object = None,
    nan: NanPolicy = "raise",
) -> float | dict[Any, float | None]:
    r"""Expected calibration error: weighted mean gap between observed rate and mean probability.

    Definition: with bins :math:`b = 0, \dots, K-1` (``K = n_bins``),

    .. math:: \mathrm{ECE} = \sum_b \frac{W_b}{W}
              \left| \bar y_b - \bar p_b \right|
              = \frac{1}{W} \sum_b \Big| \sum_{i \in b} w_i (y_i - p_i) \Big|

    where :math:`W_b` is the weight in bin :math:`b`, :math:`\bar y_b` and :math:`\bar p_b`
    its weighted mean label and probability, :math:`W` the total weight. Empty bins (and bins
    of zero weight) contribute nothing.

    Bins are closed on the right, ``(e_{b}, e_{b+1}]``, the first one also holding its left
    edge: a probability :math:`p` falls in bin ``np.searchsorted(e[1:-1], p, side="left")``,
    i.e. ``np.digitize(p, e[1:-1], right=True)`` (scikit-learn's ``calibration_curve``
    convention).

    - ``strategy="uniform"``: equal-width edges :math:`e_b = b / K`.
    - ``strategy="quantile"``: equal-mass edges, the weighted inverted-CDF quantiles
      :math:`e_b = \min\{p_i : F(p_i) \ge b/K\}` for :math:`b = 1..K-1` with
      :math:`F(t) = \sum_{p_i \le t} w_i / W` (``np.quantile(p, b/K, weights=w,
      method="inverted_cdf")``), :math:`e_0 = 0`, :math:`e_K = 1`. Tied probabilities never
      straddle a bin edge, so with heavy ties some bins are empty. Per cohort, and for every
      bootstrap replicate, the edges are computed from that cohort's (replicate's) weights.
      The comparison :math:`F \ge b/K` is evaluated as :math:`K (W - U) / W \ge b` on cumulative
      weights, exact for integer weights.

    Parameters
    ----------
    y_true : column of 0/1 or booleans
    y_prob : column of probabilities in [0, 1] (anything else raises)
    n_bins : int >= 1
    strategy : {"uniform", "quantile"}
    sample_weight, cohort_id, nan
        As in :func:`roc_auc`.

    Returns
    -------
    float, or dict of cohort -> float or None
        As in :func:`brier_score`. 0 means perfectly calibrated at this binning.

    Examples
    --------
    Two bins: [0, 0.5] holds 0.2 and 0.4 (mean 0.3, one positive of two: gap 0.2); (0.5, 1]
    holds 0.9 (a positive: gap 0.1). ECE = (2/3)(0.2) + (1/3)(0.1):

    >>> round(expected_calibration_error([0, 1, 1], [0.2, 0.4, 0.9], n_bins=2), 12)
    0.166666666667
    """
    options = {"n_bins": n_bins, "strategy": strategy}
    _spec("ece", options)  # validate the options before reading the data
    data = _read(
        y_true, y_prob, sample_weight, cohort_id, nan, score_name="y_prob", probabilities=True
    )
    return _defined(_result(_evaluate("ece", data, options), data), "expected_calibration_error")


def _defined(
    value: float | dict[Any, float | None] | None, name: str
) -> float | dict[Any, float | None]:
    if value is None:
        raise UsageError(
            f"{name} is undefined because sample_weight sums to zero; give some rows a "
            "positive weight"
        )
    return value


# --- operating points and thresholds (one cohort) ----------------------------------------------


@dataclass(frozen=True)
class _Curve:
    """The precision-recall curve at each distinct score with positive weight (descending)."""

    threshold: FloatArray
    tp: FloatArray  # cumulative weight of positives at score >= threshold
    fp: FloatArray
    positives: float

    @property
    def precision(self) -> FloatArray:
        return np.asarray(self.tp / (self.tp + self.fp), dtype=np.float64)

    @property
    def recall(self) -> FloatArray:
        return np.asarray(self.tp / self.positives, dtype=np.float64)


def _curve(y_true: object, y_score: object, sample_weight: object, nan: NanPolicy) -> _Curve | None:
    """The weighted PR curve, or None when there is no positive of positive weight."""
    data = _read(y_true, y_score, sample_weight, None, nan)
    lay = _layout(data, ranked=True)
    r = lay.ranked()
    tp, fp = r.class_sums(lay.y, lay.base_weights()[0])
    # Groups made only of zero-weight rows are not thresholds (scikit-learn drops such rows).
    keep = (tp + fp) > 0
    tp_c, fp_c = np.cumsum(tp[keep]), np.cumsum(fp[keep])
    if tp_c.size == 0 or tp_c[-1] <= 0:
        return None
    return _Curve(r.score[keep], tp_c, fp_c, float(tp_c[-1]))


def precision_at_recall(
    y_true: object,
    y_score: object,
    recall: float,
    *,
    sample_weight: object = None,
    nan: NanPolicy = "raise",
) -> float | None:
    r"""The best precision among thresholds whose recall is at least ``recall``.

    Definition: over thresholds :math:`t` among the distinct scores (predict positive when
    :math:`s \ge t`), :math:`\max \{P(t) : R(t) \ge r\}` with weighted precision and recall as
    in :func:`average_precision`. Only real thresholds count (predicting nothing is not an
    operating point), so ``recall=0`` gives the best precision of any threshold. The lowest
    threshold has recall 1, so the maximum always exists.

    Parameters
    ----------
    y_true, y_score, sample_weight, nan
        As in :func:`roc_auc`.
    recall : float in [0, 1]

    Returns
    -------
    float or None
        ``None`` without positives of positive weight.

    Examples
    --------
    >>> precision_at_recall([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.9)
    0.6666666666666666
    """
    r = _check_fraction(recall, "recall")
    curve = _curve(y_true, y_score, sample_weight, nan)
    if curve is None:
        return None
    return float(curve.precision[curve.recall >= r].max())


def recall_at_precision(
    y_true: object,
    y_score: object,
    precision: float,
    *,
    sample_weight: object = None,
    nan: NanPolicy = "raise",
) -> float | None:
    r"""The best recall among thresholds whose precision is at least ``precision``.

    Definition: :math:`\max \{R(t) : P(t) \ge p\}` over thresholds among the distinct scores
    (predict positive when :math:`s \ge t`); 0.0 when no threshold reaches precision ``p``
    (only predicting nothing does). The threshold achieving it is
    :func:`threshold_for_precision`.

    Parameters
    ----------
    y_true, y_score, sample_weight, nan
        As in :func:`roc_auc`.
    precision : float in [0, 1]

    Returns
    -------
    float or None
        ``None`` without positives of positive weight.

    Examples
    --------
    >>> recall_at_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.6)
    1.0
    >>> recall_at_precision([0, 0, 1, 1], [0.1, 0.9, 0.35, 0.8], 0.9)
    0.0
    """
    p = _check_fraction(precision, "precision")
    curve = _curve(y_true, y_score, sample_weight, nan)
    if curve is None:
        return None
    ok = curve.precision >= p
    return float(curve.recall[ok].max()) if ok.any() else 0.0


def threshold_for_precision(
    y_true: object,
    y_score: object,
    precision: float,
    *,
    sample_weight: object = None,
    nan: NanPolicy = "raise",
) -> float | None:
    r"""The smallest threshold whose precision is at least ``precision``.

    Definition: :math:`\min \{t : P(t) \ge p\}` over thresholds :math:`t` among the distinct
    scores of positive-weight rows, predicting positive when :math:`s \ge t`. Precision is not
    monotone in :math:`t`; the smallest qualifying threshold is the one with the largest recall,
    :func:`recall_at_precision`.

    Parameters
    ----------
    y_true, y_score, sample_weight, nan
        As in :func:`roc_auc`.
    precision : float in [0, 1]

    Returns
    -------
    float or None
        ``None`` when no threshold reaches the precision (or there is no positive).

    Examples
    --------
    >>> threshold_for_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.6)
    0.35
    >>> threshold_for_precision([0, 0, 1, 1], [0.1, 0.9, 0.35, 0.8], 0.9) is None
    True
    """
    p = _check_fraction(precision, "precision")
    curve = _curve(y_true, y_score, sample_weight, nan)
    if curve is None:
        return None
    ok = np.flatnonzero(curve.precision >= p)
    return float(curve.threshold[ok[-1]]) if ok.size else None


def threshold_max_fbeta(
    y_true: object,
    y_score: object,
    *,
    beta: float = 1.0,
    sample_weight: object = None,
    nan: NanPolicy = "raise",
) -> tuple[float, float] | None:
    r"""The threshold that maximises the F-beta score, and that score.

    Definition: over thresholds :math:`t` among the distinct scores of positive-weight rows
    (predict positive when :math:`s \ge t`),

    .. math:: F_\beta(t) = \frac{(1+\beta^2)\, TP(t)}{(1+\beta^2)\, TP(t) + \beta^2 FN(t) + FP(t)}

    with weighted counts. Among equal maxima the largest threshold is returned.

    Parameters
    ----------
    y_true, y_score, sample_weight, nan
        As in :func:`roc_auc`.
    beta : float > 0
        Recall counts ``beta`` times as much as precision (1: the F1 score).

    Returns
    -------
    (threshold, fbeta) or None
        ``None`` without positives of positive weight.

    Examples
    --------
    >>> threshold_max_fbeta([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    (0.35, 0.8)
    """
    if (
        isinstance(beta, bool)
        or not isinstance(beta, int | float | np.floating | np.integer)
        or not 0 < float(beta) < math.inf
    ):
        raise UsageError(f"beta must be a positive finite number; got {beta!r}")
    curve = _curve(y_true, y_score, sample_weight, nan)
    if curve is None:
        return None
    b2 = float(beta) ** 2
    f = (1 + b2) * curve.tp / (curve.tp + curve.fp + b2 * curve.positives)
    best = int(np.argmax(f))
    return float(curve.threshold[best]), float(f[best])


# --- bootstrap ---------------------------------------------------------------------------------


def _known_name(metric: str | Callable[..., Any]) -> str | None:
    if isinstance(metric, str):
        if metric not in METRICS:
            raise UsageError(
                f"unknown metric {metric!r}; use one of {sorted(METRICS)} or pass a callable"
            )
        return metric
    for name, fn in METRICS.items():
        if fn is metric:
            return name
    return None


def _strata_draw(
    data: _Data, rng: np.random.Generator, order: IntArray | None
) -> Callable[[int], npt.NDArray[np.int64]]:
    """A function drawing ``b`` replicates' row counts (b x n), stratified by (cohort, class).

    Each stratum of ``m`` rows gets ``m`` draws with replacement from its own rows, so every
    replicate has the data's class counts in every cohort (an exact multinomial per stratum).
    Draws are defined on the input rows, then placed at layout positions (``order`` maps layout
    positions to input rows), so the same seed gives the same replicates whatever the layout.
    """
    n = data.y.size
    stratum = data.y.astype(np.int64)
    if data.codes is not None:
        stratum += 2 * data.codes
    perm = np.argsort(stratum, kind="stable")
    size = np.bincount(stratum, minlength=2 * data.k)
    start = np.cumsum(size) - size
    slot_stratum = stratum[perm]
    slot_start = start[slot_stratum]
    slot_size = size[slot_stratum].astype(np.float64)
    last = size[slot_stratum] - 1
    if order is not None:
        where = np.empty(n, dtype=np.int64)
        where[order] = np.arange(n, dtype=np.int64)
        perm = where[perm]

    def draw(b: int) -> npt.NDArray[np.int64]:
        u = rng.random((b, n))
        u *= slot_size
        offset = u.astype(np.int64)  # truncation is floor here: u >= 0
        np.minimum(offset, last, out=offset)
        offset += slot_start
        picked = perm[offset]
        picked += (n * np.arange(b, dtype=np.int64))[:, None]
        counts = np.bincount(picked.ravel(), minlength=b * n)
        return counts.reshape(b, n)

    return draw


def _replicates(
    metric: str | Callable[..., Any],
    data: _Data,
    n_boot: int,
    seed: int | np.random.Generator | None,
    options: Mapping[str, Any],
) -> tuple[FloatArray, _Matrix]:
    """Point values (k,) and bootstrap values (n_boot x k), NaN where undefined."""
    name = _known_name(metric)
    rng = np.random.default_rng(seed)
    if name is None:
        assert callable(metric)
        return _replicates_callable(metric, data, n_boot, rng, options)
    spec = _spec(name, options)
    lay = _layout(data, ranked=spec.ranked)
    s = _sorted_scores(lay, data)
    point = spec.kernel(lay, lay.base_weights(), s)[0]
    draw = _strata_draw(data, rng, lay.order)
    chunk = max(1, min(n_boot, _BOOT_CELLS // max(lay.n, 1)))
    out = np.empty((n_boot, lay.k))
    for lo in range(0, n_boot, chunk):
        b = min(chunk, n_boot - lo)
        w = draw(b).astype(np.float64)
        if lay.w is not None:
            w *= lay.w
        out[lo : lo + b] = spec.kernel(lay, w, s)
    return point, out


def _replicates_callable(
    metric: Callable[..., Any],
    data: _Data,
    n_boot: int,
    rng: np.random.Generator,
    options: Mapping[str, Any],
) -> tuple[FloatArray, _Matrix]:
    """Bootstrap an arbitrary scalar metric: one call per replicate with counts as weights."""
    if data.codes is not None:
        raise UsageError(
            "cohort_id works with the registered metrics only "
            f"({sorted(METRICS)}); call bootstrap_ci once per cohort for other metrics"
        )

    def call(w: FloatArray | None) -> float:
        v = metric(data.y, data.s, sample_weight=w, **options)
        return math.nan if v is None else float(v)

    draw = _strata_draw(data, rng, None)
    point = np.array([call(data.w)])
    out = np.empty((n_boot, 1))
    for i in range(n_boot):
        w = draw(1)[0].astype(np.float64)
        if data.w is not None:
            w *= data.w
        out[i, 0] = call(w)
    return point, out


def _check_boot(n_boot: object, alpha: object) -> tuple[int, float]:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise UsageError(f"n_boot must be a positive integer; got {n_boot!r}")
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, int | float | np.floating)
        or not 0 < float(alpha) < 1
    ):
        raise UsageError(f"alpha must be in (0, 1), e.g. 0.05 for a 95% interval; got {alpha!r}")
    return int(n_boot), float(alpha)


@overload
def bootstrap_ci(
    metric: str | Callable[..., Any],
    y_true: object,
    y_score: object,
    *,
    sample_weight: object = None,
    cohort_id: None = None,
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int | np.random.Generator | None = 0,
    nan: NanPolicy = "raise",
    **metric_kwargs: Any,
) -> tuple[float, float] | None: ...
@overload
def bootstrap_ci(
    metric: str | Callable[..., Any],
    y_true: object,
    y_score: object,
    *,
    sample_weight: object = None,
    cohort_id: object,
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int | np.random.Generator | None = 0,
    nan: NanPolicy = "raise",
    **metric_kwargs: Any,
) -> dict[Any, tuple[float, float] | None]: ...
def bootstrap_ci(
    metric: str | Callable[..., Any],
    y_true: object,
    y_score: object,
    *,
    sample_weight: object = None,
    cohort_id: object = None,
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int | np.random.Generator | None = 0,
    nan: NanPolicy = "raise",
    **metric_kwargs: Any,
) -> tuple[float, float] | dict[Any, tuple[float, float] | None] | None:
    r"""Percentile bootstrap confidence interval of a metric, stratified by class.

    Method: each replicate resamples rows with replacement *within each stratum* (the positives
    and the negatives, and with ``cohort_id`` within each cohort's positives and negatives), as
    many rows as the stratum has, so class counts never change. A replicate is represented as a
    vector of row counts :math:`c` (a multinomial draw per stratum) and evaluated as the metric
    with weights :math:`c_i w_i`. For the registered metrics (:data:`METRICS`) replicates are
    evaluated in chunks as a matrix of weights against the data's one sort, with no Python
    loop per replicate; memory stays bounded (about ``2**21`` cells per chunk). Any other
    callable ``metric(y_true, y_score, sample_weight=..., **metric_kwargs)`` is called once per
    replicate. The interval is ``(q(alpha/2), q(1 - alpha/2))`` of the replicate values
    (``np.quantile``, linear interpolation), replicates where the metric is undefined being
    left out. Results depend only on the data, ``n_boot`` and ``seed``.

    Parameters
    ----------
    metric : str or callable
        A name in :data:`METRICS` (``"roc_auc"``, ``"average_precision"``, ``"brier_score"``,
        ``"log_loss"``, ``"ece"``), one of those functions, or any scalar metric taking
        ``sample_weight``.
    y_true, y_score, sample_weight, cohort_id, nan
        As in :func:`roc_auc`; ``cohort_id`` needs a registered metric.
    n_boot : int >= 1
        Number of replicates.
    alpha : float in (0, 1)
        One minus the coverage (0.05: a 95% interval).
    seed : int, numpy Generator or None
        Seeds ``np.random.default_rng``; the same seed gives the same interval.
    **metric_kwargs
        Options of the metric (``n_bins``, ``strategy`` for ``"ece"``; ``eps`` for
        ``"log_loss"``).

    Returns
    -------
    (low, high) or None, or dict of cohort -> (low, high) or None
        ``None`` where the metric itself is undefined.

    Examples
    --------
    >>> y = [0, 1] * 50
    >>> s = [i / 100 for i in range(100)]
    >>> low, high = bootstrap_ci("roc_auc", y, s, n_boot=100, seed=1)
    >>> bool(low <= roc_auc(y, s) <= high)
    True
    """
    n_boot, alpha = _check_boot(n_boot, alpha)
    name = _known_name(metric)
    probabilities = name is not None and _spec(name, metric_kwargs).probabilities
    data = _read(y_true, y_score, sample_weight, cohort_id, nan, probabilities=probabilities)
    point, reps = _replicates(metric, data, n_boot, seed, metric_kwargs)
    intervals: list[tuple[float, float] | None] = []
    for j in range(point.size):
        col = reps[:, j]
        col = col[~np.isnan(col)]
        if math.isnan(point[j]) or col.size == 0:
            intervals.append(None)
            continue
        low, high = np.quantile(col, [alpha / 2, 1 - alpha / 2])
        intervals.append((float(low), float(high)))
    if data.codes is None:
        return intervals[0]
    return dict(zip(data.keys, intervals, strict=True))


def bootstrap_distribution(
    metric: str | Callable[..., Any],
    y_true: object,
    y_score: object,
    *,
    sample_weight: object = None,
    cohort_id: object = None,
    n_boot: int = 200,
    seed: int | np.random.Generator | None = 0,
    nan: NanPolicy = "raise",
    **metric_kwargs: Any,
) -> tuple[list[Any], FloatArray, _Matrix]:
    """The point values and bootstrap replicate values behind :func:`bootstrap_ci`.

    For tests of significance (a slice against overall, say) that need the replicates
    themselves. Same method, arguments and seeding as :func:`bootstrap_ci`.

    Returns
    -------
    keys : list
        The cohorts (``[None]`` without ``cohort_id``).
    point : ndarray of shape (k,)
        The metric per cohort, NaN where undefined.
    replicates : ndarray of shape (n_boot, k)
        One row per replicate, NaN where undefined.

    Examples
    --------
    >>> keys, point, reps = bootstrap_distribution("brier_score", [0, 1, 1], [0.2, 0.7, 0.9],
    ...                                            n_boot=5)
    >>> keys, reps.shape
    ([None], (5, 1))
    """
    n_boot, _ = _check_boot(n_boot, 0.05)
    name = _known_name(metric)
    probabilities = name is not None and _spec(name, metric_kwargs).probabilities
    data = _read(y_true, y_score, sample_weight, cohort_id, nan, probabilities=probabilities)
    point, reps = _replicates(metric, data, n_boot, seed, metric_kwargs)
    keys = [None] if data.codes is None else list(data.keys)
    return keys, point, reps


#: The scalar metrics by name, each callable as ``f(y_true, y_score, *, sample_weight=None,
#: cohort_id=None)`` with its default options; :func:`bootstrap_ci` evaluates these vectorised.
METRICS: dict[str, Callable[..., Any]] = {
    "roc_auc": roc_auc,
    "average_precision": average_precision,
    "brier_score": brier_score,
    "log_loss": log_loss,
    "ece": expected_calibration_error,
}

__all__ = [
    "LOG_LOSS_EPS",
    "METRICS",
    "average_precision",
    "bootstrap_ci",
    "bootstrap_distribution",
    "brier_score",
    "expected_calibration_error",
    "log_loss",
    "precision_at_recall",
    "recall_at_precision",
    "roc_auc",
    "threshold_for_precision",
    "threshold_max_fbeta",
]
