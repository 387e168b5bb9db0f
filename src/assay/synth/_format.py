"""Vectorised formatting of ids and timestamps straight into Arrow string buffers.

Formatting millions of ids or timestamps with Python string methods (or with Arrow's
``strftime``, which goes through the time zone database) dominates the generator's run time;
here each string is a row of a ``uint8`` matrix filled with numpy arithmetic, and the matrix
becomes the data buffer of an Arrow string array without a Python object per row.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_ZERO = ord("0")
_MS_PER_DAY = 86_400_000

# splitmix64's finaliser: a bijection of 64-bit integers, so distinct counters give distinct ids.
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(x: U64) -> U64:
    """Scramble 64-bit integers bijectively (splitmix64's finaliser)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def strings_from_matrix(mat: U8, lengths: I64 | None = None) -> pa.StringArray:
    """Make a string array whose row ``i`` is ``mat[i, :lengths[i]]`` (all of it by default)."""
    n, width = mat.shape
    if lengths is None:
        data = np.ascontiguousarray(mat).tobytes()
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    else:
        keep = np.arange(width)[np.newaxis, :] < lengths[:, np.newaxis]
        data = mat[keep].tobytes()
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 2**31:
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data)).cast(
            pa.string()
        )
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)
    )


def _digits(values: I64, width: int) -> U8:
    """Zero-padded decimal digits of non-negative ints, as ASCII, one row per value."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[:, np.newaxis] // powers) % 10 + _ZERO).astype(np.uint8)


def prefixed_numbers(prefix: str, numbers: I64, width: int) -> pa.StringArray:
    """Format ``f"{prefix}{n:0{width}d}"`` for each ``n`` (which must fit in ``width`` digits)."""
    p = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    mat = np.empty((len(numbers), len(p) + width), dtype=np.uint8)
    mat[:, : len(p)] = p
    mat[:, len(p) :] = _digits(numbers.astype(np.int64), width)
    return strings_from_matrix(mat)


# The 30 hex positions of a UUID that carry bits; 12 holds the version, 16 the variant.
_UUID_FREE = np.array([i for i in range(32) if i not in (12, 16)])
_UUID_COLUMNS = np.array([i + (i >= 8) + (i >= 12) + (i >= 16) + (i >= 20) for i in range(32)])


def uuid_strings(hi: U64, lo: U64) -> pa.StringArray:
    """Format version-4-shaped UUIDs whose first 16 free hex digits are ``hi``.

    ``hi`` is kept whole, so distinct ``hi`` give distinct strings; ``lo`` fills the remaining
    56 bits.
    """
    n = len(hi)
    raw = np.empty((n, 16), dtype=np.uint8)
    raw[:, :8] = hi.astype(">u8").view(np.uint8).reshape(n, 8)
    raw[:, 8:] = lo.astype(">u8").view(np.uint8).reshape(n, 8)
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 15
    hexdigits = np.empty((n, 32), dtype=np.uint8)
    hexdigits[:, _UUID_FREE] = nibbles[:, :30]
    hexdigits[:, 12] = 4
    hexdigits[:, 16] = 8 | (nibbles[:, 30] & 3)
    mat = np.full((n, 36), ord("-"), dtype=np.uint8)
    mat[:, _UUID_COLUMNS] = _HEX[hexdigits]
    return strings_from_matrix(mat)


def civil_from_days(days: I64) -> tuple[I64, I64, I64]:
    """Year, month, day of days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


def rfc3339_strings(epoch_ms: I64, offset_minutes: I64) -> pa.StringArray:
    """Format instants as RFC 3339 with milliseconds, in UTC (``Z``) or at a fixed offset.

    Row ``i`` shows the instant ``epoch_ms[i]`` as local time at ``offset_minutes[i]`` east of
    UTC: ``2026-01-05T10:00:00.000Z`` when the offset is 0, else e.g.
    ``2026-01-05T15:30:00.000+05:30``. Years must lie in 0000 to 9999.
    """
    n = len(epoch_ms)
    local = epoch_ms + offset_minutes * 60_000
    days = local // _MS_PER_DAY
    rem = local - days * _MS_PER_DAY
    year, month, day = civil_from_days(days)
    mat = np.empty((n, 29), dtype=np.uint8)
    fields = (
        (year, 4, 0),
        (month, 2, 5),
        (day, 2, 8),
        (rem // 3_600_000, 2, 11),
        (rem // 60_000 % 60, 2, 14),
        (rem // 1000 % 60, 2, 17),
        (rem % 1000, 3, 20),
    )
    for values, width, col in fields:
        mat[:, col : col + width] = _digits(values, width)
    for col, char in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, ".")):
        mat[:, col] = ord(char)
    utc = offset_minutes == 0
    mat[:, 23] = np.where(utc, ord("Z"), np.where(offset_minutes > 0, ord("+"), ord("-")))
    off = np.abs(offset_minutes)
    mat[:, 24:26] = _digits(off // 60, 2)
    mat[:, 26] = ord(":")
    mat[:, 27:29] = _digits(off % 60, 2)
    return strings_from_matrix(mat, np.where(utc, 24, 29).astype(np.int64))
