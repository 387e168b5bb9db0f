"""Compare two releases' RAG quality from telemetry: ``assay rag compare``.

"Groundedness dropped after a larger context window: by how much, where, and is it real" in
one call. Release A and release B are each the answers carrying one value of a field
(``prompt_template=rag-v2``, ``model_version=v2.1``). Per slice (``by``) and signal:

- each release's rate as a ratio of summed counts (``docs/metrics.md``, RAG signals);
- the difference B - A with a 95% interval and a two-sided p-value from a two-sample z-test
  of two ratio estimators whose variance is taken over *answers* (the delta method; answers
  are the independent units, so docs and claims of one answer are never counted as
  independent trials; for a share of answers it is the unpooled two-proportion test);
- with a labelled set, trec_eval's retrieval metrics on the queries both releases answered,
  through :func:`assay.rag.compare_runs` (paired: bootstrap interval, randomisation test,
  Cohen's d_z): each release's run is its first answer (by ``event_time``, then
  ``event_id``) to each query, its retrieved doc ids in order.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ibis
from scipy.stats import norm

from assay._errors import UsageError
from assay.metrics import check_date, check_range, check_tenant, workspace_events
from assay.rag._paired import compare_runs
from assay.rag._qrels import Qrels, Run
from assay.rag._retrieval import DEFAULT_METRICS
from assay.rag._signals import (
    QUERY_KEY,
    answer_table,
    check_by,
    judged_table,
    narrow_events,
    qrels_table,
    stored_qrels,
)
from assay.schema import SLICE_FIELDS

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from assay.store import Workspace

#: Each compared signal: per-answer (numerator, denominator) columns of ``answer_table``.
SIGNALS: dict[str, tuple[str, str]] = {
    "cited_rate": ("cited", "one"),
    "citations_per_answer": ("citations", "one"),
    "uncited_retrieved_share": ("uncited", "retrieved"),
    "citation_precision": ("cov_cited_rel", "cov_citations"),
    "citation_recall": ("cov_cited_rel", "n_rel"),
    "grounded_rate": ("grounded", "judged"),
    "groundedness": ("supported", "claims"),
}
_Z95 = float(norm.ppf(0.975))
_ALL = "(all)"


@dataclass(frozen=True)
class Release:
    """One side of a comparison: the answers whose ``field`` is ``value``."""

    field: str
    value: str

    @classmethod
    def parse(cls, text: str, side: str) -> Release:
        """``field=value`` (``prompt_template=rag-v3``) as a release; ``side`` names the
        option in errors."""
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not value or name not in SLICE_FIELDS:
            raise UsageError(
                f"--{side} must be FIELD=VALUE with FIELD one of {', '.join(SLICE_FIELDS)} "
                f"(got {text[:60]!r}); e.g. --{side} prompt_template=rag-v3"
            )
        return cls(name, value)

    def __str__(self) -> str:
        return f"{self.field}={self.value}"


@dataclass
class ReleaseComparison:
    """What :func:`compare_releases` found.

    Attributes
    ----------
    a, b : the two releases.
    by : the slice field, or None.
    signals : one dict per (slice, signal): ``slice`` (the slice value, ``"(all)"`` for the
        whole), ``signal``, ``answers_a``/``answers_b`` (answers the rate rests on: those with
        a non-zero denominator), ``num_a``, ``den_a``, ``rate_a`` and the same for B, ``diff``
        (B - A), ``ci_low``, ``ci_high`` (95%), ``p_value`` (null when a side has no trials,
        or fewer than 2 answers).
    retrieval : one dict per (slice, metric) from :func:`assay.rag.compare_runs` (empty
        without a labelled set): ``slice``, ``metric``, ``n_queries``, ``mean_a``,
        ``mean_b``, ``diff``, ``ci_low``, ``ci_high``, ``p_value``, ``effect_size``.
    agreement : with stored judgements, each judge's agreement with people's audit labels
        (rows of :func:`assay.rag.agreement`: ``judge``, ``model``, ``n``, ``kappa`` and the
        precision and recall of "not grounded", with intervals), so groundedness is read
        next to how far its judge is trusted; empty before any audit import.
    notes : what the reader should know (no labelled set, no judgements, ...).
    """

    a: Release
    b: Release
    by: str | None
    signals: list[dict[str, Any]] = field(default_factory=list)
    retrieval: list[dict[str, Any]] = field(default_factory=list)
    agreement: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN as None)."""
        return {
            "a": str(self.a),
            "b": str(self.b),
            "by": self.by,
            "signals": [_clean(r) for r in self.signals],
            "retrieval": [_clean(r) for r in self.retrieval],
            "agreement": [_clean(r) for r in self.agreement],
            "notes": list(self.notes),
        }


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }


def ratio_test(
    x_a: float,
    y_a: float,
    sxx_a: float,
    syy_a: float,
    sxy_a: float,
    n_a: int,
    x_b: float,
    y_b: float,
    sxx_b: float,
    syy_b: float,
    sxy_b: float,
    n_b: int,
) -> tuple[float, float, float, float, float, float]:
    """Two independent ratio estimators ``R = sum x / sum y`` over ``n`` answers each, from
    their sums (``x``, ``y``), sums of squares and cross products.

    The variance of each is the delta method's (linearisation over answers), ``sum((x_i -
    R y_i)^2) / (sum y)^2`` with ``sum((x_i - R y_i)^2) = Sxx - 2 R Sxy + R^2 Syy``; for a
    share of answers (``y_i = 1``) that is ``R (1 - R) / n``, the Wald variance. Returns ``(R_a,
    R_b, R_b - R_a, low, high, p)``: the 95% interval of the difference and the two-sided
    p-value of the z statistic; NaN where a side has no trials or fewer than 2 answers (the
    rates themselves are still given when they exist).

    Examples
    --------
    A share of answers: 30 of 100 against 45 of 100 is the unpooled two-proportion z-test.

    >>> r = ratio_test(30, 100, 30, 100, 30, 100, 45, 100, 45, 100, 45, 100)
    >>> [round(v, 4) for v in r]
    [0.3, 0.45, 0.15, 0.0174, 0.2826, 0.0266]
    """
    nan = float("nan")
    r_a = x_a / y_a if y_a > 0 else nan
    r_b = x_b / y_b if y_b > 0 else nan
    if not (y_a > 0 and y_b > 0 and n_a >= 2 and n_b >= 2):
        return r_a, r_b, r_b - r_a, nan, nan, nan

    def var(r: float, y: float, sxx: float, syy: float, sxy: float, n: int) -> float:
        ss = max(sxx - 2 * r * sxy + r * r * syy, 0.0)
        return ss / (y * y)

    se = math.sqrt(
        var(r_a, y_a, sxx_a, syy_a, sxy_a, n_a) + var(r_b, y_b, sxx_b, syy_b, sxy_b, n_b)
    )
    diff = r_b - r_a
    if se == 0.0:
        return r_a, r_b, diff, diff, diff, (1.0 if diff == 0 else 0.0)
    p = float(2 * norm.sf(abs(diff) / se))
    return r_a, r_b, diff, diff - _Z95 * se, diff + _Z95 * se, p


def _sums(answers: ir.Table, keys: Sequence[str]) -> ir.Table:
    """Per group of ``keys``: for each signal its sums, squares, cross products and answers."""
    one = ibis.literal(1, type="int64")
    cols = answers.mutate(
        one=one,
        cov_cited_rel=answers.cited_rel * answers.covered,
        cov_citations=answers.citations * answers.covered,
    )
    aggs: dict[str, Any] = {}
    for name, (x, y) in SIGNALS.items():
        xv = cols[x].cast("float64")
        yv = cols[y].cast("float64")
        aggs[f"{name}__x"] = xv.sum()
        aggs[f"{name}__y"] = yv.sum()
        aggs[f"{name}__xx"] = (xv * xv).sum()
        aggs[f"{name}__yy"] = (yv * yv).sum()
        aggs[f"{name}__xy"] = (xv * yv).sum()
        aggs[f"{name}__n"] = cols.count(where=cols[y] > 0)
    return cols.group_by(list(keys)).agg(**aggs)


def _first_answers(
    ev: ir.Table, slice_col: str | None
) -> dict[tuple[str, Any], dict[str, list[str]]]:
    """(arm, slice value) -> query id -> the retrieved doc ids of the arm's first answer."""
    cols = ["arm", "event_time", "event_id", QUERY_KEY, "retrieved_doc_ids"]
    if slice_col is not None:
        cols.append(slice_col)
    t = ev.filter(
        ev[QUERY_KEY].notnull() & (ev.event_type == "turn") & (ev.retrieved_doc_ids.length() > 0)
    )
    rows = t.select(*cols).order_by(["event_time", "event_id"]).to_pyarrow().to_pylist()
    out: dict[tuple[str, Any], dict[str, list[str]]] = {}
    for r in rows:
        docs = [d for d in r["retrieved_doc_ids"] if d is not None]
        if not docs:
            continue
        for key in [(r["arm"], _ALL)] + ([(r["arm"], r[slice_col])] if slice_col else []):
            out.setdefault(key, {}).setdefault(r[QUERY_KEY], docs)
    return out


def _run(first: dict[str, list[str]], name: str) -> Run:
    scores: dict[str, dict[str, float]] = {}
    for query, docs in first.items():
        ranked: dict[str, float] = {}
        for i, d in enumerate(docs):
            ranked.setdefault(d, float(len(docs) - i))  # a repeated doc keeps its first rank
        scores[query] = ranked
    return Run(scores, name)


def compare_releases(
    ws: Workspace,
    a: Release | str,
    b: Release | str,
    *,
    qrels: Qrels | None = None,
    tenant: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    by: str | None = None,
    judge: str | None = None,
    metrics: Sequence[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> ReleaseComparison:
    """Compare the RAG signals (and, with a labelled set, the retrieval metrics) of release
    B against release A, overall and per slice of ``by``; see the module docstring.

    Parameters
    ----------
    ws : assay.Workspace
    a, b : the releases, as :class:`Release` or ``"field=value"``.
    qrels : the labelled set; default the stored one (``assay rag qrels import``).
    tenant, since, until : only this tenant and these days.
    by : a slice field (``locale``...), or None.
    judge : the judge whose stored judgements count (default: the only one).
    metrics : retrieval metrics for :func:`assay.rag.compare_runs` (default its own).
    n_boot, seed : the paired bootstrap of the retrieval metrics.

    Returns
    -------
    ReleaseComparison
    """
    rel_a = a if isinstance(a, Release) else Release.parse(a, "a")
    rel_b = b if isinstance(b, Release) else Release.parse(b, "b")
    if rel_a == rel_b:
        raise UsageError(f"--a and --b are the same release ({rel_a}); compare two releases")
    tenant = check_tenant(tenant)
    since = check_date("since", since)
    until = check_date("until", until)
    check_range(since, until)
    by = check_by(by)
    if by is not None and by in (rel_a.field, rel_b.field):
        raise UsageError(
            f"--by {by} is the field the releases are told apart by; slice by another field"
        )
    extra = sorted({rel_a.field, rel_b.field} | ({by} if by else set()))
    ev = narrow_events(workspace_events(ws), tenant=tenant, since=since, until=until, extra=extra)
    arms = []
    for arm, rel in (("a", rel_a), ("b", rel_b)):
        part = ev.filter(ev[rel.field] == rel.value)
        arms.append(part.mutate(arm=ibis.literal(arm)).select("arm", *ev.columns))
    both = ibis.union(*arms, distinct=False)
    labelled = qrels if qrels is not None else stored_qrels(ws)
    judged = judged_table(ws, judge)
    result = ReleaseComparison(rel_a, rel_b, by)
    if labelled is None:
        result.notes.append(
            "no labelled set: citation precision and recall and the retrieval metrics need "
            "qrels (--qrels FILE, or `assay rag qrels import FILE`)"
        )
    if judged is None:
        result.notes.append("no stored judgements: groundedness needs `assay rag judge` first")
    else:
        from assay.rag._audit import agreement

        result.agreement = agreement(ws, seed=seed).to_pylist()
        if not result.agreement:
            result.notes.append(
                "no audit labels: how far the judge agrees with people is unknown "
                "(`assay rag audit sample`, then `assay rag audit import`)"
            )
    answers = answer_table(
        both,
        ["arm", *([by] if by else [])],
        qrels=None if labelled is None else qrels_table(labelled),
        judged=judged,
    )
    groups = [["arm"]] + ([["arm", by]] if by else [])
    for keys in groups:
        sums = _sums(answers, keys).to_pyarrow().to_pylist()
        _add_signals(result, sums, by if len(keys) > 1 else None)
    if labelled is not None:
        first = _first_answers(both, by)
        values = {s for (_, s) in first if s != _ALL}
        slices = [_ALL, *sorted(values, key=lambda v: (v is None, str(v)))]
        for value in slices:
            fa, fb = first.get(("a", value), {}), first.get(("b", value), {})
            shared = set(fa) & set(fb) & set(labelled.judgements)
            if not shared:
                continue
            sub = Qrels({q: labelled.judgements[q] for q in sorted(shared)})
            report = compare_runs(
                sub,
                _run({q: fa[q] for q in shared}, str(rel_a)),
                _run({q: fb[q] for q in shared}, str(rel_b)),
                tuple(metrics) if metrics else DEFAULT_METRICS,
                n_boot=n_boot,
                seed=seed,
            )
            for row in report.summary:
                kept = {k: v for k, v in row.items() if k not in ("by", "slice")}
                result.retrieval.append({"slice": value, **kept})
    return result


def _parts(row: dict[str, Any], name: str) -> list[float]:
    """x, y, xx, yy, xy, n of one signal in a row of :func:`_sums` (zeros when absent)."""
    out = []
    for part in ("x", "y", "xx", "yy", "xy", "n"):
        v = row.get(f"{name}__{part}")
        out.append(0.0 if v is None else float(v))
    return out


def _add_signals(result: ReleaseComparison, sums: list[dict[str, Any]], by: str | None) -> None:
    per: dict[tuple[Any, str], dict[str, Any]] = {}
    for row in sums:
        value = _ALL if by is None else row[by]
        per[(value, row["arm"])] = row
    values = sorted({v for v, _ in per}, key=lambda v: (v is None, str(v)))
    empty: dict[str, Any] = {}
    for value in values:
        ra, rb = per.get((value, "a"), empty), per.get((value, "b"), empty)
        for name in SIGNALS:
            sa = _parts(ra, name)
            sb = _parts(rb, name)
            n_a, n_b = int(sa[5]), int(sb[5])
            rate_a, rate_b, diff, low, high, p = ratio_test(
                sa[0], sa[1], sa[2], sa[3], sa[4], n_a, sb[0], sb[1], sb[2], sb[3], sb[4], n_b
            )
            if n_a == 0 and n_b == 0:
                continue
            result.signals.append(
                {
                    "slice": value,
                    "signal": name,
                    "answers_a": n_a,
                    "num_a": sa[0],
                    "den_a": sa[1],
                    "rate_a": rate_a,
                    "answers_b": n_b,
                    "num_b": sb[0],
                    "den_b": sb[1],
                    "rate_b": rate_b,
                    "diff": diff,
                    "ci_low": low,
                    "ci_high": high,
                    "p_value": p,
                }
            )


__all__ = ["SIGNALS", "Release", "ReleaseComparison", "compare_releases", "ratio_test"]
