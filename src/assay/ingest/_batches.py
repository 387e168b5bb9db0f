"""One entry point for reading an event file of any format: :func:`read_batches`.

It sits above the per-format readers (``jsonl``, ``csv``, ``parquet``), which build on the shared
pieces of ``_readers``; keeping the dispatcher here, not in ``_readers``, leaves the imports
one-way (``_readers`` <- format readers <- ``_batches``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from assay._errors import UsageError
from assay.ingest._readers import FORMATS, Format, RawBatch, detect_format
from assay.ingest.csv import read_csv
from assay.ingest.jsonl import read_jsonl
from assay.ingest.parquet import read_parquet


def read_batches(
    path: Path,
    *,
    format: Format | Literal["auto"] = "auto",
    batch_rows: int = 65536,
) -> Iterator[RawBatch]:
    """Read an event file as a stream of parsed batches.

    Parameters
    ----------
    path : the file; ``.gz`` is decompressed as a stream.
    format : ``jsonl``, ``parquet``, ``csv``, or ``auto`` (:func:`detect_format`).
    batch_rows : the most rows (records plus parse failures) in one batch.

    Yields
    ------
    RawBatch
        In file order. An empty file (or one of blank lines) yields nothing. Validate each
        batch with ``assay.schema.validate(batch.table, lenient_strings=(format == "csv"))``.

    Raises
    ------
    NotFoundError
        If the file does not exist or vanishes while being read.
    SchemaError
        If the file cannot be read or is not in the format (a damaged gzip or Parquet file,
        a CSV without a header); a bad record is a :class:`ParseFailure`, never an error.
    UsageError
        If ``batch_rows`` is not positive or ``format`` is unknown.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.jsonl").write_text('{"event_id": "e1"}\\nnot json\\n')
    >>> [batch] = read_batches(folder / "a.jsonl")
    >>> batch.table.column("event_id").to_pylist(), batch.lines.to_pylist()
    (['e1'], [1])
    >>> [(f.line, f.rule) for f in batch.failures]
    [(2, 'json')]
    """
    if batch_rows < 1:
        raise UsageError(f"batch_rows must be at least 1 (got {batch_rows})")
    if format not in (*FORMATS, "auto"):
        raise UsageError(f"format must be one of {', '.join(FORMATS)} or auto (got {format!r})")
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "jsonl":
        return read_jsonl(path, batch_rows=batch_rows)
    if fmt == "csv":
        return read_csv(path, batch_rows=batch_rows)
    return read_parquet(path, batch_rows=batch_rows)


__all__ = ["read_batches"]
