"""Which event columns are profiled, and how: the privacy allow-list of profiles.

Only the columns named here are ever profiled. Numeric columns get a KLL quantile sketch;
allow-listed categorical columns get item counts (after the k-user fold) and an HLL sketch of
their distinct values; ids, free text, lists and maps get a count and a null count, never their
values.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa

ColumnKind = Literal["numeric", "categorical", "count"]

#: Numeric columns: count, nulls, min, max and a KLL doubles sketch.
#: ``intent_confidence`` is the model's score: its distribution is profiled like any other.
NUMERIC_COLUMNS: tuple[str, ...] = (
    "latency_ms",
    "cost_usd",
    "tokens_in",
    "tokens_out",
    "intent_confidence",
    "rating",
    "turn_index",
)

#: Allow-listed categorical columns: count, nulls, item counts after the k-user fold, and an
#: HLL sketch of the items that survived it.
CATEGORICAL_COLUMNS: tuple[str, ...] = (
    "event_type",
    "locale",
    "platform",
    "app_version",
    "model_version",
    "prompt_template",
    "intent",
    "error_code",
    "feedback",
    "handoff",
)

#: Ids, free text, lists and maps: a count and a null count, never a value.
#: ``text`` is not in the events table; its null count comes from ``has_text``.
COUNT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "user_id",
    "session_id",
    "flights",
    "retrieved_doc_ids",
    "cited_doc_ids",
    "attributes",
    "text",
)

PROFILED_COLUMNS: tuple[str, ...] = NUMERIC_COLUMNS + CATEGORICAL_COLUMNS + COUNT_COLUMNS

KIND_OF: dict[str, ColumnKind] = {
    **dict.fromkeys(NUMERIC_COLUMNS, "numeric"),
    **dict.fromkeys(CATEGORICAL_COLUMNS, "categorical"),
    **dict.fromkeys(COUNT_COLUMNS, "count"),
}

#: The string-valued categorical columns a profile may be sliced by. Not the metrics' slice
#: fields (``assay.schema.SLICE_FIELDS``): profiles also slice by ``event_type``, ``intent``
#: and ``error_code``, and not by flight.
PROFILE_SLICE_FIELDS: tuple[str, ...] = (
    "event_type",
    "locale",
    "platform",
    "app_version",
    "model_version",
    "prompt_template",
    "intent",
    "error_code",
)
#: The former name of :data:`PROFILE_SLICE_FIELDS`, kept for compatibility.
SLICE_FIELDS = PROFILE_SLICE_FIELDS

#: Slices built by default, besides the whole tenant (``slice_field = ""``).
DEFAULT_SLICES: tuple[str, ...] = ("model_version", "prompt_template", "locale", "platform")

#: The item (and slice value) that values seen by fewer than k distinct users are folded into.
OTHER = "<OTHER>"

#: Default k of the k-anonymity fold: an item needs this many distinct users on a day and slice.
DEFAULT_MIN_USERS = 10

#: KLL accuracy parameter: normalized rank error about 1.33 % (single-sided, 99 % confidence).
KLL_K = 200

#: HLL precision: 2^12 registers, relative standard error about 1.6 %.
HLL_LG_K = 12

#: Counters of the AMS sketch on ``user_id`` rows (Alon, Matias and Szegedy 1996): signed sums
#: of the users' event counts, whose mean square estimates ``sum over users of events^2`` (the
#: second frequency moment F2) within about ``sqrt(2 / 128)``, 12.5 % relative standard error.
#: The sketch is linear, so it merges exactly across days, slices and workspaces by addition.
F2_COUNTERS = 128

#: One stored profile row: a column of one day, tenant and slice.
PROFILE_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("event_date", pa.date32(), nullable=False),
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("slice_field", pa.string(), nullable=False),
        pa.field("slice_value", pa.string()),
        pa.field("column", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("nulls", pa.int64(), nullable=False),
        pa.field("min", pa.float64()),
        pa.field("max", pa.float64()),
        pa.field("kll", pa.binary()),
        pa.field("hll", pa.binary()),
        # user_id rows only: the AMS sketch of the users' event counts (see F2_COUNTERS).
        pa.field("f2", pa.binary()),
        pa.field(
            "items",
            pa.list_(
                pa.struct(
                    [
                        pa.field("value", pa.string(), nullable=False),
                        pa.field("count", pa.int64(), nullable=False),
                    ]
                )
            ),
        ),
    ]
)
