"""JSON Lines reader (``.jsonl``, ``.ndjson``, ``.json``; optionally ``.gz``).

One JSON object per line; blank lines are skipped. The file is read in blocks of at most
``batch_rows`` lines (and about 32 MiB), and each block is parsed by ``pyarrow.json`` in C++.
Only a block that fails (a malformed line, a line that is not an object, invalid UTF-8, a
field whose JSON type changes inside the block) is taken apart: it is re-parsed from the line
the error names, or split in halves when the error names none, until the failing lines are
isolated; those alone go through Python's ``json`` module. A bad line never costs its good
neighbours, and line numbers stay exact.

Types. The string fields of schema v1 and its list fields are declared to ``pyarrow.json`` so
that no block guesses other types for them (it would otherwise read a string that looks like a
date as a timestamp). ``event_time`` is declared as a string and, if a block holds epoch
milliseconds instead, as an integer; a block mixing both is taken apart as above. Other fields
are inferred per block, and validation coerces each batch on its own. A key of ``attributes``
(or an unknown field) whose strings ``pyarrow.json`` reads as timestamps is re-read, and then
declared, as a string. A JSON integer beyond 64 bits is read as a float.

A ``.json`` file (or one without a known extension) whose first non-blank character is ``[``
is read as one array of objects, element by element with Python's ``json`` module (bounded
memory, about a quarter of the speed of JSON Lines). An element that is not an object is a
failure of its own; a syntax error ends the array there, since an array cannot be
resynchronised, and the rest of the file is reported as one failure.

Failure rules: ``json`` (not valid JSON, two values on a line, a key twice in an object),
``utf8`` (bytes that are not UTF-8, or a ``\\u`` escape of a lone surrogate), ``not_object``,
``size`` (a line over 16 MiB), ``depth`` (arrays and objects nested deeper than
:data:`~assay.ingest._nesting.MAX_DEPTH`).

Nesting is measured on the bytes of each block before any parser sees them
(:mod:`assay.ingest._nesting`): ``pyarrow.json`` has no depth limit and a line nesting 20,000
arrays overflows its stack. An array element is parsed by Python's ``json``, which stops at
about 1,000 levels with a ``RecursionError``; the element's end is then found by the same scan,
and the elements after it are read as usual.
"""

from __future__ import annotations

import codecs
import io
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from assay.ingest._nesting import MAX_DEPTH, deep_lines, deep_value_start, value_end
from assay.ingest._readers import (
    ParseFailure,
    RawBatch,
    concat_tables,
    empty_table,
    lines_array,
    open_stream,
    parse_failure,
    read_chunk,
    read_errors,
    table_from_records,
    utf8_ok,
)
from assay.schema._fields import FIELD_NAMES, FIELDS

#: A line longer than this (bytes) cannot be an event; it is a ``size`` failure.
MAX_LINE_BYTES = 16 * 1024 * 1024

_READ_MIN = 1 << 20
_READ_MAX = 32 << 20
_FAST_BLOCK = 1 << 20  # pyarrow.json's unit of parallel parsing within a block
_BOM = b"\xef\xbb\xbf"

_PARSE_ERRORS = (pa.ArrowException, ValueError)
_ROW = re.compile(r"in row (\d+)")
KEY_END = re.compile(r'"[ \t\r\n]*:')
_MS_MARK = b"@assay-epoch-ms:"
# No look-behind for an escaped quote: it would defeat the literal-prefix search (15x slower),
# and inside a JSON string the key would read `\"event_time\"`, which this cannot match.
_INT_TIME = re.compile(rb'"event_time"(\s*):(\s*)(-?\d+)(?=\s*[,}])')
_SURROGATE = re.compile(r"[\ud800-\udfff]|\\[uU][dD][89a-fA-F]")

_DECLARED: list[pa.Field] = [
    pa.field(f.name, pa.string()) for f in FIELDS if f.kind == "string"
] + [pa.field(f.name, pa.list_(pa.string())) for f in FIELDS if f.kind == "string_list"]
_DECLARED_NAMES = {f.name for f in _DECLARED} | {"event_time"}
_FIELD_NAMES = frozenset(FIELD_NAMES)

Ints = npt.NDArray[np.int64]


class _DuplicateKeyError(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise _DuplicateKeyError
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_object)
_PLAIN = json.JSONDecoder()


def count_keys(value: object) -> int:
    """How many object keys a parsed JSON value holds, at any depth (no recursion: a deep
    value that json could parse must not fail here)."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))
    return count


def _decode(text: str, start: int) -> tuple[Any, int]:
    """``raw_decode`` that raises _DuplicateKeyError for an object with a key twice.

    The plain decoder is much faster than one with an ``object_pairs_hook``; a repeated key is
    possible only if the text holds more key ends (a quote, blanks, a colon; an escaped quote
    in a string can add false alarms, never hide a key) than the parsed value has keys.
    """
    value, end = _PLAIN.raw_decode(text, start)
    if len(KEY_END.findall(text, start, end)) > count_keys(value):
        _DECODER.raw_decode(text, start)
    return value, end


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def _record(text: str, line: int, raw: bytes | str) -> dict[str, Any] | ParseFailure:
    """Parse one line (or array element) with Python's json module."""
    try:
        value, end = _decode(text, len(text) - len(text.lstrip()))
        if text[end:].strip():
            return parse_failure(
                line,
                raw,
                "json",
                f"line {line} holds more than one JSON value; put one object on each line",
            )
    except _DuplicateKeyError:
        return parse_failure(
            line,
            raw,
            "json",
            f"line {line} has an object with the same key twice; send each key once",
        )
    except json.JSONDecodeError as exc:
        return parse_failure(
            line,
            raw,
            "json",
            f"line {line} is not valid JSON ({exc.msg} at column {exc.colno}); "
            "each line must be one JSON object",
        )
    except RecursionError:
        return _too_deep(line, raw)
    return _check(value, text, line, raw)


def _too_deep(line: int, raw: bytes | str) -> ParseFailure:
    field = _deep_field(raw)
    where = f" in {field}" if field else ""
    return parse_failure(
        line,
        raw,
        "depth",
        f"line {line} nests arrays and objects deeper than {MAX_DEPTH} levels{where} (an "
        "event nests at most 3); flatten the value, or send it as a string",
        field=field,
    )


_KEY_BEFORE = re.compile(r'"((?:[^"\\]|\\.){1,64})"\s*:\s*$')


def _deep_field(raw: bytes | str) -> str | None:
    """The schema field whose value nests too deeply, found without parsing, or None (also
    for an unknown key: it is not repeated back, see :attr:`ParseFailure.field`)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    start = deep_value_start(np.frombuffer(raw, dtype=np.uint8))
    if start is None:
        return None
    match = _KEY_BEFORE.search(raw[max(0, start - 256) : start].decode("utf-8", "replace"))
    if match is None:
        return None
    try:
        key = json.loads(f'"{match.group(1)}"')
    except ValueError:
        return None
    return key if key in _FIELD_NAMES else None


def _check(
    value: object, text: str, line: int, raw: bytes | str, *, escapes_only: bool = True
) -> dict[str, Any] | ParseFailure:
    """Accept a parsed JSON value as a record, or say why not."""
    if not isinstance(value, dict):
        return parse_failure(
            line,
            raw,
            "not_object",
            f"line {line} is {_kind(value)}, not a JSON object; send one object per event",
        )
    if _value_depth(value) > MAX_DEPTH:
        return _too_deep(line, raw)
    # Text decoded from UTF-8 holds no surrogates; a "\\u" escape can make one.
    if ("\\u" in text or "\\U" in text or not escapes_only) and _SURROGATE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return parse_failure(
                line,
                raw,
                "utf8",
                f"line {line} holds text that is not valid UTF-8 (a lone surrogate escape); "
                "encode text as UTF-8",
            )
    return value


def _row_of(exc: BaseException) -> int | None:
    match = _ROW.search(str(exc))
    return int(match.group(1)) if match else None


#: Nesting below which no type is declared: no event field is that deep (validation rejects
#: such values anyway), and a bounded depth keeps the recursion below bounded.
_MAX_LEARN_DEPTH = 32


def _type_depth(schema: pa.Schema) -> int:
    """How deep the nested types of a schema go (iteratively: the type may be very deep)."""
    deepest = 0
    stack = [(f.type, 1) for f in schema]
    while stack:
        t, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((t.field(i).type, depth + 1) for i in range(t.num_fields))
    return deepest


def _value_depth(value: object) -> int:
    """How deep a parsed JSON value nests (iteratively)."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((v, depth + 1) for v in children if isinstance(v, dict | list))
    return deepest


def _learnable(t: pa.DataType, depth: int = 0) -> pa.DataType | None:
    """The type to declare so that strings read as timestamps stay strings, or None.

    Only the paths that hold timestamps are declared (a struct with just those children),
    so that everything else is still inferred.
    """
    if depth > _MAX_LEARN_DEPTH:
        return None
    if pa.types.is_timestamp(t):
        return pa.string()
    if pa.types.is_list(t):
        inner = _learnable(t.value_type, depth + 1)
        return None if inner is None else pa.list_(inner)
    if pa.types.is_struct(t):
        children = []
        for i in range(t.num_fields):
            declared = _learnable(t.field(i).type, depth + 1)
            if declared is not None:
                children.append(pa.field(t.field(i).name, declared))
        return pa.struct(children) if children else None
    return None


def _merge(old: pa.DataType, new: pa.DataType) -> pa.DataType:
    """Two declarations of one path as one (structs keep the children of both)."""
    if pa.types.is_struct(old) and pa.types.is_struct(new):
        fields = {old.field(i).name: old.field(i) for i in range(old.num_fields)}
        for i in range(new.num_fields):
            f = new.field(i)
            fields[f.name] = (
                pa.field(f.name, _merge(fields[f.name].type, f.type)) if (f.name in fields) else f
            )
        return pa.struct(list(fields.values()))
    if pa.types.is_list(old) and pa.types.is_list(new):
        return pa.list_(_merge(old.value_type, new.value_type))
    return new


class _BlockParser:
    """Parses blocks of lines with pyarrow.json, learning declarations as it goes."""

    def __init__(self) -> None:
        self.time_type: pa.DataType = pa.string()
        self.learned: dict[str, pa.DataType] = {}
        self.mixed_times = False

    def _read(self, data: pa.Buffer, exact: bool, time_type: pa.DataType) -> pa.Table:
        schema = pa.schema(
            [
                *_DECLARED,
                pa.field("event_time", time_type),
                *(pa.field(k, v) for k, v in self.learned.items()),
            ]
        )
        # Exact mode parses the block as one chunk on one thread, so that "in row K" in an
        # error counts rows from the block's start.
        read_options = pj.ReadOptions(
            use_threads=not exact, block_size=data.size + 1 if exact else _FAST_BLOCK
        )
        parse_options = pj.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="infer", newlines_in_values=False
        )
        return pj.read_json(
            pa.BufferReader(data), read_options=read_options, parse_options=parse_options
        )

    def _learn(self, schema: pa.Schema) -> bool:
        learned = False
        for f in schema:
            if f.name in _DECLARED_NAMES:
                continue
            declared = _learnable(f.type)
            if declared is None:
                continue
            old = self.learned.get(f.name)
            if old is not None:
                declared = _merge(old, declared)
            if declared != old:
                self.learned[f.name] = declared
                learned = True
        return learned

    def parse(self, data: pa.Buffer, *, exact: bool) -> pa.Table:
        """Parse a block of complete lines; raise as pyarrow.json does."""
        if self.mixed_times and not exact:
            # The last block mixed time types; the next one most likely does too.
            mixed = self._mixed_times(data)
            if mixed is not None:
                return mixed
        try:
            table = self._read(data, exact, self.time_type)
        except _PARSE_ERRORS as first:
            if "/event_time)" not in str(first):
                raise
            other = pa.int64() if pa.types.is_string(self.time_type) else pa.string()
            try:
                table = self._read(data, exact, other)
            except _PARSE_ERRORS as second:
                mixed = None if exact else self._mixed_times(data)
                if mixed is not None:
                    self.mixed_times = True
                    return mixed
                # Report the error that lets the longer prefix of the block parse.
                if (_row_of(second) or 0) > (_row_of(first) or 0):
                    raise second from None
                raise
            self.time_type = other
        if _type_depth(table.schema) > MAX_DEPTH:
            # Not an error pyarrow names a row for: the block is split until the deep line is
            # alone, and Python's json rejects it.
            raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
        if self._learn(table.schema):
            table = self._read(data, exact, self.time_type)
        return table

    def _mixed_times(self, data: pa.Buffer) -> pa.Table | None:
        """Parse a block whose ``event_time`` mixes strings and epoch-ms integers, or None.

        Each integer time is quoted with a marker (a text edit of the block, in C), the block
        is parsed with ``event_time`` as a string, and the column is rebuilt as the dense
        union a mixed column is everywhere else. Only done when every line names
        ``event_time`` exactly once (so the edit cannot touch a nested key or a text); any
        other block is taken apart line by line as before.
        """
        raw = data.to_pybytes()
        lines = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
        if raw.count(b'"event_time"') != lines or _MS_MARK in raw:
            return None
        edited = _INT_TIME.sub(rb'"event_time"\1:\2"' + _MS_MARK + rb'\3"', raw)
        try:
            table = self._read(pa.py_buffer(edited), False, pa.string())
        except _PARSE_ERRORS:
            return None
        col = table.column("event_time").combine_chunks()
        marked = pc.fill_null(pc.starts_with(col, _MS_MARK.decode()), False)
        ints = pc.cast(
            pc.utf8_slice_codeunits(col.filter(marked), len(_MS_MARK)), pa.int64(), safe=True
        )
        mask = np.asarray(marked.to_numpy(zero_copy_only=False), dtype=np.bool_)
        codes = mask.astype(np.int8)
        offsets = np.zeros(len(mask), dtype=np.int32)
        offsets[~mask] = np.arange(int((~mask).sum()), dtype=np.int32)
        offsets[mask] = np.arange(int(mask.sum()), dtype=np.int32)
        union = pa.UnionArray.from_dense(
            pa.array(codes, pa.int8()),
            pa.array(offsets, pa.int32()),
            [col.filter(pc.invert(marked)), ints],
            ["t0", "t1"],
        )
        return table.set_column(table.schema.get_field_index("event_time"), "event_time", union)


class _Block:
    """One block of complete lines: parse it fast, or take it apart line-exactly."""

    def __init__(
        self, parser: _BlockParser, buf: pa.Buffer, newlines: Ints, first_line: int
    ) -> None:
        self.parser = parser
        self.buf = buf
        self.first_line = first_line
        a = np.frombuffer(buf, dtype=np.uint8)
        self.newlines = newlines
        self.starts = np.concatenate([[0], newlines[:-1] + 1]).astype(np.int64)
        ends = newlines.astype(np.int64)
        carriage = (ends > self.starts) & (a[np.maximum(ends - 1, 0)] == 13)
        self.ends = ends - carriage
        self.a = a

    def read(self) -> RawBatch | None:
        lengths = self.ends - self.starts
        rows = np.flatnonzero(lengths > 0)
        if not rows.size:
            return None
        a = self.a
        # Before any parser: pyarrow.json overflows the C stack on a deep enough line.
        deep = deep_lines(a, self.newlines)
        if deep.size:
            return self._precise(set(deep.tolist()))
        simple = bool((a[self.starts[rows]] == ord("{")).all()) and bool(
            (a[self.ends[rows] - 1] == ord("}")).all()
        )
        simple = simple and int(lengths.max()) <= MAX_LINE_BYTES
        if simple and utf8_ok(self.buf):
            try:
                table = self.parser.parse(self.buf, exact=False)
            except _PARSE_ERRORS:
                table = None
            if table is not None and table.num_rows == rows.size:
                return RawBatch(table, lines_array(self.first_line + rows), [])
        return self._precise()

    def _precise(self, deep: set[int] | None = None) -> RawBatch | None:
        data = self.buf.to_pybytes()
        n = self.newlines.size
        texts: dict[int, str] = {}
        failures: list[ParseFailure] = []
        candidate = np.zeros(n, dtype=np.bool_)
        alone: list[int] = []
        for i in range(n):
            raw = data[self.starts[i] : self.ends[i]]
            start = raw.lstrip()[:1]
            if not start:
                continue
            if len(raw) > MAX_LINE_BYTES:
                failures.append(_too_long(self.first_line + i, raw[:MAX_LINE_BYTES]))
                continue
            if deep and i in deep:
                failures.append(_too_deep(self.first_line + i, raw))
                continue
            try:
                texts[i] = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = self.first_line + i
                failures.append(
                    parse_failure(
                        line,
                        raw,
                        "utf8",
                        f"line {line} is not valid UTF-8 (byte {exc.start + 1} of the line); "
                        "encode the file as UTF-8",
                    )
                )
                continue
            # pyarrow.json only sees lines that open an object: it reads a "null" line as a
            # row, and crashes (pyarrow 26) on input that starts with one.
            if start == b"{":
                candidate[i] = True
            else:
                alone.append(i)
        pieces: list[tuple[Ints, pa.Table]] = []
        records: list[dict[str, Any]] = []
        record_lines: list[int] = []

        def one(i: int) -> None:
            line = self.first_line + i
            parsed = _record(texts[i], line, data[self.starts[i] : self.ends[i]])
            if isinstance(parsed, ParseFailure):
                failures.append(parsed)
            else:
                records.append(parsed)
                record_lines.append(i)

        for i in alone:
            one(i)

        def segment(ranges: list[tuple[int, int]]) -> pa.Buffer:
            if len(ranges) == 1:
                lo, hi = ranges[0]
                start = int(self.starts[lo])
                return self.buf.slice(start, int(self.newlines[hi - 1]) + 1 - start)
            view = memoryview(self.buf)
            return pa.py_buffer(
                b"".join(
                    view[int(self.starts[lo]) : int(self.newlines[hi - 1]) + 1] for lo, hi in ranges
                )
            )

        # Each failed attempt costs a call to pyarrow (about 0.4 ms) plus the lines it read;
        # past one failure per 16 lines on average, Python's json is cheaper for the rest.
        budget = 16 + n // 16

        def isolate(work: list[tuple[int, int]], join: bool) -> None:
            """Parse ranges of candidate lines, isolating those that make pyarrow fail.

            After an error at row k of a range, rows before k parsed fine: they are kept aside
            and parsed together in one more call at the end (when ``join``), so that a range
            with many bad lines costs one call per bad line, not two.
            """
            nonlocal budget
            good: list[tuple[int, int]] = []
            while work:
                lo, hi = work.pop()
                if hi - lo == 1 or budget <= 0:
                    for i in range(lo, hi):
                        one(i)
                    continue
                budget -= 1
                try:
                    table = self.parser.parse(segment([(lo, hi)]), exact=True)
                except _PARSE_ERRORS as exc:
                    k = _row_of(exc)
                else:
                    if table.num_rows == hi - lo:
                        pieces.append((np.arange(lo, hi, dtype=np.int64), table))
                        continue
                    k = None
                if k is not None and 0 <= k < hi - lo:
                    if k > 0:
                        (good if join else work).append((lo, lo + k))
                    one(lo + k)
                    if lo + k + 1 < hi:
                        work.append((lo + k + 1, hi))
                else:
                    mid = (lo + hi) // 2
                    work += [(lo, mid), (mid, hi)]
            if not good:
                return
            rows = np.concatenate([np.arange(lo, hi, dtype=np.int64) for lo, hi in good])
            try:
                table = self.parser.parse(segment(good), exact=True)
            except _PARSE_ERRORS:
                table = None
            if table is not None and table.num_rows == rows.size:
                pieces.append((rows, table))
            else:
                isolate(good, join=False)

        # Runs of consecutive candidate lines: pyarrow counts rows without blank lines, so a
        # row number in its error maps to a line only inside a run.
        edges = np.flatnonzero(np.diff(np.concatenate([[0], candidate.astype(np.int8), [0]])))
        isolate([(int(lo), int(hi)) for lo, hi in zip(edges[::2], edges[1::2], strict=True)], True)
        if records:
            pieces.append((np.asarray(record_lines, dtype=np.int64), table_from_records(records)))
        failures.sort(key=lambda f: f.line)
        if not pieces and not failures:
            return None
        if not pieces:
            return RawBatch(empty_table(), lines_array(np.zeros(0, dtype=np.int64)), failures)
        pieces.sort(key=lambda p: int(p[0][0]))
        table = concat_tables([t for _, t in pieces])
        rows = np.concatenate([r for r, _ in pieces])
        if rows.size > 1 and bool((np.diff(rows) < 0).any()):
            order = np.argsort(rows, kind="stable")
            if table.num_columns:
                table = table.take(pa.array(order))
            rows = rows[order]
        return RawBatch(table, lines_array(self.first_line + rows), failures)


def read_jsonl(path: Path, *, batch_rows: int = 65536) -> Iterator[RawBatch]:
    """Read a JSON Lines file (or a ``.json`` array of objects) as batches.

    See the module docstring for how lines are parsed and typed, and
    :func:`assay.ingest.read_batches` for the contract.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "events.jsonl"
    >>> _ = path.write_text('{"event_id": "e1", "tokens_in": 5}\\n\\n{"event_id": "e2"}\\n')
    >>> [batch] = read_jsonl(path)
    >>> batch.table.select(["event_id", "tokens_in"]).to_pylist(), batch.lines.to_pylist()
    ([{'event_id': 'e1', 'tokens_in': 5}, {'event_id': 'e2', 'tokens_in': None}], [1, 3])
    """
    stream = open_stream(path)
    return _read(stream, path, batch_rows)


def _read(stream: io.BufferedIOBase, path: Path, batch_rows: int) -> Iterator[RawBatch]:
    try:
        head = read_chunk(stream, _READ_MIN, path)
        if head.startswith(_BOM):
            head = head[len(_BOM) :]
        if head.lstrip()[:1] == b"[" and not _lines_only(path):
            yield from _read_array(stream, path, head, batch_rows)
        else:
            yield from _read_lines(stream, path, head, batch_rows)
    finally:
        stream.close()


def _value_end(text: str, pos: int) -> int | None:
    """Where the array or object at ``text[pos]`` ends, or None if not inside ``text``."""
    piece = text[pos : pos + MAX_LINE_BYTES].encode("utf-32-le", "surrogatepass")
    end = value_end(np.frombuffer(piece, dtype=np.uint32))
    return None if end is None else pos + end


def _lines_only(path: Path) -> bool:
    """Whether the name says JSON Lines, so that a first line holding an array is a line."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return bool(suffixes) and suffixes[-1] in (".jsonl", ".ndjson")


def _too_long(line: int, head: bytes) -> ParseFailure:
    return parse_failure(
        line,
        head,
        "size",
        f"line {line} is longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB without a line "
        "break, too long to be an event; check that the file is JSON Lines",
    )


def _fill(
    stream: io.BufferedIOBase, pending: bytes, size: int, path: Path
) -> tuple[memoryview, bool]:
    """``pending`` followed by up to ``size`` more bytes, and whether the stream has ended.

    The bytes are read in place into a buffer from Arrow's pool: no second copy of a 32 MiB
    chunk, and no zero-filling or page faults of a fresh ``bytearray`` for every block.
    """
    view = memoryview(pa.allocate_buffer(len(pending) + size)).cast("B")
    view[: len(pending)] = pending
    with read_errors(path):
        got = stream.readinto(view[len(pending) :])
    return view[: len(pending) + got], not got


def _read_lines(
    stream: io.BufferedIOBase,
    path: Path,
    head: bytes,
    batch_rows: int,
    parser: _BlockParser | None = None,
) -> Iterator[RawBatch]:
    parser = parser or _BlockParser()
    pending = head
    line = 1
    read_size = _READ_MIN
    eof = not head
    skipping = False  # inside a line over MAX_LINE_BYTES, dropping bytes up to its end
    while True:
        data: bytes | memoryview = pending
        if not eof:
            data, eof = _fill(stream, pending, read_size, path)
        if eof and len(data) and data[-1:] != b"\n":
            data = bytes(data) + b"\n"
        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
        done = 0
        if skipping and newlines.size:
            done = int(newlines[0]) + 1
            newlines = newlines[1:]
            line += 1
            skipping = False
        if skipping:
            pending = b""
        elif not newlines.size and len(data) - done > MAX_LINE_BYTES:
            failure = _too_long(line, bytes(data[done : done + MAX_LINE_BYTES]))
            yield RawBatch(empty_table(), lines_array(np.zeros(0, np.int64)), [failure])
            skipping, pending = True, b""
        else:
            buf = pa.py_buffer(data)
            for j in range(0, newlines.size, batch_rows):
                block_newlines = newlines[j : j + batch_rows]
                end = int(block_newlines[-1]) + 1
                block = _Block(parser, buf.slice(done, end - done), block_newlines - done, line)
                batch = block.read()
                if batch is not None:
                    yield batch
                line += block_newlines.size
                done = end
            if newlines.size:
                per_line = done / max(newlines.size, 1)
                read_size = int(min(max(per_line * batch_rows, _READ_MIN), _READ_MAX))
            pending = bytes(data[done:])
        if eof and not pending:
            return


def _read_array(
    stream: io.BufferedIOBase,
    path: Path,
    head: bytes,
    batch_rows: int,
    *,
    by_element: bool = False,
) -> Iterator[RawBatch]:
    """A JSON array of objects, element by element, in bounded memory.

    Records are numbered by their line, or with ``by_element`` by their 1-based position in
    the array (the HTTP endpoint answers per element).
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    text = decoder.decode(head)
    eof = False
    pos = text.index("[") + 1
    line = 1 + text.count("\n", 0, pos)
    counted = pos  # text[:counted] is counted in ``line``
    records: list[dict[str, Any]] = []
    record_lines: list[int] = []
    failures: list[ParseFailure] = []
    expect_value = True  # after "[" or ","; else after a value
    first = True
    element = 0  # elements seen so far
    space = re.compile(r"[ \t\r\n]*")

    def number() -> int:
        return element + 1 if by_element else line

    def more() -> None:
        nonlocal text, eof, pos, counted
        if pos > _READ_MIN:
            text, pos, counted = text[pos:], 0, counted - pos
        chunk = read_chunk(stream, _READ_MIN, path)
        if chunk:
            text += decoder.decode(chunk)
        else:
            text += decoder.decode(b"", final=True)
            eof = True

    def flush() -> RawBatch:
        table = table_from_records(records) if records else empty_table()
        batch = RawBatch(table, lines_array(np.asarray(record_lines, np.int64)), list(failures))
        records.clear()
        record_lines.clear()
        failures.clear()
        return batch

    def broken(reason: str) -> ParseFailure:
        return parse_failure(
            number(),
            text[pos : pos + MAX_LINE_BYTES],
            "json",
            f"the JSON array is broken at line {line} ({reason}); the rest of the file was "
            "not read; fix the file or send JSON Lines, one object per line",
            fatal=True,
        )

    while True:
        pos = space.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= len(text):
            if eof:
                failures.append(broken("it ends before its closing bracket"))
                break
            more()
            continue
        line += text.count("\n", counted, pos)
        counted = pos
        char = text[pos]
        if char == "]" and (not expect_value or first):
            pos += 1
            while True:
                if text[pos:].strip():
                    failures.append(broken("there is more after the closing bracket"))
                    break
                if eof:
                    break
                text, pos, counted = "", 0, 0
                more()
            break
        if not expect_value:
            if char != ",":
                failures.append(broken("expected ',' or ']' between elements"))
                break
            pos += 1
            expect_value = True
            continue
        try:
            value, end = _decode(text, pos)
        except _DuplicateKeyError:
            try:
                _value, end = json.JSONDecoder().raw_decode(text, pos)
            except json.JSONDecodeError:
                failures.append(broken("an element is not valid JSON"))
                break
            failures.append(
                parse_failure(
                    number(),
                    text[pos:end],
                    "json",
                    f"the element at line {line} has an object with the same key twice; "
                    "send each key once",
                )
            )
        except RecursionError:
            # Python's json gave up (at about 1,000 levels): find the element's end without it.
            deep_end = _value_end(text, pos)
            if deep_end is None:
                if not eof and len(text) - pos <= MAX_LINE_BYTES:
                    more()
                    continue
                failures.append(broken("an element nests too deeply and does not end"))
                break
            end = deep_end
            failure = _too_deep(line, text[pos:end])
            failure.line = number()
            failures.append(failure)
        except json.JSONDecodeError:
            if not eof and len(text) - pos <= MAX_LINE_BYTES:
                more()
                continue
            failures.append(broken("an element is not valid JSON"))
            break
        else:
            source = text[pos:end]
            raw = source.encode("utf-8", errors="surrogateescape")
            parsed = _check(value, source, line, raw, escapes_only=False)
            if isinstance(parsed, ParseFailure):
                parsed.line = number()
                failures.append(parsed)
            else:
                records.append(parsed)
                record_lines.append(number())
        pos = end
        element += 1
        expect_value = False
        first = False
        if len(records) + len(failures) >= batch_rows:
            yield flush()
    if records or failures:
        yield flush()


_body_parsers = threading.local()


def read_json_body(data: bytes, *, array: bool, batch_rows: int = 65536) -> Iterator[RawBatch]:
    """Read an HTTP body held in memory: JSON Lines, or one JSON array of objects.

    Records are numbered from 1 by their line (JSON Lines; blank lines take a number and
    yield nothing) or by their position in the array. A syntax error that ends an array is a
    failure with ``fatal`` set.

    Examples
    --------
    >>> [batch] = read_json_body(b'[{"event_id": "a"}, 7, {"event_id": "b"}]', array=True)
    >>> batch.table.column("event_id").to_pylist(), batch.lines.to_pylist()
    (['a', 'b'], [1, 3])
    >>> [(f.line, f.rule) for f in batch.failures]
    [(2, 'not_object')]
    """
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    stream = io.BytesIO(data)
    path = Path("request body")
    head = stream.read(_READ_MIN)
    if array:
        return _read_array(stream, path, head, batch_rows, by_element=True)
    # One parser per thread, kept across bodies: what it learned of the senders' types (epoch
    # or RFC 3339 times, attribute types) saves re-parsing the next body. Types only, no data.
    parser = getattr(_body_parsers, "parser", None)
    if parser is None:
        parser = _body_parsers.parser = _BlockParser()
    return _read_lines(stream, path, head, batch_rows, parser)


__all__ = ["MAX_LINE_BYTES", "read_json_body", "read_jsonl"]
