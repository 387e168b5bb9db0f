"""Exceptions raised by assay.

Every error assay raises on purpose derives from :class:`AssayError`::

    AssayError
    ├── UsageError          bad arguments or options (CLI exit code 2)
    ├── SchemaError         an input does not match event schema v1
    ├── WorkspaceError      the workspace is missing, locked, or damaged
    │   └── LockTimeoutError    the write lock could not be taken in time
    ├── NotFoundError       a tenant, table, file or object does not exist
    ├── PrivacyError        redaction or pseudonymisation failed (fails closed)
    └── EngineError         a query engine is missing or failed

Messages say what was expected, what came, and how to fix it. They never hold raw text or raw
user ids.
"""

from __future__ import annotations


class AssayError(Exception):
    """Root of every error assay raises on purpose."""


class UsageError(AssayError):
    """Bad arguments or options."""


class SchemaError(AssayError):
    """An input does not match event schema v1."""


class WorkspaceError(AssayError):
    """The workspace is missing, locked, or damaged."""


class LockTimeoutError(WorkspaceError):
    """The workspace write lock could not be taken in time."""


class NotFoundError(AssayError):
    """A tenant, table, file or object does not exist."""


class PrivacyError(AssayError):
    """Redaction or pseudonymisation failed; the data is not stored (fails closed)."""


class EngineError(AssayError):
    """A query engine is missing or failed."""


__all__ = [
    "AssayError",
    "EngineError",
    "LockTimeoutError",
    "NotFoundError",
    "PrivacyError",
    "SchemaError",
    "UsageError",
    "WorkspaceError",
]
