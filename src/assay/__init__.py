"""assay: the ML system behind an AI assistant.

Private telemetry ingestion, product metrics per tenant on DuckDB or Spark, and (soon)
anomalies, drift and evaluation, as one self-hostable package.
"""

from assay._api import Workspace
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

__version__ = "0.1.0"

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
