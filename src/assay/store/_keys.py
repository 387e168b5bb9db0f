"""API keys of a workspace: created once, shown once, stored only as a SHA-256 hash.

A key reads ``ak_<key id>_<secret>``: the key id (8 hex digits) names it in listings and
revocations; the secret (32 random bytes, URL-safe base64) makes it unguessable, so a plain
SHA-256 is enough to store it (no password-style slow hash is needed for 256 random bits).
A key belongs to one tenant, or to all tenants (an admin key), and has scopes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from assay._errors import NotFoundError, UsageError
from assay.store._meta import MetaStore

Scope = Literal["ingest", "read", "predict"]
#: ``ingest`` sends events, ``read`` reads metrics and tables, ``predict`` calls the models.
SCOPES: tuple[Scope, ...] = ("ingest", "read", "predict")
_PREFIX = "ak_"


@dataclass(frozen=True)
class ApiKey:
    """A stored API key (never its secret)."""

    key_id: str
    tenant_id: str | None  # None: every tenant (an admin key)
    scopes: tuple[Scope, ...]
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: Scope, tenant_id: str) -> bool:
        """Whether this key may use ``scope`` on ``tenant_id``."""
        return (
            self.active
            and scope in self.scopes
            and (self.tenant_id is None or self.tenant_id == tenant_id)
        )


def parse_scopes(text: str | Iterable[str]) -> tuple[Scope, ...]:
    """``"ingest,read"`` → ``("ingest", "read")``, rejecting unknown scopes."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = sorted({i.strip() for i in items if i.strip()})
    unknown = [n for n in names if n not in SCOPES]
    if unknown or not names:
        raise UsageError(
            f"scopes must be a comma-separated list of {', '.join(SCOPES)} "
            f"(got {','.join(names) or 'nothing'}); e.g. --scope ingest,read"
        )
    return tuple(n for n in SCOPES if n in names)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KeyStore:
    """Create, list, revoke and verify the API keys of one workspace."""

    def __init__(self, meta: MetaStore) -> None:
        self._meta = meta

    def create(self, *, tenant_id: str | None, scopes: tuple[Scope, ...]) -> tuple[ApiKey, str]:
        """Create a key; return it and its plaintext, which is not stored anywhere."""
        if tenant_id is not None and not 1 <= len(tenant_id) <= 128:
            raise UsageError(
                f"a tenant id has 1 to 128 characters (got {len(tenant_id)}); "
                "pass --tenant T, or --all-tenants for an admin key"
            )
        key_id = secrets.token_hex(4)
        plaintext = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        created = _now()
        self._meta.execute(
            "INSERT INTO api_keys (key_id, key_hash, tenant_id, scopes, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (key_id, _hash(plaintext), tenant_id, ",".join(scopes), created),
        )
        return ApiKey(key_id, tenant_id, scopes, created, None), plaintext

    def list(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones included."""
        rows = self._meta.execute(
            "SELECT key_id, tenant_id, scopes, created_at, revoked_at FROM api_keys "
            "ORDER BY created_at, key_id"
        )
        return [_key(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by its id (idempotent)."""
        self._meta.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?",
            (_now(), key_id),
        )
        rows = self._meta.execute(
            "SELECT key_id, tenant_id, scopes, created_at, revoked_at FROM api_keys "
            "WHERE key_id = ?",
            (key_id,),
        )
        if not rows:
            raise NotFoundError(
                f"no API key with id {key_id[:16]!r}; `assay keys list` shows the key ids"
            )
        return _key(rows[0])

    def verify(self, plaintext: str) -> ApiKey | None:
        """The active key a presented secret belongs to, or None (unknown, malformed, revoked)."""
        parts = plaintext.split("_", 2)
        if len(parts) != 3 or f"{parts[0]}_" != _PREFIX:
            return None
        rows = self._meta.execute(
            "SELECT key_id, tenant_id, scopes, created_at, revoked_at, key_hash FROM api_keys "
            "WHERE key_id = ?",
            (parts[1],),
        )
        if not rows or not hmac.compare_digest(rows[0][5], _hash(plaintext)):
            return None
        key = _key(rows[0][:5])
        return key if key.active else None


def _key(row: tuple[object, ...]) -> ApiKey:
    key_id, tenant, scopes, created, revoked = row
    return ApiKey(
        key_id=str(key_id),
        tenant_id=None if tenant is None else str(tenant),
        scopes=parse_scopes(str(scopes)),
        created_at=str(created),
        revoked_at=None if revoked is None else str(revoked),
    )
