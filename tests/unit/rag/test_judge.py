"""The judge pipeline and its storage: claim splitting (hand-worked and property-based), a
judgement's score, errors never inside a mean, a judge that raises, stored judgements without
text, and the latest judgement winning."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assay import UsageError
from assay.rag._judge import (
    JUDGEMENTS_SCHEMA,
    ClaimVerdict,
    Judge,
    JudgeInput,
    Judgement,
    JudgeRun,
    judgements,
    run_judge,
    split_claims,
    store_judgements,
)
from assay.rag._lexical import LexicalJudge
from assay.store import Workspace


@pytest.mark.parametrize(
    ("answer", "claims"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ("It costs 3.50 EUR. Done.", ["It costs 3.50 EUR.", "Done."]),
        ("line one\nline two\n\n", ["line one", "line two"]),
        ("Hi...   ?! ok", ["Hi...", "ok"]),  # "?!" alone has no word
        ("", []),
        (" . ! ", []),
    ],
)
def test_split_claims_hand_worked(answer: str, claims: list[str]) -> None:
    assert split_claims(answer) == claims


@given(st.lists(st.from_regex(r"[A-Za-z][a-z]{0,8}( [a-z]{1,8}){0,4}", fullmatch=True), max_size=6))
def test_split_claims_recovers_sentences_joined_by_full_stops(sentences: list[str]) -> None:
    answer = " ".join(s + "." for s in sentences)
    assert split_claims(answer) == [s + "." for s in sentences]


@given(st.text(max_size=300))
def test_every_claim_is_a_stripped_piece_of_the_answer_with_a_word(answer: str) -> None:
    for claim in split_claims(answer):
        assert claim == claim.strip()
        assert claim in answer
        assert re.search(r"\w", claim)


def test_score_is_supported_over_claims_and_none_on_an_error() -> None:
    claims = (
        ClaimVerdict("a", "supported"),
        ClaimVerdict("b", "unknown"),
        ClaimVerdict("c", "unsupported"),
        ClaimVerdict("d", "supported"),
    )
    assert Judgement(claims=claims).score == 0.5
    assert Judgement.failed("unparsable", "x").score is None


class Exploding:
    judge_id = "boom"
    model = ""
    prompt_version = "1"

    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def judge(self, answer: str, contexts: Sequence[str]) -> Judgement:
        with self.lock:
            self.threads.add(threading.current_thread().name)
        if "boom" in answer:
            raise RuntimeError(f"cannot read {answer}")
        return LexicalJudge().judge(answer, contexts)


def test_a_judge_that_raises_records_a_model_error_and_the_run_goes_on() -> None:
    judge = Exploding()
    assert isinstance(judge, Judge)
    items = [JudgeInput(a, ("paris france",)) for a in ["Paris, France.", "boom secret.", "Rome."]]
    run = run_judge(judge, items, concurrency=2)
    assert [j.score for j in run.judgements] == [1.0, None, 0.0]
    err = run.judgements[1].error
    assert err is not None
    assert err.kind == "model"
    assert "secret" not in err.message
    s = run.summary()
    assert (s["judged"], s["errors"], s["mean_score"]) == (2, 1, 0.5)


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(UsageError, match="at least 1"):
        run_judge(LexicalJudge(), [], concurrency=0)


def test_stored_judgements_hold_no_text_and_the_latest_wins(tmp_path: Path) -> None:
    items = (
        JudgeInput("Paris is in France. Lyon too.", ("paris in france",), "t1", "e1"),
        JudgeInput("", ("paris",), "t1", "e2"),
    )
    first = run_judge(LexicalJudge(), items)
    later = JudgeRun(
        "lexical",
        first.model,
        items[:1],
        (Judgement(claims=(ClaimVerdict("x", "supported"),)),),
        judged_at=first.judged_at + timedelta(minutes=1),
    )
    with Workspace.init(tmp_path / "ws") as ws:
        assert judgements(ws).num_rows == 0
        assert store_judgements(ws, first) == 2
        store_judgements(ws, later)
        latest = judgements(ws)
        every = judgements(ws, latest=False)
        log = b"".join(
            p.read_bytes() for p in (ws.path / "rag_judgements" / "_delta_log").iterdir()
        )
        data = b"".join(
            p.read_bytes() for p in (ws.path / "rag_judgements").rglob("*") if p.is_file()
        )
    assert latest.schema == JUDGEMENTS_SCHEMA
    assert every.num_rows == 3
    rows = latest.to_pylist()
    assert [
        (r["event_id"], r["score"], r["claims"], r["supported"], r["error_kind"]) for r in rows
    ] == [
        ("e1", 1.0, 1, 1, None),
        ("e2", None, None, None, "no_claims"),
    ]
    assert rows[0]["judged_at"] > datetime(2020, 1, 1, tzinfo=UTC)
    assert b"Paris" not in data
    assert b"Lyon" not in data
    assert b'"t1"' not in log  # no id in the transaction log's statistics
    assert b'"e1"' not in log


class Scripted:
    """A judge whose verdicts are given per answer: "s"/"u" letters, or "!" for an error."""

    judge_id = "scripted"
    model = ""
    prompt_version = "1"

    def judge(self, answer: str, contexts: Sequence[str]) -> Judgement:
        script = contexts[0]
        if script == "!":
            return Judgement.failed("unparsable", "scripted")
        verdicts = {"s": "supported", "u": "unsupported"}
        return Judgement(
            claims=tuple(ClaimVerdict(str(i), verdicts[c]) for i, c in enumerate(script))  # type: ignore[arg-type]
        )


@given(st.lists(st.one_of(st.just("!"), st.text("su", min_size=1, max_size=5)), max_size=12))
def test_the_mean_skips_errors_and_counts_them(scripts: list[str]) -> None:
    items = [JudgeInput("An answer.", (s,)) for s in scripts]
    summary = run_judge(Scripted(), items, concurrency=3).summary()
    scores = [s.count("s") / len(s) for s in scripts if s != "!"]
    assert summary["errors"] == scripts.count("!")
    assert summary["judged"] == len(scores)
    if scores:
        assert summary["mean_score"] == pytest.approx(sum(scores) / len(scores))
    else:
        assert summary["mean_score"] is None


def test_since_until_select_answers_by_their_stored_event_day(tmp_path: Path) -> None:
    import json

    from assay.ingest import ingest_paths
    from assay.rag._judge import select_inputs

    events = tmp_path / "events.jsonl"
    rows = [
        {
            "event_id": f"e{d}",
            "event_time": f"2026-03-0{d}T10:00:00Z",
            "tenant_id": "acme",
            "user_id": "u",
            "session_id": "s",
            "event_type": "turn",
        }
        for d in (1, 2, 3)
    ]
    events.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = [JudgeInput("A.", (), "acme", f"e{d}") for d in (1, 2, 3, 4)]
    with Workspace.init(tmp_path / "ws") as ws:
        ingest_paths(ws, [events])
        pick = select_inputs(ws, items, since=date(2026, 3, 2))
        assert [i.event_id for i in pick] == ["e2", "e3"]  # e4 is not stored: left out
        pick = select_inputs(ws, items, until=date(2026, 3, 2), limit=1)
        assert [i.event_id for i in pick] == ["e1"]
        assert len(select_inputs(ws, items, tenant="other")) == 0
        assert len(select_inputs(ws, items)) == 4


class Silent:
    judge_id = "silent"
    model = ""
    prompt_version = "1"

    def judge(self, answer: str, contexts: Sequence[str]) -> Judgement:
        return Judgement(tokens_in=7)  # no claims, no error


def test_a_judgement_without_claims_or_error_counts_as_an_error() -> None:
    run = run_judge(Silent(), [JudgeInput("Something.", ())])
    (j,) = run.judgements
    assert j.error is not None
    assert j.error.kind == "no_claims"
    assert j.tokens_in == 7
    s = run.summary()
    assert (s["answers"], s["judged"], s["errors"]) == (1, 0, 1)
