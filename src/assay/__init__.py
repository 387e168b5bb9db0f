"""assay: the ML system behind an AI assistant.

Private telemetry ingestion, product metrics per tenant on DuckDB or Spark, and (soon)
anomalies, drift and evaluation, as one self-hostable package.
"""

import typing

from assay._errors import (
    AssayError,
    EngineError,
    LockTimeoutError,
    NotFoundError,
    PrivacyError,
    SchemaError,
    UsageError,
    WorkspaceError,
)

if typing.TYPE_CHECKING:
    from assay._api import Workspace

__version__ = "0.1.0"


def __getattr__(name: str) -> typing.Any:
    # Imported on first use: it pulls in Ibis, which commands like `assay ingest` never need.
    if name == "Workspace":
        from assay._api import Workspace

        return Workspace
    raise AttributeError(f"module 'assay' has no attribute {name!r}")


__all__ = [
    "AssayError",
    "EngineError",
    "LockTimeoutError",
    "NotFoundError",
    "PrivacyError",
    "SchemaError",
    "UsageError",
    "Workspace",
    "WorkspaceError",
    "__version__",
]
