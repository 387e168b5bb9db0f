"""The lexical baseline judge: word overlap between a claim and the contexts.

A **baseline**, the default when no model is configured, not a measure of meaning: it cannot
see a paraphrase ("car" vs "automobile") nor a negation ("is" vs "is not" share their content
words). Use it to catch answers that talk about things the contexts never mention, and compare
it with a model judge through the audit (``assay rag audit``).

Definition. The content words of a text are its lowercased word tokens (``\\w+``) minus a short
English stop-word list (:data:`STOP_WORDS`). A claim is

- ``unknown`` when it has no content word;
- ``supported`` when at least ``threshold`` (default 0.6) of its distinct content words appear
  among the content words of all the contexts together;
- ``unsupported`` otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assay._errors import UsageError
from assay.rag._judge import ClaimVerdict, Judgement, Verdict, no_claims, split_claims

#: Function words ignored by the lexical judge (a short English list: articles, pronouns,
#: auxiliaries, prepositions, conjunctions).
_STOP_WORDS = (
    "a an the this that these those it its they them their there here i you he she we me my "
    "your his her our us is are was were be been being am do does did done has have had "
    "having of to in on at by for with from as into onto about over under than then so such "
    "and or but if not no nor can could will would shall should may might must also very "
    "just only what which who whom whose when where why how all any each few more most "
    "other some own same"
)
STOP_WORDS = frozenset(_STOP_WORDS.split())
_WORD = re.compile(r"\w+")


def content_words(text: str) -> set[str]:
    """Distinct lowercased word tokens of ``text`` that are not stop words.

    Examples
    --------
    >>> sorted(content_words("The Seine flows through Paris, and it is long."))
    ['flows', 'long', 'paris', 'seine', 'through']
    """
    return {w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS}


@dataclass(frozen=True)
class LexicalJudge:
    """Word-overlap groundedness baseline (see the module docstring for the definition).

    Examples
    --------
    >>> j = LexicalJudge().judge("Paris is in France. Berlin is big.", ["Paris lies in France."])
    >>> [c.verdict for c in j.claims], j.score
    (['supported', 'unsupported'], 0.5)
    """

    threshold: float = 0.6

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise UsageError(
                f"the lexical judge's threshold must be in (0, 1] (got {self.threshold}); "
                "0.6 is the default"
            )

    @property
    def judge_id(self) -> str:
        return "lexical"

    @property
    def model(self) -> str:
        return f"overlap>={self.threshold:g}"

    @property
    def prompt_version(self) -> str:
        return "1"

    def judge(self, answer: str, contexts: Sequence[str]) -> Judgement:
        claims = split_claims(answer)
        if not claims:
            return no_claims()
        vocabulary: set[str] = set()
        for context in contexts:
            vocabulary |= content_words(context)
        out = []
        for claim in claims:
            words = content_words(claim)
            if not words:
                out.append(ClaimVerdict(claim, "unknown", "no content word"))
                continue
            found = len(words & vocabulary)
            share = found / len(words)
            verdict: Verdict = "supported" if share >= self.threshold else "unsupported"
            out.append(ClaimVerdict(claim, verdict, f"{found}/{len(words)} content words found"))
        return Judgement(claims=tuple(out))
