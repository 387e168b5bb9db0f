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

import difflib
from collections.abc import Sequence


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


def unknown_tenant(tenant: str, known: Sequence[str]) -> NotFoundError:
    """The error for a tenant with no stored event: the closest known tenants suggested.

    Examples
    --------
    >>> error = unknown_tenant("tenant-01", ["acme", "tenant-001", "tenant-002"])
    >>> str(error).split("; ")[1].split("? ")[0]
    'did you mean tenant-001 or tenant-002'
    """
    shown = tenant if len(tenant) <= 64 else tenant[:61] + "..."
    close = difflib.get_close_matches(tenant, known, n=3, cutoff=0.6)
    if close:
        hint = f"did you mean {' or '.join(close)}? "
    elif known:
        hint = f"{len(known)} tenant(s) have events, e.g. {', '.join(known[:3])}. "
    else:
        hint = "the workspace has no events yet; ingest some first with `assay ingest`. "
    return NotFoundError(
        f"no tenant {shown!r} in this workspace (no stored event has this tenant_id); {hint}"
        "List the tenants with `assay tenants` (Python: ws.tenants())"
    )


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
