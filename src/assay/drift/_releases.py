"""Release regressions: does a new ``model_version`` or ``prompt_template`` answer worse?

:func:`find_regressions` compares the quality proxies of the answers (handoff rate,
thumbs-down rate, error rate, latency p95, and for answers from retrieved documents the
uncited answer rate and the uncited retrieved share; defined as in ``docs/metrics.md``) of release
values against a baseline in the **same tenant**, and records each regression as an incident
of kind ``regression`` in the workspace's incident store. Two comparisons, per tenant and per
field F (``model_version`` or ``prompt_template``):

``release``
    A value V of F first seen in the tenant on day D (``since <= D <= until``), against its
    predecessor P: the value of F with the most ``turn`` events in the tenant in the
    ``lookback_days`` (7) days before D. V's events and P's events of the days ``[D, until]``
    are compared (same tenant, same days). When P has no turn left in those days (a full
    switch), P's events of the lookback days are the baseline instead (``basis =
    "before"``): then V and P no longer share days, and the row says so.
``in_place``
    A value that is not new but whose answers changed under the same name (a template edited
    in place, a model served differently). For every day D from ``since`` on, and every value
    V of F with events before and after D, a difference in differences: V's events of the
    ``window_days`` (7) days from D against V's events of the 7 days before D, relative to the
    same change for the other values of F in the tenant (the control), so a change of the
    whole tenant (an outage, a holiday) is not blamed on V. Of the days D on which a series
    (tenant, F, V, metric) regresses, the one with the largest effect is reported as its start
    (the change point estimate); one finding per series and run.

Tests are one-sided (a regression is a change for the worse): rates by a two-proportion z-test
(pooled variance), or Fisher's exact test when an expected cell count is below 5; a difference
in differences of rates by a z-test on the log ratio of risk ratios; latencies by the
Mann-Whitney U test. All the tests of a run (every tenant, field, value, metric and day) are
adjusted together by Benjamini-Hochberg. A regression needs ``q <= fdr`` **and** a material
effect, see :class:`RegressionConfig`.

Every count and latency is read through the Ibis breakdowns of :mod:`assay.metrics` (the
metrics' own definitions) on the workspace's engine (DuckDB, or Spark with ``--engine
pyspark``); nothing returned or recorded holds a user id or any text.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy import stats

from assay._errors import UsageError
from assay._records import jsonable
from assay.evaluation import wilson_interval
from assay.metrics import first_event_day, release_counts, release_latencies, workspace_events
from assay.schema import RELEASE_FIELDS

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from assay.store import Incident, NewIncident, Workspace

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

RegressionMetric = Literal[
    "handoff_rate",
    "thumbs_down_rate",
    "error_rate",
    "latency_p95",
    "uncited_answer_rate",
    "uncited_retrieved_share",
]
REGRESSION_METRICS: tuple[RegressionMetric, ...] = get_args(RegressionMetric)
#: Days reported by default: releases first seen in the last four weeks.
DEFAULT_SINCE_DAYS = 28

# The daily count arrays of a series, and the column of `release_counts` each comes from.
_COUNT_COLUMNS: dict[str, str] = {
    "sessions": "sessions",
    "handoffs": "handoffs",
    "turns": "turns",
    "errors": "errors",
    "feedback": "feedback",
    "down": "thumbs_down",
    "answers": "answers",
    "uncited_answers": "uncited_answers",
    "retrieved": "retrieved",
    "uncited_retrieved": "uncited_retrieved",
}
_COUNT_NAMES: tuple[str, ...] = tuple(_COUNT_COLUMNS)
# Numerator and denominator counts of each rate, in the daily count arrays.
_RATE_COUNTS: dict[str, tuple[str, str]] = {
    "handoff_rate": ("handoffs", "sessions"),
    "thumbs_down_rate": ("down", "feedback"),
    "error_rate": ("errors", "turns"),
    # RAG, "higher is worse": the complement of the scan's cited_rate, and the share of
    # retrieved doc ids never cited. A side without answers has no trials: no row.
    "uncited_answer_rate": ("uncited_answers", "answers"),
    "uncited_retrieved_share": ("uncited_retrieved", "retrieved"),
}
_RAG_RATES: frozenset[str] = frozenset({"uncited_answer_rate", "uncited_retrieved_share"})
_Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class RegressionConfig:
    """Thresholds of :func:`find_regressions`.

    Parameters
    ----------
    fdr : float, default 0.01
        Benjamini-Hochberg false discovery rate over every test of the run; a regression
        needs ``q <= fdr``. Strict because a regression pages a person and the run makes
        thousands of tests.
    min_rate_ratio : float, default 1.2
        A rate regresses when the new rate is at least this times the baseline's ...
    min_rate_diff : float, default 0.005
        ... and at least this much above it in absolute terms (0.5 percentage points): a
        rare event doubling from 0.1% to 0.2% is real but not worth a page.
    min_latency_ratio : float, default 1.1
        Latency regresses when the new p95 is at least this times the baseline's (+10%, about
        what a user starts to notice on a 1-3 s answer, and well above the week-to-week noise
        of a p95 over hundreds of turns).
    min_count : int, default 30
        Fewest units (sessions for the handoff rate, feedback events for the thumbs-down
        rate, turns for the error rate, turns with a latency for the p95, answers for the
        uncited answer rate, retrieved doc ids for the uncited retrieved share) on each side of a
        comparison for it to be tested; a tiny rollout is not judged.
    lookback_days : int, default 7
        Days before a release in which its predecessor is chosen (and the baseline when the
        predecessor is gone after the release), and the "before" window of an in-place
        change: a whole week, so weekdays weigh the same on both sides.
    window_days : int, default 7
        The "after" window of an in-place change (shorter at ``until``).
    in_place : bool, default True
        Also look for in-place changes of values that are not new.
    """

    fdr: float = 0.01
    min_rate_ratio: float = 1.2
    min_rate_diff: float = 0.005
    min_latency_ratio: float = 1.1
    min_count: int = 30
    lookback_days: int = 7
    window_days: int = 7
    in_place: bool = True

    def validate(self) -> None:
        """Raise :class:`~assay.UsageError` on a value out of range."""
        if not (isinstance(self.fdr, float | int) and 0.0 < self.fdr <= 1.0):
            raise UsageError(f"fdr must be in (0, 1] (got {self.fdr!r}); e.g. 0.01")
        for name in ("min_rate_ratio", "min_latency_ratio"):
            value = getattr(self, name)
            if not (isinstance(value, float | int) and value >= 1.0):
                raise UsageError(f"{name} must be a number >= 1 (got {value!r}); e.g. 1.2")
        if not (isinstance(self.min_rate_diff, float | int) and self.min_rate_diff >= 0.0):
            raise UsageError(
                f"min_rate_diff must be a number >= 0 (got {self.min_rate_diff!r}); e.g. 0.005"
            )
        for name in ("min_count", "lookback_days", "window_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be an integer >= 1 (got {value!r})")


@dataclass(frozen=True)
class RegressionReport:
    """What :func:`find_regressions` found.

    Attributes
    ----------
    since, until : datetime.date or None
        The days searched (None for an empty workspace).
    rows : list of dict
        One per comparison shown: every ``release`` comparison (regression or not; ``test``
        is ``"none"`` when a side has fewer than ``min_count`` units) and every ``in_place``
        regression. Keys: see :data:`ROW_COLUMNS`.
    tests : int
        Number of tests adjusted together by Benjamini-Hochberg.
    recorded : list of (Incident or None, str)
        Per regression, its incident and the store's outcome (``opened``, ``extended``,
        ``unchanged``, ``suppressed``); empty on a dry run.
    """

    since: dt.date | None
    until: dt.date | None
    rows: list[dict[str, Any]]
    tests: int
    recorded: list[tuple[Incident | None, str]] = field(default_factory=list)

    @property
    def regressions(self) -> list[dict[str, Any]]:
        """The rows that are regressions."""
        return [r for r in self.rows if r["regression"]]

    @property
    def opened(self) -> int:
        """How many incidents this run opened."""
        return sum(outcome == "opened" for _, outcome in self.recorded)

    def to_arrow(self) -> pa.Table:
        """The rows as an Arrow table with the columns :data:`ROW_COLUMNS`."""
        return pa.Table.from_pylist(
            [{c: r.get(c) for c in ROW_COLUMNS} for r in self.rows], schema=_ROW_SCHEMA
        )

    def summary(self) -> dict[str, Any]:
        """Counts of the run: tests, rows, regressions and the incident outcomes."""
        out: dict[str, Any] = {
            "since": jsonable(self.since),
            "until": jsonable(self.until),
            "tests": self.tests,
            "comparisons": len(self.rows),
            "regressions": len(self.regressions),
        }
        for _, outcome in self.recorded:
            out[outcome] = out.get(outcome, 0) + 1
        return out


_ROW_SCHEMA = pa.schema(
    [
        ("tenant_id", pa.string()),
        ("field", pa.string()),
        ("value", pa.string()),
        ("comparison", pa.string()),
        ("baseline", pa.string()),
        ("basis", pa.string()),
        ("metric", pa.string()),
        ("start", pa.date32()),
        ("end", pa.date32()),
        ("n_new", pa.int64()),
        ("n_base", pa.int64()),
        ("base_value", pa.float64()),
        ("new_value", pa.float64()),
        ("ratio", pa.float64()),
        ("diff", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("test", pa.string()),
        ("p_value", pa.float64()),
        ("q_value", pa.float64()),
        ("material", pa.bool_()),
        ("regression", pa.bool_()),
        ("severity", pa.string()),
    ]
)
#: Columns of :meth:`RegressionReport.to_arrow` (and keys of its rows).
ROW_COLUMNS: tuple[str, ...] = tuple(_ROW_SCHEMA.names)


# -- reading ------------------------------------------------------------------------------------


@dataclass
class _Series:
    """Daily counts and turn latencies of one (tenant, value) of a field."""

    counts: dict[str, I64]
    lat_day: I64
    lat: F64

    def total(self, name: str, lo: int, hi: int) -> int:
        """Sum of a daily count over days ``[lo, hi)`` (day indexes)."""
        return int(self.counts[name][max(lo, 0) : max(hi, 0)].sum())

    def latencies(self, lo: int, hi: int) -> F64:
        a, b = np.searchsorted(self.lat_day, [lo, hi], side="left")
        return self.lat[a:b]


@dataclass
class _FieldData:
    """Everything read for one field: per tenant, per value, its series and first day."""

    series: dict[tuple[str, str], _Series]
    first: dict[tuple[str, str], int]


def _read_field(
    events: ir.Table, fld: str, origin: dt.date, latency_from: dt.date, until: dt.date
) -> _FieldData:
    """The daily counts (from ``origin``) and turn latencies (from ``latency_from``) of every
    (tenant, value) of ``fld`` up to ``until``, from the Ibis breakdowns of
    :mod:`assay.metrics` on the workspace's engine.

    Raw latencies are fetched (the Mann-Whitney tests and the p95 of a union of days need
    them), but only of the days a comparison reads: from ``latency_from`` (the first release
    day searched, less the lookback) to ``until``.
    """
    n_days = (until - origin).days + 1
    counts = release_counts(events, fld, until=until)
    lat = release_latencies(events, fld, since=latency_from, until=until)
    series: dict[tuple[str, str], _Series] = {}
    first: dict[tuple[str, str], int] = {}

    def get(key: tuple[str, str]) -> _Series:
        if key not in series:
            zeros = {n: np.zeros(n_days, dtype=np.int64) for n in _COUNT_NAMES}
            series[key] = _Series(zeros, np.zeros(0, np.int64), np.zeros(0, np.float64))
        return series[key]

    tenants = counts.column("tenant_id").to_pylist()
    values = counts.column("value").to_pylist()
    days = _day_index(counts, origin)
    columns = {name: counts.column(name).to_numpy() for name in _COUNT_COLUMNS.values()}
    for i, (tenant, value) in enumerate(zip(tenants, values, strict=True)):
        s = get((tenant, value))
        d = int(days[i])
        for name, column in _COUNT_COLUMNS.items():
            s.counts[name][d] += int(columns[column][i])
        first[(tenant, value)] = min(first.get((tenant, value), n_days), d)
    tenants = lat.column("tenant_id").to_pylist()
    values = lat.column("value").to_pylist()
    lat_days = _day_index(lat, origin)
    ms = lat.column("latency_ms").to_numpy().astype(np.float64)
    i = 0
    while i < len(tenants):
        j = i
        while j < len(tenants) and tenants[j] == tenants[i] and values[j] == values[i]:
            j += 1
        s = get((tenants[i], values[i]))
        s.lat_day, s.lat = lat_days[i:j], ms[i:j]
        i = j
    return _FieldData(series, first)


def _day_index(table: pa.Table, origin: dt.date) -> I64:
    """The ``day`` column as days since ``origin``."""
    days: I64 = table.column("day").cast(pa.int32()).to_numpy().astype(np.int64)
    offset: I64 = days - (origin - dt.date(1970, 1, 1)).days
    return offset


# -- statistics -----------------------------------------------------------------------------


def newcombe_interval(x1: int, n1: int, x0: int, n0: int) -> tuple[float, float]:
    """Newcombe's hybrid score 95% interval of ``x1/n1 - x0/n0`` (his method 10).

    Built from the two Wilson score intervals; unlike the Wald interval it stays inside
    [-1, 1] and keeps its coverage for small counts and rates near 0.

    Examples
    --------
    >>> lo, hi = newcombe_interval(20, 100, 4, 100)
    >>> round(lo, 4), round(hi, 4)
    (0.0714, 0.2521)
    """
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson_interval(x1, n1, _Z95)
    l0, u0 = wilson_interval(x0, n0, _Z95)
    d = p1 - p0
    return d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt(
        (u1 - p1) ** 2 + (p0 - l0) ** 2
    )


def rate_increase_test(x1: int, n1: int, x0: int, n0: int) -> tuple[str, float]:
    """One-sided test that the rate ``x1/n1`` exceeds ``x0/n0``: (test name, p-value).

    Fisher's exact test (``alternative="greater"``) when an expected cell count of the 2x2
    table under the null is below 5, else the pooled two-proportion z-test, ``p = P(Z >= z)``.
    """
    pooled = (x1 + x0) / (n1 + n0)
    expected = (n1 * pooled, n1 * (1 - pooled), n0 * pooled, n0 * (1 - pooled))
    if min(expected) < 5:
        table = [[x1, n1 - x1], [x0, n0 - x0]]
        return "fisher", float(stats.fisher_exact(table, alternative="greater").pvalue)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    return "z", float(stats.norm.sf((x1 / n1 - x0 / n0) / se))


def _did_rate_test(xs: Sequence[int], ns: Sequence[int]) -> tuple[float, float, float, float]:
    """Log ratio of risk ratios (after/before of V over after/before of the control).

    ``xs``, ``ns``: V after, V before, control after, control before. Returns (ratio of risk
    ratios, one-sided p-value of a z-test that it exceeds 1, half width of its 95% interval
    on the log scale, the z statistic). With a zero or full cell, 0.5 is added to every
    count (and 1 to every total), the usual continuity correction.
    """
    x = np.asarray(xs, dtype=np.float64)
    n = np.asarray(ns, dtype=np.float64)
    if np.any(x == 0) or np.any(x == n):
        x, n = x + 0.5, n + 1.0
    r = x / n
    theta = math.log(r[0] / r[1]) - math.log(r[2] / r[3])
    se = math.sqrt(float(np.sum(1.0 / x - 1.0 / n)))
    return math.exp(theta), float(stats.norm.sf(theta / se)), _Z95 * se, theta / se


def _p95(values: F64) -> float:
    # Exact, linear interpolation: docs/metrics.md (numpy's default percentile).
    return float(np.percentile(values, 95))


def _mwu_greater(new: F64, base: F64) -> tuple[float, float]:
    """One-sided Mann-Whitney U p-value, and U / (n1 n0): P(new > base), ties half."""
    res = stats.mannwhitneyu(new, base, alternative="greater")
    return float(res.pvalue), float(res.statistic) / (len(new) * len(base))


def _severity(metric: str, ratio: float) -> str:
    high, medium = (1.5, 1.25) if metric == "latency_p95" else (2.0, 1.5)
    if ratio >= high:
        return "high"
    return "medium" if ratio >= medium else "low"


# -- comparisons ------------------------------------------------------------------------------


def _row(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
    row.update(kw)
    row.setdefault("material", False)
    row["regression"] = False
    return row


def _rate_row(
    base: dict[str, Any], metric: str, x1: int, n1: int, x0: int, n0: int, cfg: RegressionConfig
) -> dict[str, Any]:
    row = _row(**base, metric=metric, n_new=n1, n_base=n0)
    if n1 < cfg.min_count or n0 < cfg.min_count:
        row["test"] = "none"
        row["base_value"] = x0 / n0 if n0 else None
        row["new_value"] = x1 / n1 if n1 else None
        return row
    r1, r0 = x1 / n1, x0 / n0
    test, p = rate_increase_test(x1, n1, x0, n0)
    lo, hi = newcombe_interval(x1, n1, x0, n0)
    ratio = r1 / r0 if r0 > 0 else (math.inf if r1 > 0 else 1.0)
    row.update(
        base_value=r0,
        new_value=r1,
        ratio=ratio,
        diff=r1 - r0,
        ci_low=lo,
        ci_high=hi,
        test=test,
        p_value=p,
        material=r1 - r0 >= cfg.min_rate_diff and ratio >= cfg.min_rate_ratio,
    )
    return row


def _latency_row(base: dict[str, Any], new: F64, old: F64, cfg: RegressionConfig) -> dict[str, Any]:
    row = _row(**base, metric="latency_p95", n_new=len(new), n_base=len(old))
    if len(new) < cfg.min_count or len(old) < cfg.min_count:
        row["test"] = "none"
        row["base_value"] = _p95(old) if len(old) else None
        row["new_value"] = _p95(new) if len(new) else None
        return row
    p1, p0 = _p95(new), _p95(old)
    ratio = p1 / p0 if p0 > 0 else math.inf
    row.update(
        base_value=p0,
        new_value=p1,
        ratio=ratio,
        diff=p1 - p0,
        test="mann-whitney",
        p_value=_mwu_greater(new, old)[0],
        material=ratio >= cfg.min_latency_ratio,
    )
    return row


def _release_rows(
    data: _FieldData,
    fld: str,
    origin: dt.date,
    since_i: int,
    until_i: int,
    cfg: RegressionConfig,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    by_tenant: dict[str, list[str]] = defaultdict(list)
    for tenant, value in data.series:
        by_tenant[tenant].append(value)
    for (tenant, value), d in sorted(data.first.items()):
        if not since_i <= d <= until_i:
            continue
        lo = d - cfg.lookback_days
        turns = {
            v: data.series[(tenant, v)].total("turns", lo, d)
            for v in by_tenant[tenant]
            if v != value
        }
        turns = {v: n for v, n in turns.items() if n > 0}
        if not turns:
            continue  # nothing before it in the tenant: a first value, not a release
        pred = min(turns, key=lambda v: (-turns[v], v))
        new, old = data.series[(tenant, value)], data.series[(tenant, pred)]
        same_days = old.total("turns", d, until_i + 1) > 0
        a, b = (d, until_i + 1) if same_days else (lo, d)
        base = {
            "tenant_id": tenant,
            "field": fld,
            "value": value,
            "comparison": "release",
            "baseline": pred,
            "basis": "same_days" if same_days else "before",
            "start": origin + dt.timedelta(days=d),
            "end": origin + dt.timedelta(days=until_i),
        }
        for metric, (num, den) in _RATE_COUNTS.items():
            n1, n0 = new.total(den, d, until_i + 1), old.total(den, a, b)
            if metric in _RAG_RATES and min(n1, n0) == 0:
                continue  # a side without answers (no RAG) has no trials: nothing to compare
            rows.append(
                _rate_row(
                    base, metric, new.total(num, d, until_i + 1), n1, old.total(num, a, b), n0, cfg
                )
            )
        rows.append(_latency_row(base, new.latencies(d, until_i + 1), old.latencies(a, b), cfg))
    return rows


def _in_place(
    data: _FieldData,
    fld: str,
    origin: dt.date,
    since_i: int,
    until_i: int,
    cfg: RegressionConfig,
) -> list[dict[str, Any]]:
    """Every tested (tenant, value, metric, day) of the difference in differences."""
    rows: list[dict[str, Any]] = []
    by_tenant: dict[str, list[str]] = defaultdict(list)
    for tenant, value in sorted(data.series):
        by_tenant[tenant].append(value)
    k = cfg.min_count
    for tenant, values in by_tenant.items():
        if len(values) < 2:
            continue  # no control: a change of V cannot be told from one of the tenant
        sums: dict[str, I64] = {
            name: np.sum([data.series[(tenant, v)].counts[name] for v in values], axis=0)
            for name in _COUNT_NAMES
        }
        all_lat = {v: data.series[(tenant, v)] for v in values}
        for d in range(max(since_i, cfg.lookback_days), until_i + 1):
            b0, b1 = d - cfg.lookback_days, d
            a0, a1 = d, min(d + cfg.window_days, until_i + 1)
            for value in values:
                s = data.series[(tenant, value)]
                if data.first[(tenant, value)] > b0:
                    continue  # not present for a whole "before" window: a release, or young
                base = {
                    "tenant_id": tenant,
                    "field": fld,
                    "value": value,
                    "comparison": "in_place",
                    "baseline": "before",
                    "basis": "did",
                    "start": origin + dt.timedelta(days=d),
                    "end": origin + dt.timedelta(days=until_i),
                }
                for metric, (num, den) in _RATE_COUNTS.items():
                    xv = (s.total(num, a0, a1), s.total(num, b0, b1))
                    nv = (s.total(den, a0, a1), s.total(den, b0, b1))
                    xc = tuple(
                        int(sums[num][lo:hi].sum()) - x
                        for (lo, hi), x in zip(((a0, a1), (b0, b1)), xv, strict=True)
                    )
                    nc = tuple(
                        int(sums[den][lo:hi].sum()) - n
                        for (lo, hi), n in zip(((a0, a1), (b0, b1)), nv, strict=True)
                    )
                    if min(*nv, *nc) < k:
                        continue
                    ratio, p, half, z = _did_rate_test((*xv, *xc), (*nv, *nc))
                    rv_a, rv_b = xv[0] / nv[0], xv[1] / nv[1]
                    rc_a, rc_b = xc[0] / nc[0], xc[1] / nc[1]
                    expected = rv_b * rc_a / rc_b if rc_b > 0 else rv_b
                    rows.append(
                        _row(
                            **base,
                            metric=metric,
                            n_new=nv[0],
                            n_base=nv[1],
                            base_value=expected,
                            new_value=rv_a,
                            ratio=ratio,
                            diff=rv_a - expected,
                            ci_low=ratio * math.exp(-half),
                            ci_high=ratio * math.exp(half),
                            test="did-z",
                            p_value=p,
                            _strength=z,
                            material=ratio >= cfg.min_rate_ratio
                            and rv_a - expected >= cfg.min_rate_diff,
                        )
                    )
                va, vb = s.latencies(a0, a1), s.latencies(b0, b1)
                others = [o for v, o in all_lat.items() if v != value]
                ca = np.concatenate([o.latencies(a0, a1) for o in others])
                cb = np.concatenate([o.latencies(b0, b1) for o in others])
                if min(len(va), len(vb), len(ca), len(cb)) < k:
                    continue
                shift = float(np.median(ca) / np.median(cb))
                p, cles = _mwu_greater(va / shift, vb)
                control = _p95(ca) / _p95(cb)
                expected = _p95(vb) * control
                observed = _p95(va)
                ratio = observed / expected
                rows.append(
                    _row(
                        **base,
                        metric="latency_p95",
                        n_new=len(va),
                        n_base=len(vb),
                        base_value=expected,
                        new_value=observed,
                        ratio=ratio,
                        diff=observed - expected,
                        test="did-mann-whitney",
                        p_value=p,
                        _strength=cles,
                        material=ratio >= cfg.min_latency_ratio,
                    )
                )
    return rows


def _change_points(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per in-place series, the regressing day whose test is strongest (earliest on a tie).

    The strength is the test's standardised effect, not the raw ratio: the z statistic for a
    rate, ``U / (n1 n0)`` (the probability that a latency after beats one before, once the
    control's shift is removed) for latency. It peaks where the "before" window is all old
    and the "after" window all new, i.e. at the change, and is far less noisy than a ratio
    of two p95s.
    """
    best: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for r in rows:
        if not r["regression"]:
            continue
        key = (r["tenant_id"], r["field"], r["value"], r["metric"])
        kept = best.get(key)
        if kept is None or r["_strength"] > kept["_strength"]:
            best[key] = r
    for r in best.values():
        del r["_strength"]
    return list(best.values())


# -- the run ------------------------------------------------------------------------------------


def find_regressions(
    ws: Workspace,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    fields: Sequence[str] = RELEASE_FIELDS,
    config: RegressionConfig | None = None,
    record: bool = True,
) -> RegressionReport:
    """Compare release values of ``fields`` against their baselines; record regressions.

    See the module docstring and ``docs/drift.md`` ("Release regressions") for the exact
    definitions. Per tenant and field, every value first seen on a day from ``since`` to
    ``until`` is compared with its predecessor over the days from its first day to ``until``;
    with ``config.in_place``, values that are not new are also checked for a change in place
    (a difference in differences against the field's other values). A row is a regression
    when its Benjamini-Hochberg q-value (over every test of the run) is at most
    ``config.fdr`` and its effect is material.

    Each regression is recorded (unless ``record`` is false) as an incident of kind
    ``regression``: key ``regression|METRIC|tenant=T|FIELD=VALUE``, slice ``{FIELD: VALUE}``,
    days from the release (or the change point) to ``until``, direction ``up``, ``expected``
    the baseline's value, ``observed`` the new value's, ``score`` the q-value, severity by the
    ratio (rates: ``high`` from 2x, ``medium`` from 1.5x; latency p95: ``high`` from 1.5x,
    ``medium`` from 1.25x; else ``low``), and the counts, interval, test and baseline in
    ``details``. Recording the same regression again changes nothing.

    Parameters
    ----------
    ws : assay.Workspace
        An open workspace; its engine (DuckDB, or Spark with ``engine="pyspark"``) runs the
        queries, with the same result. A bare ``assay.store.Workspace`` uses DuckDB.
    since : datetime.date, optional
        First release day searched; default ``until`` minus 27 days (four weeks).
    until : datetime.date, optional
        Last day compared; default the workspace's last event day.
    fields : sequence of {"model_version", "prompt_template"}
        The release fields; default both.
    config : RegressionConfig, optional
        Thresholds; default :class:`RegressionConfig()`.
    record : bool, default True
        Record the regressions as incidents; False for a dry run.

    Returns
    -------
    RegressionReport

    Raises
    ------
    UsageError
        An unknown field, a bad config, ``since`` after ``until``, ``until`` after the last
        stored day.
    """
    cfg = config or RegressionConfig()
    cfg.validate()
    chosen = _check_fields(fields)
    for name, value in (("since", since), ("until", until)):
        if value is not None and (isinstance(value, dt.datetime) or not isinstance(value, dt.date)):
            raise UsageError(
                f"{name} must be a datetime.date (got {type(value).__name__}); "
                "pass e.g. datetime.date(2026, 1, 5)"
            )
    last = ws.last_event_day()
    if last is None:
        return RegressionReport(since=since, until=until, rows=[], tests=0)
    if until is not None and until > last:
        raise UsageError(
            f"until {until} is after the last stored event day {last}; pass a day up to {last}"
        )
    until = until or last
    since = since or until - dt.timedelta(days=DEFAULT_SINCE_DAYS - 1)
    if since > until:
        raise UsageError(f"since ({since}) must not be after until ({until}); swap them")
    events = workspace_events(ws)
    first_day = first_event_day(events)
    assert first_day is not None  # the workspace has a last event day, so a first one too
    origin = first_day
    since_i = max((since - origin).days, 0)
    until_i = (until - origin).days
    latency_from = max(since - dt.timedelta(days=cfg.lookback_days), origin)
    releases: list[dict[str, Any]] = []
    in_place: list[dict[str, Any]] = []
    for fld in chosen:
        data = _read_field(events, fld, origin, latency_from, until)
        releases += _release_rows(data, fld, origin, since_i, until_i, cfg)
        if cfg.in_place:
            in_place += _in_place(data, fld, origin, since_i, until_i, cfg)
    tested = [r for r in releases + in_place if r["p_value"] is not None]
    if tested:
        q = stats.false_discovery_control([r["p_value"] for r in tested], method="bh")
        for r, qv in zip(tested, q, strict=True):
            r["q_value"] = float(qv)
            r["regression"] = bool(r["material"] and qv <= cfg.fdr)
            if r["regression"]:
                r["severity"] = _severity(r["metric"], r["ratio"])
    rows = releases + _change_points(in_place)
    rows.sort(key=lambda r: (r["tenant_id"], r["field"], r["start"], r["value"], r["metric"]))
    report = RegressionReport(since=since, until=until, rows=rows, tests=len(tested))
    if record:
        for r in report.regressions:
            report.recorded.append(ws.incidents.record(_incident(r)))
    return report


def _check_fields(fields: Sequence[str]) -> list[str]:
    if isinstance(fields, str):
        raise UsageError(
            f"fields must be a list of names (got the string {fields[:60]!r}); "
            "pass e.g. ['model_version']"
        )
    chosen = list(fields)
    bad = [f for f in chosen if f not in RELEASE_FIELDS]
    if bad or not chosen or len(set(chosen)) != len(chosen):
        raise UsageError(
            f"fields must be distinct names among {', '.join(RELEASE_FIELDS)} "
            f"(got {[str(f)[:40] for f in chosen]}); pass one or both"
        )
    return chosen


def _incident(r: dict[str, Any]) -> NewIncident:
    from assay.store import NewIncident

    details = {
        k: jsonable(r[k])
        for k in (
            "comparison",
            "field",
            "value",
            "baseline",
            "basis",
            "n_new",
            "n_base",
            "ratio",
            "diff",
            "ci_low",
            "ci_high",
            "test",
            "p_value",
            "q_value",
        )
    }
    return NewIncident(
        kind="regression",
        key=f"regression|{r['metric']}|tenant={r['tenant_id']}|{r['field']}={r['value']}",
        tenant_id=r["tenant_id"],
        metric=r["metric"],
        slice={r["field"]: r["value"]},
        start=r["start"],
        end=r["end"],
        direction="up",
        severity=r["severity"],
        expected=r["base_value"],
        observed=r["new_value"],
        score=r["q_value"],
        details=details,
    )


__all__ = [
    "DEFAULT_SINCE_DAYS",
    "REGRESSION_METRICS",
    "RELEASE_FIELDS",
    "ROW_COLUMNS",
    "RegressionConfig",
    "RegressionReport",
    "find_regressions",
    "newcombe_interval",
    "rate_increase_test",
]
