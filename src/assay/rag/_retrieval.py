r"""Retrieval metrics on a labelled set, per query and averaged, with bootstrap intervals.

The metrics are trec_eval's, computed by trec_eval's C code (pytrec_eval-terrier) through
ir-measures; assay adds the slicing, the intervals and the paired comparison
(:mod:`assay.rag._paired`). Definitions, for one query with judged relevance :math:`r(d)`
(relevant means :math:`r(d) \ge 1`), :math:`R` relevant documents in the qrels, and the run's
documents ordered by score descending, ties by doc_id descending (:math:`d_1, d_2, \dots`;
unjudged documents count as not relevant):

- ``R@k`` (trec_eval ``recall_k``): relevant among :math:`d_1..d_k`, over :math:`R`.
- ``P@k`` (``P_k``): relevant among :math:`d_1..d_k`, over :math:`k` (also when fewer than
  :math:`k` documents were retrieved).
- ``RR`` (``recip_rank``; its mean is MRR): :math:`1/i` for the first relevant :math:`d_i`.
- ``nDCG@k`` (``ndcg_cut_k``): :math:`\sum_{i \le k} g(d_i)/\log_2(i+1)` over the same sum
  for the ideal ordering of the judged documents, with gain :math:`g = \max(r, 0)`.
- ``AP`` (``map``; its mean is MAP): the precision at the rank of each relevant retrieved
  document, summed, over :math:`R`.
- ``Rprec`` (``Rprec``): relevant among :math:`d_1..d_R`, over :math:`R`.

Every metric is 0 for a query with no relevant judgement (:math:`R = 0`). A query of the qrels
that the run does not answer counts as 0 (trec_eval ``-c``, ``missing="zero"``) or is left out
(trec_eval's default, ``missing="skip"``); queries of the run missing from the qrels are left
out, as trec_eval does.

The interval of a mean is the percentile bootstrap over queries: ``n_boot`` resamples of the
queries with replacement, each one's mean, and their ``alpha/2`` and ``1 - alpha/2`` quantiles
(``np.quantile``, linear), seeded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from assay._errors import EngineError, UsageError
from assay.rag._qrels import FieldValue, Qrels, Run

Missing = Literal["zero", "skip"]
FloatMatrix = npt.NDArray[np.float64]

#: The metrics ``assay rag eval`` reports unless told otherwise.
DEFAULT_METRICS: tuple[str, ...] = ("R@10", "P@10", "RR", "nDCG@10", "AP", "Rprec")
DEFAULT_N_BOOT = 2000
_INSTALL_HINT = "pip install 'assay[rag]'"
# Cells of one bootstrap chunk (replicates x queries): bounds memory at any size.
_CHUNK_CELLS = 2**21

_CUTOFF = re.compile(
    r"(?P<family>r|recall|p|precision|ndcg|ndcg_cut)(?:@|_)(?P<k>\d+)", re.IGNORECASE
)
_PLAIN = {
    "rr": "RR",
    "mrr": "RR",
    "recip_rank": "RR",
    "ap": "AP",
    "map": "AP",
    "rprec": "Rprec",
    "r-prec": "Rprec",
    "r-precision": "Rprec",
    "ndcg": "nDCG",
}
_FAMILY = {
    "r": "R",
    "recall": "R",
    "p": "P",
    "precision": "P",
    "ndcg": "nDCG",
    "ndcg_cut": "nDCG",
}
_NAMES_HELP = (
    "recall@k (R@k), precision@k (P@k), RR (MRR), nDCG@k, AP (MAP) or Rprec (R-precision), "
    "k a positive integer; trec_eval's names (recall_10, P_10, ndcg_cut_10, map) work too"
)


def metric_name(text: str) -> str:
    """The canonical (ir-measures) name of a retrieval metric given by any of its names.

    Examples
    --------
    >>> [metric_name(t) for t in ("recall@10", "MRR", "ndcg_cut_5", "MAP", "R-precision")]
    ['R@10', 'RR', 'nDCG@5', 'AP', 'Rprec']
    """
    raw = text.strip()
    if raw.lower() in _PLAIN:
        return _PLAIN[raw.lower()]
    match = _CUTOFF.fullmatch(raw)
    if match is None or int(match["k"]) < 1:
        raise UsageError(f"unknown retrieval metric {raw[:40]!r}; use {_NAMES_HELP}")
    return f"{_FAMILY[match['family'].lower()]}@{int(match['k'])}"


def metric_names(names: Iterable[str] | str) -> tuple[str, ...]:
    """Canonical names of a list of metrics (or one comma-separated string), in order, without
    repeats."""
    items = names.split(",") if isinstance(names, str) else list(names)
    out = [metric_name(n) for n in items if n.strip()]
    if not out:
        raise UsageError(f"no retrieval metric given; use {_NAMES_HELP}")
    return tuple(dict.fromkeys(out))


def _ir_measures() -> Any:
    try:
        import ir_measures
    except ImportError:
        raise EngineError(
            f"retrieval metrics need ir-measures, which is not installed; run {_INSTALL_HINT}"
        ) from None
    return ir_measures


@dataclass(frozen=True)
class PerQuery:
    """Metric values per query: ``values[i, j]`` is metric ``metrics[j]`` on ``query_ids[i]``."""

    query_ids: tuple[str, ...]
    metrics: tuple[str, ...]
    values: FloatMatrix

    def rows(self) -> list[dict[str, Any]]:
        """One dict per query: ``query_id`` and each metric."""
        return [
            {"query_id": q, **dict(zip(self.metrics, map(float, row), strict=True))}
            for q, row in zip(self.query_ids, self.values, strict=True)
        ]


def _check_missing(missing: object) -> Missing:
    if missing not in ("zero", "skip"):
        raise UsageError(
            f"missing must be 'zero' (unanswered queries score 0, trec_eval -c) or 'skip' "
            f"(left out); got {str(missing)[:20]!r}"
        )
    return missing


def evaluated_queries(qrels: Qrels, runs: Sequence[Run], missing: Missing) -> tuple[str, ...]:
    """The queries a metric is averaged over: those of the qrels, or with ``missing="skip"``
    those of the qrels every run answers; sorted."""
    queries = set(qrels.judgements)
    if _check_missing(missing) == "skip":
        for run in runs:
            queries &= set(run.scores)
    return tuple(sorted(queries))


def per_query(
    qrels: Qrels,
    run: Run,
    metrics: Iterable[str] | str = DEFAULT_METRICS,
    *,
    missing: Missing = "zero",
    query_ids: Sequence[str] | None = None,
) -> PerQuery:
    """Each metric on each query, computed by trec_eval (pytrec_eval) through ir-measures.

    Parameters
    ----------
    qrels, run : Qrels, Run
        The judgements and the ranking (:func:`read_qrels`, :func:`read_run`).
    metrics : names or a comma-separated string
        Any names :func:`metric_name` reads.
    missing : {"zero", "skip"}
        A query of the qrels that the run does not answer: 0 (trec_eval ``-c``) or left out.
    query_ids : sequence of str, optional
        The queries to report, in this order (default: :func:`evaluated_queries`).

    Examples
    --------
    >>> q = Qrels({"q1": {"a": 1, "b": 0}, "q2": {"c": 1}})
    >>> r = Run({"q1": {"b": 2.0, "a": 1.0}})
    >>> pq = per_query(q, r, ["RR", "P@2"])
    >>> pq.query_ids, pq.values.tolist()
    (('q1', 'q2'), [[0.5, 0.5], [0.0, 0.0]])
    """
    names = metric_names(metrics)
    ids = (
        tuple(query_ids)
        if query_ids is not None
        else evaluated_queries(qrels, [run], _check_missing(missing))
    )
    irm = _ir_measures()
    measures = [irm.parse_measure(n) for n in names]
    column = {str(m): j for j, m in enumerate(measures)}
    row = {q: i for i, q in enumerate(ids)}
    values = np.zeros((len(ids), len(names)))
    wanted = set(ids)
    judged = {q: dict(d) for q, d in qrels.judgements.items() if q in wanted}
    ranked = {q: dict(d) for q, d in run.scores.items() if q in wanted}
    if judged and ranked:
        # The pytrec_eval provider explicitly: trec_eval's own code, whatever else is installed.
        for m in irm.pytrec_eval.iter_calc(measures, judged, ranked):
            values[row[m.query_id], column[str(m.measure)]] = m.value
    return PerQuery(ids, names, values)


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def check_boot(n_boot: object, alpha: object) -> tuple[int, float]:
    """``n_boot`` as a positive int and ``alpha`` in (0, 1), or a :class:`UsageError`."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise UsageError(f"n_boot must be a positive integer, e.g. 2000; got {n_boot!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise UsageError(f"alpha must be in (0, 1), e.g. 0.05 for a 95% interval; got {alpha!r}")
    return int(n_boot), float(alpha)


def bootstrap_means(
    values: npt.ArrayLike, *, n_boot: int = DEFAULT_N_BOOT, seed: int | None = 0
) -> FloatMatrix:
    """Bootstrap replicates of each column's mean: rows resampled with replacement.

    ``values`` has one row per query and one column per metric; the result has one row per
    replicate (``n_boot``) and one column per metric. All columns share the resampled rows, so
    replicates of a difference are differences of replicates. Vectorised in chunks of about
    ``2**21`` cells; depends only on the data, ``n_boot`` and ``seed``.

    Examples
    --------
    >>> bootstrap_means([[1.0], [1.0]], n_boot=3).tolist()
    [[1.0], [1.0], [1.0]]
    """
    data = np.asarray(values, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    n, m = data.shape
    out = np.full((n_boot, m), np.nan)
    if n == 0:
        return out
    rng = _rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        for j in range(m):
            out[start:stop, j] = data[idx, j].mean(axis=1)
    return out


def percentile_interval(replicates: FloatMatrix, alpha: float) -> tuple[FloatMatrix, FloatMatrix]:
    """The ``alpha/2`` and ``1 - alpha/2`` quantiles of each column (NaN if all NaN)."""
    if replicates.shape[0] == 0 or np.isnan(replicates).all():
        nan = np.full(replicates.shape[1], np.nan)
        return nan, nan.copy()
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2], axis=0)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def slice_values(
    by: str,
    query_ids: Sequence[str],
    sources: Sequence[Mapping[str, Mapping[str, FieldValue]]],
) -> list[FieldValue]:
    """Each query's value of field ``by`` from the first source that has it (None if none)."""
    if not any(by in f for source in sources for f in source.values()):
        known = sorted({k for source in sources for f in source.values() for k in f})
        hint = f"fields found: {', '.join(known[:10])}" if known else "no per-query field found"
        raise UsageError(
            f"no query has the field {by[:40]!r} ({hint}); add it to a queries file "
            "(--queries, JSONL of query_id and fields) or as a key of the JSONL qrels or run"
        )
    out: list[FieldValue] = []
    for q in query_ids:
        value: FieldValue = None
        for source in sources:
            if by in source.get(q, {}):
                value = source[q][by]
                break
        out.append(value)
    return out


#: A group of queries: the slice field (None: all queries), its value, the rows.
Group = tuple[str | None, FieldValue, npt.NDArray[np.intp]]


def slice_groups(
    by: str | None,
    query_ids: Sequence[str],
    sources: Sequence[Mapping[str, Mapping[str, FieldValue]]],
) -> list[Group]:
    """All queries, then with ``by`` the rows of each value of that field (sorted by their
    text; None, no value, last)."""
    groups: list[Group] = [(None, None, np.arange(len(query_ids)))]
    if by is None:
        return groups
    rows: dict[FieldValue, list[int]] = {}
    for i, v in enumerate(slice_values(by, query_ids, sources)):
        rows.setdefault(v, []).append(i)
    keys = sorted(rows, key=lambda v: (v is None, str(v)))
    return groups + [(by, k, np.asarray(rows[k], dtype=np.intp)) for k in keys]


@dataclass(frozen=True)
class RetrievalReport:
    """Retrieval metrics of one run: per query, and averaged per slice with intervals.

    ``summary`` has one dict per (slice, metric): ``by`` (the slice field, None for all
    queries), ``slice`` (its value), ``metric``, ``n_queries``, ``mean``, ``ci_low``,
    ``ci_high``.
    """

    run: str
    metrics: tuple[str, ...]
    per_query: PerQuery
    summary: list[dict[str, Any]]
    missing: Missing
    alpha: float
    n_boot: int


def evaluate_run(
    qrels: Qrels,
    run: Run,
    metrics: Iterable[str] | str = DEFAULT_METRICS,
    *,
    by: str | None = None,
    queries: Mapping[str, Mapping[str, FieldValue]] | None = None,
    missing: Missing = "zero",
    n_boot: int = DEFAULT_N_BOOT,
    alpha: float = 0.05,
    seed: int | None = 0,
) -> RetrievalReport:
    """Retrieval metrics of a run on a labelled set, per query and averaged, with intervals.

    Parameters
    ----------
    qrels, run : Qrels, Run
        From :func:`read_qrels` and :func:`read_run`.
    metrics : names or a comma-separated string
        Default :data:`DEFAULT_METRICS`.
    by : str, optional
        A per-query field to slice by (from ``queries``, then the qrels', then the run's
        fields); queries without it form the slice ``None``.
    queries : mapping, optional
        Per-query fields (:func:`read_queries`).
    missing : {"zero", "skip"}
        Unanswered queries of the qrels: 0 (trec_eval ``-c``) or left out.
    n_boot, alpha, seed
        Percentile bootstrap over queries: replicates, one minus the coverage, seed. Each
        slice is resampled with its own generator from ``seed``.

    Examples
    --------
    >>> q = Qrels({"q1": {"a": 1}, "q2": {"b": 1}})
    >>> r = Run({"q1": {"a": 1.0}, "q2": {"x": 2.0, "b": 1.0}})
    >>> rep = evaluate_run(q, r, ["RR"], n_boot=200)
    >>> row = rep.summary[0]
    >>> row["mean"], row["n_queries"], row["ci_low"] <= row["mean"] <= row["ci_high"]
    (0.75, 2, True)
    """
    n_boot, alpha = check_boot(n_boot, alpha)
    pq = per_query(qrels, run, metrics, missing=missing)
    sources = [queries or {}, qrels.fields, run.fields]
    summary: list[dict[str, Any]] = []
    for field, key, idx in slice_groups(by, pq.query_ids, sources):
        data = pq.values[idx]
        reps = bootstrap_means(data, n_boot=n_boot, seed=seed)
        low, high = percentile_interval(reps, alpha)
        means = data.mean(axis=0) if len(idx) else np.full(len(pq.metrics), np.nan)
        for j, name in enumerate(pq.metrics):
            summary.append(
                {
                    "by": field,
                    "slice": key,
                    "metric": name,
                    "n_queries": len(idx),
                    "mean": float(means[j]),
                    "ci_low": float(low[j]),
                    "ci_high": float(high[j]),
                }
            )
    return RetrievalReport(run.name, pq.metrics, pq, summary, missing, alpha, n_boot)


__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_N_BOOT",
    "Missing",
    "PerQuery",
    "RetrievalReport",
    "bootstrap_means",
    "check_boot",
    "evaluate_run",
    "evaluated_queries",
    "metric_name",
    "metric_names",
    "per_query",
    "percentile_interval",
    "slice_groups",
    "slice_values",
]
