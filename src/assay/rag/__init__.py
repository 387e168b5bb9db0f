"""RAG evaluation: retrieval metrics on labelled sets, citation and groundedness signals.

The analysis layer beside :mod:`assay.anomaly` and :mod:`assay.drift`: it may import schema,
privacy, store, metrics and evaluation; nothing below imports it. Definitions: ``docs/rag.md``.

- Labelled sets: TREC qrels/run and JSONL readers.
- Retrieval metrics through ir-measures (trec_eval's definitions), per query and averaged,
  with bootstrap intervals and slices; paired comparison of two runs.
"""

__all__: list[str] = []
