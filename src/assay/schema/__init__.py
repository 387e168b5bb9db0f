"""Event schema v1: fields, stored Arrow schemas, validation rules and error types."""

from assay.schema._fields import (
    CONTENT_SCHEMA,
    EVENT_TYPES,
    EVENTS_SCHEMA,
    FIELD_NAMES,
    FIELDS,
    FIELDS_BY_NAME,
    MAX_TEXT_BYTES,
    PARTITION_BY,
    QUARANTINE_SCHEMA,
    SCHEMA_VERSION,
    Field,
)
from assay.schema._validate import (
    CANONICAL_SCHEMA,
    RULES,
    Rejection,
    ValidationResult,
    check_time_window,
    validate,
)

__all__ = [
    "CANONICAL_SCHEMA",
    "CONTENT_SCHEMA",
    "EVENTS_SCHEMA",
    "EVENT_TYPES",
    "FIELDS",
    "FIELDS_BY_NAME",
    "FIELD_NAMES",
    "MAX_TEXT_BYTES",
    "PARTITION_BY",
    "QUARANTINE_SCHEMA",
    "RULES",
    "SCHEMA_VERSION",
    "Field",
    "Rejection",
    "ValidationResult",
    "check_time_window",
    "validate",
]
