"""Column-wise validation of event schema v1.

:func:`validate` takes a table of parsed records (one column per top-level field, with the
types a reader found) and splits it into valid rows, coerced to :data:`CANONICAL_SCHEMA`, and
one :class:`Rejection` per invalid row. The checks are Arrow compute kernels and numpy over whole
columns; Python runs per row only to write the message of a rejected row, and for odd columns
(a column mixing JSON types, which a reader delivers as a dense union).

Time windows are separate (:func:`check_time_window`) because the ingest pipeline drops
duplicates before it applies any time-based rule.

Rules
-----
Each rejection names one rule (``Rejection.rule``):

``unknown_field``
    A column that is not a schema v1 field holds a value (null values are ignored).
``required``
    A required field is absent or null.
``type``
    A value has the wrong type: a number or a list where a string is expected, a boolean where a
    number is, a number that is not integral for an int field, NaN or infinity, a list item or
    an ``attributes`` value that is not a string.
``depth``
    A CSV list or ``attributes`` cell holds JSON nested too deeply for Python's ``json`` to
    read (about 1,000 levels); exclusive of ``type``.
``utf8``
    A string is not valid UTF-8 (possible from CSV or Parquet input).
``min_length``, ``max_length``
    A string is shorter or longer than its bounds, in characters. Also an ``attributes`` key or
    value over ``MAX_ATTRIBUTE_CHARS``, and a list item over ``MAX_LIST_ITEM_CHARS``.
``choice``
    ``event_type`` not one of ``EVENT_TYPES``; ``feedback`` not -1 or 1.
``minimum``, ``maximum``
    A number outside its inclusive bounds.
``size``
    ``text`` over ``MAX_TEXT_BYTES`` bytes of UTF-8; a list over ``MAX_LIST_ITEMS`` items;
    ``attributes`` over ``MAX_ATTRIBUTES`` entries.
``time_format``
    ``event_time`` is neither an RFC 3339 string nor integral epoch milliseconds, names an
    impossible date or time (month 13, 30 February, second 60), or lies outside the years
    0001-9999 (in UTC).
``timezone``
    ``event_time`` is a date-time without ``Z`` or an offset (or a Parquet timestamp without a
    time zone).
``future``, ``late``
    Only from :func:`check_time_window`.

A row is rejected once, for its first broken rule: unknown fields first (in column order), then
the fields of schema v1 in their declared order, each field's rules in the order listed above
(``required``, ``type``, ``utf8``, ``min_length``, ``max_length``, ``choice``, ``minimum``,
``maximum``, ``size``, then ``timezone`` or ``time_format``).

Coercions
---------
- Strings must be strings: a JSON number where a string is expected is a ``type`` rejection.
- ``int`` fields accept integer columns and float columns whose values are integral
  (``3.0``); booleans are not numbers.
- ``float`` fields accept ints and floats; NaN and infinities are rejected (``type``).
- ``event_time``: an RFC 3339 date-time ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)``
  (``t``/``z`` in lower case and a space for ``T`` accepted; the fraction has 1-9 digits and is
  truncated to microseconds), or integral epoch milliseconds, or a time-zone-aware timestamp
  column (Parquet). It is stored as UTC microseconds; ``event_date`` is its UTC calendar day.
  Nothing depends on the process's time zone.
- ``attributes``: an object of string to string. A JSON object arrives as a struct; a key whose
  value is ``null`` is treated as absent. Parquet ``map<string, string>`` is accepted as is.
- With ``lenient_strings=True`` (CSV, where every cell is text), string cells are parsed for
  non-string fields: integers and decimal numbers (``"3"``, ``"3.0"``, ``"1e3"``), booleans
  ``true``/``false`` in any case, ``event_time`` as RFC 3339 or a string of digits (epoch
  milliseconds), list fields as a JSON array of strings (``["a","b"]``) and ``attributes`` as a
  JSON object of strings.

Messages say what was expected, what came and how to fix it. They quote values of
``event_time``, ``event_type`` and numbers (truncated), and never the value of any other string
(``text``, ids, ``attributes`` keys and values are never quoted).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import SchemaError, UsageError
from assay.schema._fields import (
    EVENTS_SCHEMA,
    FIELD_NAMES,
    FIELDS,
    FIELDS_BY_NAME,
    MAX_ATTRIBUTE_CHARS,
    MAX_ATTRIBUTES,
    MAX_LIST_ITEMS,
    MAX_TEXT_BYTES,
    UTC_MICROS,
    Field,
)

#: Longest item of a list field (``flights``, ``retrieved_doc_ids``, ``cited_doc_ids``), in
#: characters. Schema v1 bounds the number of items; the item length bound is the same as an
#: attribute value's, so that one field cannot carry an unbounded payload.
MAX_LIST_ITEM_CHARS = MAX_ATTRIBUTE_CHARS

#: The name a reader gives to the union member that holds a value no Arrow type can hold (a
#: nested value mixing JSON types, such as ``[1, "a"]``) as its JSON text.
MIXED_JSON_MEMBER = "json"


def _canonical_field(f: Field) -> pa.Field:
    if f.name == "text":
        return pa.field("text", pa.string())
    return EVENTS_SCHEMA.field(f.name)


#: The validated input: the fields of schema v1 in declared order with their stored types
#: (``event_time`` as UTC microseconds, ``user_id`` still raw, ``text`` present), then
#: ``event_date``, the UTC calendar day of ``event_time``.
CANONICAL_SCHEMA: pa.Schema = pa.schema(
    [_canonical_field(f) for f in FIELDS] + [EVENTS_SCHEMA.field("event_date")]
)

RULES: tuple[str, ...] = (
    "unknown_field",
    "required",
    "type",
    "depth",
    "utf8",
    "min_length",
    "max_length",
    "choice",
    "minimum",
    "maximum",
    "size",
    "time_format",
    "timezone",
    "future",
    "late",
)


@dataclass(frozen=True)
class Rejection:
    """Why one row was rejected.

    Attributes
    ----------
    index : the row's index in the input table (for :func:`check_time_window`, its position
        in the array given).
    field : the field that broke the rule (an unknown field's own name, as sent: it may be
        anything a producer typed, so the ingest pipeline redacts it before it is answered,
        counted or stored), or None.
    rule : one of :data:`RULES`.
    message : what was expected, what came and how to fix it; holds no raw text or ids.
    """

    index: int
    field: str | None
    rule: str
    message: str


@dataclass
class ValidationResult:
    """The outcome of :func:`validate`.

    Attributes
    ----------
    valid : the valid rows, in input order, as :data:`CANONICAL_SCHEMA`.
    valid_index : int64, the input row index of each valid row.
    rejections : one per rejected row (its first broken rule), sorted by index.
    """

    valid: pa.Table
    valid_index: pa.Array
    rejections: list[Rejection]


BoolMask = npt.NDArray[np.bool_]
Int64s = npt.NDArray[np.int64]
Message = Callable[[int], str]
# One rule's outcome over a column: the rows that break it, its name, and the message of a row.
Check = tuple[BoolMask, str, Message]

_INT64_MAX = 2**63 - 1
_US_PER_DAY = 86_400_000_000
_MS_MIN = -62_135_596_800_000  # 0001-01-01T00:00:00Z
_MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_US_MIN = _MS_MIN * 1000
_US_MAX = _MS_MAX * 1000 + 999

_RFC3339 = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_NAIVE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?$"
_INT_TEXT = r"^[+-]?[0-9]{1,18}$"
_NUMBER_TEXT = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"

_QUOTE_CHARS = 40


def _quote(value: object) -> str:
    """Show a value in a message: numbers as they are, strings quoted and truncated."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    text = str(value)
    if len(text) > _QUOTE_CHARS:
        text = text[: _QUOTE_CHARS - 1] + "…"
    return repr(text)


def _describe_type(t: pa.DataType) -> str:
    """Name an Arrow type as the JSON type a producer sent."""
    if pa.types.is_boolean(t):
        return "a boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "a number"
    if _is_stringish(t):
        return "a string"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return "a list"
    if pa.types.is_struct(t) or pa.types.is_map(t):
        return "an object"
    if pa.types.is_temporal(t):
        return f"a {t} value"
    return f"a value of type {t}"


def _is_stringish(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
    )


def _is_listish(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_large_list_view(t)
    )


def _mask(arr: pa.Array | pa.ChunkedArray) -> BoolMask:
    """A boolean Arrow array as numpy, null counted as False."""
    filled = pc.fill_null(arr, False)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.bool_)


def _present(arr: pa.Array | pa.ChunkedArray) -> BoolMask:
    if pa.types.is_null(arr.type):
        return np.zeros(len(arr), dtype=np.bool_)
    if pa.types.is_union(arr.type):
        return _union_present(arr)
    return _mask(pc.is_valid(arr))


def _union_present(arr: pa.Array | pa.ChunkedArray) -> BoolMask:
    """Rows of a union whose member value is not null.

    A union has no validity of its own: a row is null when its member's value is. Arrow's
    ``is_valid`` says so from pyarrow 26 on and calls every union row valid before, so the
    members are read here, the same on every release.
    """
    if isinstance(arr, pa.ChunkedArray):
        parts = [_union_present(c) for c in arr.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.bool_)
    codes = np.asarray(arr.type_codes.to_numpy(zero_copy_only=False), dtype=np.int64)
    dense = arr.type.mode == "dense"
    offsets = (
        np.asarray(arr.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
        if dense
        else np.arange(len(arr), dtype=np.int64)  # a sparse member comes sliced like the union
    )
    out = np.zeros(len(arr), dtype=np.bool_)
    for i, code in enumerate(arr.type.type_codes):
        rows = codes == code
        if not rows.any():
            continue
        child = arr.field(i)
        if pa.types.is_null(child.type):
            continue
        valid = _mask(pc.is_valid(child))
        out[rows] = valid[offsets[rows]]
    return out


def _const(text: str) -> Message:
    return lambda _i: text


def _to_string(arr: pa.Array) -> pa.Array:
    """A string-like array as ``pa.string()`` without validating UTF-8 (checked separately)."""
    t = arr.type
    if pa.types.is_string(t):
        return arr
    if pa.types.is_binary(t):
        return arr.view(pa.string())
    if pa.types.is_large_binary(t):
        return arr.view(pa.large_string()).cast(pa.string())
    return arr.cast(pa.string())


def _invalid_utf8(arr: pa.Array | pa.ChunkedArray) -> BoolMask | None:
    """Rows of a string array that are not valid UTF-8, or None when all are valid."""
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        pass
    else:
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    raw = arr.view(pa.binary()).to_pylist()
    bad = np.zeros(len(arr), dtype=np.bool_)
    for i, value in enumerate(raw):
        if value is None:
            continue
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            bad[i] = True
    return bad


class _Rejects:
    """Collects the first broken rule of each row."""

    def __init__(self, n: int) -> None:
        self.bad = np.zeros(n, dtype=np.bool_)
        self._found: list[tuple[Int64s, str | None, str, Message]] = []

    def add(self, mask: BoolMask, field: str | None, rule: str, message: Message) -> None:
        new = mask & ~self.bad
        rows = np.flatnonzero(new)
        if rows.size:
            self.bad |= new
            self._found.append((rows, field, rule, message))

    def rejections(self) -> list[Rejection]:
        out = [
            Rejection(int(i), field, rule, message(int(i)))
            for rows, field, rule, message in self._found
            for i in rows
        ]
        out.sort(key=lambda r: r.index)
        return out


# --------------------------------------------------------------------------------------------
# Per-kind coercion. Each returns the column as its canonical type (null where the input is
# null; values of rejected rows are arbitrary) and its checks in rule order, indexed by row of
# the given array. Overlapping masks are harmless: a row keeps only its first broken rule.
# --------------------------------------------------------------------------------------------

Coerced = tuple[pa.Array, list[Check]]


def _target(f: Field) -> pa.DataType:
    return CANONICAL_SCHEMA.field(f.name).type


def _type_error(arr: pa.Array, f: Field, expected: str) -> Coerced:
    got = _describe_type(arr.type)
    message = f"{f.name} must be {expected} (got {got}); send {expected}"
    return pa.nulls(len(arr), _target(f)), [(_present(arr), "type", _const(message))]


def _utf8_check(f: Field, s: pa.Array) -> tuple[pa.Array, list[Check]]:
    bad = _invalid_utf8(s)
    if bad is None:
        return s, []
    message = f"{f.name} is not valid UTF-8; re-encode the input as UTF-8"
    cleaned = pc.if_else(pa.array(bad), pa.scalar(None, pa.string()), s)
    return cleaned, [(bad, "utf8", _const(message))]


def _outside(values: pa.Array, choices: tuple[object, ...]) -> BoolMask:
    inside = _mask(pc.is_in(values, value_set=pa.array(choices, values.type)))
    return _present(values) & ~inside


def _coerce_string(arr: pa.Array, f: Field, lenient: bool) -> Coerced:
    if not _is_stringish(arr.type):
        return _type_error(arr, f, "a string")
    s, checks = _utf8_check(f, _to_string(arr))
    if f.min_len is not None or f.max_len is not None:
        length = pc.utf8_length(s)
        if f.min_len is not None:
            lo = f.min_len
            short = (
                f"{f.name} must not be empty"
                if lo == 1
                else f"{f.name} must be at least {lo} characters long"
            )
            checks.append((_mask(pc.less(length, lo)), "min_length", _const(short)))
        if f.max_len is not None:
            hi = f.max_len

            def too_long(i: int) -> str:
                return (
                    f"{f.name} must be at most {hi} characters long "
                    f"(got {length[i].as_py()}); shorten it"
                )

            checks.append((_mask(pc.greater(length, hi)), "max_length", too_long))
    if f.choices is not None:
        allowed = ", ".join(str(c) for c in f.choices)

        def bad_choice(i: int) -> str:
            return f"{f.name} must be one of {allowed} (got {_quote(s[i].as_py())})"

        checks.append((_outside(s, f.choices), "choice", bad_choice))
    if f.name == "text":
        size = pc.binary_length(s)

        def too_big(i: int) -> str:
            return (
                f"text must be at most {MAX_TEXT_BYTES} bytes of UTF-8 "
                f"(got {size[i].as_py()} bytes); send a shorter utterance"
            )

        checks.append((_mask(pc.greater(size, MAX_TEXT_BYTES)), "size", too_big))
    return s, checks


def _number_checks(f: Field, values: pa.Array) -> list[Check]:
    checks: list[Check] = []

    def got(i: int) -> str:
        return _quote(values[i].as_py())

    def bound(x: float) -> str:
        return str(int(x)) if f.kind == "int" else str(x)

    if f.choices is not None:
        allowed = " or ".join(str(c) for c in f.choices)
        checks.append(
            (
                _outside(values, f.choices),
                "choice",
                lambda i: f"{f.name} must be {allowed} (got {got(i)})",
            )
        )
    if f.minimum is not None:
        lo = f.minimum
        checks.append(
            (
                _mask(pc.less(values, lo)),
                "minimum",
                lambda i: f"{f.name} must be at least {bound(lo)} (got {got(i)})",
            )
        )
    if f.maximum is not None:
        hi = f.maximum
        checks.append(
            (
                _mask(pc.greater(values, hi)),
                "maximum",
                lambda i: f"{f.name} must be at most {bound(hi)} (got {got(i)})",
            )
        )
    return checks


def _number_text(s: pa.Array, integer: bool) -> tuple[pa.Array, pa.Array, BoolMask]:
    """Parse text cells as numbers.

    Returns float64 values (null unless number text), int64 values (null unless integer text
    of up to 18 digits, parsed exactly) and the rows that are number text. A column that
    Arrow casts whole (the usual case) needs no regular expression.
    """
    trimmed = pc.utf8_trim_whitespace(s)
    try:
        if integer:
            as_int = pc.cast(trimmed, pa.int64())
            return pc.cast(as_int, pa.float64()), as_int, _present(trimmed)
        # Arrow also reads nan and inf; they are rejected as non-finite like any NaN.
        return pc.cast(trimmed, pa.float64()), pa.nulls(len(s), pa.int64()), _present(trimmed)
    except pa.ArrowInvalid:
        pass
    trimmed = pc.replace_substring_regex(trimmed, r"^\+", "")
    is_int = pc.match_substring_regex(trimmed, _INT_TEXT)
    is_num = pc.match_substring_regex(trimmed, _NUMBER_TEXT)
    none = pa.scalar(None, pa.string())
    as_float = pc.cast(pc.if_else(is_num, trimmed, none), pa.float64())
    as_int = pc.cast(pc.if_else(is_int, trimmed, none), pa.int64())
    return as_float, as_int, _mask(is_num)


def _coerce_int(arr: pa.Array, f: Field, lenient: bool) -> Coerced:
    t = arr.type
    checks: list[Check] = []
    if pa.types.is_integer(t):
        if pa.types.is_uint64(t):
            huge = _mask(pc.greater(arr, _INT64_MAX))
            message = f"{f.name} must fit in a signed 64-bit integer"
            checks.append((huge, "type", _const(message)))
            arr = pc.if_else(pa.array(huge), pa.scalar(None, t), arr)
        values = pc.cast(arr, pa.int64())
        return values, checks + _number_checks(f, values)
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.int64()), []
    exact: pa.Array | None = None
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        x = pc.cast(arr, pa.float64(), safe=False)
    elif lenient and _is_stringish(t):
        s, checks = _utf8_check(f, _to_string(arr))
        x, exact, is_num = _number_text(s, integer=True)
        message = f"{f.name} must be an integer (got text that is not a number)"
        checks.append((_present(s) & ~is_num, "type", _const(message)))
    else:
        return _type_error(arr, f, "an integer")
    xs = np.asarray(x.to_numpy(zero_copy_only=False), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        integral = np.isfinite(xs) & (np.floor(xs) == xs) & (xs >= -(2.0**63)) & (xs < 2.0**63)
    whole = pa.array(np.where(integral, xs, 0.0).astype(np.int64), mask=~integral)
    values = whole if exact is None else pc.coalesce(exact, whole)

    def not_integral(i: int) -> str:
        return f"{f.name} must be an integer (got {_quote(x[i].as_py())}); send a whole number"

    checks.append((_present(x) & _mask(pc.is_null(values)), "type", not_integral))
    return values, checks + _number_checks(f, values)


def _coerce_float(arr: pa.Array, f: Field, lenient: bool) -> Coerced:
    t = arr.type
    checks: list[Check] = []
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = pc.cast(arr, pa.float64(), safe=False)
    elif lenient and _is_stringish(t):
        s, checks = _utf8_check(f, _to_string(arr))
        values, _exact, is_num = _number_text(s, integer=False)
        message = f"{f.name} must be a number (got text that is not a number)"
        checks.append((_present(s) & ~is_num, "type", _const(message)))
    elif pa.types.is_null(t):
        return pa.nulls(len(arr), pa.float64()), []
    else:
        return _type_error(arr, f, "a number")
    finite = pc.is_finite(values)
    given = values

    def non_finite(i: int) -> str:
        return f"{f.name} must be a finite number (got {given[i].as_py()})"

    checks.append((_present(given) & ~_mask(finite), "type", non_finite))
    values = pc.if_else(finite, given, pa.scalar(None, pa.float64()))
    return values, checks + _number_checks(f, values)


def _coerce_bool(arr: pa.Array, f: Field, lenient: bool) -> Coerced:
    t = arr.type
    if pa.types.is_boolean(t):
        return arr, []
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.bool_()), []
    if lenient and _is_stringish(t):
        s, checks = _utf8_check(f, _to_string(arr))
        word = pc.utf8_lower(pc.utf8_trim_whitespace(s))
        known = _mask(pc.is_in(word, value_set=pa.array(["true", "false"])))
        message = f"{f.name} must be true or false (got other text)"
        checks.append((_present(s) & ~known, "type", _const(message)))
        return pc.equal(word, "true"), checks
    return _type_error(arr, f, "true or false")


# -- event_time ------------------------------------------------------------------------------


def _days_from_civil(y: Int64s, m: Int64s, d: Int64s) -> Int64s:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), y >= 1."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days: Int64s = era * 146097 + doe - 719468
    return days


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _parse_rfc3339(s: pa.Array, rows: Int64s) -> tuple[Int64s, BoolMask]:
    """Parse rows of ``s`` that match the RFC 3339 pattern into UTC microseconds.

    The pattern puts ASCII digits at fixed places, so the fields are read straight from the
    string bytes. Returns the microseconds and whether each row is a real date and time whose
    UTC instant lies in the years 0001-9999.
    """
    if not rows.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.bool_)
    _validity, offsets_buf, data_buf = s.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[s.offset : s.offset + len(s) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8)
    last = len(data) - 1
    start = offsets[rows].astype(np.int64)
    length = offsets[rows + 1].astype(np.int64) - start

    def digit(pos: Int64s | int) -> Int64s:
        d: Int64s = data[np.minimum(start + pos, last)].astype(np.int64) - 48
        return d

    def two(pos: Int64s | int) -> Int64s:
        return digit(pos) * 10 + digit(pos + 1)

    year = two(0) * 100 + two(2)
    month, day = two(5), two(8)
    hour, minute, second = two(11), two(14), two(17)
    tail = data[start + length - 1]
    zulu = (tail == ord("Z")) | (tail == ord("z"))
    fraction_digits = np.where(zulu, length - 1, length - 6) - 20  # <= 0: no fraction
    micros = np.zeros(rows.size, dtype=np.int64)
    for j in range(6):
        micros = micros * 10 + np.where(j < fraction_digits, digit(20 + j), 0)
    sign = np.where(data[start + length - 6] == ord("-"), -1, 1)
    offset_h, offset_m = two(length - 5), two(length - 2)
    offset_min = np.where(zulu, 0, sign * (offset_h * 60 + offset_m))
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    real = (year >= 1) & (month >= 1) & (month <= 12)
    month = np.where(real, month, 1)
    month_days = _DAYS_IN_MONTH[month] + ((month == 2) & leap)
    real &= (day >= 1) & (day <= month_days) & (hour <= 23) & (minute <= 59) & (second <= 59)
    real &= zulu | ((offset_h <= 23) & (offset_m <= 59))
    days = _days_from_civil(np.where(real, year, 1970), month, np.where(real, day, 1))
    seconds = ((days * 24 + hour) * 60 + minute - offset_min) * 60 + second
    us = seconds * 1_000_000 + micros
    real &= (us >= _US_MIN) & (us <= _US_MAX)
    return np.where(real, us, 0), real


def _epoch_ms(ms: Int64s, ok: BoolMask) -> tuple[Int64s, BoolMask]:
    in_range = ok & (ms >= _MS_MIN) & (ms <= _MS_MAX)
    return np.where(in_range, ms, 0) * 1000, in_range


_TIME_HINT = "an RFC 3339 string such as '2026-01-05T10:00:00Z' or integer epoch milliseconds"


def _time_from_text(s: pa.Array, lenient: bool) -> tuple[Int64s, list[Check]]:
    n = len(s)

    def got(i: int) -> str:
        return _quote(s[i].as_py())

    rfc = _mask(pc.match_substring_regex(s, _RFC3339))
    rows = np.flatnonzero(rfc)
    us = np.zeros(n, dtype=np.int64)
    real = np.zeros(n, dtype=np.bool_)
    us[rows], real[rows] = _parse_rfc3339(s, rows)
    if lenient:
        digits = _mask(pc.match_substring_regex(s, _INT_TEXT))
        text = pc.replace_substring_regex(s, r"^\+", "")
        ms = pc.cast(pc.if_else(pa.array(digits), text, "0"), pa.int64())
        ms_us, ms_ok = _epoch_ms(np.asarray(ms.to_numpy(), dtype=np.int64), digits)
        us = np.where(digits, ms_us, us)
        real |= ms_ok
        rfc |= digits
    naive = _mask(pc.match_substring_regex(s, _NAIVE))
    return us, [
        (
            naive,
            "timezone",
            lambda i: (
                f"event_time must be RFC 3339 with a timezone (got a naive time {got(i)}); "
                "add 'Z' or an offset such as '+05:30'"
            ),
        ),
        (
            rfc & ~real,
            "time_format",
            lambda i: (
                f"event_time {got(i)} is not a real date and time in the years 0001-9999 "
                "(month 1-12, day within the month, hour 0-23, minute and second 0-59, "
                "offset up to 23:59); fix the value"
            ),
        ),
        (
            _present(s) & ~rfc,
            "time_format",
            lambda i: f"event_time must be {_TIME_HINT} (got {got(i)})",
        ),
    ]


def _time_from_number(arr: pa.Array) -> tuple[Int64s, list[Check]]:
    present = _present(arr)
    if pa.types.is_integer(arr.type) and not pa.types.is_uint64(arr.type):
        ms = np.asarray(pc.fill_null(pc.cast(arr, pa.int64()), 0).to_numpy(), dtype=np.int64)
        ok = present
    else:
        xs = np.asarray(
            pc.fill_null(pc.cast(arr, pa.float64(), safe=False), 0.0).to_numpy(),
            dtype=np.float64,
        )
        with np.errstate(invalid="ignore"):
            ok = present & np.isfinite(xs) & (np.floor(xs) == xs)
            ok &= (xs >= _MS_MIN) & (xs <= _MS_MAX)
        ms = np.where(ok, xs, 0.0).astype(np.int64)
    us, in_range = _epoch_ms(ms, ok)
    return us, [
        (
            present & ~in_range,
            "time_format",
            lambda i: (
                "event_time as a number must be integer epoch milliseconds in the years "
                f"0001-9999 (got {_quote(arr[i].as_py())}); send {_TIME_HINT}"
            ),
        )
    ]


def _time_from_timestamp(arr: pa.Array) -> tuple[Int64s, list[Check]]:
    present = _present(arr)
    unit = arr.type.unit
    ticks = np.asarray(pc.fill_null(arr.cast(pa.int64()), 0).to_numpy(), dtype=np.int64)
    if unit == "ns":
        raw = ticks // 1000
    elif unit == "us":
        raw = ticks
    else:
        scale = 1_000_000 if unit == "s" else 1000
        limit = _US_MAX // scale + 1
        raw = np.clip(ticks, -limit, limit) * scale
    ok = (raw >= _US_MIN) & (raw <= _US_MAX)
    message = "event_time must lie in the years 0001-9999 (UTC)"
    return np.where(ok, raw, 0), [(present & ~ok, "time_format", _const(message))]


def _coerce_time(arr: pa.Array, f: Field, lenient: bool) -> Coerced:
    t = arr.type
    checks: list[Check] = []
    if _is_stringish(t):
        s, checks = _utf8_check(f, _to_string(arr))
        us, time_checks = _time_from_text(s, lenient)
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        us, time_checks = _time_from_number(arr)
    elif pa.types.is_timestamp(t) and t.tz is not None:
        us, time_checks = _time_from_timestamp(arr)
    elif pa.types.is_timestamp(t):
        message = (
            "event_time must carry a time zone (got a timestamp column without one); "
            "store it as a UTC timestamp or an RFC 3339 string with 'Z'"
        )
        return pa.nulls(len(arr), UTC_MICROS), [(_present(arr), "timezone", _const(message))]
    else:
        return _type_error(arr, f, _TIME_HINT)
    values = pa.array(us, pa.int64(), mask=~_present(arr)).cast(UTC_MICROS)
    return values, checks + time_checks


# -- lists and attributes --------------------------------------------------------------------


def _flatten(arr: pa.Array) -> tuple[Int64s, pa.Array, BoolMask]:
    """Split a list or map array into (new offsets from 0, its entries, null rows).

    Entries under a null row are dropped, whatever the offsets say, so that offsets, entries
    and the parent row of each entry always agree (also for sliced arrays).
    """
    null = ~_present(arr)
    raw = np.asarray(arr.offsets.to_numpy(), dtype=np.int64)
    raw_lengths = raw[1:] - raw[:-1]
    if not raw_lengths[null].any():
        # The usual case (null rows own no entries): the entries are one slice, no copy.
        offsets = raw - raw[0]
        return offsets, arr.values.slice(int(raw[0]), int(raw[-1] - raw[0])), null
    lengths = np.where(null, 0, raw_lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    index = np.arange(offsets[-1], dtype=np.int64) + np.repeat(raw[:-1] - offsets[:-1], lengths)
    return offsets, arr.values.take(pa.array(index)), null


def _parents(offsets: Int64s) -> Int64s:
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))


def _rows_with(parents: Int64s, entries: BoolMask, n: int) -> BoolMask:
    """Rows that own at least one entry where ``entries`` holds."""
    return np.bincount(parents[entries], minlength=n)[:n] > 0


def _from_json_cells(
    arr: pa.Array, f: Field, parse: Callable[[str], object], typ: pa.DataType, shape: str
) -> Coerced:
    """Parse JSON text cells (CSV) once per distinct value."""
    s, checks = _utf8_check(f, _to_string(arr))
    encoded = pc.dictionary_encode(s)
    parsed: list[object] = []
    failed: list[bool] = []
    deep: list[bool] = []
    for text in encoded.dictionary.to_pylist():
        too_deep = False
        try:
            value = parse(text)
        except ValueError:
            value = None
        except RecursionError:  # Python's json stops at about 1,000 levels, safely
            value, too_deep = None, True
        parsed.append(value)
        failed.append(value is None and not too_deep)
        deep.append(too_deep)
    indices = encoded.indices
    deep_rows = _mask(pc.take(pa.array(deep, pa.bool_()), indices))
    nested = (
        f"{f.name} must be {shape} in a CSV cell (got JSON nested too deeply to be read); "
        "flatten the value"
    )
    checks.append((deep_rows, "depth", _const(nested)))
    failed_rows = _mask(pc.take(pa.array(failed, pa.bool_()), indices))
    message = f"{f.name} must be {shape} in a CSV cell (got other text)"
    checks.append((_present(s) & failed_rows, "type", _const(message)))
    return pc.take(pa.array(parsed, typ), indices), checks


def _json_string_list(text: str) -> list[str] | None:
    value = json.loads(text)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _json_string_map(text: str) -> list[tuple[str, str]] | None:
    value = json.loads(text)
    if isinstance(value, dict) and all(isinstance(v, str | None) for v in value.values()):
        return [(k, v) for k, v in value.items() if v is not None]
    return None


_LIST_OF_STRINGS = pa.list_(pa.string())
_MAP_OF_STRINGS = pa.map_(pa.string(), pa.string())


def _coerce_list(arr: pa.Array, f: Field, lenient: bool) -> Coerced:
    n = len(arr)
    checks: list[Check] = []
    if pa.types.is_null(arr.type):
        return pa.nulls(n, _LIST_OF_STRINGS), []
    if lenient and _is_stringish(arr.type):
        shape = 'a JSON array of strings such as ["a","b"]'
        arr, checks = _from_json_cells(arr, f, _json_string_list, _LIST_OF_STRINGS, shape)
    if not _is_listish(arr.type):
        return _type_error(arr, f, "a list of strings")
    if not pa.types.is_list(arr.type):
        arr = arr.cast(pa.list_(arr.type.value_type))
    offsets, items, null = _flatten(arr)
    parents = _parents(offsets)
    if _is_stringish(items.type):
        items = _to_string(items)
        wrong = ~_present(items)
    else:
        wrong = np.ones(len(items), dtype=np.bool_)
        items = pa.nulls(len(items), pa.string())
    message = f"{f.name} must be a list of strings (got an item that is not a string)"
    checks.append((_rows_with(parents, wrong, n), "type", _const(message)))
    bad = _invalid_utf8(items)
    if bad is not None:
        message = f"{f.name} holds an item that is not valid UTF-8; re-encode the input as UTF-8"
        checks.append((_rows_with(parents, bad, n), "utf8", _const(message)))
        items = pc.if_else(pa.array(bad), pa.scalar(None, pa.string()), items)
    long_item = _mask(pc.greater(pc.utf8_length(items), MAX_LIST_ITEM_CHARS))
    message = f"{f.name} items must be at most {MAX_LIST_ITEM_CHARS} characters long"
    checks.append((_rows_with(parents, long_item, n), "max_length", _const(message)))
    counts = np.diff(offsets)

    def too_many(i: int) -> str:
        return f"{f.name} must have at most {MAX_LIST_ITEMS} items (got {counts[i]}); send fewer"

    checks.append((counts > MAX_LIST_ITEMS, "size", too_many))
    values = pa.ListArray.from_arrays(
        pa.array(offsets.astype(np.int32)), items, _LIST_OF_STRINGS, mask=pa.array(null)
    )
    return values, checks


def _struct_to_map(arr: pa.Array, f: Field) -> Coerced:
    """A struct of JSON object keys as ``map<string, string>``; null values are absent keys."""
    n = len(arr)
    rows: list[Int64s] = []
    which: list[Int64s] = []
    values: list[pa.Array] = []
    non_string = np.zeros(n, dtype=np.bool_)
    names = [arr.type.field(k).name for k in range(arr.type.num_fields)]
    # flatten() once (parent nulls merged, as struct_field does): struct_field per key costs
    # time that grows with the number of keys, minutes for an object with 20,000 of them.
    children = arr.flatten()
    for k in range(len(names)):
        child = children[k]
        if pa.types.is_null(child.type):
            continue
        valid = _present(child)
        if not _is_stringish(child.type):
            non_string |= valid
            continue
        where = np.flatnonzero(valid)
        rows.append(where)
        which.append(np.full(where.size, k, dtype=np.int64))
        values.append(_to_string(child).take(pa.array(where)))
    message = (
        f"{f.name} must be an object of string values (got a value that is not a string); "
        "send numbers and booleans as strings"
    )
    checks: list[Check] = [(non_string, "type", _const(message))]
    if rows:
        all_rows = np.concatenate(rows)
        # Children were gathered one after another, so a stable sort by row keeps each row's
        # keys in the order of the struct's fields.
        order = pa.array(np.argsort(all_rows, kind="stable"))
        keys = pa.array(names, pa.string()).take(pa.array(np.concatenate(which))).take(order)
        items = pa.concat_arrays(values).take(order)
        counts = np.bincount(all_rows, minlength=n)
    else:
        keys = items = pa.array([], pa.string())
        counts = np.zeros(n, dtype=np.int64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    null = pa.array(~_present(arr))
    return pa.MapArray.from_arrays(offsets, keys, items, _MAP_OF_STRINGS, mask=null), checks


def _clean_map(arr: pa.Array, f: Field) -> Coerced:
    """A Parquet map as ``map<string, string>``; entries with a null value are absent keys."""
    n = len(arr)
    offsets, entries, null = _flatten(arr)
    parents = _parents(offsets)
    keys, items = entries.field(0), entries.field(1)
    if not (_is_stringish(keys.type) and _is_stringish(items.type)):
        message = f"{f.name} must map strings to strings (got a map of {arr.type})"
        has_entries = np.diff(offsets) > 0
        return pa.nulls(n, _MAP_OF_STRINGS), [(has_entries, "type", _const(message))]
    keep = _present(items)
    counts = np.bincount(parents[keep], minlength=n)[:n]
    where = pa.array(np.flatnonzero(keep))
    out = pa.MapArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)),
        _to_string(keys).take(where),
        _to_string(items).take(where),
        _MAP_OF_STRINGS,
        mask=pa.array(null),
    )
    return out, []


def _coerce_map(arr: pa.Array, f: Field, lenient: bool) -> Coerced:
    n = len(arr)
    checks: list[Check] = []
    if pa.types.is_null(arr.type):
        return pa.nulls(n, _MAP_OF_STRINGS), []
    if lenient and _is_stringish(arr.type):
        shape = 'a JSON object of strings such as {"k":"v"}'
        arr, checks = _from_json_cells(arr, f, _json_string_map, _MAP_OF_STRINGS, shape)
    if pa.types.is_struct(arr.type):
        arr, more = _struct_to_map(arr, f)
    elif pa.types.is_map(arr.type):
        arr, more = _clean_map(arr, f)
    else:
        return _type_error(arr, f, "an object of string values")
    checks += more
    offsets, entries, _null = _flatten(arr)
    parents = _parents(offsets)
    keys, items = entries.field(0), entries.field(1)
    for part in (keys, items):
        bad = _invalid_utf8(part)
        if bad is not None:
            message = f"{f.name} holds a key or value that is not valid UTF-8"
            checks.append((_rows_with(parents, bad, n), "utf8", _const(message)))
    long_entry = _mask(
        pc.or_(
            pc.greater(pc.utf8_length(keys), MAX_ATTRIBUTE_CHARS),
            pc.greater(pc.utf8_length(items), MAX_ATTRIBUTE_CHARS),
        )
    )
    message = f"{f.name} keys and values must be at most {MAX_ATTRIBUTE_CHARS} characters long"
    checks.append((_rows_with(parents, long_entry, n), "max_length", _const(message)))
    counts = np.diff(offsets)

    def too_many(i: int) -> str:
        return f"{f.name} must have at most {MAX_ATTRIBUTES} entries (got {counts[i]}); send fewer"

    checks.append((counts > MAX_ATTRIBUTES, "size", too_many))
    return arr, checks


# -- dispatch --------------------------------------------------------------------------------

_COERCE: dict[str, Callable[[pa.Array, Field, bool], Coerced]] = {
    "string": _coerce_string,
    "time": _coerce_time,
    "int": _coerce_int,
    "float": _coerce_float,
    "bool": _coerce_bool,
    "string_list": _coerce_list,
    "string_map": _coerce_map,
}


def _coerce(arr: pa.Array, f: Field, lenient: bool) -> Coerced:
    if pa.types.is_union(arr.type):
        return _coerce_union(arr, f, lenient)
    return _COERCE[f.kind](arr, f, lenient)


def _remap(message: Message, local: Int64s, i: int) -> str:
    return message(int(local[i]))


def _coerce_union(arr: pa.Array, f: Field, lenient: bool) -> Coerced:
    """Coerce each member of a dense union (a column mixing JSON types) on its own rows."""
    if arr.offset:
        arr = pa.concat_arrays([arr])
    n = len(arr)
    codes = np.asarray(arr.type_codes.to_numpy(), dtype=np.int64)
    positions = np.asarray(arr.offsets.to_numpy(), dtype=np.int64)
    local = np.zeros(n, dtype=np.int64)
    parts: list[pa.Array] = []
    order: list[Int64s] = []
    checks: list[Check] = []
    target = _target(f)
    for k, code in enumerate(arr.type.type_codes):
        rows = np.flatnonzero(codes == code)
        if not rows.size:
            continue
        member = arr.field(k).take(pa.array(positions[rows]))
        local[rows] = np.arange(rows.size)
        if arr.type.field(k).name == MIXED_JSON_MEMBER:
            message = (
                f"{f.name} must be {_KIND_TEXT[f.kind]} (got a nested value mixing JSON types)"
            )
            values: pa.Array = pa.nulls(rows.size, target)
            member_checks: list[Check] = [(_present(member), "type", _const(message))]
        else:
            values, member_checks = _coerce(member, f, lenient)
        parts.append(values.cast(target))
        order.append(rows)
        for mask, rule, message_of in member_checks:
            full = np.zeros(n, dtype=np.bool_)
            full[rows] = mask
            checks.append((full, rule, partial(_remap, message_of, local)))
    if not parts:
        return pa.nulls(n, target), []
    inverse = np.argsort(np.concatenate(order), kind="stable")
    return pa.concat_arrays(parts).take(pa.array(inverse)), checks


_KIND_TEXT = {
    "string": "a string",
    "time": _TIME_HINT,
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string_list": "a list of strings",
    "string_map": "an object of string values",
}


def _unknown_message(name: str) -> str:
    shown = name if len(name) <= 64 else name[:63] + "…"
    close = difflib.get_close_matches(name, FIELD_NAMES, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? If not, " if close else ""
    return (
        f"unknown field {shown!r}: schema v1 has no such field; {hint}"
        "put extra data in 'attributes' (see docs/schema.md for the fields)"
    )


def _column(table: pa.Table, name: str, kind: str | None) -> pa.Array | pa.ChunkedArray:
    """A column as one array; string columns may stay chunked (their checks are all Arrow
    kernels, and combining the largest column, ``text``, would only copy it)."""
    col = table.column(name)
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    if kind == "string" and pa.types.is_string(col.type) and col.num_chunks > 1:
        return col
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def validate(table: pa.Table, *, lenient_strings: bool = False) -> ValidationResult:
    """Validate parsed events against schema v1, column by column.

    Parameters
    ----------
    table : one row per parsed record, one column per top-level field as the reader found it
        (unknown fields included, so that they can be rejected).
    lenient_strings : parse text cells for non-string fields (numbers, booleans, epoch
        milliseconds, JSON arrays and objects). Pass True for CSV input, where every cell is
        text; JSON and Parquet input keep their types and are checked strictly.

    Returns
    -------
    ValidationResult
        The valid rows as :data:`CANONICAL_SCHEMA` in input order, their input indices, and one
        :class:`Rejection` per other row (its first broken rule; see the module docstring for
        the rules and their order).

    Raises
    ------
    SchemaError
        If the table has two columns of the same name.

    Examples
    --------
    >>> import pyarrow as pa
    >>> rows = [
    ...     {"event_id": "e1", "event_time": "2026-01-02T03:00:00+05:30", "tenant_id": "t",
    ...      "user_id": "u", "session_id": "s", "event_type": "turn"},
    ...     {"event_id": "e2", "event_time": "2026-01-05 10:00", "tenant_id": "t",
    ...      "user_id": "u", "session_id": "s", "event_type": "turn"},
    ... ]
    >>> result = validate(pa.Table.from_pylist(rows))
    >>> result.valid.column("event_date").to_pylist()
    [datetime.date(2026, 1, 1)]
    >>> [(r.index, r.field, r.rule) for r in result.rejections]
    [(1, 'event_time', 'timezone')]
    """
    names = table.column_names
    if len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise SchemaError(
            f"each field may appear once per record (got the columns {twice} twice); "
            "remove the duplicate columns"
        )
    n = table.num_rows
    rejects = _Rejects(n)
    for name in names:
        if name not in FIELDS_BY_NAME:
            present = _present(_column(table, name, None))
            rejects.add(present, name, "unknown_field", _const(_unknown_message(name)))
    columns: dict[str, pa.Array] = {}
    for f in FIELDS:
        target = _target(f)
        arr = _column(table, f.name, f.kind) if f.name in names else None
        if arr is None or pa.types.is_null(arr.type):
            if f.required and n:
                message = f"{f.name} is required; send it on every event"
                rejects.add(np.ones(n, dtype=np.bool_), f.name, "required", _const(message))
            columns[f.name] = pa.nulls(n, target)
            continue
        if f.required:
            message = f"{f.name} is required (got null); send it on every event"
            rejects.add(~_present(arr), f.name, "required", _const(message))
        values, checks = _coerce(arr, f, lenient_strings)
        for mask, rule, message_of in checks:
            rejects.add(mask, f.name, rule, message_of)
        columns[f.name] = values
    keep = ~rejects.bad
    valid_index = np.flatnonzero(keep).astype(np.int64)
    arrays = [columns[f.name] for f in FIELDS]
    if valid_index.size < n:
        keep_arr = pa.array(keep)
        arrays = [arr.filter(keep_arr) for arr in arrays]
    micros = np.asarray(arrays[FIELD_NAMES.index("event_time")].cast(pa.int64()).to_numpy())
    event_date = pa.array((micros // _US_PER_DAY).astype(np.int32), pa.date32())
    valid = pa.Table.from_arrays([*arrays, event_date], schema=CANONICAL_SCHEMA)
    return ValidationResult(
        valid=valid,
        valid_index=pa.array(valid_index, pa.int64()),
        rejections=rejects.rejections(),
    )


# -- time window -----------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _span(delta: timedelta) -> str:
    seconds = abs(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds:.0f} seconds"


def check_time_window(
    event_time: pa.Array | pa.ChunkedArray,
    *,
    now: datetime,
    max_future: timedelta,
    max_lateness: timedelta | None,
) -> list[tuple[int, Rejection]]:
    """Find events too far in the future or too late to accept.

    Run after the duplicate check: a replayed old file is all duplicates, never all ``late``.

    Parameters
    ----------
    event_time : UTC timestamps (``CANONICAL_SCHEMA``'s ``event_time``); nulls pass.
    now : the reference time; must be time-zone aware.
    max_future : an event strictly later than ``now + max_future`` is rejected (``future``).
    max_lateness : an event strictly earlier than ``now - max_lateness`` is rejected
        (``late``); None accepts any age.

    Returns
    -------
    list of (position, Rejection)
        The positions in ``event_time`` that fail, ascending; each Rejection's ``index`` is the
        same position.

    Raises
    ------
    UsageError
        If ``now`` is naive, or ``event_time`` is not a time-zone-aware timestamp.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> import pyarrow as pa
    >>> times = pa.array(
    ...     [datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 3, 1, tzinfo=timezone.utc)],
    ...     pa.timestamp("us", tz="UTC"),
    ... )
    >>> now = datetime(2026, 1, 2, tzinfo=timezone.utc)
    >>> [(i, r.rule) for i, r in check_time_window(
    ...     times, now=now, max_future=timedelta(days=1), max_lateness=None)]
    [(1, 'future')]
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise UsageError("now must be a time-zone-aware datetime (got a naive one); pass tz=UTC")
    t = event_time.type
    if not pa.types.is_timestamp(t) or t.tz is None:
        raise UsageError(
            f"event_time must be a time-zone-aware timestamp array (got {t}); "
            "pass the 'event_time' column of a validated table"
        )
    if isinstance(event_time, pa.ChunkedArray):
        event_time = event_time.combine_chunks()
    micros_arr = event_time.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    present = _present(micros_arr)
    micros = np.asarray(pc.fill_null(micros_arr, 0).to_numpy(), dtype=np.int64)
    now_us = _micros(now)
    found: list[tuple[int, Rejection]] = []
    limit = now_us + max_future // timedelta(microseconds=1)
    for i in np.flatnonzero(present & (micros > limit)):
        ahead = timedelta(microseconds=int(micros[i]) - now_us)
        found.append(
            (
                int(i),
                Rejection(
                    int(i),
                    "event_time",
                    "future",
                    f"event_time {_iso(int(micros[i]))} is {_span(ahead)} ahead of now "
                    f"({_iso(now_us)}); at most {_span(max_future)} ahead is accepted; "
                    "check the producer's clock",
                ),
            )
        )
    if max_lateness is not None:
        oldest = now_us - max_lateness // timedelta(microseconds=1)
        for i in np.flatnonzero(present & (micros < oldest)):
            behind = timedelta(microseconds=now_us - int(micros[i]))
            found.append(
                (
                    int(i),
                    Rejection(
                        int(i),
                        "event_time",
                        "late",
                        f"event_time {_iso(int(micros[i]))} is {_span(behind)} old; at most "
                        f"{_span(max_lateness)} is accepted here; send events sooner or "
                        "ingest the file with a larger max lateness",
                    ),
                )
            )
    found.sort(key=lambda item: item[0])
    return found


def _iso(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).isoformat().replace("+00:00", "Z")


__all__ = [
    "CANONICAL_SCHEMA",
    "MAX_LIST_ITEM_CHARS",
    "MIXED_JSON_MEMBER",
    "RULES",
    "Rejection",
    "ValidationResult",
    "check_time_window",
    "validate",
]
