"""Streaming readers of event files: the shared types, format detection and dispatch.

A reader turns a file into :class:`RawBatch` es: a table of the records it could parse, with
the types it found (validation coerces them), the source line of each, and the records it
could not parse at all. Memory is bounded by the batch size, not the file size; ``.gz`` files
are decompressed as a stream.

One module per format does the parsing: :mod:`assay.ingest.jsonl` (JSON Lines, and a JSON
array of objects), :mod:`assay.ingest.csv` and :mod:`assay.ingest.parquet`.

A column whose values have different JSON types inside one batch (a number in one record and a
string in another) arrives as a dense union with one member per type; a nested value that no
Arrow type can hold (a list mixing numbers and strings) is a member named ``json`` holding its
JSON text. Validation understands both.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from assay._errors import NotFoundError, SchemaError
from assay.schema._fields import FIELD_NAMES
from assay.schema._validate import MIXED_JSON_MEMBER

Format = Literal["jsonl", "parquet", "csv"]

FORMATS: tuple[Format, ...] = ("jsonl", "parquet", "csv")

_EXTENSIONS: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}

_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_SNIFF_BYTES = 64 * 1024

#: Longest raw text kept in a :class:`ParseFailure` (characters); the rest is cut off.
MAX_RAW_CHARS = 256 * 1024


@dataclass
class ParseFailure:
    """A record that could not be parsed into fields at all.

    Attributes
    ----------
    line : 1-based line number in the (decompressed) file where the record starts.
    raw : the record's text, decoded with ``errors="replace"`` and cut to
        :data:`MAX_RAW_CHARS`; raw user data, in memory only (never stored, see ``size``).
    rule : ``json`` (not valid JSON), ``utf8`` (not valid UTF-8), ``not_object`` (valid JSON
        that is not an object), ``csv`` (a malformed CSV record), ``size`` (a line or record
        too long to be an event), ``depth`` (JSON nested too deeply to be an event).
    message : what was expected, what came and how to fix it; never any of the raw content.
    fatal : the input could not be read past this point (a broken JSON array).
    size : the record's length in bytes as read (a ``size`` failure: the bytes read before
        giving up); 0 when unknown.
    field : the schema v1 field the failure lies in, when the reader can tell without
        parsing (a ``depth`` failure inside ``attributes``); else None. Never another name:
        a key the reader cannot vouch for may be anything the sender typed.

    ``raw`` lives in memory only, for the caller to inspect: an unparsed record can hold ids
    in any shape (a CSV row holds them by position), so the quarantine stores only ``size``,
    ``rule`` and ``message`` (see docs/privacy.md).
    """

    line: int
    raw: str
    rule: str
    message: str
    fatal: bool = False
    size: int = 0
    field: str | None = None


@dataclass
class RawBatch:
    """Parsed records of one stretch of a file.

    Attributes
    ----------
    table : one row per parsed record; one column per top-level field seen, with the types the
        reader found (unknown fields kept, so that validation can reject them).
    lines : int64, the 1-based source line of each row (CSV: the line where the record
        starts; Parquet: the row number in the file).
    failures : the records of this stretch that could not be parsed, in line order.
    """

    table: pa.Table
    lines: pa.Array
    failures: list[ParseFailure] = field(default_factory=list)


def raw_text(data: bytes | str) -> str:
    """Decode a record's bytes for :attr:`ParseFailure.raw`, cut to :data:`MAX_RAW_CHARS`."""
    text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
    return text[:MAX_RAW_CHARS]


def parse_failure(
    line: int,
    data: bytes | str,
    rule: str,
    message: str,
    *,
    fatal: bool = False,
    field: str | None = None,
) -> ParseFailure:
    """A :class:`ParseFailure` of the record ``data`` (bytes, or text decoded with
    ``surrogateescape``), with its size in bytes."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogateescape"))
    return ParseFailure(line, raw_text(data), rule, message, fatal=fatal, size=size, field=field)


# -- opening files ---------------------------------------------------------------------------


@contextlib.contextmanager
def read_errors(path: Path) -> Iterator[None]:
    """Turn the OS and codec errors of reading ``path`` into assay errors."""
    try:
        yield
    except FileNotFoundError as exc:
        raise NotFoundError(
            f"input file {str(path)!r} does not exist (or vanished while being read); "
            "check the path"
        ) from exc
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SchemaError(
            f"could not read {str(path)!r}: {type(exc).__name__}: {exc}; check that the file "
            "is complete, readable and (if it ends in .gz) valid gzip"
        ) from exc


def is_gzip(path: Path) -> bool:
    """Whether the file starts with the gzip magic bytes."""
    with read_errors(path), open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def open_stream(path: Path) -> io.BufferedIOBase:
    """Open ``path`` for sequential reading, decompressing gzip on the fly.

    Python's gzip module (zlib in C) is used rather than Arrow's stream because it reports a
    truncated file instead of ending early without a word.
    """
    with read_errors(path):
        if not path.is_file():
            if path.exists():
                raise SchemaError(f"input {str(path)!r} is not a file; pass a file path")
            raise FileNotFoundError(str(path))
        if is_gzip(path):
            return gzip.GzipFile(path, "rb")
        return open(path, "rb")


def read_chunk(stream: io.BufferedIOBase, size: int, path: Path) -> bytes:
    """Read up to ``size`` bytes; b"" at the end."""
    with read_errors(path):
        return stream.read(size)


# -- format detection ------------------------------------------------------------------------


def detect_format(path: Path) -> Format:
    """Tell a file's format by its extension, or else by its content.

    Extensions: ``.jsonl``, ``.ndjson``, ``.json`` (JSON Lines, or one JSON array of objects),
    ``.parquet``, ``.pq``, ``.csv``, each optionally followed by ``.gz``. Without a known
    extension the first bytes decide: Parquet's magic number, a ``{`` or ``[`` for JSON, a
    header line naming a schema v1 field for CSV.

    Raises
    ------
    NotFoundError
        If the file does not exist.
    SchemaError
        If the format cannot be told.

    Examples
    --------
    >>> from pathlib import Path
    >>> detect_format(Path("events-2026-01-05.jsonl.gz"))
    'jsonl'
    """
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _EXTENSIONS:
        return _EXTENSIONS[suffixes[-1]]
    stream = open_stream(path)
    try:
        head = read_chunk(stream, _SNIFF_BYTES, path)
    finally:
        stream.close()
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return "jsonl"
    first_line = text.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    header = {name.strip().strip('"') for name in first_line.split(",")}
    if header & set(FIELD_NAMES):
        return "csv"
    raise SchemaError(
        f"cannot tell the format of {str(path)!r}: expected JSON Lines (.jsonl, .ndjson, "
        ".json), Parquet (.parquet, .pq) or CSV with a header (.csv), each optionally .gz; "
        "rename the file with one of these extensions"
    )


# -- building tables from records that the fast readers could not take ------------------------


def _union(values: list[Any]) -> pa.Array:
    """A dense union with one member per type of value (``json`` text if none fits)."""
    groups: dict[str, tuple[pa.DataType | None, list[int]]] = {}
    for i, value in enumerate(values):
        try:
            typ: pa.DataType | None = pa.array([value]).type
        except (pa.ArrowException, OverflowError, ValueError, TypeError):
            typ = None
        key = MIXED_JSON_MEMBER if typ is None else str(typ)
        groups.setdefault(key, (typ, []))[1].append(i)
    codes = np.zeros(len(values), dtype=np.int8)
    offsets = np.zeros(len(values), dtype=np.int32)
    children: list[pa.Array] = []
    names: list[str] = []
    for code, (name, (typ, rows)) in enumerate(groups.items()):
        members = [values[i] for i in rows]
        if typ is None:
            child = pa.array([json.dumps(v, ensure_ascii=False) for v in members], pa.string())
        else:
            child = pa.array(members, typ)
        codes[rows] = code
        offsets[rows] = np.arange(len(rows), dtype=np.int32)
        children.append(child)
        names.append(name if typ is None else f"t{code}")
    return pa.UnionArray.from_dense(
        pa.array(codes, pa.int8()), pa.array(offsets, pa.int32()), children, names
    )


def _big_ints_to_float(value: Any) -> Any:
    """JSON integers beyond int64 become floats, as pyarrow.json reads them."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**63) <= value < 2**63 else float(value)
    if isinstance(value, list):
        return [_big_ints_to_float(v) for v in value]
    if isinstance(value, dict):
        return {k: _big_ints_to_float(v) for k, v in value.items()}
    return value


def array_from_values(values: list[Any]) -> pa.Array:
    """An Arrow array of parsed JSON values: one type if they share one, else a dense union."""
    try:
        arr = pa.array(values)
    except OverflowError:
        return array_from_values([_big_ints_to_float(v) for v in values])
    except (pa.ArrowException, ValueError, TypeError):
        return _union([_big_ints_to_float(v) for v in values])
    if (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)) and any(
        v is True or v is False for v in values
    ):
        # pyarrow reads true as 1.0 among floats; a boolean is not a number.
        return _union(values)
    return arr


def table_from_records(records: list[dict[str, Any]]) -> pa.Table:
    """A table of parsed JSON objects, one column per key (in order of first appearance)."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    if not names:
        return rows_only(len(records))
    return pa.table({name: array_from_values([r.get(name) for r in records]) for name in names})


def union_to_pylist(arr: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Values of a column as Python objects, decoding a union's ``json`` member."""
    if isinstance(arr, pa.ChunkedArray):
        return [v for chunk in arr.chunks for v in union_to_pylist(chunk)]
    if not pa.types.is_union(arr.type):
        return list(arr.to_pylist())
    if arr.offset:
        arr = pa.concat_arrays([arr])
    mixed = [
        arr.type.type_codes[k]
        for k in range(arr.type.num_fields)
        if arr.type.field(k).name == MIXED_JSON_MEMBER
    ]
    values = arr.to_pylist()
    if not mixed:
        return list(values)
    codes = arr.type_codes.to_pylist()
    return [
        json.loads(v) if c in mixed and v is not None else v
        for v, c in zip(values, codes, strict=True)
    ]


def rows_as_python(table: pa.Table, indices: list[int] | None = None) -> list[dict[str, Any]]:
    """Rows of a raw batch as Python dicts, as received, for quarantine.

    Unlike ``Table.to_pylist``, a union column gives back its original JSON values (its
    ``json`` member decoded), and a string that is not valid UTF-8 (possible from Parquet)
    is decoded with replacement characters instead of raising; a nested value holding such a
    string becomes None.
    """
    if indices is not None:
        table = table.take(pa.array(indices, pa.int64())) if table.num_columns else table
        n = len(indices)
    else:
        n = table.num_rows
    columns: dict[str, list[Any]] = {}
    for name in table.column_names:
        col = table.column(name)
        try:
            columns[name] = union_to_pylist(col)
        except UnicodeDecodeError:
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                raw = col.cast(pa.large_binary()).to_pylist()
                columns[name] = [
                    None if v is None else v.decode("utf-8", errors="replace") for v in raw
                ]
            else:
                columns[name] = [None] * n
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def concat_tables(tables: list[pa.Table]) -> pa.Table:
    """Concatenate tables whose columns may differ in presence and type.

    Compatible types are promoted (null to anything, int to float, structs merged); a column
    whose types clash becomes a dense union (see the module docstring).
    """
    tables = [t for t in tables if t.num_rows or t.num_columns]
    if not tables:
        return pa.table({})
    if len(tables) == 1:
        return tables[0]
    if not any(t.num_columns for t in tables):
        # pyarrow drops the row count of tables without columns (records that were all {}).
        return rows_only(sum(t.num_rows for t in tables))
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    names: dict[str, None] = {}
    for t in tables:
        names.update(dict.fromkeys(t.column_names))
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name in names:
        parts = [t.column(name) if name in t.column_names else pa.nulls(t.num_rows) for t in tables]
        try:
            columns[name] = pa.concat_tables(
                [pa.table({name: p}) for p in parts], promote_options="permissive"
            ).column(0)
        except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            chunks = [
                c for p in parts for c in (p.chunks if isinstance(p, pa.ChunkedArray) else [p])
            ]
            columns[name] = union_of_chunks(chunks)
    return pa.table(columns)


def union_of_chunks(chunks: list[pa.Array]) -> pa.Array:
    """One dense union of arrays of different types, in order (a union's members are merged).

    Built from the arrays' buffers with numpy: no value goes through Python.
    """
    members: dict[str, list[pa.Array]] = {}
    sizes: dict[str, int] = {}
    codes: list[npt.NDArray[np.int8]] = []
    offsets: list[npt.NDArray[np.int32]] = []

    def member(key: str, arr: pa.Array) -> tuple[int, int]:
        """The member code of ``key`` and where ``arr`` starts in it; adds ``arr`` to it."""
        if key not in members:
            members[key], sizes[key] = [], 0
        base = sizes[key]
        members[key].append(arr)
        sizes[key] += len(arr)
        return list(members).index(key), base

    for chunk in chunks:
        if not len(chunk):
            continue
        if pa.types.is_union(chunk.type):
            if chunk.offset:
                chunk = pa.concat_arrays([chunk])
            own_codes = np.asarray(chunk.type_codes.to_numpy(), dtype=np.int64)
            own_offsets = np.asarray(chunk.offsets.to_numpy(), dtype=np.int32)
            out_codes = np.zeros(len(chunk), dtype=np.int8)
            out_offsets = np.zeros(len(chunk), dtype=np.int32)
            for k, own in enumerate(chunk.type.type_codes):
                child = chunk.field(k)
                name = chunk.type.field(k).name
                code, base = member(name if name == MIXED_JSON_MEMBER else str(child.type), child)
                where = own_codes == own
                out_codes[where] = code
                out_offsets[where] = own_offsets[where] + base
            codes.append(out_codes)
            offsets.append(out_offsets)
        else:
            code, base = member(str(chunk.type), chunk)
            codes.append(np.full(len(chunk), code, dtype=np.int8))
            offsets.append(np.arange(base, base + len(chunk), dtype=np.int32))
    if not members:
        return pa.nulls(0)
    children = [pa.concat_arrays(arrays) for arrays in members.values()]
    names = [
        MIXED_JSON_MEMBER if key == MIXED_JSON_MEMBER else f"t{i}" for i, key in enumerate(members)
    ]
    return pa.UnionArray.from_dense(
        pa.array(np.concatenate(codes) if codes else np.zeros(0, np.int8), pa.int8()),
        pa.array(np.concatenate(offsets) if offsets else np.zeros(0, np.int32), pa.int32()),
        children,
        names,
    )


def utf8_ok(buf: pa.Buffer) -> bool:
    """Whether a buffer is valid UTF-8 (checked in C++, without copying it)."""
    offsets = pa.py_buffer(np.array([0, buf.size], dtype=np.int32))
    try:
        pa.Array.from_buffers(pa.string(), 1, [None, offsets, buf]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def rows_only(n: int) -> pa.Table:
    """A table of ``n`` rows and no columns (records with no fields, such as ``{}``)."""
    return pa.table({"_": pa.nulls(n)}).drop_columns(["_"])


def empty_table() -> pa.Table:
    """A table of no columns and no rows."""
    return pa.table({})


def lines_array(lines: np.ndarray[Any, np.dtype[np.int64]]) -> pa.Array:
    """Line numbers as the int64 Arrow array of a :class:`RawBatch`."""
    return pa.array(np.asarray(lines, dtype=np.int64), pa.int64())


__all__ = [
    "FORMATS",
    "MAX_RAW_CHARS",
    "Format",
    "ParseFailure",
    "RawBatch",
    "detect_format",
    "rows_as_python",
    "union_to_pylist",
]
