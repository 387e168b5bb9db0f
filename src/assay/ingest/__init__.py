"""Ingestion: readers per format, the batch pipeline (validate, redact, pseudonymise, dedupe,
store) and the quarantine of rejected rows."""

from assay.ingest._batches import read_batches
from assay.ingest._pipeline import (
    BatchOutcome,
    FileSummary,
    Ingestor,
    IngestSummary,
    ingest_paths,
    iter_files,
)
from assay.ingest._quarantine import DEFAULT_QUARANTINE_LIMIT, read_quarantine
from assay.ingest._readers import Format, ParseFailure, RawBatch, detect_format

__all__ = [
    "DEFAULT_QUARANTINE_LIMIT",
    "BatchOutcome",
    "FileSummary",
    "Format",
    "IngestSummary",
    "Ingestor",
    "ParseFailure",
    "RawBatch",
    "detect_format",
    "ingest_paths",
    "iter_files",
    "read_batches",
    "read_quarantine",
]
