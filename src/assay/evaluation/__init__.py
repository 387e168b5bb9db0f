"""Evaluation: exact, fast metrics per cohort, slice reports, calibration and fairness.

Pure: arrays in (lists, numpy, pandas, polars or Arrow), numbers or one report object out, no
storage. Definitions and edge cases: ``docs/evaluation.md``.

- :func:`cohort_auc` and :class:`AUCAccumulator`: ROC AUC per cohort at the speed of one sort,
  and its mergeable, streaming form.
- Metric functions in scikit-learn's shape (each with ``sample_weight``, most with
  ``cohort_id``): :func:`roc_auc`, :func:`average_precision`, :func:`precision_at_recall`,
  :func:`recall_at_precision`, :func:`expected_calibration_error`, :func:`brier_score`,
  :func:`log_loss`, :func:`threshold_for_precision`, :func:`threshold_max_fbeta`, with
  :func:`bootstrap_ci` for confidence intervals.
- :func:`slice_report`: every metric for every slice, with intervals, gaps and flags.
- :func:`group_metrics` and :func:`fairness_gaps`: Fairlearn-compatible group fairness.
- :func:`wilson_interval` and :func:`benjamini_hochberg`: the proportion interval and the
  false-discovery-rate adjustment the analysis layer shares.
"""

from assay.evaluation._auc import AUCAccumulator, cohort_auc
from assay.evaluation._fairness import fairness_gaps, group_metrics
from assay.evaluation._intervals import benjamini_hochberg, wilson_interval
from assay.evaluation._metrics import (
    METRICS,
    average_precision,
    bootstrap_ci,
    bootstrap_distribution,
    brier_score,
    expected_calibration_error,
    log_loss,
    precision_at_recall,
    recall_at_precision,
    roc_auc,
    threshold_for_precision,
    threshold_max_fbeta,
)
from assay.evaluation._report import SliceReport
from assay.evaluation._slices import slice_report

__all__ = [
    "METRICS",
    "AUCAccumulator",
    "SliceReport",
    "average_precision",
    "benjamini_hochberg",
    "bootstrap_ci",
    "bootstrap_distribution",
    "brier_score",
    "cohort_auc",
    "expected_calibration_error",
    "fairness_gaps",
    "group_metrics",
    "log_loss",
    "precision_at_recall",
    "recall_at_precision",
    "roc_auc",
    "slice_report",
    "threshold_for_precision",
    "threshold_max_fbeta",
    "wilson_interval",
]
