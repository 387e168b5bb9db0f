"""Readers of qrels, runs and query fields: round trips in both formats, and errors that name the
file, the line, what was expected and the fix, without repeating ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay._errors import NotFoundError, UsageError
from assay.rag import read_qrels, read_queries, read_run

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.:", min_size=1, max_size=8)
qrels_tables = st.dictionaries(
    ids, st.dictionaries(ids, st.integers(-2, 4), min_size=1, max_size=5), min_size=1, max_size=4
)
run_tables = st.dictionaries(
    ids,
    st.dictionaries(
        ids, st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=5
    ),
    min_size=1,
    max_size=4,
)
_TMP = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_TMP
@given(table=qrels_tables)
def test_qrels_round_trip_through_trec_and_jsonl(
    tmp_path: Path, table: dict[str, dict[str, int]]
) -> None:
    trec, jsonl = tmp_path / "q.txt", tmp_path / "q.jsonl"
    trec.write_text(
        "".join(f"{q} 0 {d} {r}\n" for q, docs in table.items() for d, r in docs.items())
    )
    jsonl.write_text(
        "".join(
            json.dumps({"query_id": q, "doc_id": d, "relevance": r}) + "\n"
            for q, docs in table.items()
            for d, r in docs.items()
        )
    )
    assert read_qrels(trec).judgements == table
    assert read_qrels(jsonl).judgements == table


@_TMP
@given(table=run_tables)
def test_runs_round_trip_through_trec_and_jsonl(
    tmp_path: Path, table: dict[str, dict[str, float]]
) -> None:
    trec, jsonl = tmp_path / "r.txt", tmp_path / "r.jsonl"
    lines = [
        f"{q} Q0 {d} {i} {s!r} mytag\n"
        for q, docs in table.items()
        for i, (d, s) in enumerate(docs.items(), 1)
    ]
    trec.write_text("".join(lines))
    jsonl.write_text(
        "".join(
            json.dumps({"query_id": q, "doc_id": d, "score": s}) + "\n"
            for q, docs in table.items()
            for d, s in docs.items()
        )
    )
    got = read_run(trec)
    assert (got.scores, got.name) == (table, "mytag")
    assert read_run(jsonl).scores == table


def test_jsonl_ranks_become_negative_scores_and_other_keys_become_query_fields(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text(
        '{"query_id": 7, "doc_id": "a", "rank": 1, "locale": "de-DE"}\n'
        "\n# a comment\n"
        '{"query_id": 7, "doc_id": "b", "rank": 2, "locale": "de-DE"}\n'
    )
    run = read_run(path)
    assert run.scores == {"7": {"a": -1.0, "b": -2.0}}
    assert run.fields == {"7": {"locale": "de-DE"}}
    assert run.name == "run"


def test_queries_file_gives_fields_per_query(tmp_path: Path) -> None:
    path = tmp_path / "queries.jsonl"
    path.write_text('{"query_id": "q1", "tenant_id": "t1", "locale": "fr"}\n{"query_id": "q2"}\n')
    assert read_queries(path) == {"q1": {"tenant_id": "t1", "locale": "fr"}, "q2": {}}


SECRET = "alice@example.com"


@pytest.mark.parametrize(
    ("reader", "text", "pattern"),
    [
        (
            read_qrels,
            f"q1 0 {SECRET}\n",
            r"q\.txt:1: expected 4 .*'query_id 0 doc_id relevance'.*got 3",
        ),
        (read_qrels, f"q1 0 {SECRET} yes\n", r"q\.txt:1: relevance must be an integer.*'yes'"),
        (read_qrels, f"q1 0 {SECRET} 1\nq1 0 {SECRET} 0\n", r"q\.txt:2: .*first on line 1"),
        (read_qrels, "", r"q\.txt holds no judgements"),
        (read_run, f"q1 Q0 {SECRET} 1 1.0\n", r"q\.txt:1: expected 6 .*TREC run.*got 5"),
        (read_run, f"q1 Q0 {SECRET} 1 nan t\n", r"q\.txt:1: score must be a finite number"),
        (read_run, f"q1 Q0 {SECRET} 1 abc t\n", r"q\.txt:1: score must be .*'abc'.*fifth column"),
    ],
)
def test_trec_errors_name_file_line_expectation_and_fix_never_the_ids(
    tmp_path: Path, reader: object, text: str, pattern: str
) -> None:
    path = tmp_path / "q.txt"
    path.write_text(text)
    with pytest.raises(UsageError, match=pattern) as info:
        reader(path)  # type: ignore[operator]
    assert SECRET not in str(info.value)


def _line(**obj: object) -> str:
    return json.dumps(obj) + "\n"


@pytest.mark.parametrize(
    ("reader", "text", "pattern"),
    [
        (read_qrels, "{not json\n", r"f\.jsonl:1: not valid JSON"),
        (read_qrels, "{}\n[1]\n", r"f\.jsonl:1: no 'query_id' key"),
        (read_qrels, _line(query_id=SECRET, doc_id="d"), r"f\.jsonl:1: no 'relevance' key"),
        (
            read_qrels,
            _line(query_id="q", doc_id=SECRET, relevance=0.5),
            r"relevance must be an integer",
        ),
        (
            read_qrels,
            _line(query_id="q", doc_id=SECRET, relevance=True),
            r"relevance must be an integer",
        ),
        (
            read_qrels,
            _line(query_id="q", doc_id=["x"], relevance=1),
            r"doc_id must be a non-empty string",
        ),
        (
            read_qrels,
            _line(query_id="q", doc_id="a", relevance=1, locale="de")
            + _line(query_id="q", doc_id="b", relevance=1, locale=SECRET),
            r"f\.jsonl:2: per-query field 'locale' differs",
        ),
        (
            read_qrels,
            _line(query_id="q", doc_id="a", relevance=1, tags=[SECRET]),
            r"per-query field 'tags' must be a string, number, boolean or null; got a list",
        ),
        (read_run, _line(query_id="q", doc_id=SECRET), r"f\.jsonl:1: no 'score' or 'rank' key"),
        (read_run, _line(query_id="q", doc_id=SECRET, rank=0), r"rank must be 1 or more; got 0"),
        (
            read_run,
            _line(query_id="q", doc_id="a", score=1.0) + _line(query_id="q", doc_id="b", rank=2),
            r"f\.jsonl:2: this line orders by rank but earlier lines by score",
        ),
        (
            read_run,
            _line(query_id="q", doc_id=SECRET, score=1)
            + _line(query_id="q", doc_id=SECRET, score=2),
            r"f\.jsonl:2: .*first on line 1.*duplicate ranked documents",
        ),
        (read_queries, _line(query_id=SECRET) * 2, r"f\.jsonl:2: the same query_id appears again"),
    ],
)
def test_jsonl_errors_name_file_line_expectation_and_fix_never_the_ids(
    tmp_path: Path, reader: object, text: str, pattern: str
) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text(text)
    with pytest.raises(UsageError, match=pattern) as info:
        reader(path, format="jsonl") if reader is not read_queries else reader(path)  # type: ignore[operator]
    assert SECRET not in str(info.value)


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"no file .*nope\.txt"):
        read_qrels(tmp_path / "nope.txt")


def test_a_non_utf8_file_says_to_save_it_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_bytes(b"q1 0 d\xff 1\n")
    with pytest.raises(UsageError, match="not UTF-8 text"):
        read_qrels(path)
