"""Slice reports: every metric on every slice of the data, with bootstrap intervals and flags.

:func:`slice_report` evaluates a model on each value of each slice feature (and each pair of
features), compares every slice with the overall value and flags the slices that are
significantly worse, controlling the false discovery rate over all the slices it tests.

How it stays fast: the scores are sorted once, and each partition of the rows (one feature, or
one pair of features) is ranked by (slice, score) from that sort by the ranking kernel of
:mod:`assay.evaluation._rank` (shared with :func:`cohort_auc` and the metric functions); a
bootstrap replicate is a vector of row counts, and the built-in metrics (``roc_auc``,
``average_precision``, ``brier_score``, ``log_loss``) of every slice of a partition are computed
from it with a few ``reduceat`` and ``cumsum`` passes, not a Python loop per slice. Other metrics
(``ece``, or a callable) are computed per slice and replicate. The flags' false discovery rate
is :func:`assay.evaluation.benjamini_hochberg` over the report.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy import stats

from assay._errors import UsageError
from assay.evaluation import _inputs
from assay.evaluation._intervals import benjamini_hochberg
from assay.evaluation._metrics import LOG_LOSS_EPS, METRICS, _brier_losses, _log_losses
from assay.evaluation._rank import Counts, Ranking, rank, safe_div, score_order
from assay.evaluation._report import SliceReport, SliceSubset

Metric = Callable[..., float]
MetricSpec = str | Metric
_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]
_B = npt.NDArray[np.bool_]

# Metrics where a lower value is better; every other one is taken as higher-is-better.
_LOWER_IS_BETTER = frozenset({"brier_score", "log_loss", "ece", "expected_calibration_error"})
# Fewer valid replicates than this and a slice gets no interval and no p-value.
_MIN_REPLICATES = 10

PAIR_SEPARATOR = " & "
"""Joins the two feature names (and the two values) of a pair slice: ``locale & platform``."""


@dataclass(frozen=True)
class _Sorted:
    """Rows of one partition ranked by (slice, descending score), with the per-row losses.

    The ranking (:func:`assay.evaluation._rank.rank`) holds the order and the tie groups;
    slices are contiguous runs of the sorted rows, so per-slice sums are ``np.add.reduceat``
    over ``ranking.row_first``.
    """

    ranking: Ranking
    y: _B  # label of each sorted row
    brier: _F64  # per-row losses, sorted
    log_loss: _F64

    @property
    def order(self) -> _I64:
        return self.ranking.order

    @staticmethod
    def build(codes: _I64, k: int, y: _B, s: _F64, by_score: _I64 | None = None) -> _Sorted:
        r = rank(s, codes, k, by_score=by_score)
        ss = s[r.order]
        ys = y[r.order]
        # The losses of ``brier_score`` and ``log_loss`` (clipped at LOG_LOSS_EPS as they are).
        return _Sorted(r, ys, _brier_losses(ys, ss), _log_losses(ys, ss, LOG_LOSS_EPS))


def _kernels(view: _Sorted, w: _F64, names: Sequence[str]) -> dict[str, _F64]:
    """The vectorised metrics ``names`` on every slice, from sorted row weights ``w``.

    Losses are per-slice sums over contiguous rows (``reduceat``); ROC AUC and average
    precision come from the ranking kernel's class sums per tie group, shared by both.
    """
    out: dict[str, _F64] = {}
    r = view.ranking
    g = r.groups
    total = np.add.reduceat(w, r.row_first)
    for name in ("brier_score", "log_loss"):
        if name in names:
            loss = view.brier if name == "brier_score" else view.log_loss
            out[name] = g.scatter(safe_div(np.add.reduceat(w * loss, r.row_first), total))
    if "roc_auc" not in names and "average_precision" not in names:
        return out
    counts = Counts(g, *r.class_sums(view.y, w))
    if "roc_auc" in names:
        out["roc_auc"] = g.scatter(counts.roc_auc())
    if "average_precision" in names:
        out["average_precision"] = g.scatter(counts.average_precision())
    return out


_FAST = frozenset({"roc_auc", "average_precision", "brier_score", "log_loss"})


@dataclass(frozen=True)
class _MetricDef:
    name: str
    fast: bool
    fn: Metric | None
    higher_is_better: bool


def _resolve(metrics: Sequence[MetricSpec] | Mapping[str, Metric]) -> list[_MetricDef]:
    items: list[tuple[str, MetricSpec]]
    if isinstance(metrics, Mapping):
        items = list(metrics.items())
    elif isinstance(metrics, str):
        items = [(metrics, metrics)]
    else:
        items = [
            (m if isinstance(m, str) else getattr(m, "__name__", "metric"), m) for m in metrics
        ]
    if not items:
        raise UsageError("metrics is empty; pass at least one metric name such as 'roc_auc'")
    registry: Mapping[str, Metric] = METRICS
    out: list[_MetricDef] = []
    for name, spec in items:
        if isinstance(spec, str):
            if spec in _FAST:
                out.append(_MetricDef(spec, True, None, spec not in _LOWER_IS_BETTER))
                continue
            if spec not in registry:
                known = sorted({*_FAST, *registry})
                raise UsageError(
                    f"unknown metric {spec[:40]!r}; use one of {', '.join(known)} "
                    "or pass a callable f(y_true, y_score, sample_weight=None) -> float"
                )
            out.append(_MetricDef(spec, False, registry[spec], spec not in _LOWER_IS_BETTER))
        elif callable(spec):
            lower = name in _LOWER_IS_BETTER or any(w in name for w in ("loss", "error"))
            better = bool(getattr(spec, "greater_is_better", not lower))
            out.append(_MetricDef(name, False, spec, better))
        else:
            raise UsageError(
                f"metric {name!r} must be a name or a callable (got {type(spec).__name__})"
            )
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise UsageError(f"metric names must be distinct (got {names}); pass a mapping of names")
    return out


@dataclass(frozen=True)
class _Partition:
    feature: str
    values: list[str | None]
    codes: _I64
    view: _Sorted


def _label(value: Any) -> str | None:
    return None if value is None else str(value)


def _partitions(slices: Mapping[str, Any], n: int, y: _B, s: _F64, pairs: bool) -> list[_Partition]:
    coded: list[tuple[str, _I64, list[Any]]] = []
    for name, column in slices.items():
        if not isinstance(name, str):
            raise UsageError(f"slice feature names must be strings (got {type(name).__name__})")
        codes, values = _inputs.cohorts(column, n, name=name)
        coded.append((name, codes.astype(np.int64), values))
    by_score = score_order(s)
    parts = [
        _Partition(
            name,
            [_label(v) for v in values],
            codes,
            _Sorted.build(codes, len(values), y, s, by_score),
        )
        for name, codes, values in coded
    ]
    if pairs:
        for (na, ca, va), (nb, cb, vb) in itertools.combinations(coded, 2):
            joint = ca * len(vb) + cb
            uniq, inverse = np.unique(joint, return_inverse=True)
            codes = inverse.astype(np.int64).reshape(-1)
            labels: list[str | None] = [
                f"{'null' if va[u // len(vb)] is None else va[u // len(vb)]}{PAIR_SEPARATOR}"
                f"{'null' if vb[u % len(vb)] is None else vb[u % len(vb)]}"
                for u in uniq.tolist()
            ]
            view = _Sorted.build(codes, len(labels), y, s, by_score)
            parts.append(_Partition(f"{na}{PAIR_SEPARATOR}{nb}", labels, codes, view))
    return parts


def _slow(metric: Metric, part: _Partition, y: _B, s: _F64, w: _F64) -> _F64:
    """A metric without a vectorised form, per slice (rows of zero weight left out)."""
    k = len(part.values)
    out = np.full(k, np.nan)
    order = part.view.order
    bounds = np.append(0, np.cumsum(np.bincount(part.codes, minlength=k)))
    ws = w[order]
    for c in range(k):
        rows = order[bounds[c] : bounds[c + 1]]
        keep = ws[bounds[c] : bounds[c + 1]] > 0
        if not keep.any():
            continue
        try:
            result = metric(y[rows][keep], s[rows][keep], sample_weight=w[rows][keep])
        except (ValueError, ZeroDivisionError, UsageError):
            # One class only, or too few rows: the metric is undefined on this slice.
            result = None
        value = math.nan if result is None else float(result)
        out[c] = value if math.isfinite(value) else math.nan
    return out


def _evaluate(
    defs: Sequence[_MetricDef], part: _Partition, y: _B, s: _F64, w: _F64
) -> dict[str, _F64]:
    """Every metric on every slice of the partition, with row weights ``w`` (original order)."""
    fast = [m.name for m in defs if m.fast]
    out = _kernels(part.view, w[part.view.order], fast) if fast else {}
    for m in defs:
        if m.fn is not None:
            out[m.name] = _slow(m.fn, part, y, s, w)
    return out


def _draw_counts(rng: np.random.Generator, pos_rows: _I64, neg_rows: _I64, n: int) -> _F64:
    """Row counts of one bootstrap replicate, resampling within each class."""
    picks = np.concatenate(
        [
            pos_rows[rng.integers(0, len(pos_rows), len(pos_rows))],
            neg_rows[rng.integers(0, len(neg_rows), len(neg_rows))],
        ]
    )
    return np.bincount(picks, minlength=n).astype(np.float64)


def _bh_reject(p: _F64, alpha: float) -> _B:
    """Benjamini-Hochberg at level ``alpha`` over the finite p-values."""
    return np.asarray(benjamini_hochberg(np.where(np.isfinite(p), p, np.nan)) <= alpha)


def slice_report(
    y_true: Any,
    y_score: Any,
    slices: Mapping[str, Any],
    *,
    metrics: Sequence[MetricSpec] | Mapping[str, Metric] = (
        "roc_auc",
        "average_precision",
        "brier_score",
    ),
    min_support: int = 30,
    n_boot: int = 200,
    alpha: float = 0.05,
    pairs: bool = True,
    seed: int = 0,
    sample_weight: Any = None,
) -> SliceReport:
    """Every metric on every slice, with bootstrap intervals, gaps and significance flags.

    A *slice* is the set of rows with one value of one feature (``locale = de-DE``) or, with
    ``pairs=True``, one combination of values of two features (``locale & platform =
    de-DE & ios``); only combinations that occur are reported. A null value is a slice of its
    own.

    For each slice and metric the report gives:

    - ``support``: the number of rows in the slice (unweighted);
    - ``estimate``: the metric on the slice's rows (with ``sample_weight``);
    - ``ci_low``, ``ci_high``: the percentile bootstrap interval at level ``1 - alpha``. Each of
      ``n_boot`` replicates resamples all rows with replacement within each class (so every
      replicate keeps the overall numbers of positives and negatives; a slice's class counts
      vary as in a new sample); replicates where the metric is undefined on the slice are
      left out;
    - ``overall``: the metric on all rows; ``gap`` = ``estimate - overall``;
    - ``p_value``: one-sided p-value of "the slice is no worse than overall", from the
      bootstrap distribution of the gap (slice and overall computed on the same replicate, so
      their correlation is kept): :math:`z = gap / sd^*(gap)` and :math:`p = \\Phi(z)` when
      higher is better, :math:`1 - \\Phi(z)` when lower is better (``brier_score``,
      ``log_loss``, ``ece``, and callables whose name holds "loss" or "error" or whose
      ``greater_is_better`` attribute is False). Null when ``support < min_support``, when
      the metric is undefined on the slice, or with fewer than 10 valid replicates;
    - ``flagged``: Benjamini-Hochberg over all the p-values of the report (every feature,
      value and metric) rejects at false discovery rate ``alpha``, and the gap is worse than
      overall. A slice with fewer than ``min_support`` rows is never flagged.

    Parameters
    ----------
    y_true : array-like of {0, 1} or bool
        True labels (list, numpy, pandas, polars or Arrow).
    y_score : array-like of float
        Scores; probabilities in [0, 1] for ``brier_score``, ``log_loss`` and ``ece``.
    slices : mapping of str to array-like
        Feature name to its value per row (any hashable values).
    metrics : sequence of names or callables, or mapping of name to callable
        Built-in names: ``roc_auc``, ``average_precision``, ``brier_score``, ``log_loss``
        (vectorised here) and the other names of ``assay.evaluation`` 's metric registry
        (``ece``). A callable is called as ``f(y_true, y_score, sample_weight=w)`` on each
        slice's rows; an error or a non-finite result counts as undefined.
    min_support : int
        Slices with fewer rows get no p-value and are never flagged.
    n_boot : int
        Bootstrap replicates (0 for point estimates only: no intervals, no flags).
    alpha : float
        1 - confidence level of the intervals, and the false discovery rate of the flags.
    pairs : bool
        Also report every pair of features.
    seed : int
        Seed of the bootstrap: the same inputs and seed give the same report.
    sample_weight : array-like of float, optional
        Non-negative weight of each row.

    Returns
    -------
    SliceReport
        ``.to_arrow()`` has the columns ``feature``, ``value``, ``metric``, ``support``,
        ``estimate``, ``ci_low``, ``ci_high``, ``overall``, ``gap``, ``p_value``, ``flagged``.

    Raises
    ------
    assay.UsageError
        Bad labels, non-finite scores, lengths that differ, empty input, no slice features,
        an unknown metric or a bad option.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.random(400) < 0.3
    >>> score = np.clip(y * 0.3 + rng.random(400) * 0.7, 0, 1)
    >>> region = np.where(np.arange(400) % 2 == 0, "north", "south")
    >>> report = slice_report(y, score, {"region": region}, n_boot=50)
    >>> report.to_arrow().column_names[:5]
    ['feature', 'value', 'metric', 'support', 'estimate']
    >>> report.to_arrow().num_rows  # 2 regions x 3 metrics
    6
    """
    if not isinstance(slices, Mapping) or not slices:
        raise UsageError(
            "slices must be a non-empty mapping of feature name to column, "
            "e.g. {'locale': df['locale']}"
        )
    if not isinstance(min_support, int) or min_support < 1:
        raise UsageError(f"min_support must be an integer >= 1 (got {min_support!r})")
    if not isinstance(n_boot, int) or n_boot < 0:
        raise UsageError(f"n_boot must be an integer >= 0 (got {n_boot!r})")
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must be between 0 and 1, e.g. 0.05 (got {alpha!r})")
    y = _inputs.labels(y_true, name="y_true")
    n = len(y)
    if n == 0:
        _inputs.check_same_length(y_true=y)
    s = _inputs.scores(y_score, n, name="y_score")
    w0 = _inputs.weights(sample_weight, n)
    weight = np.ones(n) if w0 is None else w0
    defs = _resolve(metrics)
    needs_prob = sorted(m.name for m in defs if m.name in _LOWER_IS_BETTER and m.fast)
    outside = int(np.count_nonzero((s < 0) | (s > 1))) if needs_prob else 0
    if outside:
        raise UsageError(
            f"{', '.join(needs_prob)} need probabilities in [0, 1], but {outside} score(s) "
            "are outside; pass probabilities (e.g. a sigmoid of the score) or use only "
            "rank metrics such as roc_auc and average_precision"
        )
    parts = _partitions(slices, n, y, s, pairs)
    everything = _Partition(
        "", [None], np.zeros(n, dtype=np.int64), _Sorted.build(np.zeros(n, dtype=np.int64), 1, y, s)
    )

    overall = {name: float(v[0]) for name, v in _evaluate(defs, everything, y, s, weight).items()}
    estimates = {
        (p.feature, name): values
        for p in parts
        for name, values in _evaluate(defs, p, y, s, weight).items()
    }

    # Bootstrap: one set of row counts per replicate, shared by every slice and the overall.
    reps: dict[tuple[str, str], _F64] = {
        key: np.full((n_boot, len(v)), np.nan) for key, v in estimates.items()
    }
    overall_reps = {m.name: np.full(n_boot, np.nan) for m in defs}
    pos_rows = np.flatnonzero(y).astype(np.int64)
    neg_rows = np.flatnonzero(~y).astype(np.int64)
    rng = np.random.default_rng(seed)
    for b in range(n_boot):
        w = _draw_counts(rng, pos_rows, neg_rows, n) * weight
        for name, values in _evaluate(defs, everything, y, s, w).items():
            overall_reps[name][b] = values[0]
        for p in parts:
            for name, values in _evaluate(defs, p, y, s, w).items():
                reps[(p.feature, name)][b] = values
    rows = _rows(parts, defs, overall, estimates, reps, overall_reps, min_support, alpha)
    subsets = {
        (p.feature, value): SliceSubset(rows=np.flatnonzero(p.codes == c))
        for p in parts
        for c, value in enumerate(p.values)
        if any(r["flagged"] for r in rows if r["feature"] == p.feature and r["value"] == value)
    }
    overall_ci = {m.name: _interval(overall_reps[m.name], alpha) for m in defs}
    return SliceReport(
        table=_table(rows),
        overall={m.name: (overall[m.name], *overall_ci[m.name]) for m in defs},
        higher_is_better={m.name: m.higher_is_better for m in defs},
        y_true=y,
        y_score=s,
        sample_weight=w0,
        flagged_subsets=subsets,
        settings={
            "min_support": min_support,
            "n_boot": n_boot,
            "alpha": alpha,
            "pairs": pairs,
            "seed": seed,
        },
    )


def _interval(replicates: _F64, alpha: float) -> tuple[float | None, float | None]:
    valid = replicates[np.isfinite(replicates)]
    if valid.size < _MIN_REPLICATES:
        return None, None
    low, high = np.quantile(valid, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _rows(
    parts: list[_Partition],
    defs: list[_MetricDef],
    overall: dict[str, float],
    estimates: dict[tuple[str, str], _F64],
    reps: dict[tuple[str, str], _F64],
    overall_reps: dict[str, _F64],
    min_support: int,
    alpha: float,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for part in parts:
        support = np.bincount(part.codes, minlength=len(part.values))
        for c, value in enumerate(part.values):
            for m in defs:
                est = float(estimates[(part.feature, m.name)][c])
                slice_reps = reps[(part.feature, m.name)][:, c]
                low, high = _interval(slice_reps, alpha)
                gap = est - overall[m.name]
                p_value: float | None = None
                gaps = slice_reps - overall_reps[m.name]
                gaps = gaps[np.isfinite(gaps)]
                if (
                    math.isfinite(gap)
                    and int(support[c]) >= min_support
                    and gaps.size >= _MIN_REPLICATES
                ):
                    sd = float(np.std(gaps, ddof=1))
                    worse = -gap if m.higher_is_better else gap
                    if sd > 0:
                        p_value = float(stats.norm.sf(worse / sd))
                    else:
                        p_value = 0.0 if worse > 0 else 1.0
                rows.append(
                    {
                        "feature": part.feature,
                        "value": value,
                        "metric": m.name,
                        "support": int(support[c]),
                        "estimate": est if math.isfinite(est) else None,
                        "ci_low": low,
                        "ci_high": high,
                        "overall": overall[m.name] if math.isfinite(overall[m.name]) else None,
                        "gap": gap if math.isfinite(gap) else None,
                        "p_value": p_value,
                        "higher_is_better": m.higher_is_better,
                    }
                )
    p = np.array([math.nan if r["p_value"] is None else r["p_value"] for r in rows], dtype=float)
    reject = _bh_reject(p, alpha)
    for r, rej in zip(rows, reject, strict=True):
        gap = r.pop("gap")
        better = r.pop("higher_is_better")
        worse = gap is not None and (gap < 0 if better else gap > 0)
        r["gap"] = gap
        r["flagged"] = bool(rej and worse and r["support"] >= min_support)
        r["p_value"] = r.pop("p_value")
        r["flagged"] = r.pop("flagged")
    return rows


COLUMNS: tuple[str, ...] = (
    "feature",
    "value",
    "metric",
    "support",
    "estimate",
    "ci_low",
    "ci_high",
    "overall",
    "gap",
    "p_value",
    "flagged",
)
"""The columns of a slice report, in order (a public contract)."""

SCHEMA = pa.schema(
    [
        pa.field("feature", pa.string(), nullable=False),
        pa.field("value", pa.string()),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("support", pa.int64(), nullable=False),
        pa.field("estimate", pa.float64()),
        pa.field("ci_low", pa.float64()),
        pa.field("ci_high", pa.float64()),
        pa.field("overall", pa.float64()),
        pa.field("gap", pa.float64()),
        pa.field("p_value", pa.float64()),
        pa.field("flagged", pa.bool_(), nullable=False),
    ]
)


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([{c: r[c] for c in COLUMNS} for r in rows], schema=SCHEMA)


__all__ = ["COLUMNS", "PAIR_SEPARATOR", "SCHEMA", "slice_report"]
