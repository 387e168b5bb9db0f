r"""Paired comparison of two runs on the same queries.

For each metric and query :math:`i`, the difference :math:`d_i = b_i - a_i` (run B minus run
A: positive means B retrieves better). Over the :math:`n` queries of a slice:

- the mean difference :math:`\bar d` (equal to the difference of the two means);
- a paired percentile bootstrap interval: queries resampled with replacement, the same
  resample for A and B (:func:`assay.rag._retrieval.bootstrap_means` on :math:`d`);
- a paired randomisation test of "A and B are exchangeable on each query": the signs of the
  :math:`d_i` flipped at random, the statistic :math:`\bar d`, two-sided p-value
  :math:`\min(1, 2 \min(P(T \le \bar d), P(T \ge \bar d)))`. All :math:`2^n` sign patterns
  when :math:`2^n \le` ``n_permutations`` (exact; the same p-value as
  ``scipy.stats.permutation_test(..., permutation_type="samples")``); otherwise
  ``n_permutations`` random patterns, with the observed one counted in:
  :math:`(c + 1)/(N + 1)`. Means within :math:`100\epsilon \max(|\bar d|,
  \overline{|d|})` of each other count as equal (scipy uses :math:`100\epsilon|\bar d|`,
  which lets rounding decide when :math:`\bar d` is near 0);
- the effect size Cohen's :math:`d_z = \bar d / s_d` (:math:`s_d` the standard deviation with
  :math:`n - 1`): 0 when every :math:`d_i` is 0, NaN when :math:`n < 2` or every query moved by
  the same non-zero amount (:math:`s_d = 0`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from assay._errors import UsageError
from assay.rag._qrels import FieldValue, Qrels, Run
from assay.rag._retrieval import (
    _CHUNK_CELLS,
    DEFAULT_METRICS,
    DEFAULT_N_BOOT,
    FloatMatrix,
    Missing,
    PerQuery,
    bootstrap_means,
    check_boot,
    evaluated_queries,
    per_query,
    percentile_interval,
    slice_groups,
)

DEFAULT_N_PERMUTATIONS = 10_000
_TIE = np.finfo(np.float64).eps * 100


def _null_counts(
    diffs: FloatMatrix, signs: npt.NDArray[np.floating[Any]], observed: FloatMatrix
) -> FloatMatrix:
    """Per column, how many sign patterns give a mean at most / at least the observed one."""
    null = signs @ diffs / diffs.shape[0]
    # Means equal in exact arithmetic can differ by rounding of order eps * mean(|d|): scipy's
    # tolerance (relative to the observed mean alone) misses that when the mean is near 0.
    gamma = _TIE * np.maximum(np.abs(observed), np.abs(diffs).mean(axis=0))
    return np.stack(
        [(null <= observed + gamma).sum(axis=0), (null >= observed - gamma).sum(axis=0)]
    ).astype(np.float64)


def sign_flip_test(
    diffs: npt.ArrayLike,
    *,
    n_permutations: int = DEFAULT_N_PERMUTATIONS,
    seed: int | np.random.Generator | None = 0,
) -> FloatMatrix:
    """Two-sided p-values of the paired randomisation (sign-flip) test of each column's mean.

    ``diffs`` has one row per query and one column per metric. Exact over all ``2**n`` sign
    patterns when that is at most ``n_permutations``, else Monte Carlo (see the module
    docstring). NaN for a column with no rows.

    Examples
    --------
    >>> sign_flip_test([1.0, 2.0, 3.0]).round(4).tolist()
    [0.25]
    """
    if (
        isinstance(n_permutations, bool)
        or not isinstance(n_permutations, int)
        or (n_permutations < 1)
    ):
        raise UsageError(
            f"n_permutations must be a positive integer, e.g. 10000; got {n_permutations!r}"
        )
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim == 1:
        d = d[:, None]
    n, m = d.shape
    if n == 0:
        return np.full(m, np.nan)
    observed = d.mean(axis=0)
    counts = np.zeros((2, m))
    exact = n < 63 and 2**n <= n_permutations
    if exact:
        total = 2**n
        chunk = max(1, _CHUNK_CELLS // n)
        for start in range(0, total, chunk):
            codes = np.arange(start, min(total, start + chunk), dtype=np.int64)
            bits = (codes[:, None] >> np.arange(n, dtype=np.int64)) & 1
            counts += _null_counts(d, 1.0 - 2.0 * bits, observed)
        p = counts / total
    else:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        chunk = max(1, _CHUNK_CELLS // n)
        for start in range(0, n_permutations, chunk):
            size = min(n_permutations, start + chunk) - start
            signs = 1.0 - 2.0 * rng.integers(0, 2, size=(size, n))
            counts += _null_counts(d, signs, observed)
        p = (counts + 1) / (n_permutations + 1)
    return np.asarray(np.clip(2 * p.min(axis=0), 0.0, 1.0), dtype=np.float64)


def cohens_dz(diffs: npt.ArrayLike) -> FloatMatrix:
    """Cohen's d_z of each column: mean over standard deviation (``ddof=1``).

    0 when a column is all zeros; NaN with fewer than 2 rows or a constant non-zero column.

    Examples
    --------
    >>> cohens_dz([[1.0, 0.0], [3.0, 0.0]]).round(6).tolist()
    [1.414214, 0.0]
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim == 1:
        d = d[:, None]
    out = np.full(d.shape[1], np.nan)
    if d.shape[0] < 2:
        return out
    mean = d.mean(axis=0)
    sd = d.std(axis=0, ddof=1)
    zero = np.all(d == 0, axis=0)
    ok = sd > 0
    out[ok] = mean[ok] / sd[ok]
    out[zero] = 0.0
    return out


@dataclass(frozen=True)
class PairedReport:
    """Two runs compared on the same queries.

    ``summary`` has one dict per (slice, metric): ``by``, ``slice``, ``metric``,
    ``n_queries``, ``mean_a``, ``mean_b``, ``diff`` (B minus A), ``ci_low``, ``ci_high`` (the
    paired bootstrap interval of ``diff``), ``p_value`` (paired randomisation test) and
    ``effect_size`` (Cohen's d_z).
    """

    run_a: str
    run_b: str
    metrics: tuple[str, ...]
    per_query_a: PerQuery
    per_query_b: PerQuery
    summary: list[dict[str, Any]]
    missing: Missing
    alpha: float
    n_boot: int
    n_permutations: int


def compare_runs(
    qrels: Qrels,
    run_a: Run,
    run_b: Run,
    metrics: Iterable[str] | str = DEFAULT_METRICS,
    *,
    by: str | None = None,
    queries: Mapping[str, Mapping[str, FieldValue]] | None = None,
    missing: Missing = "zero",
    n_boot: int = DEFAULT_N_BOOT,
    n_permutations: int = DEFAULT_N_PERMUTATIONS,
    alpha: float = 0.05,
    seed: int | None = 0,
) -> PairedReport:
    """Compare run B with run A on the same queries: mean difference (B - A), paired bootstrap
    interval, randomisation-test p-value and Cohen's d_z, per metric and slice.

    Parameters
    ----------
    qrels, run_a, run_b : Qrels, Run, Run
        The judgements and the two runs.
    metrics, by, queries, n_boot, alpha, seed
        As in :func:`assay.rag.evaluate_run`.
    missing : {"zero", "skip"}
        ``zero``: every query of the qrels, 0 where a run does not answer it; ``skip``: only
        the queries of the qrels that both runs answer.
    n_permutations : int
        Sign patterns of the randomisation test (exact when ``2**n`` is at most this).

    Examples
    --------
    >>> q = Qrels({"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}})
    >>> a = Run({"q1": {"x": 2.0, "a": 1.0}, "q2": {"x": 2.0, "b": 1.0}, "q3": {"c": 1.0}}, "a")
    >>> b = Run({"q1": {"a": 1.0}, "q2": {"b": 1.0}, "q3": {"c": 1.0}}, "b")
    >>> row = compare_runs(q, a, b, ["RR"], n_boot=200).summary[0]
    >>> round(row["diff"], 4), row["p_value"], row["effect_size"] > 0
    (0.3333, 0.5, True)
    """
    n_boot, alpha = check_boot(n_boot, alpha)
    ids = evaluated_queries(qrels, [run_a, run_b], missing)
    pa = per_query(qrels, run_a, metrics, query_ids=ids)
    pb = per_query(qrels, run_b, metrics, query_ids=ids)
    diffs = pb.values - pa.values
    sources = [queries or {}, qrels.fields, run_a.fields, run_b.fields]
    summary: list[dict[str, Any]] = []
    nan = np.full(len(pa.metrics), np.nan)
    for field, key, idx in slice_groups(by, ids, sources):
        d = diffs[idx]
        low, high = percentile_interval(bootstrap_means(d, n_boot=n_boot, seed=seed), alpha)
        p = sign_flip_test(d, n_permutations=n_permutations, seed=seed)
        dz = cohens_dz(d)
        mean_a = pa.values[idx].mean(axis=0) if len(idx) else nan
        mean_b = pb.values[idx].mean(axis=0) if len(idx) else nan
        mean_d = d.mean(axis=0) if len(idx) else nan
        for j, name in enumerate(pa.metrics):
            summary.append(
                {
                    "by": field,
                    "slice": key,
                    "metric": name,
                    "n_queries": len(idx),
                    "mean_a": float(mean_a[j]),
                    "mean_b": float(mean_b[j]),
                    "diff": float(mean_d[j]),
                    "ci_low": float(low[j]),
                    "ci_high": float(high[j]),
                    "p_value": float(p[j]),
                    "effect_size": float(dz[j]),
                }
            )
    return PairedReport(
        run_a.name, run_b.name, pa.metrics, pa, pb, summary, missing, alpha, n_boot, n_permutations
    )


__all__ = ["DEFAULT_N_PERMUTATIONS", "PairedReport", "cohens_dz", "compare_runs", "sign_flip_test"]
