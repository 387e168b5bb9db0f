"""Group fairness metrics: per-group rates and their gaps, with Fairlearn's semantics.

:func:`group_metrics` gives, per group, the selection rate, the true and false positive rates
and the precision of binary predictions; :func:`fairness_gaps` reduces them to one
``difference`` and one ``ratio`` per metric, between groups or to the overall value. Both agree
with ``fairlearn.metrics.MetricFrame`` (metrics ``selection_rate``, ``true_positive_rate``,
``false_positive_rate`` and scikit-learn's ``precision_score(zero_division=0)``) and its
``difference()`` / ``ratio()`` on the same inputs, without a Python loop per group.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from assay._errors import UsageError
from assay.evaluation import _inputs

FAIRNESS_METRICS: tuple[str, ...] = (
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "precision",
)
"""The metrics of :func:`group_metrics`, in column order."""

GapMethod = Literal["between_groups", "to_overall"]

_F64 = npt.NDArray[np.float64]


def _rates(tp: _F64, fp: _F64, fn: _F64, tn: _F64) -> dict[str, _F64]:
    """The four metrics from weighted confusion counts, with Fairlearn's edge cases."""
    total = tp + fp + fn + tn
    pos = tp + fn
    neg = fp + tn
    pred = tp + fp
    with np.errstate(divide="ignore", invalid="ignore"):
        # selection_rate divides by the total weight as Fairlearn does: 0/0 is NaN.
        selection = (tp + fp) / total
        # TPR and FPR come from confusion_matrix(normalize="true"), which turns 0/0 into 0;
        # precision_score(zero_division=0) does the same.
        tpr = np.where(pos > 0, tp / np.where(pos > 0, pos, 1.0), 0.0)
        fpr = np.where(neg > 0, fp / np.where(neg > 0, neg, 1.0), 0.0)
        precision = np.where(pred > 0, tp / np.where(pred > 0, pred, 1.0), 0.0)
    return {
        "selection_rate": selection,
        "true_positive_rate": tpr,
        "false_positive_rate": fpr,
        "precision": precision,
    }


def _confusion(
    y_true: npt.NDArray[np.bool_],
    y_pred: npt.NDArray[np.bool_],
    codes: npt.NDArray[np.int64],
    k: int,
    weight: _F64 | None,
) -> tuple[_F64, _F64, _F64, _F64]:
    """Weighted TP, FP, FN, TN per group, by one bincount over 4 cells per group."""
    cell = codes * 4 + y_true.astype(np.int64) * 2 + y_pred.astype(np.int64)
    counts = np.bincount(cell, weights=weight, minlength=4 * k).astype(np.float64)
    counts = counts.reshape(k, 4)
    # cell = 2*y_true + y_pred: 0 TN, 1 FP, 2 FN, 3 TP.
    return counts[:, 3], counts[:, 1], counts[:, 2], counts[:, 0]


def _prepare(
    y_true: Any, y_pred: Any, groups: Any, sample_weight: Any
) -> tuple[
    npt.NDArray[np.bool_],
    npt.NDArray[np.bool_],
    npt.NDArray[np.int64],
    list[Any],
    _F64 | None,
]:
    yt = _inputs.labels(y_true, name="y_true")
    yp = _inputs.labels(y_pred, name="y_pred")
    n = len(yt)
    _inputs.check_same_length(y_true=yt, y_pred=yp)
    codes, values = _inputs.cohorts(groups, n)
    w = _inputs.weights(sample_weight, n)
    return yt, yp, codes, values, w


def _group_column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed types (say 1 and "a"): show them as text rather than fail.
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def group_metrics(y_true: Any, y_pred: Any, groups: Any, *, sample_weight: Any = None) -> pa.Table:
    """Selection rate, TPR, FPR and precision of binary predictions per group.

    With weights :math:`w_i` (1 without ``sample_weight``), a group's weighted confusion counts
    are :math:`TP = \\sum w_i [y_i = 1, \\hat y_i = 1]` and likewise FP, FN, TN. Then

    - ``selection_rate`` :math:`= (TP + FP) / (TP + FP + FN + TN)`; NaN when the group's total
      weight is 0 (as Fairlearn's ``selection_rate``, which divides 0 by 0);
    - ``true_positive_rate`` :math:`= TP / (TP + FN)`; 0 when the group has no positive weight
      (as Fairlearn, which takes it from ``confusion_matrix(normalize="true")``);
    - ``false_positive_rate`` :math:`= FP / (FP + TN)`; 0 when the group has no negative weight;
    - ``precision`` :math:`= TP / (TP + FP)`; 0 when nothing is predicted positive (as
      scikit-learn's ``precision_score(zero_division=0)``).

    Parameters
    ----------
    y_true : array-like of {0, 1} or bool
        True labels (list, numpy, pandas, polars or Arrow).
    y_pred : array-like of {0, 1} or bool
        Predicted labels, 1 meaning selected.
    groups : array-like
        The group of each row, any hashable values; a null is a group of its own (value None).
    sample_weight : array-like of float, optional
        Non-negative weight of each row.

    Returns
    -------
    pyarrow.Table
        One row per group, in the order of the sorted group values (first appearance if they do
        not sort): ``group``, ``support`` (rows, unweighted), ``selection_rate``,
        ``true_positive_rate``, ``false_positive_rate``, ``precision``.

    Raises
    ------
    assay.UsageError
        Labels outside {0, 1}, lengths that differ, empty input or negative weights.

    Examples
    --------
    >>> t = group_metrics([1, 0, 1, 0], [1, 1, 0, 0], ["a", "a", "b", "b"])
    >>> t.column("group").to_pylist(), t.column("selection_rate").to_pylist()
    (['a', 'b'], [1.0, 0.0])
    >>> t.column("true_positive_rate").to_pylist(), t.column("precision").to_pylist()
    ([1.0, 0.0], [0.5, 0.0])
    """
    yt, yp, codes, values, w = _prepare(y_true, y_pred, groups, sample_weight)
    k = len(values)
    tp, fp, fn, tn = _confusion(yt, yp, codes, k, w)
    support = np.bincount(codes, minlength=k).astype(np.int64)
    rates = _rates(tp, fp, fn, tn)
    return pa.table(
        {
            "group": _group_column(values),
            "support": pa.array(support, type=pa.int64()),
            **{name: pa.array(rates[name], type=pa.float64()) for name in FAIRNESS_METRICS},
        }
    )


def _nan_min(x: _F64) -> float:
    finite = x[~np.isnan(x)]
    return float(finite.min()) if finite.size else float("nan")


def _nan_max(x: _F64) -> float:
    finite = x[~np.isnan(x)]
    return float(finite.max()) if finite.size else float("nan")


def _below_one(ratio: _F64) -> _F64:
    with np.errstate(divide="ignore"):
        return np.where(ratio > 1, 1.0 / ratio, ratio)


def fairness_gaps(
    y_true: Any,
    y_pred: Any,
    groups: Any,
    *,
    sample_weight: Any = None,
    method: GapMethod = "between_groups",
) -> pa.Table:
    """The difference and the ratio of each group metric, as Fairlearn's MetricFrame.

    For each metric of :func:`group_metrics` (values :math:`m_g` per group, :math:`m` on all
    rows), ignoring groups where it is NaN (as pandas' ``min``/``max`` do in Fairlearn):

    - ``method="between_groups"``: ``difference`` :math:`= \\max_g m_g - \\min_g m_g` and
      ``ratio`` :math:`= \\min_g m_g / \\max_g m_g` (NaN when both are 0);
    - ``method="to_overall"``: ``difference`` :math:`= \\max_g |m_g - m|` and ``ratio``
      :math:`= \\min_g r_g` with :math:`r_g = m_g / m`, replaced by :math:`1 / r_g` when above
      1 (so every ratio is at most 1; :math:`0/0` is NaN and ignored, :math:`x/0` counts as 0).

    A difference of 0 and a ratio of 1 mean parity. NaN when no group has a value.

    Parameters
    ----------
    y_true, y_pred, groups, sample_weight
        As in :func:`group_metrics`.
    method : {"between_groups", "to_overall"}
        Compare groups with each other, or each group with the overall value.

    Returns
    -------
    pyarrow.Table
        One row per metric: ``metric``, ``overall``, ``group_min``, ``group_max``,
        ``difference``, ``ratio``.

    Examples
    --------
    >>> t = fairness_gaps([1, 0, 1, 0], [1, 1, 0, 0], ["a", "a", "b", "b"])
    >>> t.column("metric")[0].as_py(), t.column("difference")[0].as_py()
    ('selection_rate', 1.0)
    >>> t.column("ratio")[0].as_py()
    0.0
    >>> fairness_gaps([1, 0, 1, 0], [1, 1, 0, 0], ["a", "a", "b", "b"],
    ...               method="to_overall").column("difference")[0].as_py()
    0.5
    """
    if method not in ("between_groups", "to_overall"):
        raise UsageError(
            f"method must be 'between_groups' or 'to_overall' (got {str(method)[:40]!r})"
        )
    yt, yp, codes, values, w = _prepare(y_true, y_pred, groups, sample_weight)
    k = len(values)
    by_group = _rates(*_confusion(yt, yp, codes, k, w))
    overall = _rates(*_confusion(yt, yp, np.zeros(len(yt), dtype=np.int64), 1, w))
    rows: dict[str, list[Any]] = {
        "metric": [],
        "overall": [],
        "group_min": [],
        "group_max": [],
        "difference": [],
        "ratio": [],
    }
    for name in FAIRNESS_METRICS:
        m = by_group[name]
        total = float(overall[name][0])
        low, high = _nan_min(m), _nan_max(m)
        if method == "between_groups":
            difference = high - low
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = float(np.float64(low) / np.float64(high))
        else:
            difference = _nan_max(np.abs(m - total))
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = _nan_min(_below_one(m / total))
        for key, value in (
            ("metric", name),
            ("overall", total),
            ("group_min", low),
            ("group_max", high),
            ("difference", difference),
            ("ratio", ratio),
        ):
            rows[key].append(value)
    return pa.table(
        {
            "metric": pa.array(rows["metric"], type=pa.string()),
            **{
                key: pa.array(rows[key], type=pa.float64())
                for key in ("overall", "group_min", "group_max", "difference", "ratio")
            },
        }
    )


__all__ = ["FAIRNESS_METRICS", "GapMethod", "fairness_gaps", "group_metrics"]
