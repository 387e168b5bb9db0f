"""Anomaly detection on time series: detectors with the estimator contract.

Definitions, assumptions and failure modes: ``docs/anomalies.md``.

- :class:`DropDetector`, :class:`SeasonalDetector`, :class:`LevelShiftDetector`,
  :class:`AutoDetector`: ``fit``, ``score`` (in [0, 1], higher is more anomalous) and
  ``predict``, each with an online mode (the score at ``t`` uses data up to ``t`` only).
- :func:`read_series` and :func:`regularize`: a CSV time series onto a regular grid.
- :func:`explain_table`: the slices of a table that explain a metric's change (root cause;
  ``docs/explain.md``), with :func:`synthetic_rca_cases` and :func:`exact_match_f1` to evaluate it.
"""

from assay.anomaly._detectors import (
    AutoDetector,
    DropDetector,
    LevelShiftDetector,
    SeasonalDetector,
    SeriesWarning,
    detect_periods,
    make_detector,
)
from assay.anomaly._explain import (
    Explanation,
    RCACase,
    exact_match_f1,
    explain_table,
    mix_rate,
    synthetic_rca_cases,
)
from assay.anomaly._series import RegularSeries, read_series, regularize, score_series

__all__ = [
    "AutoDetector",
    "DropDetector",
    "Explanation",
    "LevelShiftDetector",
    "RCACase",
    "RegularSeries",
    "SeasonalDetector",
    "SeriesWarning",
    "detect_periods",
    "exact_match_f1",
    "explain_table",
    "make_detector",
    "mix_rate",
    "read_series",
    "regularize",
    "score_series",
    "synthetic_rca_cases",
]
