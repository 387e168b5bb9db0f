"""Product metrics per tenant as Ibis expressions: one definition, run on DuckDB or Spark.

:class:`Metrics` computes ``dau``, ``active_users``, ``dau_rolling``, ``max_active``,
``retention`` and ``sessions`` from the stored events and returns Arrow tables. Definitions are
contracts: see each method's docstring and ``docs/metrics.md``.
"""

from assay.metrics._metrics import (
    DEFAULT_MAX_ACTIVE_WINDOW,
    DEFAULT_THRESHOLD,
    DEFAULT_WINDOW,
    Metrics,
)
from assay.metrics._schemas import SLICE_FIELDS, SliceField, output_schema

__all__ = [
    "DEFAULT_MAX_ACTIVE_WINDOW",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WINDOW",
    "SLICE_FIELDS",
    "Metrics",
    "SliceField",
    "output_schema",
]
