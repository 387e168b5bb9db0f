"""RAG evaluation: retrieval metrics on labelled sets, citation and groundedness signals.

The analysis layer beside :mod:`assay.anomaly` and :mod:`assay.drift`: it may import schema,
privacy, store, metrics and evaluation; nothing below imports it. Definitions: ``docs/rag.md``.

- Labelled sets: TREC qrels/run and JSONL readers.
- Retrieval metrics through ir-measures (trec_eval's definitions), per query and averaged,
  with bootstrap intervals and slices; paired comparison of two runs.
- Groundedness: the :class:`Judge` protocol (claims, a verdict per claim, a score per answer
  or an error), the lexical baseline, an OpenAI-compatible judge and a local NLI
  cross-encoder; :func:`run_judge` (concurrency, cache) and the stored :func:`judgements`.
- The audit of a judge: :func:`audit_sample` (stratified), :func:`audit_import` (people's
  labels) and :func:`agreement` (Cohen's kappa, precision/recall of "not grounded").
"""

from assay.rag._audit import (
    Agreement,
    ImportSummary,
    JudgeReport,
    agreement,
    agreement_of,
    audit_import,
    audit_sample,
    cohen_kappa,
    judge_report,
    labels,
    make_judge,
    write_sample,
)
from assay.rag._compare import Release, ReleaseComparison, compare_releases
from assay.rag._judge import (
    ClaimVerdict,
    Judge,
    JudgeCache,
    JudgeError,
    JudgeInput,
    Judgement,
    JudgeRun,
    judge_answers,
    judgements,
    read_judge_input,
    run_judge,
    select_inputs,
    split_claims,
    store_judgements,
)
from assay.rag._lexical import LexicalJudge
from assay.rag._nli import NLIJudge
from assay.rag._openai import OpenAIJudge
from assay.rag._paired import (
    DEFAULT_N_PERMUTATIONS,
    PairedReport,
    cohens_dz,
    compare_runs,
    sign_flip_test,
)
from assay.rag._qrels import Qrels, Run, read_qrels, read_queries, read_run
from assay.rag._retrieval import (
    DEFAULT_METRICS,
    DEFAULT_N_BOOT,
    PerQuery,
    RetrievalReport,
    bootstrap_means,
    evaluate_run,
    metric_name,
    per_query,
)
from assay.rag._signals import rag_signals, store_qrels, stored_qrels

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_N_BOOT",
    "DEFAULT_N_PERMUTATIONS",
    "Agreement",
    "ClaimVerdict",
    "ImportSummary",
    "Judge",
    "JudgeCache",
    "JudgeError",
    "JudgeInput",
    "JudgeReport",
    "JudgeRun",
    "Judgement",
    "LexicalJudge",
    "NLIJudge",
    "OpenAIJudge",
    "PairedReport",
    "PerQuery",
    "Qrels",
    "Release",
    "ReleaseComparison",
    "RetrievalReport",
    "Run",
    "agreement",
    "agreement_of",
    "audit_import",
    "audit_sample",
    "bootstrap_means",
    "cohen_kappa",
    "cohens_dz",
    "compare_releases",
    "compare_runs",
    "evaluate_run",
    "judge_answers",
    "judge_report",
    "judgements",
    "labels",
    "make_judge",
    "metric_name",
    "per_query",
    "rag_signals",
    "read_judge_input",
    "read_qrels",
    "read_queries",
    "read_run",
    "run_judge",
    "select_inputs",
    "sign_flip_test",
    "split_claims",
    "store_judgements",
    "store_qrels",
    "stored_qrels",
    "write_sample",
]
