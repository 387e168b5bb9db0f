"""How deep JSON text nests, measured on the raw bytes before any parser sees them.

``pyarrow.json`` recurses once per level of nesting and has no limit: a line nesting 20,000
arrays (40 KB) overflows the C stack and kills the process. So every block of JSON Lines is
scanned first, and a line nesting deeper than :data:`MAX_DEPTH` never reaches a parser; it is
a ``depth`` failure of its own line.

The scan is vectorised (numpy) and costs about one pass over the bytes:

1. Opening brackets (``[`` or ``{``) are found in one comparison; a line can nest no deeper
   than its number of opening brackets, so only a line with more than ``MAX_DEPTH`` of them
   is a suspect (an event has a handful).
2. A suspect is measured exactly: quotes preceded by an odd run of backslashes are escaped,
   the others open and close strings, brackets inside strings do not count, and the depth is
   the running sum of +1 per opening and -1 per closing bracket. After a stray closing
   bracket the sum is measured from its lowest point so far, so no ill-formed line reads
   shallower than a parser that went on after the error would find it.

On valid JSON the measure is exact (it is the nesting of the parsed value: ``[]`` is 1,
``{"a": [1]}`` is 2); on invalid JSON, a parser stops at the first error, before which the
scan and the parser read the same strings and brackets. The byte values involved are ASCII,
and no byte of a multi-byte UTF-8 character is ASCII, so the scan works on any bytes, or on
the code points of decoded text.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

#: Deepest JSON nesting a record may have. No event field nests more than three levels (the
#: record, ``attributes``, a list); parsers and Arrow's kernels recurse per level.
MAX_DEPTH = 64

Ints = npt.NDArray[np.int64]
Codes = npt.NDArray[Any]  # uint8 bytes or uint32 code points

_QUOTE = 0x22
_BACKSLASH = 0x5C
# "[" is 0x5B and "{" is 0x7B, "]" is 0x5D and "}" is 0x7D: they differ by the 0x20 bit only,
# so one comparison of (code | 0x20) finds both of a pair, at any code width.
_OPEN = 0x7B
_CLOSE = 0x7D


def _string_quotes(codes: Codes) -> Ints:
    """Positions of the quotes that open or close a string (not those escaped by ``\\``)."""
    quotes = np.flatnonzero(codes == _QUOTE)
    if not quotes.size:
        return quotes
    slashes = np.flatnonzero(codes == _BACKSLASH)
    if not slashes.size:
        return quotes
    # The start of each run of backslashes, carried forward to every backslash of the run.
    run_start = np.ones(slashes.size, dtype=np.bool_)
    run_start[1:] = np.diff(slashes) != 1
    starts = np.maximum.accumulate(np.where(run_start, slashes, 0))
    after = np.flatnonzero(np.isin(quotes - 1, slashes))
    if not after.size:
        return quotes
    k = np.searchsorted(slashes, quotes[after] - 1)
    run = quotes[after] - starts[k]  # backslashes right before the quote
    escaped = np.zeros(quotes.size, dtype=np.bool_)
    escaped[after[run % 2 == 1]] = True
    result: Ints = quotes[~escaped]
    return result


def depth_profile(codes: Codes) -> tuple[Ints, Ints]:
    """The brackets outside strings and the nesting depth after each (see module docstring).

    Returns ``(positions, depths)``: a depth counts from the lowest point reached before it,
    so a stray closing bracket cannot hide the nesting that follows it.
    """
    folded = codes | 0x20
    brackets = np.flatnonzero((folded == _OPEN) | (folded == _CLOSE))
    if not brackets.size:
        return brackets, brackets
    quotes = _string_quotes(codes)
    if quotes.size:
        brackets = brackets[np.searchsorted(quotes, brackets) % 2 == 0]
    steps = np.where(folded[brackets] == _OPEN, 1, -1).astype(np.int64)
    level = np.cumsum(steps)
    floor = np.minimum.accumulate(np.minimum(level, 0))
    depths: Ints = level - floor
    return brackets, depths


def max_depth(codes: Codes) -> int:
    """How deep the JSON text in ``codes`` nests (0 for a scalar).

    Examples
    --------
    >>> import numpy as np
    >>> max_depth(np.frombuffer(b'{"a": [1, "]]", {"b": []}]}', np.uint8))
    4
    """
    _, depths = depth_profile(codes)
    return int(depths.max()) if depths.size else 0


def deep_lines(codes: Codes, starts: Ints, ends: Ints, limit: int = MAX_DEPTH) -> Ints:
    """Indexes of the lines ``codes[starts[i]:ends[i]]`` that nest deeper than ``limit``.

    Examples
    --------
    >>> import numpy as np
    >>> data = b'{"a": 1}\\n' + b"[" * 70 + b"]" * 70 + b'\\n{"b": "' + b"[" * 70 + b'"}\\n'
    >>> codes = np.frombuffer(data, np.uint8)
    >>> ends = np.flatnonzero(codes == 10)
    >>> starts = np.concatenate([[0], ends[:-1] + 1])
    >>> deep_lines(codes, starts, ends).tolist()
    [1]
    """
    if not starts.size:
        return np.zeros(0, dtype=np.int64)
    opens = np.flatnonzero((codes | 0x20) == _OPEN)
    if opens.size <= limit:
        return np.zeros(0, dtype=np.int64)
    line_of = np.searchsorted(ends, opens)
    inside = line_of < starts.size
    counts = np.bincount(line_of[inside], minlength=starts.size)
    suspects = np.flatnonzero(counts > limit)
    deep = [int(i) for i in suspects if max_depth(codes[int(starts[i]) : int(ends[i])]) > limit]
    return np.asarray(deep, dtype=np.int64)


def deep_value_start(codes: Codes, limit: int = MAX_DEPTH) -> int | None:
    """Where the top-level member holding the first point deeper than ``limit`` opens, or None.

    For an object ``{"k": [[...]]}`` that is the position of the first ``[``: the key before it
    names the member. None when nothing is deeper than ``limit`` or the text is not an object.

    Examples
    --------
    >>> import numpy as np
    >>> deep_value_start(np.frombuffer(b'{"a": 1, "b": [[[1]]]}', np.uint8), limit=2)
    14
    """
    positions, depths = depth_profile(codes)
    over = np.flatnonzero(depths > limit)
    if not over.size or codes[positions[0]] != _OPEN:  # "{": the record is an object
        return None
    before = slice(0, int(over[0]) + 1)
    opened = (depths[before] == 2) & ((codes[positions[before]] | 0x20) == _OPEN)
    starts = np.flatnonzero(opened)
    return int(positions[starts[-1]]) if starts.size else None


def value_end(codes: Codes) -> int | None:
    """Where the JSON array or object that starts at ``codes[0]`` ends (exclusive), or None
    when it does not end inside ``codes``: found without parsing it, however deep it is."""
    positions, depths = depth_profile(codes)
    closed = np.flatnonzero(depths == 0)
    if not closed.size or not positions.size or positions[0] != 0:
        return None
    return int(positions[closed[0]]) + 1


__all__ = [
    "MAX_DEPTH",
    "deep_lines",
    "deep_value_start",
    "depth_profile",
    "max_depth",
    "value_end",
]
