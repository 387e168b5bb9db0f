"""Privacy-preserving profiles: mergeable sketches per day, tenant, slice and column.

For each UTC day x tenant x slice (the whole tenant, and each value of the slice fields) x
column, a profile holds the row and null counts, a KLL quantile sketch for numeric columns, and
for allow-listed categorical columns the item counts after a k-anonymity fold (an item seen by
fewer than k distinct users that day in that slice is counted as ``<OTHER>`` before anything is
stored) with an HLL sketch of the stored items. Ids and free text are only counted.

Profiles are built from the committed events only (:func:`build_profiles`, incrementally),
stored under ``profiles/`` in the workspace, and merge across days, slices and workspaces
(:func:`merge_profiles`, :func:`load_profiles`). See docs/profiles.md.
"""

from assay.profiles._build import (
    BuildSummary,
    ProgressFn,
    build_profiles,
    built_options,
    load_profiles,
    profiles_built,
    profiles_path,
    read_profiles,
)
from assay.profiles._columns import (
    CATEGORICAL_COLUMNS,
    COUNT_COLUMNS,
    DEFAULT_MIN_USERS,
    DEFAULT_SLICES,
    HLL_LG_K,
    KLL_K,
    NUMERIC_COLUMNS,
    OTHER,
    PROFILE_SCHEMA,
    PROFILE_SLICE_FIELDS,
    SLICE_FIELDS,
    ColumnKind,
)
from assay.profiles._compute import profile_events
from assay.profiles._profile import (
    ColumnProfile,
    SliceProfile,
    column_profile,
    merge_profiles,
    slice_profiles,
)
from assay.profiles._reference import (
    POOLED,
    ReferenceInfo,
    check_reference_name,
    delete_reference,
    list_references,
    load_reference,
    read_reference,
    reference_info,
    references_holding,
    references_path,
    save_reference,
    save_reference_events,
)
from assay.profiles._refresh import (
    DEFAULT_REFRESH_INTERVAL,
    REFRESH_OUTCOMES,
    ProfileRefresher,
    RefreshOutcome,
    RefreshResult,
    RefreshStatus,
    refresh_profiles,
)

__all__ = [
    "CATEGORICAL_COLUMNS",
    "COUNT_COLUMNS",
    "DEFAULT_MIN_USERS",
    "DEFAULT_REFRESH_INTERVAL",
    "DEFAULT_SLICES",
    "HLL_LG_K",
    "KLL_K",
    "NUMERIC_COLUMNS",
    "OTHER",
    "POOLED",
    "PROFILE_SCHEMA",
    "PROFILE_SLICE_FIELDS",
    "REFRESH_OUTCOMES",
    "SLICE_FIELDS",
    "BuildSummary",
    "ColumnKind",
    "ColumnProfile",
    "ProfileRefresher",
    "ProgressFn",
    "ReferenceInfo",
    "RefreshOutcome",
    "RefreshResult",
    "RefreshStatus",
    "SliceProfile",
    "build_profiles",
    "built_options",
    "check_reference_name",
    "column_profile",
    "delete_reference",
    "list_references",
    "load_profiles",
    "load_reference",
    "merge_profiles",
    "profile_events",
    "profiles_built",
    "profiles_path",
    "read_profiles",
    "read_reference",
    "reference_info",
    "references_holding",
    "references_path",
    "refresh_profiles",
    "save_reference",
    "save_reference_events",
    "slice_profiles",
]
