"""Columnar JSON rendering: JSON text built by Arrow's C++ string kernels, not per row in Python.

A column becomes a column of *fragments* ``,"name":value`` (null where the value is absent),
and a line is the element-wise concatenation of its fragments with nulls skipped: absent fields
are omitted rather than written as ``null``. Only strings holding control characters (none in
the bundled data, rare in general) are escaped in Python, with :func:`json.dumps`.
"""

from __future__ import annotations

import json
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import AssayError


def escape(values: pa.Array) -> pa.Array:
    """JSON-escape the contents of a string array (without the surrounding quotes)."""
    out = values
    if pc.any(pc.match_substring(values, "\\")).as_py():
        out = pc.replace_substring(out, "\\", "\\\\")
    if pc.any(pc.match_substring(values, '"')).as_py():
        out = pc.replace_substring(out, '"', '\\"')
    has_control = pc.match_substring_regex(values, r"[\x00-\x1f]")
    if pc.any(has_control).as_py():
        fixed = out.to_pylist()
        originals = values.to_pylist()
        for i in np.flatnonzero(has_control.fill_null(False).to_numpy(zero_copy_only=False)):
            fixed[i] = json.dumps(originals[i], ensure_ascii=False)[1:-1]
        out = pa.array(fixed, pa.string())
    return out


def join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate element-wise; a row is null if any of its parts is."""
    return pc.binary_join_element_wise(*parts, "")


def join_skipping_nulls(*parts: pa.Array | str) -> pa.Array:
    """Concatenate element-wise, leaving out null parts; every row must have a non-null part."""
    out = pc.binary_join_element_wise(*parts, "", null_handling="skip")
    lengths = {len(p) for p in parts if not isinstance(p, str)}
    if lengths and len(out) != max(lengths):
        # pyarrow 26 drops a row whose parts are all null instead of emitting "".
        raise AssayError("internal error: a rendered JSON row had no fields; this is a bug")
    return out


def _zero_based(col: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The offsets (starting at 0) and the used child values of a list or map array."""
    offsets = np.asarray(col.offsets)
    start = int(offsets[0]) if len(offsets) else 0
    stop = int(offsets[-1]) if len(offsets) else 0
    return pa.array(offsets - start, pa.int32()), col.values.slice(start, stop - start)


def fragments(name: str, col: pa.Array) -> pa.Array:
    """Render each value of ``col`` as ``,"name":<JSON value>``; null values stay null.

    Strings, integers, floats (Arrow's shortest round-trip form, e.g. ``1e-7``), booleans,
    lists of strings and maps of string to string are supported.
    """
    key = "," + json.dumps(name) + ":"
    t = col.type
    if pa.types.is_string(t):
        return join(key + '"', escape(col), '"')
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return join(key, col.cast(pa.string()))
    if pa.types.is_boolean(t):
        return pc.if_else(col, key + "true", key + "false")
    if pa.types.is_map(t):
        offsets, entries = _zero_based(col)
        pairs = join('"', escape(entries.field(0)), '":"', escape(entries.field(1)), '"')
        maps = pa.ListArray.from_arrays(offsets, pairs, mask=col.is_null())
        return join(key + "{", pc.binary_join(maps, ","), "}")
    if pa.types.is_list(t) and pa.types.is_string(t.value_type):
        offsets, items = _zero_based(col)
        quoted = join('"', escape(items), '"')
        lists = pa.ListArray.from_arrays(offsets, quoted, mask=col.is_null())
        return join(key + "[", pc.binary_join(lists, ","), "]")
    raise AssayError(f"cannot render a column of type {t} as JSON; this is a bug in assay")


class Writable(Protocol):
    """A binary file-like object (a file, a ``GzipFile``)."""

    def write(self, data: memoryview, /) -> int: ...


def write_lines(out: Writable, lines: pa.Array) -> int:
    """Write the concatenated values of a string array to ``out``; return the bytes written."""
    if len(lines) == 0:
        return 0
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(
        offsets_buf, dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4
    )
    start, stop = int(offsets[0]), int(offsets[-1])
    out.write(memoryview(data_buf)[start:stop])
    return stop - start
