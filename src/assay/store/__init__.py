"""Storage: the workspace (Delta tables, write lock, settings, metadata) and query engines."""

import typing

from assay.store._incidents import (
    INCIDENT_STATES,
    SEEN_IN,
    Incident,
    IncidentStore,
    NewIncident,
)
from assay.store._keyindex import KeyDigests, KeyIndex, file_key_digests, key_digests
from assay.store._keys import SCOPES, ApiKey, KeyStore, Scope, parse_scopes
from assay.store._lock import WriteLock
from assay.store._settings import Settings
from assay.store._workspace import (
    DEFAULT_WORKSPACE,
    SCHEMAS,
    TABLES,
    ForgetResult,
    TableName,
    Workspace,
    resolve_path,
)

__all__ = [
    "DEFAULT_WORKSPACE",
    "INCIDENT_STATES",
    "SCHEMAS",
    "SCOPES",
    "SEEN_IN",
    "TABLES",
    "ApiKey",
    "Engine",
    "EngineName",
    "ForgetResult",
    "Incident",
    "IncidentStore",
    "KeyDigests",
    "KeyIndex",
    "KeyStore",
    "NewIncident",
    "Scope",
    "Settings",
    "TableName",
    "Workspace",
    "WriteLock",
    "connect",
    "file_key_digests",
    "key_digests",
    "parse_scopes",
    "resolve_path",
]

if typing.TYPE_CHECKING:
    from assay.store._engines import Engine, EngineName, connect

_LAZY = {"Engine", "EngineName", "connect"}


def __getattr__(name: str) -> typing.Any:
    # The engines import Ibis (slow to import); only metrics need them.
    if name in _LAZY:
        from assay.store import _engines

        return getattr(_engines, name)
    raise AttributeError(f"module 'assay.store' has no attribute {name!r}")
