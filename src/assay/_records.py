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


def jsonable_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ranked root-cause row (``slice`` a dict of dimension values) as JSON can hold it."""
    return {
        k: ({d: jsonable(x) for d, x in v.items()} if k == "slice" else jsonable(v))
        for k, v in row.items()
    }


def records(table: pa.Table) -> list[dict[str, Any]]:
    """A table as JSON-ready records (dates as YYYY-MM-DD).

    Examples
    --------
    >>> import datetime, pyarrow as pa
    >>> records(pa.table({"day": [datetime.date(2026, 1, 5)], "rate": [float("nan")]}))
    [{'day': '2026-01-05', 'rate': None}]
    """
    return [{k: jsonable(v) for k, v in row.items()} for row in table.to_pylist()]


#: How a missing value (null, NaN) reads in text for people; machine output keeps null.
MISSING = "(none)"
#: How the empty slice (every event of the tenant) reads in text for people.
WHOLE_TENANT = "(whole tenant)"


def value_text(value: Any) -> str:
    """One value as people read it: dates in ISO 8601, booleans as ``true``/``false``, a
    missing value (None, NaN) as :data:`MISSING`.

    Examples
    --------
    >>> [value_text(v) for v in (None, float("nan"), True, dt.date(2026, 1, 5), "fr")]
    ['(none)', '(none)', 'true', '2026-01-05', 'fr']
    """
    value = jsonable(value)
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def slice_text(slice_: Any) -> str:
    """A slice as people read it, the one formatter of slices in text (CLI, demo, incidents):
    ``{"locale": "fr", "flight": None}`` -> ``"locale=fr, flight=(none)"``; the empty slice
    (or None) is :data:`WHOLE_TENANT`.

    Examples
    --------
    >>> slice_text({"locale": "fr", "day": dt.date(2026, 1, 5), "flight": None})
    'locale=fr, day=2026-01-05, flight=(none)'
    >>> slice_text({})
    '(whole tenant)'
    """
    items = dict(slice_ or {}).items()
    return ", ".join(f"{k}={value_text(v)}" for k, v in items) or WHOLE_TENANT


def causes_text(slices: Any) -> str:
    """Root-cause slices as one line, ``"; "``-separated (``""`` when there is none).

    Examples
    --------
    >>> causes_text([{}, {"flight": None}])
    '(whole tenant); flight=(none)'
    """
    return "; ".join(slice_text(s) for s in slices)
