"""Anomaly detection on time series: detectors with the estimator contract.

Definitions, assumptions and failure modes: ``docs/anomalies.md``.

- :class:`DropDetector`, :class:`SeasonalDetector`, :class:`LevelShiftDetector`,
  :class:`AutoDetector`: ``fit``, ``score`` (in [0, 1], higher is more anomalous) and
  ``predict``, each with an online mode (the score at ``t`` uses data up to ``t`` only).
- :func:`read_series` and :func:`regularize`: a CSV time series onto a regular grid;
  :func:`score_series` scores it row by row.
- :func:`alert_scores` and :func:`series_alerts`: an online alert score in [0, 1], comparable
  across series, with one alert per anomalous episode (Numenta's anomaly likelihood).
- :func:`explain_table`: the slices of a table that explain a metric's change (root cause;
  ``docs/explain.md``), with :func:`synthetic_rca_cases` and :func:`exact_match_f1` to evaluate it.
- :func:`explain_metric`: the same for a tenant's workspace metric on one day, with the
  :func:`release_events` of the window.
- :func:`scan_workspace` and :func:`scan_table`: the fleet scan over every tenant x metric,
  false discoveries controlled, one candidate per anomalous episode; :func:`group_candidates`
  makes the episodes that share a cause one incident (:func:`root_causes`,
  :func:`incident_causes`; ``docs/scan.md``).
"""

from assay.anomaly._alerts import alert_scores, episodes
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
from assay.anomaly._rootcause import (
    EXPLAIN_METRICS,
    MetricExplanation,
    explain_metric,
    release_events,
)
from assay.anomaly._scan import (
    WATCHED_METRICS,
    Candidate,
    ScanConfig,
    ScanResult,
    scan_table,
)
from assay.anomaly._series import (
    RegularSeries,
    read_series,
    regularize,
    score_series,
    series_alerts,
)
from assay.anomaly._watch import (
    CandidateGroup,
    ScanReport,
    SeenCause,
    group_candidates,
    incident_causes,
    root_causes,
    scan_workspace,
)
from assay.evaluation import benjamini_hochberg

__all__ = [
    "EXPLAIN_METRICS",
    "WATCHED_METRICS",
    "AutoDetector",
    "Candidate",
    "CandidateGroup",
    "DropDetector",
    "Explanation",
    "LevelShiftDetector",
    "MetricExplanation",
    "RCACase",
    "RegularSeries",
    "ScanConfig",
    "ScanReport",
    "ScanResult",
    "SeasonalDetector",
    "SeenCause",
    "SeriesWarning",
    "alert_scores",
    "benjamini_hochberg",
    "detect_periods",
    "episodes",
    "exact_match_f1",
    "explain_metric",
    "explain_table",
    "group_candidates",
    "incident_causes",
    "make_detector",
    "mix_rate",
    "read_series",
    "regularize",
    "release_events",
    "root_causes",
    "scan_table",
    "scan_workspace",
    "score_series",
    "series_alerts",
    "synthetic_rca_cases",
]
