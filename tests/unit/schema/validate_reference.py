"""An independent, row-by-row reference of event schema v1 validation, in plain Python.

Written from the rules in DESIGN.md and the docstring of ``assay.schema._validate``, not from
its code: values are Python objects (as ``json.loads`` gives them), times are parsed with
``datetime.fromisoformat`` behind an RFC 3339 regular expression, lengths are ``len`` of
``str`` and bytes of ``str.encode``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from assay.schema._fields import (
    FIELD_NAMES,
    FIELDS,
    MAX_ATTRIBUTE_CHARS,
    MAX_ATTRIBUTES,
    MAX_LIST_ITEMS,
    MAX_TEXT_BYTES,
    Field,
)

MAX_LIST_ITEM_CHARS = MAX_ATTRIBUTE_CHARS
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_AWARE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_NAIVE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?")


def reference_time(value: object, *, lenient: bool = False) -> tuple[str | None, int | None]:
    """(rule, None) or (None, UTC microseconds since the epoch) for an event_time value."""
    if isinstance(value, bool):
        return "type", None
    if lenient and isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,18}", value):
        value = int(value)
    if isinstance(value, int):
        try:
            moment = EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            return "time_format", None
        if not 1 <= moment.year <= 9999:
            return "time_format", None
        return None, value * 1000
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            return "time_format", None
        return reference_time(int(value))
    if not isinstance(value, str):
        return "type", None
    match = _AWARE.fullmatch(value)
    if match is None:
        return ("timezone" if _NAIVE.fullmatch(value) else "time_format"), None
    if int(match.group(6)) > 59:
        return "time_format", None  # fromisoformat would refuse a leap second too
    text = value.upper().replace(" ", "T").replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return "time_format", None
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        return "time_format", None
    if not 1 <= utc.year <= 9999:
        return "time_format", None
    return None, (utc - EPOCH) // timedelta(microseconds=1)


def _string(value: object, name: str) -> str | None:
    field = next(f for f in FIELDS if f.name == name)
    if not isinstance(value, str):
        return "type"
    if field.min_len is not None and len(value) < field.min_len:
        return "min_length"
    if field.max_len is not None and len(value) > field.max_len:
        return "max_length"
    if field.choices is not None and value not in field.choices:
        return "choice"
    if name == "text" and len(value.encode("utf-8")) > MAX_TEXT_BYTES:
        return "size"
    return None


def _parse_number(value: str) -> float | int | None:
    text = value.strip()
    if re.fullmatch(r"[+-]?[0-9]{1,18}", text):
        return int(text)
    if re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", text):
        return float(text)
    return None


def _number(value: Any, field: Field, *, lenient: bool) -> tuple[str | None, Any]:
    if lenient and isinstance(value, str):
        value = _parse_number(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "type", None
    if isinstance(value, float) and not math.isfinite(value):
        return "type", None
    if field.kind == "int":
        if value != int(value) or not -(2**63) <= int(value) < 2**63:
            return "type", None
        value = int(value)
    else:
        value = float(value)
    if field.choices is not None and value not in field.choices:
        return "choice", None
    if field.minimum is not None and value < field.minimum:
        return "minimum", None
    if field.maximum is not None and value > field.maximum:
        return "maximum", None
    return None, value


def reference_row(
    record: dict[str, Any], columns: list[str], *, lenient: bool = False
) -> tuple[str, str] | dict[str, Any]:
    """(field, rule) of the first broken rule, or the row's canonical values."""
    for name in columns:
        if name not in FIELD_NAMES and record.get(name) is not None:
            return name, "unknown_field"
    out: dict[str, Any] = {}
    for field in FIELDS:
        value = record.get(field.name)
        if value is None:
            if field.required:
                return field.name, "required"
            out[field.name] = None
            continue
        rule: str | None = None
        kind = field.kind
        if kind == "string":
            rule = _string(value, field.name)
        elif kind == "time":
            rule, micros = reference_time(value, lenient=lenient)
            value = micros
        elif kind in ("int", "float"):
            rule, value = _number(value, field, lenient=lenient)
        elif kind == "bool":
            if lenient and isinstance(value, str) and value.strip().lower() in ("true", "false"):
                value = value.strip().lower() == "true"
            if not isinstance(value, bool):
                rule = "type"
        elif kind == "string_list":
            if lenient and isinstance(value, str):
                value = _json_or_none(value)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                rule = "type"
            elif any(len(v) > MAX_LIST_ITEM_CHARS for v in value):
                rule = "max_length"
            elif len(value) > MAX_LIST_ITEMS:
                rule = "size"
        elif kind == "string_map":
            if lenient and isinstance(value, str):
                value = _json_or_none(value)
            if not isinstance(value, dict):
                rule = "type"
            else:
                value = {k: v for k, v in value.items() if v is not None}
                if not all(isinstance(v, str) for v in value.values()):
                    rule = "type"
                elif any(
                    len(k) > MAX_ATTRIBUTE_CHARS or len(v) > MAX_ATTRIBUTE_CHARS
                    for k, v in value.items()
                ):
                    rule = "max_length"
                elif len(value) > MAX_ATTRIBUTES:
                    rule = "size"
                else:
                    value = sorted(value.items())
        if rule is not None:
            return field.name, rule
        out[field.name] = value
    out["event_date"] = (EPOCH + timedelta(microseconds=out["event_time"])).date()
    return out


def _json_or_none(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return None


def utc_date(micros: int) -> date:
    return (EPOCH + timedelta(microseconds=micros)).date()
