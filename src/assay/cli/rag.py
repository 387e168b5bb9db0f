"""`assay rag eval|...`: RAG evaluation (retrieval metrics on labelled sets, comparisons)."""

from __future__ import annotations

from assay.cli._common import command_group

app = command_group(
    help="RAG evaluation: retrieval metrics on labelled sets, citations and groundedness.",
)
