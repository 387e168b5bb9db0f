"""Parquet reader (``.parquet``, ``.pq``; a whole-file ``.gz`` is accepted too).

Row groups are read ``batch_rows`` rows at a time with ``pyarrow.parquet``; columns keep their
Parquet types (a time-zone-aware timestamp ``event_time``, a ``map<string, string>``
``attributes``, dictionary-encoded strings are all fine; validation coerces them). A row's
"line" is its 1-based row number in the file. A gzipped Parquet file needs random access, so
it is first decompressed, as a stream, into a temporary file that is removed afterwards.

Nesting is bounded by the schema, which Arrow reads before any value: a schema nested deeper
than 100 levels makes the file unreadable as a whole (a :class:`SchemaError`, not a crash).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from assay._errors import SchemaError
from assay.ingest._nesting import MAX_DEPTH
from assay.ingest._readers import RawBatch, is_gzip, lines_array, open_stream, read_errors


def read_parquet(path: Path, *, batch_rows: int = 65536) -> Iterator[RawBatch]:
    """Read a Parquet file as batches of at most ``batch_rows`` rows.

    See :func:`assay.ingest.read_batches` for the contract.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pyarrow as pa, pyarrow.parquet as pq
    >>> path = Path(tempfile.mkdtemp()) / "events.parquet"
    >>> pq.write_table(pa.table({"event_id": ["e1", "e2", "e3"]}), path)
    >>> [batch.lines.to_pylist() for batch in read_parquet(path, batch_rows=2)]
    [[1, 2], [3]]
    """
    open_stream(path).close()  # fail now, not at the first batch, if the file is missing
    return _read(path, batch_rows)


def _type_depth(typ: pa.DataType) -> int:
    """Levels of nesting of an Arrow type: 0 for a scalar, 1 more per list, struct or map."""
    if pa.types.is_struct(typ):
        return 1 + max((_type_depth(typ.field(i).type) for i in range(typ.num_fields)), default=0)
    if pa.types.is_map(typ):
        return 1 + max(_type_depth(typ.key_type), _type_depth(typ.item_type))
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        return 1 + _type_depth(typ.value_type)
    return 0


def _too_deep(path: Path, detail: str) -> SchemaError:
    return SchemaError(
        f"the schema of {str(path)!r} nests types too deeply to be read ({detail}); an event "
        "nests at most 3 levels (the record, attributes or a list): flatten the columns"
    )


def _open(source: Path, path: Path) -> pq.ParquetFile:
    try:
        file = pq.ParquetFile(source)
    except OSError as exc:
        if "too deeply nested" not in str(exc):
            raise
        # Arrow's own bound (100 schema levels in some pyarrow releases): the file is fine, its
        # schema cannot be an event's (an event nests at most 3 levels).
        raise _too_deep(path, str(exc)) from None
    # The same bound whatever the pyarrow release (25 reads 120 nested lists, 26 refuses
    # them): a column nesting deeper than a JSON line may (MAX_DEPTH) is refused before reading.
    deepest = max((_type_depth(f.type) for f in file.schema_arrow), default=0)
    if deepest > MAX_DEPTH:
        raise _too_deep(path, f"a column nests {deepest} levels, over {MAX_DEPTH}")
    return file


def _read(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    with contextlib.ExitStack() as stack:
        source = path
        if is_gzip(path):
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="assay-parquet-"))
            source = Path(folder) / "decompressed.parquet"
            stream = stack.enter_context(open_stream(path))
            with read_errors(path), open(source, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
        try:
            with read_errors(path):
                parquet = _open(source, path)
        except pa.ArrowInvalid as exc:
            raise SchemaError(
                f"{str(path)!r} is not a valid Parquet file ({exc}); check that it is "
                "complete, or name it by its real format (.jsonl, .csv)"
            ) from exc
        stack.callback(parquet.close)
        row = 1
        batches = parquet.iter_batches(batch_size=batch_rows)
        while True:
            try:
                with read_errors(path):
                    batch = next(batches)
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise SchemaError(
                    f"{str(path)!r} is damaged after row {row - 1} ({exc}); rewrite the file"
                ) from exc
            n = batch.num_rows
            yield RawBatch(
                pa.Table.from_batches([batch]),
                lines_array(np.arange(row, row + n, dtype=np.int64)),
                [],
            )
            row += n


__all__ = ["read_parquet"]
