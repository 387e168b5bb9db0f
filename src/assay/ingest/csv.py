"""CSV reader (``.csv``, optionally ``.gz``).

The first record is the header: it names the fields (surrounding spaces are dropped; a name
that is empty or repeated is an error). Every cell is read as text, and validation parses the
text of non-string fields (call ``validate(table, lenient_strings=True)``):

- an empty cell (quoted or not) is null; everything else, ``NA`` included, is text;
- numbers and booleans as text (``12``, ``0.5``, ``true``/``false`` in any case);
- ``event_time`` as RFC 3339 or as a string of digits (epoch milliseconds);
- list fields as a JSON array of strings in the cell, ``["a","b"]`` (written in CSV as
  ``"[""a"",""b""]"``); a ``;``-separated list is not split, since an item may hold ``;``;
- ``attributes`` as a JSON object of strings in the cell.

Records follow RFC 4180: a quoted cell may hold commas, doubled quotes and line breaks.
Record boundaries are found first (line breaks outside quotes, counted with numpy), so each
row's line number is the line where its record starts. Blocks of records are parsed by
``pyarrow.csv``; a block with a malformed record is parsed record by record with Python's
``csv`` module instead. Failure rules: ``csv`` (wrong number of cells, broken quoting) and
``utf8`` (a record that is not valid UTF-8). An empty line is skipped. A quote left open runs
to the end of the file (or 16 MiB); then the line where it opened is a ``csv`` failure and
reading resumes on the next line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from assay._errors import SchemaError
from assay.ingest._readers import (
    ParseFailure,
    RawBatch,
    lines_array,
    open_stream,
    parse_failure,
    read_chunk,
    utf8_ok,
)

#: A record longer than this (bytes) cannot be an event: its quote was probably left open.
MAX_RECORD_BYTES = 16 * 1024 * 1024

_READ_MIN = 1 << 20
_READ_MAX = 32 << 20
_BOM = b"\xef\xbb\xbf"

Ints = npt.NDArray[np.int64]


def _records(data: bytes) -> tuple[Ints, Ints, Ints]:
    """Split complete records: (start byte, end byte at its line break, start line offset).

    A line break ends a record when an even number of quotes precede it, i.e. it is outside
    any quoted cell (doubled quotes inside a cell count twice and keep the parity).
    """
    a = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(a == ord("\n"))
    quotes = np.flatnonzero(a == ord('"'))
    closing = np.flatnonzero(np.searchsorted(quotes, newlines) % 2 == 0)
    ends = newlines[closing].astype(np.int64)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    line_offsets = np.concatenate([[0], closing[:-1] + 1]).astype(np.int64)
    return starts, ends, line_offsets


def _strip_cr(data: bytes, starts: Ints, ends: Ints) -> Ints:
    a = np.frombuffer(data, dtype=np.uint8)
    carriage = (ends > starts) & (a[np.maximum(ends - 1, 0)] == ord("\r"))
    result: Ints = ends - carriage
    return result


def _parse_header(text: str, path: Path) -> list[str]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    names = [name.strip() for name in rows[0]] if len(rows) == 1 else []
    if not names or "" in names:
        raise SchemaError(
            f"the CSV header of {str(path)!r} must name every column (got an empty or "
            "malformed name); write the field names on the first line, e.g. "
            "event_id,event_time,tenant_id,..."
        )
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise SchemaError(
            f"the CSV header of {str(path)!r} names {', '.join(twice)} more than once; "
            "name each column once"
        )
    return names


def _unterminated(line: int, raw: bytes) -> ParseFailure:
    return parse_failure(
        line,
        raw,
        "csv",
        f"the record at line {line} opens a quote that is never closed; close it, or double "
        'a quote inside a quoted cell ("")',
    )


class _Blocks:
    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.convert = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            check_utf8=False,  # checked per block before parsing
        )

    def parse(self, data: bytes, starts: Ints, ends: Ints, lines: Ints) -> RawBatch:
        """Parse records ``data[starts[i]:ends[i]]`` (non-blank, in order)."""
        invalid = 0

        def count(_row: object) -> str:
            nonlocal invalid
            invalid += 1
            return "skip"

        block = pa.py_buffer(data).slice(int(starts[0]), int(ends[-1]) + 1 - int(starts[0]))
        if not utf8_ok(block):
            return self._one_by_one(data, starts, ends, lines)
        try:
            table = pacsv.read_csv(
                pa.BufferReader(block),
                read_options=pacsv.ReadOptions(column_names=self.names),
                parse_options=pacsv.ParseOptions(
                    newlines_in_values=True, ignore_empty_lines=True, invalid_row_handler=count
                ),
                convert_options=self.convert,
            )
        except (pa.ArrowException, ValueError):
            table = None
        if table is not None and not invalid and table.num_rows == starts.size:
            return RawBatch(table, lines_array(lines), [])
        return self._one_by_one(data, starts, ends, lines)

    def _one_by_one(self, data: bytes, starts: Ints, ends: Ints, lines: Ints) -> RawBatch:
        n = len(self.names)
        columns: list[list[str | None]] = [[] for _ in self.names]
        kept: list[int] = []
        failures: list[ParseFailure] = []
        for start, end, line in zip(starts.tolist(), ends.tolist(), lines.tolist(), strict=True):
            raw = data[start:end]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                failures.append(
                    parse_failure(
                        line,
                        raw,
                        "utf8",
                        f"the record at line {line} is not valid UTF-8 (byte {exc.start + 1} "
                        "of the record); save the file as UTF-8",
                    )
                )
                continue
            try:
                rows = list(csv.reader(io.StringIO(text, newline="")))
            except csv.Error as exc:
                failures.append(
                    parse_failure(
                        line,
                        raw,
                        "csv",
                        f"the record at line {line} is not valid CSV ({exc}); quote cells "
                        'that hold commas, quotes or line breaks, and double inner quotes ("")',
                    )
                )
                continue
            cells = rows[0] if len(rows) == 1 else None
            if cells is None or len(cells) != n:
                got = "several records" if cells is None else f"{len(cells)} cells"
                failures.append(
                    parse_failure(
                        line,
                        raw,
                        "csv",
                        f"the record at line {line} should have {n} cells, like the header "
                        f"(got {got}); quote cells that hold commas",
                    )
                )
                continue
            for column, cell in zip(columns, cells, strict=True):
                column.append(cell or None)
            kept.append(line)
        table = pa.table(
            {
                name: pa.array(column, pa.string())
                for name, column in zip(self.names, columns, strict=True)
            }
        )
        return RawBatch(table, lines_array(np.asarray(kept, dtype=np.int64)), failures)


def read_csv(path: Path, *, batch_rows: int = 65536) -> Iterator[RawBatch]:
    """Read a CSV file with a header as batches of text columns.

    See the module docstring for the cell conventions, and
    :func:`assay.ingest.read_batches` for the contract.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "events.csv"
    >>> _ = path.write_text('event_id,text\\ne1,"two\\nlines"\\ne2,\\n')
    >>> [batch] = read_csv(path)
    >>> batch.table.to_pylist(), batch.lines.to_pylist()
    ([{'event_id': 'e1', 'text': 'two\\nlines'}, {'event_id': 'e2', 'text': None}], [2, 4])
    """
    stream = open_stream(path)
    return _read(stream, path, batch_rows)


def _read(stream: io.BufferedIOBase, path: Path, batch_rows: int) -> Iterator[RawBatch]:
    try:
        blocks: _Blocks | None = None
        pending = b""
        line = 1
        read_size = _READ_MIN
        eof = False
        first = True
        while True:
            chunk = b"" if eof else read_chunk(stream, read_size, path)
            eof = eof or not chunk
            data = pending + chunk if pending else chunk
            if first and data:
                first = False
                if data.startswith(_BOM):
                    data = data[len(_BOM) :]
            if eof and data and not data.endswith(b"\n"):
                data += b"\n"
            starts, ends, line_offsets = _records(data)
            if not ends.size:
                if eof and not data:
                    return
                if eof or len(data) > MAX_RECORD_BYTES:
                    cut = data.find(b"\n") + 1 or len(data)
                    failure = _unterminated(line, data[: min(cut, MAX_RECORD_BYTES)])
                    yield RawBatch(pa.table({}), lines_array(np.zeros(0, np.int64)), [failure])
                    pending = data[cut:]
                    line += 1
                    if eof and not pending:
                        return
                else:
                    pending = data
                continue
            visible = _strip_cr(data, starts, ends)
            nonblank = np.flatnonzero(visible > starts)
            if blocks is None and nonblank.size:
                h = int(nonblank[0])
                header = data[starts[h] : visible[h]].decode("utf-8", errors="replace")
                blocks = _Blocks(_parse_header(header, path))
                nonblank = nonblank[1:]
            for j in range(0, nonblank.size if blocks is not None else 0, batch_rows):
                chosen = nonblank[j : j + batch_rows]
                lines = line + line_offsets[chosen]
                yield blocks.parse(data, starts[chosen], visible[chosen], lines)  # type: ignore[union-attr]
            consumed = int(ends[-1]) + 1
            line += int(data.count(b"\n", 0, consumed))
            if ends.size:
                read_size = int(min(max(consumed / ends.size * batch_rows, _READ_MIN), _READ_MAX))
            pending = data[consumed:]
            if eof and not pending:
                return
    finally:
        stream.close()


__all__ = ["MAX_RECORD_BYTES", "read_csv"]
