"""RAG signals from telemetry: hand-worked counts, an independent DuckDB SQL reference on
generated events (duplicates, empty and null lists, citations of docs never retrieved, queries
without judgements), groundedness from stored judgements, and the scan's null handling."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import assay
from assay.anomaly import scan_table
from assay.ingest import ingest_paths
from assay.rag import Qrels
from assay.rag._judge import JUDGEMENTS_SCHEMA, JUDGEMENTS_TABLE, append_rows
from assay.rag._signals import COUNTS, rag_signals, store_qrels, stored_qrels

DAY = "2026-01-05"


def turn(i: int, retrieved: Any, cited: Any, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"e{i}",
        "event_time": extra.pop("time", f"{DAY}T10:00:00Z"),
        "tenant_id": extra.pop("tenant", "acme"),
        "user_id": f"u{i}",
        "session_id": f"s{i}",
        "event_type": extra.pop("event_type", "turn"),
    }
    if retrieved is not None:
        event["retrieved_doc_ids"] = retrieved
    if cited is not None:
        event["cited_doc_ids"] = cited
    query = extra.pop("query", None)
    if query is not None:
        event["attributes"] = {"query_id": query}
    return event | extra


def workspace(tmp_path: Path, events: list[dict[str, Any]]) -> assay.Workspace:
    src = tmp_path / "events.jsonl"
    src.write_text("\n".join(json.dumps(e) for e in events), encoding="utf-8")
    ws = assay.Workspace.open(tmp_path / "ws", create=True)
    summary = ingest_paths(ws, [src]).as_dict()["totals"]
    assert summary["rejected"] == 0, summary
    return ws


HAND = [
    # retrieved {a, b} (a twice), cited {a, z}: z was never retrieved.
    turn(1, ["a", "b", "a"], ["a", "z", "a"], query="q1", locale="en"),
    # No citation.
    turn(2, ["c"], [], query="q1", locale="fr"),
    # No retrieval: not an answer, whatever it cites.
    turn(3, [], ["q"], query="q2"),
    turn(4, None, None),
    # A query without judgements: not covered.
    turn(5, ["a", "c"], ["c"], query="q9", locale="en"),
    # Not a turn.
    turn(6, ["a"], ["a"], event_type="error"),
    # Next day, cited docs all relevant.
    turn(7, ["a", "b"], ["a", "b"], query="q1", locale="en", time="2026-01-06T09:00:00Z"),
]
QRELS = Qrels({"q1": {"a": 2, "b": 0, "c": 1}, "q2": {"x": 1}})


def test_signals_equal_the_hand_worked_counts(tmp_path: Path) -> None:
    with workspace(tmp_path, HAND) as ws:
        rows = rag_signals(ws, qrels=QRELS).to_pylist()
    day1, day2 = rows
    # Day 1: answers e1, e2, e5. Citations: e1 {a, z}, e5 {c}. Retrieved: 2 + 1 + 2.
    # Uncited: e1 {b}, e2 {c}, e5 {a}. Covered (q1): e1, e2; their citations {a, z} (2);
    # relevant of those: a (z unjudged, not relevant). Relevant docs of q1: a, c -> 2 per
    # covered answer -> 4; cited relevant 1.
    assert {k: day1[k] for k in (*COUNTS[:9], "day")} == {
        "day": dt.date(2026, 1, 5),
        "answers": 3,
        "cited_answers": 2,
        "citations": 3,
        "retrieved": 5,
        "uncited_retrieved": 3,
        "covered_answers": 2,
        "covered_citations": 2,
        "cited_relevant": 1,
        "relevant": 4,
    }
    assert day1["cited_rate"] == pytest.approx(2 / 3)
    assert day1["citations_per_answer"] == pytest.approx(1.0)
    assert day1["uncited_retrieved_share"] == pytest.approx(3 / 5)
    assert day1["citation_precision"] == pytest.approx(1 / 2)
    assert day1["citation_recall"] == pytest.approx(1 / 4)
    # No judgement stored: groundedness has no trials, so it is null, not 0.
    assert day1["judged_answers"] == 0
    assert day1["groundedness"] is None
    # Day 2: e7 cites a (relevant) and b (grade 0: not relevant).
    assert (day2["citation_precision"], day2["citation_recall"]) == (0.5, 0.5)


def test_signals_slice_keeps_a_null_value_as_its_own_slice(tmp_path: Path) -> None:
    events = [*HAND, turn(8, ["d"], ["d"], query="q1")]  # no locale
    with workspace(tmp_path, events) as ws:
        rows = rag_signals(ws, by="locale", since=dt.date(2026, 1, 5), until=dt.date(2026, 1, 5))
    got = {(r["locale"], r["answers"], r["cited_answers"]) for r in rows.to_pylist()}
    assert got == {("en", 2, 2), ("fr", 1, 0), (None, 1, 1)}


def test_stored_qrels_are_the_default_labelled_set(tmp_path: Path) -> None:
    with workspace(tmp_path, HAND) as ws:
        assert stored_qrels(ws) is None
        assert store_qrels(ws, QRELS) == 4
        assert stored_qrels(ws) == QRELS
        rows = rag_signals(ws).to_pylist()
    assert rows[0]["cited_relevant"] == 1


def test_groundedness_counts_judged_answers_and_keeps_errors_apart(tmp_path: Path) -> None:
    now = dt.datetime(2026, 1, 7, tzinfo=dt.UTC)
    judged = pa.Table.from_pylist(
        [
            # e1: 2 of 3 claims supported; e2: all 2; e5: the judge failed.
            dict(tenant_id="acme", event_id="e1", judge="lexical", model="-", score=2 / 3,
                 claims=3, supported=2, error_kind=None, judged_at=now),
            dict(tenant_id="acme", event_id="e2", judge="lexical", model="-", score=1.0,
                 claims=2, supported=2, error_kind=None, judged_at=now),
            dict(tenant_id="acme", event_id="e5", judge="lexical", model="-", score=None,
                 claims=None, supported=None, error_kind="unparsable", judged_at=now),
        ],
        schema=JUDGEMENTS_SCHEMA,
    )  # fmt: skip
    with workspace(tmp_path, HAND) as ws:
        append_rows(ws, JUDGEMENTS_TABLE, judged)
        day1 = rag_signals(ws).to_pylist()[0]
    assert (day1["judged_answers"], day1["judge_errors"], day1["grounded_answers"]) == (2, 1, 1)
    assert (day1["claims"], day1["supported_claims"]) == (5, 4)
    assert day1["groundedness"] == pytest.approx(4 / 5)  # not the mean of 2/3 and 1
    assert day1["grounded_rate"] == pytest.approx(1 / 2)


# -- an independent reference: hand-written DuckDB SQL with list functions ---------------------

REFERENCE_SQL = """
WITH a AS (
  SELECT tenant_id, event_date AS day, attributes['query_id'] AS q,
         list_distinct(list_filter(retrieved_doc_ids, lambda x: x IS NOT NULL)) AS r,
         list_distinct(list_filter(coalesce(cited_doc_ids, []), lambda x: x IS NOT NULL)) AS c
  FROM ev WHERE event_type = 'turn'
), answers AS (
  SELECT *, len(list_filter(c, lambda x: list_contains(rel, x))) AS cited_rel,
         len(rel) AS n_rel, covered
  FROM (
    SELECT a.*, coalesce(j.rel, []) AS rel, j.q IS NOT NULL AS covered
    FROM a LEFT JOIN (
      SELECT query_id AS q, list(doc_id) FILTER (WHERE relevance > 0) AS rel FROM qrels GROUP BY 1
    ) j ON a.q = j.q
  ) WHERE len(r) > 0
)
SELECT tenant_id, day, count(*) AS answers,
       count(*) FILTER (WHERE len(c) > 0) AS cited_answers,
       sum(len(c)) AS citations, sum(len(r)) AS retrieved,
       sum(len(list_filter(r, lambda x: NOT list_contains(c, x)))) AS uncited_retrieved,
       sum(covered::INT) AS covered_answers,
       sum(CASE WHEN covered THEN len(c) ELSE 0 END) AS covered_citations,
       sum(CASE WHEN covered THEN cited_rel ELSE 0 END) AS cited_relevant,
       sum(CASE WHEN covered THEN coalesce(n_rel, 0) ELSE 0 END) AS relevant
FROM answers GROUP BY ALL ORDER BY ALL
"""

_docs = st.none() | st.lists(st.sampled_from(["d1", "d2", "d3", "d4"]), max_size=5)


@st.composite
def event_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 25))
    out = []
    for i in range(n):
        out.append(
            turn(
                i,
                draw(_docs),
                draw(_docs),
                tenant=draw(st.sampled_from(["a", "b"])),
                time=f"2026-01-0{draw(st.integers(5, 7))}T10:00:00Z",
                event_type=draw(st.sampled_from(["turn", "turn", "feedback"])),
                query=draw(st.sampled_from([None, "q1", "q2", "q3"])),
            )
        )
    return out


_qrels = st.dictionaries(
    st.sampled_from(["q1", "q2", "q4"]),
    st.dictionaries(st.sampled_from(["d1", "d2", "d3", "d5"]), st.integers(0, 2), min_size=1),
    min_size=1,
)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(events=event_sets(), judged=_qrels)
def test_signals_equal_hand_written_duckdb_sql(
    tmp_path_factory: pytest.TempPathFactory, events: list[dict[str, Any]], judged: dict[str, Any]
) -> None:
    qrels = Qrels(judged)
    with workspace(tmp_path_factory.mktemp("sig"), events) as ws:
        got = rag_signals(ws, qrels=qrels).select(["tenant_id", "day", *COUNTS[:9]])
        stored = ws.read("events")
    con = duckdb.connect()
    con.register("ev", stored)
    con.register(
        "qrels",
        pa.Table.from_pylist(
            [
                {"query_id": q, "doc_id": d, "relevance": r}
                for q, docs in judged.items()
                for d, r in docs.items()
            ]
        ),
    )
    want = con.sql(REFERENCE_SQL).to_arrow_table()
    con.close()
    assert got.column_names == want.column_names
    assert (
        got.select(["tenant_id", "day"]).to_pylist()
        == want.select(["tenant_id", "day"]).to_pylist()
    )
    for name in COUNTS[:9]:
        a = got.column(name).to_pylist()
        b = [0 if v is None else int(v) for v in want.column(name).to_pylist()]
        assert a == b, name


def test_scan_leaves_a_tenant_without_answers_unscored() -> None:
    # Two tenants over 60 days: one answers 200 times a day with a steady cited rate, one
    # never retrieves (answers 0 every day): its cited_rate is never scored, never alerts.
    rng = np.random.default_rng(3)
    days = 60
    rows = []
    for d in range(days):
        day = dt.date(2026, 1, 1) + dt.timedelta(days=d)
        k = int(rng.binomial(200, 0.9))
        rows.append(
            {
                "tenant_id": "rag",
                "day": day,
                "answers": 200,
                "cited_answers": k,
                "retrieved": 800,
                "uncited_retrieved": int(rng.binomial(800, 0.5)),
            }
        )
        rows.append({"tenant_id": "plain", "day": day, "answers": 0, "cited_answers": 0,
                     "retrieved": 0, "uncited_retrieved": 0})  # fmt: skip
    table = pa.Table.from_pylist(rows)
    result = scan_table(table, metrics=["cited_rate", "uncited_retrieved_share"])
    points = result.points.to_pylist()
    assert {p["tenant_id"] for p in points} == {"rag"}
    assert all(not p["anomaly"] for p in points)
    assert result.candidates == []


def test_explain_breaks_the_rag_rates_down_by_leaf(tmp_path: Path) -> None:
    from assay.metrics import leaf_counts, workspace_events

    events = [*HAND, turn(8, ["d", "d"], ["e"], query="q1")]  # no locale; e never retrieved
    with workspace(tmp_path, events) as ws:
        day = dt.date(2026, 1, 5)
        ev = workspace_events(ws)
        cited = leaf_counts(
            ev, "cited_rate", tenant="acme", start=day, end=day, dims=["locale"]
        ).to_pylist()
        uncited = leaf_counts(
            ev, "uncited_retrieved_share", tenant="acme", start=day, end=day, dims=["locale"]
        ).to_pylist()
    # en: e1 (cites), e5 (cites); fr: e2 (no citation); null: e8 (cites e, retrieved d).
    assert [(r["locale"], r["value"], r["total"]) for r in cited] == [
        ("en", 2.0, 2.0),
        ("fr", 0.0, 1.0),
        (None, 1.0, 1.0),
    ]
    # en: e1 b of {a, b}, e5 a of {a, c}; fr: c of {c}; null: d of {d}.
    assert [(r["locale"], r["value"], r["total"]) for r in uncited] == [
        ("en", 2.0, 4.0),
        ("fr", 1.0, 1.0),
        (None, 1.0, 1.0),
    ]
