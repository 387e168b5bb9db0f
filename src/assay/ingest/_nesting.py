"""How deep JSON text nests, measured on the raw bytes before any parser sees them.

``pyarrow.json`` recurses once per level of nesting and has no limit: a line nesting 20,000
arrays (40 KB) overflows the C stack and kills the process. So every block of JSON Lines is
scanned first, and a line nesting deeper than :data:`MAX_DEPTH` never reaches a parser; it is
a ``depth`` failure of its own line.

The scan is vectorised (numpy) and costs about one pass over the bytes (about 20 ms per
32 MiB block, some 2% of ingesting it):

1. Opening brackets (``[`` or ``{``) are found in one comparison; a line can nest no deeper
   than its number of opening brackets, so only a line with more than ``MAX_DEPTH`` of them
   is a suspect (an event has a handful).
2. A block with a suspect is measured exactly, all its lines at once (running sums over its
   quotes, brackets and line breaks: linear, some 20 passes over those): quotes preceded by an
   odd run of backslashes are escaped, the others open and close strings, brackets inside
   strings do not count, and the depth is the running sum of +1 per opening and -1 per
   closing bracket, from the start of the line. After a stray closing bracket the sum is
   measured from its lowest point so far, so no ill-formed line reads shallower than a parser
   that went on after the error would find it.

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
_NEWLINE = 0x0A
# "[" is 0x5B and "{" is 0x7B, "]" is 0x5D and "}" is 0x7D: they differ by the 0x20 bit only,
# so one comparison of (code | 0x20) finds both of a pair, at any code width.
_OPEN = 0x7B
_CLOSE = 0x7D


def _escaped_quotes(codes: Codes) -> Ints:
    """Positions of the quotes escaped by an odd run of backslashes (``\\"``)."""
    slashes = np.flatnonzero(codes == _BACKSLASH)
    if not slashes.size:
        return slashes
    # The start of each run of backslashes, carried forward to every backslash of the run.
    run_start = np.ones(slashes.size, dtype=np.bool_)
    run_start[1:] = np.diff(slashes) != 1
    starts = np.maximum.accumulate(np.where(run_start, slashes, 0))
    ends = np.flatnonzero(np.append(run_start[1:], True))  # last backslash of each run
    last = slashes[ends]
    inside = last + 1 < codes.size
    last, first = last[inside], starts[ends][inside]
    quoted = codes[last + 1] == _QUOTE
    odd = (last - first + 1) % 2 == 1
    escaped: Ints = last[quoted & odd] + 1
    return escaped


def _profile(codes: Codes, *, by_line: bool) -> tuple[Ints, Ints, Ints]:
    """The brackets outside strings, the line of each, and the depth after each.

    With ``by_line``, every line (up to a ``\\n``) is measured on its own: its strings and its
    depth start afresh. A depth counts from the lowest point its line reached before it, so a
    stray closing bracket cannot hide the nesting that follows. Linear: one sorted list of the
    structural characters, and running sums over it (no search per bracket).
    """
    folded = codes | 0x20
    mask = (folded == _OPEN) | (folded == _CLOSE) | (codes == _QUOTE)
    if by_line:
        mask |= codes == _NEWLINE
    events = np.flatnonzero(mask)
    kinds = codes[events]
    is_quote = kinds == _QUOTE
    escaped = _escaped_quotes(codes)
    if escaped.size:
        is_quote[np.searchsorted(events, escaped)] = False
    if by_line:
        is_newline = kinds == _NEWLINE
        line_of = np.cumsum(is_newline) - is_newline
        # Quotes on the line before each event; odd: the event is inside a string.
        quotes = np.cumsum(is_quote) - is_quote
        base = np.concatenate([[0], quotes[is_newline] + is_quote[is_newline]])
        inside = (quotes - base[line_of]) % 2 == 1
        bracket = (kinds != _QUOTE) & ~is_newline & ~inside
    else:
        line_of = np.zeros(events.size, dtype=np.int64)
        inside = (np.cumsum(is_quote) - is_quote) % 2 == 1
        bracket = (kinds != _QUOTE) & ~inside
    brackets, line_of = events[bracket], line_of[bracket]
    if not brackets.size:
        return brackets, line_of, brackets
    steps = np.where(folded[brackets] == _OPEN, 1, -1).astype(np.int64)
    level = np.cumsum(steps)
    first = np.ones(brackets.size, dtype=np.bool_)
    first[1:] = line_of[1:] != line_of[:-1]
    segment = np.cumsum(first) - 1
    level -= (level - steps)[first][segment]  # relative to the line's start
    # A running minimum that starts afresh on each line: every line is shifted below all
    # lines before it (by more than any line's range), so their values never win.
    shift = segment * (1 << 40)
    floor = np.minimum.accumulate(np.minimum(level, 0) - shift) + shift
    depths: Ints = level - floor
    return brackets, line_of, depths


def depth_profile(codes: Codes) -> tuple[Ints, Ints]:
    """The brackets outside strings and the nesting depth after each (see module docstring).

    Returns ``(positions, depths)``: a depth counts from the lowest point reached before it,
    so a stray closing bracket cannot hide the nesting that follows it.
    """
    positions, _, depths = _profile(codes, by_line=False)
    return positions, depths


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


#: Bytes compared at a time when looking for opening brackets: small enough that the work
#: arrays stay in the CPU cache (twice as fast as whole-block arrays on a 32 MiB block).
_CHUNK = 1 << 18


def _opening_brackets(codes: Codes) -> Ints:
    """Positions of ``[`` and ``{``."""
    folded = np.empty(min(codes.size, _CHUNK), dtype=codes.dtype)
    hits = np.empty(folded.size, dtype=np.bool_)
    found = []
    for start in range(0, codes.size, _CHUNK):
        part = codes[start : start + _CHUNK]
        np.bitwise_or(part, 0x20, out=folded[: part.size])
        np.equal(folded[: part.size], _OPEN, out=hits[: part.size])
        found.append(np.flatnonzero(hits[: part.size]) + start)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def deep_lines(codes: Codes, newlines: Ints, limit: int = MAX_DEPTH) -> Ints:
    """Indexes of the lines that nest deeper than ``limit``: line ``i`` ends at ``newlines[i]``.

    Examples
    --------
    >>> import numpy as np
    >>> data = b'{"a": 1}\\n' + b"[" * 70 + b"]" * 70 + b'\\n{"b": "' + b"[" * 70 + b'"}\\n'
    >>> codes = np.frombuffer(data, np.uint8)
    >>> deep_lines(codes, np.flatnonzero(codes == 10)).tolist()
    [1]
    """
    none = np.zeros(0, dtype=np.int64)
    opens = _opening_brackets(codes)
    if opens.size <= limit:
        return none
    # A line nests no deeper than its number of opening brackets: only those with more than
    # ``limit`` are measured (an event has a handful).
    counts = np.bincount(np.searchsorted(newlines, opens), minlength=newlines.size + 1)
    if not (counts > limit).any():
        return none
    _, line_of, depths = _profile(codes, by_line=True)
    deep: Ints = np.unique(line_of[depths > limit]).astype(np.int64)
    return deep


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
