"""Retrieval metrics equal trec_eval's definitions, written here again in plain Python, on random
qrels and runs with ties and missing judgements, and the hand-worked example of docs/rag.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay._errors import UsageError
from assay.rag import Qrels, Run, bootstrap_means, evaluate_run, metric_name, per_query

pytest.importorskip("ir_measures")

# --- the reference: trec_eval's definitions, independently ------------------------------------


def _ranking(scores: dict[str, float]) -> list[str]:
    """trec_eval's order: score descending, then doc_id descending (strcmp)."""
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def _reference(metric: str, judged: dict[str, int], scores: dict[str, float]) -> float:
    ranked = _ranking(scores)
    hits = [judged.get(d, 0) >= 1 for d in ranked]
    n_rel = sum(1 for r in judged.values() if r >= 1)
    name, _, cut = metric.partition("@")
    k = int(cut) if cut else 0
    if n_rel == 0:
        return 0.0
    if name == "R":
        return sum(hits[:k]) / n_rel
    if name == "P":
        return sum(hits[:k]) / k
    if name == "RR":
        for i, hit in enumerate(hits, start=1):
            if hit:
                return 1.0 / i
        return 0.0
    if name == "AP":
        total, found = 0.0, 0
        for i, hit in enumerate(hits, start=1):
            if hit:
                found += 1
                total += found / i
        return total / n_rel
    if name == "Rprec":
        return sum(hits[:n_rel]) / n_rel
    if name == "nDCG":
        gains = [max(judged.get(d, 0), 0) for d in ranked][:k]
        ideal = sorted((max(r, 0) for r in judged.values()), reverse=True)[:k]
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        return dcg / idcg if idcg > 0 else 0.0
    raise AssertionError(metric)


# --- random labelled sets with ties and missing judgements -----------------------------------

DOCS = [f"d{i}" for i in range(8)]
QUERIES = [f"q{i}" for i in range(5)]

judgements = st.dictionaries(
    st.sampled_from(QUERIES),
    st.dictionaries(st.sampled_from(DOCS), st.integers(-1, 3), min_size=1, max_size=6),
    min_size=1,
)
# Few distinct scores: many ties, broken by doc_id.
rankings = st.dictionaries(
    st.sampled_from(QUERIES),
    st.dictionaries(st.sampled_from(DOCS), st.sampled_from([0.0, 0.5, 1.0, 2.5, -1.0])),
)
METRICS = ["R@1", "R@3", "P@1", "P@5", "RR", "nDCG@3", "nDCG@10", "AP", "Rprec"]


@settings(max_examples=150, deadline=None)
@given(judged=judgements, scores=rankings, missing=st.sampled_from(["zero", "skip"]))
def test_every_metric_equals_trec_eval_definitions_on_random_sets(
    judged: dict[str, dict[str, int]], scores: dict[str, dict[str, float]], missing: str
) -> None:
    pq = per_query(Qrels(judged), Run(scores), METRICS, missing=missing)  # type: ignore[arg-type]
    assert list(pq.query_ids) == sorted(q for q in judged if missing == "zero" or q in scores)
    for i, q in enumerate(pq.query_ids):
        for j, m in enumerate(METRICS):
            want = _reference(m, judged[q], scores.get(q, {}))
            assert pq.values[i, j] == pytest.approx(want, rel=1e-9, abs=1e-12), (q, m)


@settings(max_examples=60, deadline=None)
@given(judged=judgements, scores=rankings)
def test_the_average_counts_unanswered_queries_as_zero_or_leaves_them_out(
    judged: dict[str, dict[str, int]], scores: dict[str, dict[str, float]]
) -> None:
    zero = evaluate_run(Qrels(judged), Run(scores), ["AP"], n_boot=10).summary[0]
    want = sum(_reference("AP", judged[q], scores.get(q, {})) for q in judged) / len(judged)
    assert zero["n_queries"] == len(judged)
    assert zero["mean"] == pytest.approx(want, abs=1e-12)
    answered = [q for q in judged if q in scores]
    skip = evaluate_run(Qrels(judged), Run(scores), ["AP"], n_boot=10, missing="skip")
    assert skip.summary[0]["n_queries"] == len(answered)
    if answered:
        want = sum(_reference("AP", judged[q], scores[q]) for q in answered) / len(answered)
        assert skip.summary[0]["mean"] == pytest.approx(want, abs=1e-12)


# --- the hand-worked example of docs/rag.md ----------------------------------------------------

DOC_QRELS = Qrels({"q1": {"d1": 2, "d2": 0, "d3": 1, "d4": 1}, "q2": {"d7": 1}})
# d2 and d3 tie at 2.0: trec_eval puts d3 first (doc_id descending).
DOC_RUN = Run({"q1": {"d5": 3.0, "d1": 2.5, "d2": 2.0, "d3": 2.0, "d6": 1.0}})


def test_the_worked_example_in_the_docs() -> None:
    pq = per_query(DOC_QRELS, DOC_RUN, ["R@3", "P@3", "RR", "nDCG@3", "AP", "Rprec"])
    # Ranking d5, d1, d3, d2, d6 with relevance 0, 2, 1, 0, 0; three relevant documents.
    ndcg3 = (2 / math.log2(3) + 1 / 2) / (2 + 1 / math.log2(3) + 1 / 2)
    q1 = [2 / 3, 2 / 3, 1 / 2, ndcg3, (1 / 2 + 2 / 3) / 3, 2 / 3]
    assert pq.query_ids == ("q1", "q2")
    assert pq.values[0].tolist() == pytest.approx(q1, abs=1e-12)
    assert pq.values[1].tolist() == [0.0] * 6  # q2 is not answered: 0 (trec_eval -c)
    assert round(ndcg3, 4) == 0.5627


def test_equal_ranks_in_jsonl_are_ordered_like_equal_scores() -> None:
    # Ranks read as score -rank: d_b and d_c tie at rank 2, d_c comes first.
    run = Run({"q": {"a": -1.0, "b": -2.0, "c": -2.0}})
    pq = per_query(Qrels({"q": {"b": 1}}), run, ["RR"])
    assert pq.values[0, 0] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("given_name", "canonical"),
    [
        ("recall@5", "R@5"),
        ("R@5", "R@5"),
        ("recall_5", "R@5"),
        ("precision@3", "P@3"),
        ("P_3", "P@3"),
        ("MRR", "RR"),
        ("recip_rank", "RR"),
        ("ndcg@10", "nDCG@10"),
        ("ndcg_cut_10", "nDCG@10"),
        ("MAP", "AP"),
        ("map", "AP"),
        ("R-precision", "Rprec"),
    ],
)
def test_metric_names_accept_common_and_trec_eval_spellings(
    given_name: str, canonical: str
) -> None:
    assert metric_name(given_name) == canonical


@pytest.mark.parametrize("bad", ["recall@0", "F1", "ndcg@x", "P@"])
def test_unknown_metric_names_say_which_are_known(bad: str) -> None:
    with pytest.raises(UsageError, match=r"unknown retrieval metric .*recall@k"):
        metric_name(bad)


# --- intervals and slices -------------------------------------------------------------------------


def test_bootstrap_replicates_spread_like_the_standard_error_of_the_mean() -> None:
    values = np.array([0.0] * 60 + [1.0] * 40)
    reps = bootstrap_means(values, n_boot=20_000, seed=3)[:, 0]
    # The bootstrap variance of a mean is the plug-in variance over n: 0.4 * 0.6 / 100.
    assert reps.mean() == pytest.approx(0.4, abs=0.002)
    assert reps.var() == pytest.approx(0.24 / 100, rel=0.05)


def test_intervals_cover_the_true_mean_about_as_often_as_promised() -> None:
    rng = np.random.default_rng(11)
    covered = 0
    trials = 200
    for t in range(trials):
        rr = rng.choice([0.0, 1 / 3, 1 / 2, 1.0], size=80, p=[0.3, 0.2, 0.2, 0.3])
        judged = {f"q{i}": {"rel": 1} for i in range(80)}
        scores = {}
        for i, v in enumerate(rr):
            if v > 0:
                ahead = {f"x{j}": 10.0 - j for j in range(round(1 / v) - 1)}
                scores[f"q{i}"] = {**ahead, "rel": 0.0}
        row = evaluate_run(Qrels(judged), Run(scores), ["RR"], n_boot=400, seed=t).summary[0]
        assert row["ci_low"] <= row["mean"] <= row["ci_high"]
        true_mean = 0.2 * (1 / 3) + 0.2 * 0.5 + 0.3
        covered += row["ci_low"] <= true_mean <= row["ci_high"]
    assert 0.88 * trials <= covered <= 0.99 * trials


def test_slices_average_their_own_queries() -> None:
    judged = {"q1": {"a": 1}, "q2": {"a": 1}, "q3": {"a": 1}}
    run = Run({"q1": {"a": 1.0}, "q2": {"b": 2.0, "a": 1.0}, "q3": {"b": 1.0}})
    queries = {"q1": {"locale": "de"}, "q2": {"locale": "de"}, "q3": {"locale": "fr"}}
    rep = evaluate_run(Qrels(judged), run, ["RR"], by="locale", queries=queries, n_boot=50)
    got = {(r["by"], r["slice"]): (r["n_queries"], r["mean"]) for r in rep.summary}
    assert got == {
        (None, None): (3, pytest.approx(0.5)),
        ("locale", "de"): (2, pytest.approx(0.75)),
        ("locale", "fr"): (1, 0.0),
    }


def test_slicing_by_an_unknown_field_names_the_known_ones() -> None:
    qrels = Qrels({"q1": {"a": 1}}, {"q1": {"tenant_id": "t1"}})
    with pytest.raises(UsageError, match=r"no query has the field 'locale' .*tenant_id"):
        evaluate_run(qrels, Run({"q1": {"a": 1.0}}), ["RR"], by="locale", n_boot=10)


@settings(max_examples=60, deadline=None)
@given(
    judged=judgements,
    scores=rankings,
    locales=st.lists(st.sampled_from(["de", "fr", None]), min_size=5, max_size=5),
)
def test_each_slice_averages_the_reference_over_its_own_queries(
    judged: dict[str, dict[str, int]],
    scores: dict[str, dict[str, float]],
    locales: list[str | None],
) -> None:
    locales[0] = locales[0] or "de"  # some query carries the field (else: an error)
    queries = {q: {"locale": loc} for q, loc in zip(QUERIES, locales, strict=True) if loc}
    rep = evaluate_run(
        Qrels(judged), Run(scores), ["nDCG@3"], by="locale", queries=queries, n_boot=20
    )
    rows = {(r["by"], r["slice"]): r for r in rep.summary}
    groups: dict[tuple[str | None, str | None], list[float]] = {(None, None): []}
    for q in judged:
        value = _reference("nDCG@3", judged[q], scores.get(q, {}))
        groups[(None, None)].append(value)
        groups.setdefault(("locale", queries.get(q, {}).get("locale")), []).append(value)
    assert set(rows) == set(groups)
    for key, values in groups.items():
        assert rows[key]["n_queries"] == len(values)
        assert rows[key]["mean"] == pytest.approx(sum(values) / len(values), abs=1e-12)
