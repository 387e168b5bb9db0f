"""Event schema v1: the fields an event may carry, and the Arrow schemas of the stored tables.

Field names are a public contract (see docs/schema.md). The *input* side says what a producer
may send; the *stored* side says what lands in the workspace's Delta tables after validation,
redaction and pseudonymisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import pyarrow as pa

SCHEMA_VERSION = 1

#: The fields a metric, a root cause or a scan can be sliced by. ``flight`` is one element of
#: the event's ``flights`` list (or, in ``explain``, the event's set of flights).
SliceField = Literal[
    "locale", "platform", "app_version", "model_version", "prompt_template", "flight"
]
SLICE_FIELDS: tuple[str, ...] = get_args(SliceField)

#: The release identity of an answer: the fields whose new values ``assay regressions``
#: compares with their predecessors.
ReleaseField = Literal["model_version", "prompt_template"]
RELEASE_FIELDS: tuple[str, ...] = get_args(ReleaseField)

EVENT_TYPES: tuple[str, ...] = (
    "session_start",
    "turn",
    "feedback",
    "handoff",
    "error",
    "session_end",
)

Kind = Literal["string", "time", "int", "float", "bool", "string_list", "string_map"]


@dataclass(frozen=True)
class Field:
    """One top-level field of an input event.

    Attributes
    ----------
    name : the field name, exactly as producers send it.
    kind : the logical type.
    required : whether every event must carry it (non-null).
    min_len, max_len : bounds on a string's length in characters.
    minimum, maximum : bounds on a number, inclusive.
    choices : the allowed values of a string or an int, if restricted.
    """

    name: str
    kind: Kind
    required: bool = False
    min_len: int | None = None
    max_len: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[object, ...] | None = None


#: Longest redacted text kept, in bytes of UTF-8 (32 KiB).
MAX_TEXT_BYTES = 32 * 1024
#: Most entries in ``attributes``.
MAX_ATTRIBUTES = 64
#: Longest key or value in ``attributes``, in characters.
MAX_ATTRIBUTE_CHARS = 1024
#: Most entries in a list field (``flights``, ``retrieved_doc_ids``, ``cited_doc_ids``).
MAX_LIST_ITEMS = 256
#: Longest optional string field, in characters.
MAX_STRING_CHARS = 256

FIELDS: tuple[Field, ...] = (
    Field("event_id", "string", required=True, min_len=1, max_len=128),
    Field("event_time", "time", required=True),
    Field("tenant_id", "string", required=True, min_len=1, max_len=128),
    Field("user_id", "string", required=True, min_len=1, max_len=256),
    Field("session_id", "string", required=True, min_len=1, max_len=256),
    Field("event_type", "string", required=True, choices=EVENT_TYPES),
    Field("turn_index", "int", minimum=0),
    Field("locale", "string", max_len=MAX_STRING_CHARS),
    Field("platform", "string", max_len=MAX_STRING_CHARS),
    Field("app_version", "string", max_len=MAX_STRING_CHARS),
    Field("model_version", "string", max_len=MAX_STRING_CHARS),
    Field("prompt_template", "string", max_len=MAX_STRING_CHARS),
    Field("flights", "string_list"),
    Field("latency_ms", "float", minimum=0.0),
    Field("cost_usd", "float", minimum=0.0),
    Field("tokens_in", "int", minimum=0),
    Field("tokens_out", "int", minimum=0),
    Field("intent", "string", max_len=MAX_STRING_CHARS),
    Field("intent_confidence", "float", minimum=0.0, maximum=1.0),
    Field("feedback", "int", choices=(-1, 1)),
    Field("rating", "int", minimum=1, maximum=5),
    Field("handoff", "bool"),
    Field("error_code", "string", max_len=MAX_STRING_CHARS),
    Field("retrieved_doc_ids", "string_list"),
    Field("cited_doc_ids", "string_list"),
    Field("text", "string", max_len=None),
    Field("attributes", "string_map"),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}

_ARROW_OF_KIND: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "string_list": pa.list_(pa.string()),
    "string_map": pa.map_(pa.string(), pa.string()),
}

UTC_MICROS = pa.timestamp("us", tz="UTC")


def _stored_field(f: Field) -> pa.Field:
    if f.kind == "time":
        return pa.field("event_time", UTC_MICROS, nullable=False)
    return pa.field(f.name, _ARROW_OF_KIND[f.kind], nullable=not f.required)


#: The ``events`` table: one row per accepted event. ``user_id`` holds the keyed pseudonym,
#: ``text`` is not here (it lives in ``content``), ``has_text`` says whether it was sent,
#: ``fingerprint`` is a 64-bit digest of the stored fields and the redacted text (it tells a
#: repeat of an event that differs from the stored one: a *conflicting* duplicate).
EVENTS_SCHEMA: pa.Schema = pa.schema(
    [_stored_field(f) for f in FIELDS if f.name != "text"]
    + [
        pa.field("event_date", pa.date32(), nullable=False),
        pa.field("has_text", pa.bool_(), nullable=False),
        pa.field("fingerprint", pa.int64(), nullable=False),
        pa.field("ingested_at", UTC_MICROS, nullable=False),
    ]
)

#: The ``content`` table: redacted text keyed by (tenant_id, event_id).
CONTENT_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("event_date", pa.date32(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("redactions", pa.int32(), nullable=False),
        pa.field("ingested_at", UTC_MICROS, nullable=False),
    ]
)

#: The ``quarantine`` table: rejected rows, redacted and pseudonymised, with the reason.
#: ``row`` is the row as received, as JSON, every string value redacted, ``user_id``
#: replaced by its pseudonym and unknown fields' values withheld; an unparseable line keeps no
#: content, only ``{"unparsed": true, "bytes": N}`` (docs/privacy.md says why).
QUARANTINE_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("tenant_id", pa.string()),
        pa.field("event_id", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("line", pa.int64()),
        pa.field("field", pa.string()),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("row", pa.string()),
        pa.field("quarantined_at", UTC_MICROS, nullable=False),
        pa.field("quarantine_date", pa.date32(), nullable=False),
    ]
)

#: The partition column of each table.
PARTITION_BY: dict[str, list[str]] = {
    "events": ["event_date"],
    "content": ["event_date"],
    "quarantine": ["quarantine_date"],
}
