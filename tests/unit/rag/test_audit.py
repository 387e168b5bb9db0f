"""The audit of a judge: Cohen's kappa against scikit-learn, precision/recall of "not grounded"
with Wilson intervals against statsmodels, the stratified allocation, and the round trip
judge -> sample (stratified by tenant, release, verdict) -> people's labels -> agreement."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.proportion import proportion_confint

from assay import UsageError
from assay.ingest import ingest_paths
from assay.rag import compare_releases
from assay.rag._audit import (
    agreement,
    agreement_of,
    allocate,
    audit_import,
    audit_sample,
    cohen_kappa,
    labels,
    read_labels,
    write_sample,
)
from assay.rag._judge import JudgeInput, judge_answers, judgements
from assay.rag._lexical import LexicalJudge
from assay.store import Workspace

G, N = "grounded", "not_grounded"


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), min_size=1))
def test_kappa_equals_scikit_learn(pairs: list[tuple[str, str]]) -> None:
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    ours = cohen_kappa(a, b)
    if len(set(a) | set(b)) == 1:
        assert ours is None  # p_e = 1: scikit-learn answers NaN with a warning
    else:
        assert ours == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_precision_recall_of_not_grounded_with_wilson_intervals() -> None:
    judge = [N, N, G, G, N, G, G, G]
    people = [N, G, G, N, N, G, G, G]
    a = agreement_of(judge, people, n_boot=200, seed=1)
    # Both say not grounded: items 0 and 4. The judge says it 3 times, people 3 times.
    assert (a.precision, a.recall) == (2 / 3, 2 / 3)
    lo, hi = proportion_confint(2, 3, alpha=0.05, method="wilson")
    assert a.precision_interval == pytest.approx((lo, hi))
    assert a.recall_interval == pytest.approx((lo, hi))
    # p_o = 6/8, p_e = (3/8)(3/8) + (5/8)(5/8) = 34/64; kappa = (48 - 34) / (64 - 34) = 7/15.
    assert a.kappa == pytest.approx(7 / 15)
    assert a.kappa_interval is not None
    assert a.kappa_interval[0] <= 7 / 15 <= a.kappa_interval[1]
    assert (a.n, a.judge_not_grounded, a.people_not_grounded) == (8, 3, 3)


def test_rates_without_a_denominator_are_none() -> None:
    a = agreement_of([G, G], [G, N], n_boot=0)
    assert a.precision is None
    assert a.precision_interval is None
    assert a.recall == 0.0


def test_allocate_hand_worked() -> None:
    # One each, then 7 left over rooms 89 and 8: quotas 6.42 and 0.58, the 0.58 remainder wins.
    assert allocate({"a": 90, "b": 9, "c": 1}, 10) == {"a": 7, "b": 2, "c": 1}
    assert allocate({"a": 5, "b": 5}, 3) == {"a": 2, "b": 1}
    assert allocate({"a": 2, "b": 50}, 100) == {"a": 2, "b": 50}
    assert sum(allocate({"a": 3, "b": 3, "c": 3}, 2).values()) == 2


@given(st.dictionaries(st.integers(0, 20), st.integers(1, 40), min_size=1), st.integers(1, 200))
def test_allocate_properties(sizes: dict[int, int], n: int) -> None:
    take = allocate(sizes, n)
    assert sum(take.values()) == min(n, sum(sizes.values()))
    assert all(0 <= take[k] <= sizes[k] for k in sizes)
    if n >= len(sizes):
        assert all(take[k] >= 1 for k in sizes)


def write_events(path: Path) -> Path:
    rows = []
    for n in range(12):
        tenant = "acme" if n < 8 else "beta"
        template = "rag-v2" if n % 2 else "rag-v3"
        rows.append(
            {
                "event_id": f"e{n}",
                "event_time": "2026-03-02T10:00:00Z",
                "tenant_id": tenant,
                "user_id": f"u{n}",
                "session_id": f"s{n}",
                "event_type": "turn",
                "model_version": "m1",
                "prompt_template": template,
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def inputs() -> list[JudgeInput]:
    ctx = ("Paris is the capital of France.",)
    out = []
    for n in range(12):
        tenant = "acme" if n < 8 else "beta"
        answer = "Paris is the capital of France." if n % 3 else "Berlin has many bridges."
        out.append(JudgeInput(answer, ctx, tenant, f"e{n}"))
    return out


def test_round_trip_sample_label_import_agreement(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        ingest_paths(ws, [write_events(tmp_path / "events.jsonl")])
        run = judge_answers(ws, LexicalJudge(), inputs())
        assert run.summary()["judged"] == 12
        sample = audit_sample(ws, 8, seed=3)
        rows = sample.to_pylist()
        assert len(rows) == 8
        assert all(r["human_label"] == "" for r in rows)
        assert {r["release"] for r in rows} == {"m1/rag-v2", "m1/rag-v3"}
        assert {r["tenant_id"] for r in rows} == {"acme", "beta"}
        verdict = {f"e{n}": (N if n % 3 == 0 else G) for n in range(12)}
        strata = Counter((r["tenant_id"], r["release"], verdict[r["event_id"]]) for r in rows)
        # acme: v3 {e0 N, e6 N}, {e2 G, e4 G}; v2 {e1 G, e5 G, e7 G}, {e3 N};
        # beta: v3 {e8 G, e10 G}; v2 {e9 N}, {e11 G}: 7 strata, one each, and the 8th row goes
        # to the stratum with the most left (acme v2 grounded: 2 of 5 left over).
        assert strata == {
            ("acme", "m1/rag-v3", N): 1,
            ("acme", "m1/rag-v3", G): 1,
            ("acme", "m1/rag-v2", G): 2,
            ("acme", "m1/rag-v2", N): 1,
            ("beta", "m1/rag-v3", G): 1,
            ("beta", "m1/rag-v2", N): 1,
            ("beta", "m1/rag-v2", G): 1,
        }
        path = tmp_path / "audit.csv"
        write_sample(sample, path, texts={(i.tenant_id, i.event_id): vars(i) for i in inputs()})
        text = path.read_text()
        assert text.splitlines()[0] == "tenant_id,event_id,release,human_label,answer,contexts"
        # People label: they disagree with the judge on one answer and leave one blank.
        labelled = []
        for k, r in enumerate(rows):
            human = verdict[r["event_id"]]
            if k == 0:
                human = G if human == N else N
            blank = k == len(rows) - 1
            labelled.append({**r, "human_label": "" if blank else human.replace("_", " ").upper()})
        label_file = tmp_path / "labelled.jsonl"
        label_file.write_text("".join(json.dumps(r) + "\n" for r in labelled))
        summary = audit_import(ws, label_file)
        assert (summary.labelled, summary.blank) == (7, 1)
        assert labels(ws).num_rows == 7
        table = agreement(ws, n_boot=100)
        stored = judgements(ws)
        # `rag compare` shows the same agreement next to the releases' groundedness.
        compared = compare_releases(ws, "prompt_template=rag-v2", "prompt_template=rag-v3")
    (shown,) = compared.agreement
    assert (shown["judge"], shown["n"]) == ("lexical", 7)
    assert shown["kappa"] == pytest.approx(table.to_pylist()[0]["kappa"])
    (row,) = table.to_pylist()
    assert row["judge"] == "lexical"
    assert row["n"] == 7
    judge_labels = [verdict[r["event_id"]] for r in rows[:7]]
    people = [(G if v == N else N) if k == 0 else v for k, v in enumerate(judge_labels)]
    assert row["kappa"] == pytest.approx(cohen_kappa_score(judge_labels, people))
    assert stored.num_rows == 12


def test_import_rejects_a_bad_label_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("tenant_id,event_id,human_label\nacme,e1,grounded\nacme,e2,maybe\n")
    with pytest.raises(UsageError, match=r"line 3 of l\.csv: human_label must be grounded"):
        read_labels(path)
    path.write_text("tenant_id,human_label\nacme,grounded\n")
    with pytest.raises(UsageError, match="has no event_id"):
        read_labels(path)


def test_sample_needs_judgements_and_one_judge(tmp_path: Path) -> None:
    from assay import NotFoundError

    with Workspace.init(tmp_path / "ws") as ws:
        with pytest.raises(NotFoundError, match="rag judge"):
            audit_sample(ws, 3)
        judge_answers(ws, LexicalJudge(), inputs()[:3])
        judge_answers(ws, LexicalJudge(threshold=0.9), inputs()[:3])
        with pytest.raises(UsageError, match="several judges"):
            audit_sample(ws, 3)
        assert audit_sample(ws, 3, judge="lexical:overlap>=0.9").num_rows == 3
        assert labels(ws).num_rows == 0


IDS = st.text(
    st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
        st.sampled_from(["\u2028", "\u0085", ",", '"']),  # line breaks to str.splitlines
    ),
    min_size=1,
    max_size=12,
)


@given(
    st.lists(st.tuples(IDS, IDS, st.sampled_from([G, N, ""])), min_size=1, max_size=8),
    st.sampled_from([".csv", ".jsonl"]),
)
def test_a_written_sample_reads_back_with_its_labels(
    rows: list[tuple[str, str, str]], suffix: str
) -> None:
    import tempfile

    import pyarrow as pa

    sample = pa.Table.from_pylist(
        [{"tenant_id": t, "event_id": e, "release": "r,1", "human_label": h} for t, e, h in rows]
    )
    texts = {
        (t, e): {"answer": 'He said "hi", then left.\nBye', "contexts": ["a, b"]}
        for t, e, _ in rows
    }
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"audit{suffix}"
        write_sample(sample, path, texts=texts)
        labelled, blank = read_labels(path)
    assert blank == sum(h == "" for _, _, h in rows)
    assert [(r["tenant_id"], r["event_id"], r["human_label"]) for r in labelled] == [
        (t, e, h) for t, e, h in rows if h
    ]


def test_release_is_unknown_for_an_answer_whose_event_is_not_stored(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    rows = [
        {
            "event_id": "e1",
            "event_time": "2026-03-02T10:00:00Z",
            "tenant_id": "acme",
            "user_id": "u",
            "session_id": "s",
            "event_type": "turn",
            "model_version": "m1",
        },
        {
            "event_id": "e2",
            "event_time": "2026-03-02T10:00:00Z",
            "tenant_id": "acme",
            "user_id": "u",
            "session_id": "s",
            "event_type": "turn",
            "prompt_template": "rag-v3",
        },
    ]
    events.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = [JudgeInput("Paris.", ("paris",), "acme", e) for e in ("e1", "e2", "e3")]
    with Workspace.init(tmp_path / "ws") as ws:
        ingest_paths(ws, [events])
        judge_answers(ws, LexicalJudge(), items)
        sample = audit_sample(ws, 3)
    releases = {r["event_id"]: r["release"] for r in sample.to_pylist()}
    assert releases == {"e1": "m1/-", "e2": "-/rag-v3", "e3": "unknown"}
