"""Drift: statistics comparing a reference sample with a current one.

Pure functions, as in :mod:`assay.evaluation`: two samples (or two KLL sketches, or two sets of
category counts) in, numbers out. Definitions, binning, tolerances and defaults:
``docs/drift.md``. datasketches is imported only by the functions that take sketches.

- Release regressions: :func:`find_regressions` (``assay regressions``): a new model_version or
  prompt_template against its predecessor, as incidents.

- Numeric columns: :func:`psi`, :func:`js_distance`, :func:`wasserstein_normed`, :func:`ks`.
- Categorical columns: :func:`chi_square`, :func:`unseen_categories`, :func:`psi_categorical`,
  :func:`js_categorical`.
- Both: :func:`missingness_change`.
- From KLL sketches: :func:`psi_sketch`, :func:`js_sketch`, :func:`wasserstein_sketch`,
  :func:`ks_sketch`, :func:`sketch_std`.
- Verdicts: :func:`numeric_stats`, :func:`numeric_stats_sketch`, :func:`categorical_stats` and
  :func:`column_verdict` with :data:`DEFAULT_THRESHOLDS`.
"""

from assay.drift._releases import (
    DEFAULT_SINCE_DAYS,
    REGRESSION_METRICS,
    RELEASE_FIELDS,
    RegressionConfig,
    RegressionReport,
    find_regressions,
    newcombe_interval,
    rate_increase_test,
)
from assay.drift._report import (
    DEFAULT_DATASET_SHARE,
    DriftReport,
    ReferenceSpec,
    ResolvedReference,
    drift_report,
    resolve_reference,
    trailing_window,
)
from assay.drift._stats import (
    DEFAULT_BINS,
    DEFAULT_EPS,
    DEFAULT_THRESHOLDS,
    STD_FLOOR,
    ChiSquareResult,
    KSResult,
    MissingnessResult,
    UnseenCategories,
    categorical_stats,
    chi_square,
    column_verdict,
    design_effect,
    js_categorical,
    js_distance,
    js_sketch,
    ks,
    ks_sketch,
    missingness_change,
    numeric_stats,
    numeric_stats_sketch,
    psi,
    psi_categorical,
    psi_sketch,
    sketch_std,
    unseen_categories,
    wasserstein_normed,
    wasserstein_sketch,
)

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_DATASET_SHARE",
    "DEFAULT_EPS",
    "DEFAULT_SINCE_DAYS",
    "DEFAULT_THRESHOLDS",
    "REGRESSION_METRICS",
    "RELEASE_FIELDS",
    "STD_FLOOR",
    "ChiSquareResult",
    "DriftReport",
    "KSResult",
    "MissingnessResult",
    "ReferenceSpec",
    "RegressionConfig",
    "RegressionReport",
    "ResolvedReference",
    "UnseenCategories",
    "categorical_stats",
    "chi_square",
    "column_verdict",
    "design_effect",
    "drift_report",
    "find_regressions",
    "js_categorical",
    "js_distance",
    "js_sketch",
    "ks",
    "ks_sketch",
    "missingness_change",
    "newcombe_interval",
    "numeric_stats",
    "numeric_stats_sketch",
    "psi",
    "psi_categorical",
    "psi_sketch",
    "rate_increase_test",
    "resolve_reference",
    "sketch_std",
    "trailing_window",
    "unseen_categories",
    "wasserstein_normed",
    "wasserstein_sketch",
]
