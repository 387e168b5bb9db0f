"""The lexical baseline: hand-worked verdicts and a property test against an independent
re-statement of its definition (set arithmetic written differently)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assay import UsageError
from assay.rag._lexical import STOP_WORDS, LexicalJudge


def test_hand_worked_verdicts() -> None:
    contexts = ["The Eiffel Tower is in Paris.", "It opened in 1889 for the World's Fair."]
    j = LexicalJudge().judge(
        "The Eiffel Tower opened in 1889. It is made of gold and silver. It is!", contexts
    )
    # Claim 1: eiffel tower opened 1889 -> 4/4. Claim 2: made gold silver -> 0/3.
    # Claim 3: "It is!" has no content word -> unknown.
    assert [(c.verdict, c.reason) for c in j.claims] == [
        ("supported", "4/4 content words found"),
        ("unsupported", "0/3 content words found"),
        ("unknown", "no content word"),
    ]
    assert j.score == pytest.approx(1 / 3)


def test_threshold_is_inclusive() -> None:
    # "paris big city": 2 of 3 found (0.667).
    assert LexicalJudge(threshold=2 / 3).judge("Paris big city.", ["paris city"]).score == 1.0
    assert LexicalJudge(threshold=0.7).judge("Paris big city.", ["paris city"]).score == 0.0
    with pytest.raises(UsageError, match=r"in \(0, 1\]"):
        LexicalJudge(threshold=0)


WORDS = st.sampled_from(["paris", "france", "the", "is", "river", "Seine", "of", "big", "1889"])


@given(st.lists(WORDS, min_size=1, max_size=8), st.lists(WORDS, max_size=10))
def test_verdict_matches_a_restated_definition(claim: list[str], context: list[str]) -> None:
    words = {w.lower() for w in claim} - STOP_WORDS
    known = {w.lower() for w in context}
    expected = (
        "unknown"
        if not words
        else "supported"
        if sum(w in known for w in words) >= 0.6 * len(words)
        else "unsupported"
    )
    (verdict,) = LexicalJudge().judge(" ".join(claim), [" ".join(context)]).claims
    assert verdict.verdict == expected
