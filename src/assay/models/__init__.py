"""Models: point-in-time datasets and the leakage guard (training and the registry build on
them).

- :class:`Models` (``ws.models``): :meth:`Models.dataset` builds a point-in-time training set,
  one row per session, features as of its prediction time, written once in Ibis for every
  engine; :func:`feature_columns` reads its feature lists back; :data:`LABELS` names the labels.
- The leakage guard: :func:`time_split` splits by time (optionally user-disjoint),
  :func:`leakage_probe` trains each feature alone and flags the implausible ones, and
  :class:`LeakageError` refuses to go on with a readable report.

Definitions and rules: ``docs/models.md``.
"""

from assay.models._dataset import (
    CATEGORICAL_FEATURES,
    DEFAULT_LABEL_WINDOW_DAYS,
    KEY_COLUMNS,
    LABELS,
    NUMERIC_FEATURES,
    Label,
    Models,
    feature_columns,
)
from assay.models._leakage import (
    DEFAULT_THRESHOLD,
    LeakageError,
    LeakageReport,
    Split,
    leakage_probe,
    time_split,
)

__all__ = [
    "CATEGORICAL_FEATURES",
    "DEFAULT_LABEL_WINDOW_DAYS",
    "DEFAULT_THRESHOLD",
    "KEY_COLUMNS",
    "LABELS",
    "NUMERIC_FEATURES",
    "Label",
    "LeakageError",
    "LeakageReport",
    "Models",
    "Split",
    "feature_columns",
    "leakage_probe",
    "time_split",
]
