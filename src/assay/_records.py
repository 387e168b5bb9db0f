"""Tables as JSON-ready records, shared by the CLI's ``--format json`` and the HTTP API.

Both print the same values for the same table: dates and times as ISO 8601 strings, NaN and
infinities as null.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa


def jsonable(value: Any) -> Any:
    """One value as JSON can hold it."""
    if isinstance(value, dt.date):  # datetime is a date too
        return value.isoformat()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def records(table: pa.Table) -> list[dict[str, Any]]:
    """A table as JSON-ready records (dates as YYYY-MM-DD).

    Examples
    --------
    >>> import datetime, pyarrow as pa
    >>> records(pa.table({"day": [datetime.date(2026, 1, 5)], "rate": [float("nan")]}))
    [{'day': '2026-01-05', 'rate': None}]
    """
    return [{k: jsonable(v) for k, v in row.items()} for row in table.to_pylist()]


def slice_text(slice_: Any, *, null: str = "None") -> str:
    """A slice as people read it: ``{"locale": "fr", "platform": None}`` ->
    ``"locale=fr, platform=None"`` (``null`` names a null value); ``""`` for no slice.

    Examples
    --------
    >>> slice_text({"locale": "fr", "day": dt.date(2026, 1, 5), "platform": None}, null="null")
    'locale=fr, day=2026-01-05, platform=null'
    """
    return ", ".join(f"{k}={null if v is None else jsonable(v)}" for k, v in dict(slice_).items())
