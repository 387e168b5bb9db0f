"""Write docs/examples/rag/: the small labelled set and answers of the quickstart's RAG step.

- ``qrels.txt``: TREC qrels of 30 queries of a support assistant's knowledge base
  (``q01`` .. ``q30``; 1 to 4 relevant documents each, graded 1 or 2, and some judged not
  relevant);
- ``run-a.txt``, ``run-b.txt``: the top 10 documents per query of two retrievers on the same
  candidates: A (a keyword retriever) and B (A followed by a reranker that moves relevant
  documents up more often than not). ``q01`` is written by hand (the quickstart works it out);
  the other queries are drawn with a fixed seed;
- ``answers.jsonl``: 30 answers with the contexts they were given (``tenant_id``,
  ``event_id``, ``answer``, ``contexts``), made from 10 facts in four ways: faithful (the
  context's words), paraphrased (the same facts in other words), with an extra claim the
  contexts do not hold, and contradicting the context with its own words;
- ``labels.jsonl``: what a person says of each answer (``grounded`` for the faithful and
  paraphrased ones, ``not_grounded`` for the others), keyed like the answers;
- ``worked-qrels.txt``, ``worked-run.txt``: the worked example of docs/rag.md (two queries,
  a tie in score), which docs/cli.md's example of ``assay rag eval`` reads.

Run from the repository root (the files are committed; run it again only to change them):

    PYTHONPATH=src .venv/bin/python scripts/make_rag_examples.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FOLDER = Path("docs/examples/rag")
SEED = 17
QUERIES = 30
DEPTH = 10
TAGS = {"A": "keyword", "B": "rerank"}

#: q01, written by hand: (doc, grade) judged, then each run's ranking (best first).
Q01_QRELS = (("kb-0101", 2), ("kb-0102", 1), ("kb-0103", 0), ("kb-0104", 1))
Q01_A = (
    "kb-0105",
    "kb-0101",
    "kb-0103",
    "kb-0106",
    "kb-0102",
    "kb-0107",
    "kb-0108",
    "kb-0109",
    "kb-0110",
    "kb-0111",
)
Q01_B = (
    "kb-0101",
    "kb-0105",
    "kb-0102",
    "kb-0103",
    "kb-0106",
    "kb-0107",
    "kb-0104",
    "kb-0108",
    "kb-0109",
    "kb-0110",
)

#: (context, faithful answer, paraphrased answer, extra claim, contradicting answer).
FACTS = (
    (
        "Plans renew automatically on the first day of each month.",
        "Plans renew automatically on the first day of each month.",
        "Your subscription is billed again when a new month starts.",
        "Plans renew automatically on the first day of each month. Annual plans get two free "
        "months.",
        "Plans never renew automatically on the first day of each month.",
    ),
    (
        "Refunds are issued to the original card within seven business days.",
        "Refunds are issued to the original card within seven business days.",
        "You get your money back on the same card in about a week.",
        "Refunds are issued to the original card within seven business days. Store credit is "
        "instant.",
        "Refunds are issued to a new card, never the original card, after seven business days.",
    ),
    (
        "Scheduled exports run every night at two o'clock UTC.",
        "Scheduled exports run every night at two o'clock UTC.",
        "Your export is produced daily in the early hours, London winter time.",
        "Scheduled exports run every night at two o'clock UTC. You can also pick a weekly "
        "schedule.",
        "Scheduled exports run every week, not every night, at two o'clock UTC.",
    ),
    (
        "Each export file is limited to ten gigabytes; larger exports are split into parts.",
        "Each export file is limited to ten gigabytes. Larger exports are split into parts.",
        "One file holds at most 10 GB, and anything bigger comes in pieces.",
        "Each export file is limited to ten gigabytes. Compressed exports have no limit.",
        "Export files are not limited to ten gigabytes, and larger exports are never split.",
    ),
    (
        "API keys are created under Settings, then API, by an account owner.",
        "API keys are created under Settings, then API, by an account owner.",
        "Only the owner of the account can make a key, from the developer page of the preferences.",
        "API keys are created under Settings, then API, by an account owner. Keys expire after "
        "ninety days.",
        "API keys are created under Settings, then API, by any user except an account owner.",
    ),
    (
        "Two-factor authentication can be turned on in the Security tab of your profile.",
        "Two-factor authentication can be turned on in the Security tab of your profile.",
        "You can require a second login step from the protection page of your account.",
        "Two-factor authentication can be turned on in the Security tab of your profile. SMS "
        "codes are sent free of charge.",
        "Two-factor authentication cannot be turned on in the Security tab of your profile.",
    ),
    (
        "Deleted projects stay in the trash for thirty days before they are removed for good.",
        "Deleted projects stay in the trash for thirty days before they are removed for good.",
        "A removed workspace can be brought back for a month; after that it is gone.",
        "Deleted projects stay in the trash for thirty days before they are removed for good. "
        "Support can restore them later on request.",
        "Deleted projects stay in the trash for good; they are never removed after thirty days.",
    ),
    (
        "The free tier includes three seats and one hundred tasks per month.",
        "The free tier includes three seats and one hundred tasks per month.",
        "Without paying you get room for a team of 3 and up to 100 jobs monthly.",
        "The free tier includes three seats and one hundred tasks per month. Extra seats cost "
        "five dollars.",
        "The free tier includes one hundred seats and three tasks per month.",
    ),
    (
        "Invoices can be downloaded as PDF from the Billing page for the last twelve months.",
        "Invoices can be downloaded as PDF from the Billing page for the last twelve months.",
        "A year of your bills is available to save from the payments screen.",
        "Invoices can be downloaded as PDF from the Billing page for the last twelve months. "
        "Older invoices are emailed on request.",
        "Invoices for the last twelve months cannot be downloaded as PDF from the Billing page.",
    ),
    (
        "Single sign-on with SAML is available on the Enterprise plan only.",
        "Single sign-on with SAML is available on the Enterprise plan only.",
        "Logging in through your identity provider needs the top subscription.",
        "Single sign-on with SAML is available on the Enterprise plan only. Google login works "
        "on every plan.",
        "Single sign-on with SAML is available on every plan, not the Enterprise plan only.",
    ),
)
#: How many answers of each way (of the facts, the first N): 30 in all, 16 grounded.
MIX = {"faithful": 10, "paraphrase": 6, "extra": 10, "contradiction": 4}
GROUNDED = {"faithful": True, "paraphrase": True, "extra": False, "contradiction": False}
WAY = {"faithful": 1, "paraphrase": 2, "extra": 3, "contradiction": 4}
TENANTS = tuple(f"tenant-00{k}" for k in range(5))
#: docs/rag.md's worked example: qrels, then the run (doc, score), all of tag bm25.
WORKED_QRELS = ("q1 0 d1 2", "q1 0 d2 0", "q1 0 d3 1", "q1 0 d4 1", "q2 0 d7 1")
WORKED_RUN = (("d5", 3.0), ("d1", 2.5), ("d2", 2.0), ("d3", 2.0), ("d6", 1.0))


def labelled_set() -> tuple[list[str], list[str], list[str]]:
    """The lines of qrels.txt, run-a.txt and run-b.txt."""
    rng = np.random.default_rng(SEED)
    qrels = [f"q01 0 {doc} {grade}" for doc, grade in Q01_QRELS]
    runs: dict[str, list[str]] = {"A": [], "B": []}
    for name, ranking in (("A", Q01_A), ("B", Q01_B)):
        runs[name] += [
            f"q01 Q0 {doc} {i} {DEPTH - i + 1}.0 {TAGS[name]}" for i, doc in enumerate(ranking, 1)
        ]
    for q in range(2, QUERIES + 1):
        qid = f"q{q:02d}"
        docs = [f"kb-{q:02d}{k:02d}" for k in range(1, 21)]  # 20 candidates
        n_rel = int(rng.integers(1, 5))
        grades = np.zeros(len(docs), dtype=int)
        grades[:n_rel] = rng.choice([1, 2], size=n_rel, p=[0.6, 0.4])
        judged = n_rel + int(rng.integers(2, 6))  # the rest of the judged are not relevant
        qrels += [f"{qid} 0 {docs[k]} {grades[k]}" for k in rng.permutation(judged)]
        keyword = 0.9 * grades + rng.normal(0.0, 1.0, len(docs))
        rerank = keyword + 0.9 * grades + rng.normal(0.0, 0.6, len(docs))
        for name, score in (("A", keyword), ("B", rerank)):
            top = np.argsort(-score, kind="stable")[:DEPTH]
            runs[name] += [
                f"{qid} Q0 {docs[k]} {i} {score[k]:.4f} {TAGS[name]}" for i, k in enumerate(top, 1)
            ]
    return qrels, runs["A"], runs["B"]


def answers() -> tuple[list[dict[str, object]], list[dict[str, str]]]:
    """The rows of answers.jsonl and labels.jsonl."""
    rows: list[dict[str, object]] = []
    labels: list[dict[str, str]] = []
    for way, count in MIX.items():
        for fact in FACTS[:count]:
            n = len(rows) + 1
            key = {"tenant_id": TENANTS[n % len(TENANTS)], "event_id": f"ans-{n:03d}"}
            rows.append({**key, "answer": fact[WAY[way]], "contexts": [fact[0]]})
            labels.append({**key, "human_label": "grounded" if GROUNDED[way] else "not_grounded"})
    return rows, labels


def main() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    qrels, run_a, run_b = labelled_set()
    for name, lines in (("qrels.txt", qrels), ("run-a.txt", run_a), ("run-b.txt", run_b)):
        (FOLDER / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    worked = [f"q1 Q0 {doc} {i} {score} bm25" for i, (doc, score) in enumerate(WORKED_RUN, 1)]
    for name, lines in (("worked-qrels.txt", list(WORKED_QRELS)), ("worked-run.txt", worked)):
        (FOLDER / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows, labels = answers()
    for name, objs in (("answers.jsonl", rows), ("labels.jsonl", labels)):
        text = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)
        (FOLDER / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
