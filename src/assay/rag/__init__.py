"""RAG evaluation: retrieval metrics on labelled sets, citation and groundedness signals.

The analysis layer beside :mod:`assay.anomaly` and :mod:`assay.drift`: it may import schema,
privacy, store, metrics and evaluation; nothing below imports it. Definitions: ``docs/rag.md``.

- Labelled sets: TREC qrels/run and JSONL readers.
- Retrieval metrics through ir-measures (trec_eval's definitions), per query and averaged,
  with bootstrap intervals and slices; paired comparison of two runs.
- Groundedness: the :class:`Judge` protocol (claims, a verdict per claim, a score per answer
  or an error), the lexical baseline, an OpenAI-compatible judge and a local NLI
  cross-encoder; :func:`run_judge` (concurrency, cache) and the stored :func:`judgements`.
"""

from assay.rag._judge import (
    ClaimVerdict,
    Judge,
    JudgeCache,
    JudgeError,
    JudgeInput,
    Judgement,
    JudgeRun,
    judgements,
    run_judge,
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

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_N_BOOT",
    "DEFAULT_N_PERMUTATIONS",
    "ClaimVerdict",
    "Judge",
    "JudgeCache",
    "JudgeError",
    "JudgeInput",
    "JudgeRun",
    "Judgement",
    "LexicalJudge",
    "NLIJudge",
    "OpenAIJudge",
    "PairedReport",
    "PerQuery",
    "Qrels",
    "RetrievalReport",
    "Run",
    "bootstrap_means",
    "cohens_dz",
    "compare_runs",
    "evaluate_run",
    "judgements",
    "metric_name",
    "per_query",
    "read_qrels",
    "read_queries",
    "read_run",
    "run_judge",
    "sign_flip_test",
    "split_claims",
    "store_judgements",
]
