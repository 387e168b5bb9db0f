"""Root cause of a change in a metric over a table of slices: which slices explain it.

The input is a table of rows (time, dimension values, value[, total]). The metric at a time
point is ``sum(value)``, or ``sum(value) / sum(total)`` when ``total`` is given (a ratio such as
a handoff rate). Given one time point ``at`` and the ``baseline`` time points before it,
:func:`explain_table` ranks the slices (one dimension value, or a combination of values of up
to ``max_order`` dimensions) that explain the change, and marks the set it concludes are the
root causes.

Methods adapted (see ``docs/explain.md``):

- **Explanatory power** (Bhagwan et al., "Adtributor: Revenue Debugging in Advertising
  Systems", NSDI 2014): a slice's share of the change, ``(after_S - before_S) / (after -
  before)`` for sums.
- **Ripple effect and potential score** (Sun et al., "HotSpot: Anomaly Localization for
  Additive KPIs with Multi-Dimensional Attributes", IEEE Access 2018; generalised by Li et al.,
  "Generic and Robust Localization of Multi-Dimensional Root Causes", ISSRE 2019, "Squeeze"):
  if slice S is the cause, every leaf in S changes by the same ratio ``after_S / before_S``
  and every other leaf stays as expected. A candidate's score is the share of the squared
  leaf-level deviation this hypothesis removes.
- **Greedy set search with a noise test** (in the spirit of Squeeze's and Kalander & al.'s
  RiskLoc, 2022, iterative elimination): the best candidate is taken, its ripple is added to
  the expectation, and the search repeats on what is left; a candidate must also deviate
  significantly against the slice's own variability over the baseline time points.
- **Mix and rate** for ratios (the shift-share decomposition): a slice changes a ratio through
  its weight in the denominator (mix) or its own rate (rate).
- **Expectation-based Poisson scan statistic** (Neill & Moore, "Rapid detection of significant
  spatial clusters", KDD 2004; Neill, "Fast subset scan", JRSS-B 2012) for the rate effects of
  a ratio: a slice's score is the log-likelihood ratio of its own rate multiplier, which is
  sub-additive, so the slice that moved beats both its quiet-sibling parents and its children;
  with Adtributor's explanatory power as the stopping rule. Chosen over the ripple-effect
  search for ratios because that one scored exact-match F1 0.195 on the 45 real RS
  development cases (RobustSpot's data set) against 0.652 for this one (issue 12).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from assay._errors import UsageError

Effect = Literal["rate", "mix"]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

# A candidate must deviate by this many baseline standard deviations (slice-level noise).
_Z_MIN = 6.0
# ... or, for counts, this many of its baseline noise and Poisson noise combined (the
# Poisson floor already keeps steady-by-chance small slices out).
_Z_MIN_COUNTS = 3.0
# ... and remove at least this share of the squared leaf-level deviation still unexplained
# at the start of the search, so that noise-sized slices do not join the root-cause set.
_MIN_GAIN = 0.01
# Candidates within this relative distance of the best gain are ties: the most general wins.
_TIE = 0.1
_MAX_CAUSES = 5
# With counts, a more specific candidate must remove this much more chi-square to win (about
# the 95% point of a chi-square with one degree of freedom: one more fitted ratio).
_COUNT_TIE = 4.0
# A mix-effect cause of a ratio is kept only if it moves the ratio by this share of the change.
_MIN_MIX_SHARE = 0.1
# Rate search of a ratio (a Poisson scan over slices). A slice must lift the dispersion-scaled
# log-likelihood ratio to at least this (twice it is a chi-square of one degree of freedom:
# p about 0.014), so a handful of extra events does not make a cause ...
_RATE_LLR_MIN = 3.0
# ... and the search stops once the causes found explain this share of the initial Poisson
# deviance (Adtributor's explanatory-power stopping rule): further slices mostly fit noise.
# Chosen by 3-fold cross-validation on the 45 development cases of the RS data set (every
# fold chose 0.2; F1 is flat for thresholds 2 to 10 there): benchmarks/explain_rs.py.
_RATE_EXPLAINED = 0.2
# Pseudo-count of the overall baseline rate added to each leaf's baseline (a leaf seen with
# no failure in the baseline is not expected to stay at exactly zero).
_RATE_PRIOR = 1.0


@dataclass(frozen=True)
class Explanation:
    """The ranked slices explaining a change, from :func:`explain_table`.

    Attributes
    ----------
    rows : list of dict
        Ranked best first; the ``root_cause`` rows come first. Keys: ``slice``,
        ``root_cause``, ``score``, ``share``, ``before``, ``after``, ``support``, and
        ``effect`` for a ratio metric.
    before, after : float
        The metric over the whole table: expected (baseline mean) and observed at ``at``.
    metric : {"sum", "ratio"}
        ``sum(value)``, or ``sum(value) / sum(total)``.
    baseline_times : list
        The time points the expectation was computed from.
    """

    rows: list[dict[str, Any]]
    before: float
    after: float
    metric: Literal["sum", "ratio"]
    baseline_times: list[Any] = field(default_factory=list)

    def to_list(self) -> list[dict[str, Any]]:
        """The ranked rows as a new list of new dicts."""
        return [{**r, "slice": dict(r["slice"])} for r in self.rows]

    @property
    def root_causes(self) -> list[dict[str, Any]]:
        """The slices (``{dim: value}``) marked as root causes."""
        return [dict(r["slice"]) for r in self.rows if r["root_cause"]]


@dataclass
class _Group:
    """All slices over one set of dimensions: which slice each leaf belongs to."""

    dims: tuple[int, ...]
    member: IntArray  # (leaves,) slice index of each leaf
    keys: IntArray  # (slices, len(dims)) value codes of each slice


@dataclass
class _Search:
    """What the greedy search found: picks and every candidate's standalone score."""

    picks: list[tuple[int, int, float]]  # (group, slice, conditional gain share)
    standalone: list[FloatArray]  # per group, per slice: gain share from the expectation alone


def explain_table(
    table: pa.Table,
    *,
    time_col: str,
    dims: Sequence[str],
    value: str,
    total: str | None = None,
    at: Any,
    baseline: int = 7,
    max_order: int = 3,
    top: int | None = 20,
    counts: bool = False,
    expected: str | None = None,
) -> Explanation:
    """Rank the slices that explain the change of a metric at time ``at``.

    The metric is ``sum(value)``, or ``sum(value) / sum(total)`` when ``total`` is given. A
    leaf is one combination of values of all ``dims``; a slice fixes the values of 1 to
    ``max_order`` of them. Each leaf's expected value is its mean over the ``baseline`` time
    points before ``at`` (a leaf absent at a time point counts 0 there); its observed value is
    its sum at ``at``.

    Root causes are found greedily: the candidate slice whose ripple effect (all its leaves
    change by the slice's ratio of observed to expected; Sun et al., HotSpot, 2018; Li et
    al., Squeeze, 2019) removes the largest squared leaf-level deviation is taken, provided it
    deviates by at least 6 standard deviations of its own baseline noise and removes at least
    1% of the initial squared deviation; its ripple joins the expectation and the search goes
    on, up to 5 causes. Near ties (within 2%) go to the slice of fewest dimensions. For a
    ratio, rate effects are found by a Poisson scan over slices of the numerator against each
    leaf's observed total times its baseline rate: a slice scores the log-likelihood ratio
    ``C log(C/B) - C + B`` of its observed ``C`` against its expected ``B`` (moves the way the
    ratio moved only; over
    the noise's dispersion, measured on the baseline points), the best slice is taken while
    it scores at least 3, and the search stops once the causes taken explain 20% of the
    initial deviance (Adtributor's explanatory-power stopping rule); see ``docs/explain.md``.
    Mix effects are searched on the totals as for sums and kept when they move the ratio by
    at least 10% of its change.

    Parameters
    ----------
    table : pyarrow.Table
        One row per (time, dimension values); several rows for the same key are summed.
    time_col : str
        Column of time points (any orderable type: timestamps, dates, numbers).
    dims : sequence of str
        Dimension columns. Slice values keep their type; a null is a value of its own.
    value : str
        Non-negative numeric column summed into the metric (a null counts 0).
    total : str, optional
        Non-negative numeric denominator: the metric becomes ``sum(value) / sum(total)``.
    at : scalar
        The time point to explain; one of the values of ``time_col`` (a string is cast to the
        column's type, e.g. ``"2026-01-05"`` for a date column).
    baseline : int, default 7
        Number of time points before ``at`` that form the expectation (fewer if the table
        starts later; at least one must exist).
    max_order : int, default 3
        Largest number of dimensions in a slice.
    top : int or None, default 20
        Number of rows returned (root causes always included); None for every slice with a
        non-zero score or share.
    counts : bool, default False
        ``value`` (and ``total``) are counts of events: a slice's noise is then at least
        Poisson (its variance at least its expected count), so a slice of a handful of events,
        steady over the baseline by chance, cannot pass for a cause.
    expected : str, optional
        Numeric column holding a forecast of ``value`` for each row (e.g. from a model the
        user already runs). Each leaf's expectation at ``at`` is then its sum of ``expected``
        there instead of the baseline mean; up to ``baseline`` earlier time points, if the
        table has them, only gauge the noise (their ``value`` against their ``expected``), and
        ``at`` may be the first time point. For a ratio, ``expected`` forecasts the numerator
        at the observed ``total``.

    Returns
    -------
    Explanation
        ``rows`` (also ``to_list()``): dicts ranked best first with keys

        - ``slice``: ``{dim: value}``;
        - ``root_cause``: in the set the method concludes explains the change;
        - ``score``: in [0, 1], the share of the squared leaf-level deviation the slice's
          ripple removes (for a root cause: at the step it was taken, given the causes
          before it; for a ratio: in the rate search, the share of the Poisson deviance, or
          in the mix search, following ``effect``);
        - ``share``: the slice's share of the metric's change (Adtributor's explanatory
          power; for a ratio, its mix plus rate contribution over the ratio's change); 0 if
          the metric did not change;
        - ``before``, ``after``: the slice's metric, expected and observed (a ratio with no
          total is NaN);
        - ``support``: for a ratio, the slice's sum of ``total`` at ``at``; for a sum, the
          larger of ``before`` and ``after``;
        - ``effect`` (ratios only): ``"rate"`` if the slice moved the ratio more through its
          own rate than through its weight, else ``"mix"``.

    Raises
    ------
    UsageError
        A column is missing or of the wrong type, a value is negative, ``at`` is not a time
        point of the table or has no time point before it, or ``baseline``/``max_order`` < 1.

    Examples
    --------
    Two days of visits by country; on day 2 visits from FR double:

    >>> import pyarrow as pa
    >>> t = pa.table({"day": [1, 1, 2, 2], "country": ["FR", "DE", "FR", "DE"],
    ...               "visits": [100, 50, 200, 50]})
    >>> ex = explain_table(t, time_col="day", dims=["country"], value="visits", at=2)
    >>> ex.before, ex.after
    (150.0, 250.0)
    >>> top = ex.rows[0]
    >>> top["slice"], top["root_cause"], top["share"], top["before"], top["after"]
    ({'country': 'FR'}, True, 1.0, 100.0, 200.0)
    """
    dims = list(dims)
    _check_args(table, time_col, dims, value, total, baseline, max_order, top)
    if expected is not None:
        _check_expected(table, expected, dims, time_col)
    times = _time_points(table, time_col, at, baseline, need_history=expected is None)
    k = len(times) - 1  # baseline points; the last column is `at`
    leaf_codes, dim_values, num, den = _leaves(table, time_col, times, dims, value, total)
    forecast = None
    if expected is not None:
        forecast = _leaves(table, time_col, times, dims, expected, None)[2]
    groups = _groups(leaf_codes, min(max_order, len(dims)))

    if den is None:
        rows, before, after = _explain_sum(groups, dims, dim_values, num, k, counts, forecast)
        metric: Literal["sum", "ratio"] = "sum"
    else:
        rows, before, after = _explain_ratio(
            groups, dims, dim_values, num, den, k, counts, forecast
        )
        metric = "ratio"
    ranked = _rank(rows, top)
    return Explanation(
        rows=ranked, before=before, after=after, metric=metric, baseline_times=times[:-1]
    )


# -- input -----------------------------------------------------------------------------------


def _check_args(
    table: pa.Table,
    time_col: str,
    dims: list[str],
    value: str,
    total: str | None,
    baseline: int,
    max_order: int,
    top: int | None,
) -> None:
    if not isinstance(table, pa.Table):
        raise UsageError(f"table must be a pyarrow.Table (got {type(table).__name__})")
    shown = ", ".join(table.column_names[:20])
    for name, what in [(time_col, "time_col"), (value, "value")] + (
        [(total, "total")] if total is not None else []
    ):
        if name not in table.column_names:
            raise UsageError(f"{what} {name!r} is not a column of the table; its columns: {shown}")
    if not dims:
        raise UsageError("dims is empty; pass at least one dimension column to slice by")
    if len(set(dims)) != len(dims):
        raise UsageError(f"dims must not repeat a column (got {dims})")
    for d in dims:
        if d not in table.column_names:
            raise UsageError(f"dimension {d!r} is not a column of the table; its columns: {shown}")
        if d in (time_col, value, total):
            raise UsageError(
                f"dimension {d!r} is also the time, value or total column; pass different columns"
            )
    for name in [value] + ([total] if total is not None else []):
        typ = table.schema.field(name).type
        if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)):
            raise UsageError(
                f"column {name!r} must be numeric to be summed (got {typ}); "
                "pass a column of counts or amounts"
            )
    if isinstance(baseline, bool) or not isinstance(baseline, int) or baseline < 1:
        raise UsageError(f"baseline must be an integer >= 1 (got {baseline!r})")
    if isinstance(max_order, bool) or not isinstance(max_order, int) or max_order < 1:
        raise UsageError(f"max_order must be an integer >= 1 (got {max_order!r})")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise UsageError(f"top must be an integer >= 1 or None (got {top!r})")


def _check_expected(table: pa.Table, expected: str, dims: list[str], time_col: str) -> None:
    if expected not in table.column_names:
        shown = ", ".join(table.column_names[:20])
        raise UsageError(
            f"expected {expected!r} is not a column of the table; its columns: {shown}"
        )
    if expected in dims or expected == time_col:
        raise UsageError(
            f"expected {expected!r} is also a dimension or the time column; "
            "pass the forecast column"
        )
    typ = table.schema.field(expected).type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)):
        raise UsageError(
            f"column {expected!r} must be numeric, a forecast of the value column (got {typ})"
        )


def _cast_at(at: Any, typ: pa.DataType) -> pa.Scalar:
    """``at`` as a scalar of the time column's type; text is parsed (a timestamp without an
    offset, for a column with a time zone, is read in that zone)."""
    if not isinstance(at, str) or pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return pa.scalar(at, type=typ)
    text = pa.array([at.strip()], type=pa.string())
    try:
        return text.cast(typ)[0]
    except pa.ArrowInvalid:
        if not (pa.types.is_timestamp(typ) and typ.tz):
            raise
        naive = text.cast(pa.timestamp(typ.unit))
        return pc.assume_timezone(naive, typ.tz)[0]


def _time_points(
    table: pa.Table, time_col: str, at: Any, baseline: int, *, need_history: bool = True
) -> list[Any]:
    """The baseline time points and ``at``, in order (``at`` last)."""
    column = table.column(time_col)
    typ = column.type
    try:
        at_scalar = _cast_at(at, typ)
    except (pa.ArrowException, TypeError, ValueError):
        raise UsageError(
            f"at={at!r} cannot be read as a value of {time_col!r} ({typ}); "
            "pass one of the column's values in the same form"
        ) from None
    distinct = pc.unique(column.drop_null())
    distinct = distinct.take(pc.sort_indices(distinct))
    found = pc.index(distinct, at_scalar).as_py()
    if found is None or found < 0:
        first, last = (
            distinct[0].as_py() if len(distinct) else None,
            (distinct[-1].as_py() if len(distinct) else None),
        )
        raise UsageError(
            f"at={at!r} is not a value of {time_col!r} (it has {len(distinct)} time points, "
            f"from {first!r} to {last!r}); pass one of them"
        )
    if found == 0 and need_history:
        raise UsageError(
            f"at={at!r} is the first time point of {time_col!r}: there is no baseline before it; "
            "pass a later time point"
        )
    start = max(0, found - baseline)
    return list(distinct.slice(start, found - start + 1).to_pylist())


def _numeric(table: pa.Table, name: str, mask: pa.ChunkedArray) -> FloatArray:
    col = pc.fill_null(pc.cast(table.column(name).filter(mask), pa.float64()), 0.0)
    arr = np.asarray(col.to_numpy(), dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise UsageError(f"column {name!r} has NaN or infinite values; clean or drop those rows")
    if np.any(arr < 0):
        raise UsageError(
            f"column {name!r} has negative values (smallest {arr.min():g}); the ripple-effect "
            "search assumes non-negative amounts such as counts or costs"
        )
    return arr


def _leaves(
    table: pa.Table,
    time_col: str,
    times: list[Any],
    dims: list[str],
    value: str,
    total: str | None,
) -> tuple[IntArray, list[list[Any]], FloatArray, FloatArray | None]:
    """Leaf value codes (leaves x dims), each dim's values, and leaf sums per time point."""
    time_values = pa.array(times, type=table.schema.field(time_col).type)
    column = table.column(time_col)
    mask = pc.fill_null(pc.is_in(column, value_set=time_values), False)
    t_index = np.asarray(
        pc.index_in(column.filter(mask), value_set=time_values).to_numpy(), dtype=np.intp
    )
    codes = []
    dim_values = []
    for d in dims:
        encoded = pc.dictionary_encode(
            table.column(d).filter(mask).combine_chunks(), null_encoding="encode"
        )
        codes.append(np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.intp))
        dim_values.append(encoded.dictionary.to_pylist())
    n_t = len(times)
    if len(t_index) == 0:
        raise UsageError("the table has no rows at the chosen time points")
    leaf_codes, leaf_of_row = np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)
    leaf_of_row = leaf_of_row.reshape(-1)
    n_leaves = len(leaf_codes)
    cell = leaf_of_row * n_t + t_index

    def cube(name: str) -> FloatArray:
        sums = np.bincount(cell, weights=_numeric(table, name, mask), minlength=n_leaves * n_t)
        return np.asarray(sums, dtype=np.float64).reshape(n_leaves, n_t)

    return (
        leaf_codes.astype(np.intp),
        dim_values,
        cube(value),
        cube(total) if total is not None else None,
    )


def _groups(leaf_codes: IntArray, max_order: int) -> list[_Group]:
    n_dims = leaf_codes.shape[1]
    # The whole table is a candidate too (the empty slice): a change spread evenly over every
    # leaf is explained by no narrower slice, and, as the most general, it wins near ties.
    whole = _Group((), np.zeros(len(leaf_codes), dtype=np.intp), np.zeros((1, 0), np.intp))
    groups = [whole]
    for order in range(1, max_order + 1):
        for subset in itertools.combinations(range(n_dims), order):
            keys, member = np.unique(leaf_codes[:, list(subset)], axis=0, return_inverse=True)
            groups.append(_Group(subset, member.reshape(-1).astype(np.intp), keys))
    return groups


# -- search ----------------------------------------------------------------------------------


def _sums(group: _Group, x: FloatArray) -> FloatArray:
    sums = np.bincount(group.member, weights=x, minlength=len(group.keys))
    return np.asarray(sums, dtype=np.float64)


def _noise_sd(group: _Group, base_actual: FloatArray, base_expected: FloatArray) -> FloatArray:
    """Standard deviation of each slice's deviation from its expectation over the baseline,
    inflated for the error of a mean of k points; infinite-z (0) when k < 2."""
    k = base_actual.shape[1]
    if k < 2:
        return np.zeros(len(group.keys))
    resid = np.stack(
        [_sums(group, base_actual[:, j] - base_expected[:, j]) for j in range(k)], axis=1
    )
    return np.asarray(resid.std(axis=1, ddof=1) * math.sqrt(1 + 1 / k), dtype=np.float64)


def _search(
    groups: list[_Group],
    observed: FloatArray,
    expected: FloatArray,
    base_actual: FloatArray,
    base_expected: FloatArray,
    counts: bool = False,
) -> _Search:
    """Greedy ripple-effect search (HotSpot's potential score, Squeeze's succinctness).

    With ``counts``, squared deviations are weighted by ``1 / max(expected, 1)`` (Pearson's
    chi-square: for Poisson counts each leaf's noise then weighs about 1), and a candidate
    more specific than another must remove at least ``_COUNT_TIE`` more of it to win: a sub-
    slice that only fits the noise of a few events does not displace its parent.
    """
    a = expected.copy()
    v = observed

    def weights() -> FloatArray:
        return 1.0 / np.maximum(a, 1.0) if counts else np.ones_like(a)

    sse0 = float(np.sum(weights() * (v - a) ** 2))
    eps = 1e-12 * max(1.0, float(np.abs(v).sum()), float(np.abs(a).sum()))
    sds = [_noise_sd(g, base_actual, base_expected) for g in groups]
    standalone = [np.zeros(len(g.keys)) for g in groups]
    picks: list[tuple[int, int, float]] = []
    if sse0 <= eps * eps:
        return _Search(picks, standalone)
    taken: set[tuple[int, int]] = set()
    for step in range(_MAX_CAUSES):
        candidates: list[tuple[float, int, int, int]] = []  # (gain, order, group, slice)
        w = weights()
        for gi, g in enumerate(groups):
            sv, sa = _sums(g, v), _sums(g, a)
            svv, sva, saa = _sums(g, w * v * v), _sums(g, w * v * a), _sums(g, w * a * a)
            current = svv - 2 * sva + saa
            ratio = np.divide(sv, sa, out=np.zeros_like(sv), where=sa > eps)
            after = np.where(sa > eps, svv - 2 * ratio * sva + ratio * ratio * saa, 0.0)
            gain = current - after
            if step == 0:
                standalone[gi] = np.clip(gain / sse0, 0.0, 1.0)
            if counts:
                sd = np.sqrt(sds[gi] ** 2 + np.maximum(sa, 1.0))
                z_ok = np.abs(sv - sa) >= _Z_MIN_COUNTS * sd + eps
            else:
                z_ok = np.abs(sv - sa) >= _Z_MIN * sds[gi] + eps
            if not g.dims:
                # The whole table: the change itself is what is being explained (its total
                # moved, or no one would ask), so no noise test; it can only come first.
                if step > 0:
                    continue
                z_ok = np.ones_like(z_ok)
            ok = z_ok & (gain >= _MIN_GAIN * sse0) & (gain > eps * eps)
            for found in np.flatnonzero(ok).tolist():
                if (gi, found) not in taken:
                    candidates.append((float(gain[found]), len(g.dims), gi, found))
        if not candidates:
            break
        whole = [c for c in candidates if c[1] == 0]
        narrow = [c for c in candidates if c[1] > 0]
        chosen = _pick(narrow, counts) if narrow else whole[0]
        if whole and narrow and _spread(whole[0][0], chosen, groups, v, a, counts):
            chosen = whole[0]
        gain_, _order, gi, si = chosen
        g = groups[gi]
        inside = g.member == si
        sa_i = float(a[inside].sum())
        if sa_i > eps:
            a[inside] *= float(v[inside].sum()) / sa_i
        else:
            a[inside] = v[inside]
        taken.add((gi, si))
        picks.append((gi, si, min(1.0, max(0.0, gain_ / sse0))))
    return _Search(picks, standalone)


def _deviance(observed: FloatArray, expected: FloatArray) -> FloatArray:
    """Half the Poisson deviance of ``observed`` against ``expected``: the log-likelihood
    ratio of a slice's own rate multiplier ``observed / expected`` against none."""
    b = np.maximum(expected, 1e-12)
    safe = np.where(observed > 0, observed, 1.0)
    return np.asarray(
        np.where(observed > 0, observed * np.log(safe / b), 0.0) - observed + b, dtype=np.float64
    )


def _dispersion(history: list[tuple[FloatArray, FloatArray]]) -> float:
    """Quasi-Poisson dispersion: the median over history points of the mean leaf deviance
    (twice the half-deviance) of observed against expected counts; at least 1."""
    per_point = [float(np.mean(2.0 * _deviance(o, e))) for o, e in history if len(o)]
    return max(1.0, float(np.median(per_point))) if per_point else 1.0


def _rate_scan(
    groups: list[_Group],
    observed: FloatArray,
    expected: FloatArray,
    dispersion: float,
    direction: float,
) -> _Search:
    """Greedy Poisson scan for the slices whose own rate rose (the rate effects of a ratio).

    A slice S with observed count ``C`` and expected count ``B`` scores the log-likelihood
    ratio of "S's leaves share one rate multiplier" against "nothing changed",
    ``C log(C/B) - C + B``, over the dispersion (the expectation-based Poisson scan statistic
    of Neill & Moore, 2005; the ripple effect of HotSpot/Squeeze). The score is sub-additive, so
    a parent whose other children stayed quiet scores less than the child that moved, and a
    child less than a parent all of whose children moved. Only moves in ``direction`` count
    (the sign of the ratio's change: a rise is not explained by a slice that fell; 0 takes
    both). The best slice is
    taken, its leaves' expectation is scaled to its observed count, and the search repeats
    until no slice passes ``_RATE_LLR_MIN`` or the causes taken explain ``_RATE_EXPLAINED`` of
    the initial deviance (Adtributor's explanatory power as the stopping rule).
    """
    a = expected.copy()
    v = observed
    standalone = [np.zeros(len(g.keys)) for g in groups]
    picks: list[tuple[int, int, float]] = []
    total0 = float(np.sum(_deviance(v, a)))
    if total0 <= 1e-9:
        return _Search(picks, standalone)
    taken: set[tuple[int, int]] = set()
    for step in range(_MAX_CAUSES):
        if picks and float(np.sum(_deviance(v, a))) <= (1.0 - _RATE_EXPLAINED) * total0:
            break
        best: tuple[float, int, int, int] | None = None
        for gi, g in enumerate(groups):
            sv, sa = _sums(g, v), _sums(g, a)
            moved = (sv - sa) * direction > 0 if direction else sv != sa
            llr = np.where(moved, _deviance(sv, sa), 0.0) / dispersion
            if step == 0:
                standalone[gi] = np.clip(llr * dispersion / total0, 0.0, 1.0)
            for si in np.flatnonzero(llr >= _RATE_LLR_MIN).tolist():
                cand = (float(llr[si]), len(g.dims), gi, si)
                if (gi, si) in taken:
                    continue
                # The larger score wins; an exact tie goes to the slice of fewer dimensions.
                if best is None or (cand[0], -cand[1]) > (best[0], -best[1]):
                    best = cand
        if best is None:
            break
        _llr, _order, gi, si = best
        inside = groups[gi].member == si
        before = float(_deviance(v, a).sum())
        a[inside] *= float(v[inside].sum()) / max(float(a[inside].sum()), 1e-12)
        after = float(_deviance(v, a).sum())
        taken.add((gi, si))
        picks.append((gi, si, min(1.0, max(0.0, (before - after) / total0))))
    return _Search(picks, standalone)


def _pick(
    candidates: list[tuple[float, int, int, int]], counts: bool
) -> tuple[float, int, int, int]:
    """The best candidate, the most general one winning near ties (Squeeze's succinctness)."""
    top_gain = max(c[0] for c in candidates)
    slack = max(_TIE * top_gain, _COUNT_TIE if counts else 0.0)
    near = [c for c in candidates if c[0] >= top_gain - slack]
    return min(near, key=lambda c: (c[1], -c[0]))


def _spread(
    whole_gain: float,
    best: tuple[float, int, int, int],
    groups: list[_Group],
    v: FloatArray,
    a: FloatArray,
    counts: bool,
) -> bool:
    """Whether the change is spread over the whole table rather than held by ``best``.

    The whole table wins when it removes more deviation than the best slice, or nearly as
    much while the rest of the table moved like the slice (its ratio of observed to expected
    is nearer the slice's than 1): a uniform change is then not the slice's doing.
    """
    gain, _order, gi, si = best
    if whole_gain >= gain:
        return True
    if whole_gain < gain - max(_TIE * gain, _COUNT_TIE if counts else 0.0):
        return False
    inside = groups[gi].member == si
    sv, sa = float(v[inside].sum()), float(a[inside].sum())
    rv, ra = float(v[~inside].sum()), float(a[~inside].sum())
    if sa <= 0 or ra <= 0:
        return False
    r_slice, r_rest = sv / sa, rv / ra
    return abs(r_rest - r_slice) < abs(r_rest - 1.0)


# -- sums and ratios -------------------------------------------------------------------------


def _slice_dict(
    group: _Group, si: int, dims: list[str], dim_values: list[list[Any]]
) -> dict[str, Any]:
    return {dims[d]: dim_values[d][int(c)] for d, c in zip(group.dims, group.keys[si], strict=True)}


def _explain_sum(
    groups: list[_Group],
    dims: list[str],
    dim_values: list[list[Any]],
    num: FloatArray,
    k: int,
    counts: bool = False,
    forecast: FloatArray | None = None,
) -> tuple[list[dict[str, Any]], float, float]:
    base = num[:, :k]
    v = num[:, k]
    if forecast is None:
        f = base.mean(axis=1)
        base_expected = np.repeat(f[:, None], k, axis=1)
    else:
        f, base_expected = forecast[:, k], forecast[:, :k]
    before, after = float(f.sum()), float(v.sum())
    change = after - before
    found = _search(groups, v, f, base, base_expected, counts)
    picked = {(gi, si): (s, n) for n, (gi, si, s) in enumerate(found.picks)}
    rows = []
    for gi, g in enumerate(groups):
        fs, vs = _sums(g, f), _sums(g, v)
        for si in range(len(g.keys)):
            cause = (gi, si) in picked
            score = picked[(gi, si)][0] if cause else float(found.standalone[gi][si])
            share = (float(vs[si]) - float(fs[si])) / change if change != 0 else 0.0
            rows.append(
                {
                    "slice": _slice_dict(g, si, dims, dim_values),
                    "root_cause": cause,
                    "score": score,
                    "share": share,
                    "before": float(fs[si]),
                    "after": float(vs[si]),
                    "support": max(float(fs[si]), float(vs[si])),
                    "_order": len(g.dims),
                    "_step": picked[(gi, si)][1] if cause else 0,
                }
            )
    return rows, before, after


def mix_rate(
    before_num: float,
    before_den: float,
    after_num: float,
    after_den: float,
    total_before: tuple[float, float],
    total_after: tuple[float, float],
) -> tuple[float, float]:
    """A slice's contribution to the change of a ratio, split into mix and rate effects.

    With the slice's weight ``w = den_S / den`` and rate ``r = num_S / den_S`` before and after
    (primes), and the overall ratio ``R`` before, the shift-share identity is
    ``R' - R = sum_S (w'_S - w_S) (r_S - R) + sum_S w'_S (r'_S - r_S)`` over any partition of
    the rows into slices: the first term is the slice's **mix** effect, the second its
    **rate** effect. A slice with no total before has ``r_S = r'_S`` (all mix); one with no
    total after has ``r'_S = r_S``.

    Returns
    -------
    (mix, rate) : tuple of float

    Examples
    --------
    Overall 10/100 -> 30/200; the slice goes from 5/50 (rate 0.1 = overall, weight 0.5) to
    25/150 (weight 0.75, rate 1/6):

    >>> mix, rate = mix_rate(5, 50, 25, 150, (10, 100), (30, 200))
    >>> round(mix, 4), round(rate, 4)
    (0.0, 0.05)
    """
    num0, den0 = total_before
    den1 = total_after[1]
    big_r = num0 / den0 if den0 > 0 else 0.0
    w0 = before_den / den0 if den0 > 0 else 0.0
    w1 = after_den / den1 if den1 > 0 else 0.0
    r0 = before_num / before_den if before_den > 0 else None
    r1 = after_num / after_den if after_den > 0 else None
    if r0 is None and r1 is None:
        return 0.0, 0.0
    if r0 is None:
        r0 = r1
    if r1 is None:
        r1 = r0
    assert r0 is not None
    assert r1 is not None
    return (w1 - w0) * (r0 - big_r), w1 * (r1 - r0)


def _explain_ratio(
    groups: list[_Group],
    dims: list[str],
    dim_values: list[list[Any]],
    num: FloatArray,
    den: FloatArray,
    k: int,
    counts: bool = False,
    forecast: FloatArray | None = None,
) -> tuple[list[dict[str, Any]], float, float]:
    vn, vd = num[:, k], den[:, k]
    if forecast is None:
        fn, fd = num[:, :k].mean(axis=1), den[:, :k].mean(axis=1)
    else:
        # A forecast of the numerator at the observed totals: no mix change by construction.
        fn, fd = forecast[:, k], vd
    tot0, tot1 = (float(fn.sum()), float(fd.sum())), (float(vn.sum()), float(vd.sum()))
    before = tot0[0] / tot0[1] if tot0[1] > 0 else math.nan
    after = tot1[0] / tot1[1] if tot1[1] > 0 else math.nan
    change = after - before if math.isfinite(before) and math.isfinite(after) else 0.0
    overall = before if math.isfinite(before) else 0.0
    # Rate: the numerator each leaf would have at its observed total and its baseline rate
    # (shrunk towards the overall rate by a pseudo-count), searched by a Poisson scan.
    history: list[tuple[FloatArray, FloatArray]] = []
    if forecast is None:
        base_n, base_d = num[:, :k].sum(axis=1), den[:, :k].sum(axis=1)
        leaf_rate = (base_n + _RATE_PRIOR * overall) / (base_d + _RATE_PRIOR)
        expected = vd * leaf_rate
        for j in range(k if k > 1 else 0):
            rest = [i for i in range(k) if i != j]
            rate_j = (num[:, rest].sum(axis=1) + _RATE_PRIOR * overall) / (
                den[:, rest].sum(axis=1) + _RATE_PRIOR
            )
            history.append((num[:, j], den[:, j] * rate_j))
    else:
        expected = forecast[:, k]
        history = [(num[:, j], forecast[:, j]) for j in range(k)]
    rate = _rate_scan(groups, vn, expected, _dispersion(history), float(np.sign(change)))
    # Mix: the totals themselves, as an additive measure.
    if forecast is None:
        mix = _search(groups, vd, fd, den[:, :k], np.repeat(fd[:, None], k, axis=1), counts)
    else:
        mix = _Search([], [np.zeros(len(g.keys)) for g in groups])
    rate_picks = {(gi, si): (s, n) for n, (gi, si, s) in enumerate(rate.picks)}
    mix_picks = {(gi, si): (s, n) for n, (gi, si, s) in enumerate(mix.picks)}
    rows = []
    for gi, g in enumerate(groups):
        sn0, sd0, sn1, sd1 = _sums(g, fn), _sums(g, fd), _sums(g, vn), _sums(g, vd)
        for si in range(len(g.keys)):
            m, r = mix_rate(
                float(sn0[si]), float(sd0[si]), float(sn1[si]), float(sd1[si]), tot0, tot1
            )
            share = (m + r) / change if change != 0 else 0.0
            effect: Effect = "rate" if abs(r) >= abs(m) else "mix"
            key = (gi, si)
            material_mix = change != 0 and abs(m / change) >= _MIN_MIX_SHARE
            cause_by = None
            if key in rate_picks:
                cause_by = rate_picks[key]
            elif key in mix_picks and material_mix:
                cause_by = mix_picks[key]
            if cause_by is not None:
                score = cause_by[0]
            elif effect == "rate":
                score = float(rate.standalone[gi][si])
            else:
                score = float(mix.standalone[gi][si]) if material_mix else 0.0
            rows.append(
                {
                    "slice": _slice_dict(g, si, dims, dim_values),
                    "root_cause": cause_by is not None,
                    "score": score,
                    "share": share,
                    "before": float(sn0[si] / sd0[si]) if sd0[si] > 0 else math.nan,
                    "after": float(sn1[si] / sd1[si]) if sd1[si] > 0 else math.nan,
                    "support": float(sd1[si]),
                    "effect": effect,
                    "_order": len(g.dims),
                    "_step": cause_by[1] if cause_by is not None else 0,
                }
            )
    return rows, before, after


def _rank(rows: list[dict[str, Any]], top: int | None) -> list[dict[str, Any]]:
    causes = sorted((r for r in rows if r["root_cause"]), key=lambda r: (-r["score"], r["_step"]))
    # The whole table (the empty slice) is listed only as a root cause: as context it would
    # repeat the totals.
    context = sorted(
        (
            r
            for r in rows
            if not r["root_cause"] and r["slice"] and (r["score"] > 0 or abs(r["share"]) > 1e-12)
        ),
        key=lambda r: (-r["score"], -abs(r["share"]), r["_order"]),
    )
    if top is not None:
        context = context[: max(0, top - len(causes))]
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in causes + context]


# -- evaluation ------------------------------------------------------------------------------


def exact_match_f1(
    predicted: Sequence[Sequence[Mapping[str, Any]]],
    labelled: Sequence[Sequence[Mapping[str, Any]]],
) -> float:
    """Exact-match F1 of predicted root-cause sets, pooled over cases (as in the RCA papers).

    A predicted slice is a true positive only if its set of ``dimension=value`` pairs equals
    that of a labelled cause of the same case; a parent or child of a cause counts as a false
    positive (and the cause as a miss). Precision and recall pool the counts of every case;
    F1 is their harmonic mean (1.0 when nothing is predicted and nothing is labelled).

    Parameters
    ----------
    predicted, labelled : sequence of sequences of mappings
        One list of slices (``{dim: value}``) per case, in the same order.

    Examples
    --------
    >>> exact_match_f1([[{"a": 1}], [{"a": 2, "b": "x"}]], [[{"a": 1}], [{"a": 2}]])
    0.5
    """
    if len(predicted) != len(labelled):
        raise UsageError(
            f"predicted has {len(predicted)} cases and labelled {len(labelled)}; "
            "pass one list of slices per case in both"
        )
    tp = fp = fn = 0
    for pred, lab in zip(predicted, labelled, strict=True):
        p = {frozenset(s.items()) for s in pred}
        t = {frozenset(s.items()) for s in lab}
        tp += len(p & t)
        fp += len(p - t)
        fn += len(t - p)
    if tp + fp + fn == 0:
        return 1.0
    return 2 * tp / (2 * tp + fp + fn)


@dataclass(frozen=True)
class RCACase:
    """One labelled root-cause case from :func:`synthetic_rca_cases`.

    ``table`` has columns ``time`` (int64, 0 to ``at``), the dimension columns (strings) and
    ``value`` (float64); ``causes`` are the injected slices (``{dim: value}``).
    """

    table: pa.Table
    dims: list[str]
    at: int
    causes: list[dict[str, Any]]
    noise: float


def synthetic_rca_cases(
    n: int,
    seed: int = 0,
    *,
    n_dims: tuple[int, int] = (3, 4),
    n_values: tuple[int, int] = (5, 10),
    n_causes: tuple[int, int] = (1, 3),
    cause_order: tuple[int, int] = (1, 3),
    noise: tuple[float, float] = (0.0, 0.1),
    baseline: int = 7,
    density: float = 0.8,
) -> list[RCACase]:
    """Labelled multi-dimensional root-cause cases, generated as in the RCA papers.

    Modelled on the semi-synthetic sets of HotSpot (Sun et al., 2018), Squeeze (Li et al., 2019)
    and RiskLoc (Kalander, 2022). Per case: ``n_dims`` dimensions with ``n_values`` values
    each (ranges, inclusive); each leaf (combination of values) exists with probability
    ``density`` and has a base value ``100 * prod_d g_d(value) * e`` where ``g_d`` and ``e``
    are log-normal (``sigma`` 0.7 and 0.5): a random product model with heavy tails. Each of
    ``baseline + 1`` time points multiplies the base by ``1 + N(0, s)``, ``s`` drawn per case
    from ``noise``. At the last time point (``at``), 1 to 3 causes (``n_causes``), each fixing
    1 to 3 dimensions (``cause_order``, at most the number of dimensions), multiply their
    leaves by a factor drawn uniformly from [0.1, 0.5] (a drop) or [1.5, 3] (a rise). Causes
    cover disjoint leaves, none contains another, and each holds at least 1% of the total.

    Examples
    --------
    >>> case = synthetic_rca_cases(1, seed=3)[0]
    >>> case.table.column_names[0], case.at, 1 <= len(case.causes) <= 3
    ('time', 7, True)
    """
    if n < 0:
        raise UsageError(f"n must be >= 0 (got {n})")
    rng = np.random.default_rng(seed)
    cases: list[RCACase] = []
    while len(cases) < n:
        case = _one_case(rng, n_dims, n_values, n_causes, cause_order, noise, baseline, density)
        if case is not None:
            cases.append(case)
    return cases


def _one_case(
    rng: np.random.Generator,
    n_dims: tuple[int, int],
    n_values: tuple[int, int],
    n_causes: tuple[int, int],
    cause_order: tuple[int, int],
    noise: tuple[float, float],
    baseline: int,
    density: float,
) -> RCACase | None:
    d = int(rng.integers(n_dims[0], n_dims[1] + 1))
    sizes = [int(rng.integers(n_values[0], n_values[1] + 1)) for _ in range(d)]
    dims = [f"d{i}" for i in range(d)]
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, d)
    grid = grid[rng.random(len(grid)) < density]
    factors = [rng.lognormal(0.0, 0.7, s) for s in sizes]
    base = 100.0 * rng.lognormal(0.0, 0.5, len(grid))
    for j in range(d):
        base *= factors[j][grid[:, j]]
    mult = np.ones(len(grid))
    causes: list[dict[str, Any]] = []
    covered = np.zeros(len(grid), dtype=bool)
    want = int(rng.integers(n_causes[0], n_causes[1] + 1))
    for _attempt in range(50):
        if len(causes) == want:
            break
        order = int(rng.integers(cause_order[0], min(cause_order[1], d) + 1))
        chosen = sorted(rng.choice(d, order, replace=False).tolist())
        values = [int(rng.integers(sizes[j])) for j in chosen]
        inside = np.all(grid[:, chosen] == values, axis=1)
        if not inside.any() or (inside & covered).any():
            continue
        if base[inside].sum() < 0.01 * base.sum():
            continue
        covered |= inside
        low = rng.random() < 0.5
        mult[inside] = rng.uniform(0.1, 0.5) if low else rng.uniform(1.5, 3.0)
        causes.append({dims[j]: f"{dims[j]}v{v}" for j, v in zip(chosen, values, strict=True)})
    if len(causes) < want:
        return None
    s = float(rng.uniform(*noise))
    times: list[IntArray] = []
    cols: list[list[IntArray]] = [[] for _ in range(d)]
    vals: list[FloatArray] = []
    for t in range(baseline + 1):
        level = base * (mult if t == baseline else 1.0)
        observed = np.maximum(level * (1 + rng.normal(0.0, s, len(grid))), 0.0)
        times.append(np.full(len(grid), t, dtype=np.int64))
        for j in range(d):
            cols[j].append(grid[:, j])
        vals.append(observed)
    columns: dict[str, Any] = {"time": pa.array(np.concatenate(times))}
    for j in range(d):
        labels = np.array([f"{dims[j]}v{v}" for v in range(sizes[j])])
        columns[dims[j]] = pa.array(labels[np.concatenate(cols[j])])
    columns["value"] = pa.array(np.concatenate(vals))
    return RCACase(pa.table(columns), dims, baseline, causes, s)


__all__ = [
    "Explanation",
    "RCACase",
    "exact_match_f1",
    "explain_table",
    "mix_rate",
    "synthetic_rca_cases",
]
