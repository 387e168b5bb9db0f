"""Product metrics per tenant as Ibis expressions: one definition, run on DuckDB or Spark.

:class:`Metrics` computes ``dau``, ``active_users``, ``dau_rolling``, ``max_active``,
``retention`` and ``sessions`` from the stored events and returns Arrow tables. Definitions are
contracts: see each method's docstring and ``docs/metrics.md``.

:func:`leaf_counts`, :func:`latency_quantile`, :func:`first_seen`, :func:`release_counts` and
:func:`release_latencies` give the same definitions broken down the way ``assay explain`` and
``assay regressions`` read them, on the same engine.
"""

from assay.metrics._breakdowns import (
    LEAF_MEASURES,
    LeafMeasure,
    first_event_day,
    first_seen,
    latency_quantile,
    leaf_counts,
    release_counts,
    release_latencies,
    workspace_events,
)
from assay.metrics._metrics import (
    DEFAULT_MAX_ACTIVE_WINDOW,
    DEFAULT_THRESHOLD,
    DEFAULT_WINDOW,
    Metrics,
    check_date,
    check_range,
    check_tenant,
)
from assay.metrics._schemas import output_schema
from assay.schema import SLICE_FIELDS, SliceField

__all__ = [
    "DEFAULT_MAX_ACTIVE_WINDOW",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WINDOW",
    "LEAF_MEASURES",
    "SLICE_FIELDS",
    "LeafMeasure",
    "Metrics",
    "SliceField",
    "check_date",
    "check_range",
    "check_tenant",
    "first_event_day",
    "first_seen",
    "latency_quantile",
    "leaf_counts",
    "output_schema",
    "release_counts",
    "release_latencies",
    "workspace_events",
]
