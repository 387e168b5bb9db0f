"""API keys: shown once, stored as a hash, scoped to a tenant, revocable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay import NotFoundError, UsageError
from assay.cli import app
from assay.store import Workspace, parse_scopes


def test_only_the_hash_of_a_key_is_stored(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        key, plaintext = ws.keys.create(tenant_id="acme", scopes=("ingest", "read"))
        assert plaintext.startswith(f"ak_{key.key_id}_")
        assert ws.keys.verify(plaintext) == key
    everything = b"".join(p.read_bytes() for p in (tmp_path / "ws").glob("assay.sqlite*"))
    assert plaintext.encode() not in everything
    assert hashlib.sha256(plaintext.encode()).hexdigest().encode() in everything


def test_keys_allow_only_their_tenant_and_scopes(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        tenant_key, _ = ws.keys.create(tenant_id="acme", scopes=("ingest",))
        admin, _ = ws.keys.create(tenant_id=None, scopes=("read",))
    assert tenant_key.allows("ingest", "acme")
    assert not tenant_key.allows("ingest", "other")
    assert not tenant_key.allows("read", "acme")
    assert admin.allows("read", "anyone")
    assert not admin.allows("ingest", "anyone")


def test_revoked_malformed_and_forged_keys_do_not_verify(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        key, plaintext = ws.keys.create(tenant_id="acme", scopes=("read",))
        assert ws.keys.verify(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None
        assert ws.keys.verify("not-a-key") is None
        assert ws.keys.verify(f"ak_{key.key_id}_") is None
        revoked = ws.keys.revoke(key.key_id)
        assert revoked.revoked_at is not None
        assert ws.keys.verify(plaintext) is None
        assert ws.keys.revoke(key.key_id).revoked_at == revoked.revoked_at  # idempotent
        with pytest.raises(NotFoundError, match="assay keys list"):
            ws.keys.revoke("nope")


def test_scopes_are_parsed_strictly() -> None:
    assert parse_scopes("read, ingest") == ("ingest", "read")
    with pytest.raises(UsageError, match="ingest, read"):
        parse_scopes("ingest,admin")
    with pytest.raises(UsageError):
        parse_scopes("")


def test_cli_prints_the_key_once_as_the_last_line(tmp_path: Path) -> None:
    runner = CliRunner()
    ws = str(tmp_path / "ws")
    runner.invoke(app, ["init", "--workspace", ws])
    made = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--workspace", ws])
    assert made.exit_code == 0, made.output
    plaintext = made.stdout.strip().splitlines()[-1]
    with Workspace.open(ws) as w:
        key = w.keys.verify(plaintext)
    assert key is not None
    assert (key.tenant_id, key.scopes) == ("acme", ("ingest", "read"))
    listed = runner.invoke(app, ["keys", "list", "--workspace", ws, "--format", "json"])
    assert plaintext not in listed.stdout
    assert f'"key_id": "{key.key_id}"' in listed.stdout
    both = runner.invoke(
        app, ["keys", "create", "--tenant", "a", "--all-tenants", "--workspace", ws]
    )
    assert both.exit_code == 2
    assert "exactly one of --tenant" in both.stderr
    gone = runner.invoke(app, ["keys", "revoke", key.key_id, "--workspace", ws])
    assert gone.exit_code == 0
    with Workspace.open(ws) as w:
        assert w.keys.verify(plaintext) is None
