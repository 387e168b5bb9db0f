"""`assay keys create|list|revoke`: API keys for the HTTP service."""

from __future__ import annotations

from typing import Annotated

import pyarrow as pa
import typer

from assay._errors import UsageError
from assay.cli import _output
from assay.cli._common import FormatOpt, WorkspaceOpt, command_group, handle_errors
from assay.store import Workspace, parse_scopes

app = command_group(
    help="API keys for the HTTP service (stored only as hashes).",
)


@app.command("create")
def create(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="The tenant this key may write and read.")
    ] = None,
    all_tenants: Annotated[
        bool, typer.Option("--all-tenants", help="An admin key for every tenant.")
    ] = False,
    scope: Annotated[
        str, typer.Option("--scope", help="Comma-separated scopes: ingest, read, predict.")
    ] = "ingest,read",
    workspace: WorkspaceOpt = None,
) -> None:
    """Create a key. It is printed once, as the last line of stdout; only its hash is kept."""
    with handle_errors():
        if (tenant is None) == (not all_tenants):
            raise UsageError("give exactly one of --tenant T or --all-tenants")
        scopes = parse_scopes(scope)
        with Workspace.open(workspace) as ws:
            key, plaintext = ws.keys.create(tenant_id=tenant, scopes=scopes)
        who = f"tenant {tenant}" if tenant is not None else "all tenants"
        _output.message(
            f"created key {key.key_id} for {who} with scopes {','.join(scopes)}; "
            "it is shown once, store it now"
        )
        print(plaintext)


@app.command("list")
def list_keys(workspace: WorkspaceOpt = None, fmt: FormatOpt = "table") -> None:
    """List keys (ids, tenants, scopes, dates; never the secrets)."""
    with handle_errors(), Workspace.open(workspace) as ws:
        keys = ws.keys.list()
        table = pa.table(
            {
                "key_id": [k.key_id for k in keys],
                "tenant_id": [k.tenant_id or "*" for k in keys],
                "scopes": [",".join(k.scopes) for k in keys],
                "created_at": [k.created_at for k in keys],
                "revoked_at": [k.revoked_at for k in keys],
            },
            schema=pa.schema(
                [
                    (n, pa.string())
                    for n in ("key_id", "tenant_id", "scopes", "created_at", "revoked_at")
                ]
            ),
        )
        _output.print_table(table, fmt)


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (from `assay keys list`).")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    with handle_errors(), Workspace.open(workspace) as ws:
        key = ws.keys.revoke(key_id)
        _output.message(f"key {key.key_id} revoked at {key.revoked_at}")
