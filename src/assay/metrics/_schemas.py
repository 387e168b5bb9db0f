"""The output columns of each metric.

The fields a metric can be sliced by are ``assay.schema.SLICE_FIELDS`` (one definition).
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa

MetricName = Literal[
    "dau", "active_users", "dau_rolling", "max_active", "retention", "sessions", "health"
]

_DAY = pa.date32()
_COUNT = pa.int64()
_RATE = pa.float64()

_COLUMNS: dict[str, list[pa.Field]] = {
    "dau": [pa.field("day", _DAY, nullable=False), pa.field("dau", _COUNT, nullable=False)],
    "active_users": [
        pa.field("day", _DAY, nullable=False),
        pa.field("window", _COUNT, nullable=False),
        pa.field("active_users", _COUNT, nullable=False),
    ],
    "dau_rolling": [
        pa.field("day", _DAY, nullable=False),
        pa.field("dau", _COUNT, nullable=False),
        pa.field("dau_avg", _RATE, nullable=False),
        pa.field("dau_prev_avg", _RATE),
        pa.field("drop", pa.bool_(), nullable=False),
    ],
    "max_active": [
        pa.field("window", _COUNT, nullable=False),
        pa.field("max_active", _COUNT),
        pa.field("window_start", _DAY),
    ],
    "retention": [
        pa.field("cohort_week", _DAY, nullable=False),
        pa.field("week", _COUNT, nullable=False),
        pa.field("users", _COUNT, nullable=False),
        pa.field("retained", _COUNT, nullable=False),
        pa.field("rate", _RATE, nullable=False),
    ],
    "sessions": [
        pa.field("day", _DAY, nullable=False),
        pa.field("sessions", _COUNT, nullable=False),
        pa.field("turns", _COUNT, nullable=False),
        pa.field("turns_per_session", _RATE),
        pa.field("handoff_rate", _RATE),
        pa.field("thumbs_down_rate", _RATE),
        pa.field("error_rate", _RATE),
        pa.field("latency_p50", _RATE),
        pa.field("latency_p95", _RATE),
        pa.field("latency_p99", _RATE),
        pa.field("tokens_in", _COUNT, nullable=False),
        pa.field("tokens_out", _COUNT, nullable=False),
        pa.field("cost_usd", _RATE, nullable=False),
    ],
    "health": [
        pa.field("day", _DAY, nullable=False),
        pa.field("dau", _COUNT, nullable=False),
        pa.field("active_users", _COUNT, nullable=False),
        pa.field("sessions", _COUNT, nullable=False),
        pa.field("handoff_sessions", _COUNT, nullable=False),
        pa.field("turns", _COUNT, nullable=False),
        pa.field("errors", _COUNT, nullable=False),
        pa.field("feedback", _COUNT, nullable=False),
        pa.field("thumbs_down", _COUNT, nullable=False),
        pa.field("latency_p95", _RATE),
        pa.field("cost_usd", _RATE, nullable=False),
        pa.field("answers", _COUNT, nullable=False),
        pa.field("cited_answers", _COUNT, nullable=False),
        pa.field("citations", _COUNT, nullable=False),
        pa.field("retrieved", _COUNT, nullable=False),
        pa.field("uncited_retrieved", _COUNT, nullable=False),
    ],
}

#: The column each metric's rows are ordered by after the tenant and the slice.
SORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "dau": ("day",),
    "active_users": ("day",),
    "dau_rolling": ("day",),
    "max_active": (),
    "retention": ("cohort_week", "week"),
    "sessions": ("day",),
    "health": ("day",),
}


def output_schema(metric: MetricName, by: str | None = None) -> pa.Schema:
    """Return the exact Arrow schema of ``metric``'s output, sliced by ``by`` or not.

    The slice column, named after the field (``flight`` for flights), follows ``tenant_id``.
    """
    head = [pa.field("tenant_id", pa.string(), nullable=False)]
    if by is not None:
        head.append(pa.field(by, pa.string()))
    return pa.schema(head + _COLUMNS[metric])


def key_columns(by: str | None) -> list[str]:
    """Return the grouping keys: the tenant, then the slice if any."""
    return ["tenant_id"] if by is None else ["tenant_id", by]
