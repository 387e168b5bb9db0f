"""`assay quarantine list`: the rejected rows, redacted, with their reasons."""

from __future__ import annotations

from typing import Annotated

import typer

from assay.cli import _output
from assay.cli._common import (
    FormatOpt,
    WorkspaceOpt,
    command_group,
    handle_errors,
    require_tenant,
)

app = command_group(
    help="Rejected rows (redacted, pseudonymised) with the rule each broke.",
)


@app.command("list")
def list_rows(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's rows.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="At most this many rows, newest first.")
    ] = 100,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """List quarantined rows, newest first: the same rows as `GET /v1/quarantine`.

    Columns: tenant_id, event_id, user_id (the stored pseudonym), source, line, field, rule,
    message, row (the redacted row as JSON), quarantined_at.
    """
    from assay.ingest import read_quarantine
    from assay.store import Workspace

    with handle_errors(), Workspace.open(workspace) as ws:
        table = read_quarantine(ws, tenant=tenant, limit=limit)
        if table.num_rows == 0:
            # A tenant whose every row was rejected has quarantine rows but no events.
            require_tenant(ws, tenant)
    _output.print_table(table, fmt)
    if fmt == "table" and table.num_rows == limit:
        _output.message(f"showing the newest {limit} rows; --limit N shows more")
