"""`assay init`, `assay tenants` and `assay forget`."""

from __future__ import annotations

from typing import Annotated

import pyarrow as pa
import typer

from assay._records import records
from assay.cli import _output
from assay.cli._common import FormatOpt, WorkspaceOpt, handle_errors, require_tenant
from assay.store import Workspace


def init(workspace: WorkspaceOpt = None) -> None:
    """Create a workspace (idempotent): Delta tables, settings, and a pseudonymisation key."""
    with handle_errors(), Workspace.init(workspace) as ws:
        verb = "created" if ws.created else "already exists:"
        _output.message(f"workspace {verb} {ws.path}")


def tenants(workspace: WorkspaceOpt = None, fmt: FormatOpt = "table") -> None:
    """List the tenants with stored events: column tenant_id, sorted."""
    with handle_errors(), Workspace.open(workspace) as ws:
        names = ws.tenants()
    _output.print_table(pa.table({"tenant_id": pa.array(names, pa.string())}), fmt)


def forget(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant whose data to erase.")],
    user: Annotated[
        str | None,
        typer.Option("--user", help="Erase only this user's data (the raw user id)."),
    ] = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Erase a tenant's or a user's events, content and quarantine rows, and vacuum at once.

    A tenant with nothing stored and no event (an unknown or already erased tenant) is exit
    code 2 with the known tenants suggested; a user with nothing stored is not an error.

    Profiles built before are then rebuilt for the days whose events changed, so that they
    no longer count the erased events.
    """
    with handle_errors(), Workspace.open(workspace) as ws:
        result = ws.forget(tenant, user)
        who = "the user" if user is not None else "the tenant"
        counts = pa.table(
            {
                "events": [result.events],
                "content": [result.content],
                "quarantine": [result.quarantine],
            }
        )
        if fmt == "json":
            _output.print_json(records(counts)[0])
        elif fmt == "csv":
            _output.print_table(counts, "csv")
        _output.message(
            f"erased {result.events} events, {result.content} content rows and "
            f"{result.quarantine} quarantine rows of {who}; old files vacuumed"
            if result.total
            else f"nothing stored for {who}; nothing to erase"
        )
        from assay.profiles import references_holding, refresh_profiles

        # Also when nothing was erased: a forget run again after a failed rebuild catches up
        # (a rebuild finds no changed day in no time).
        with _output.days_progress() as on_progress:
            built = refresh_profiles(ws, progress=on_progress)
        if built is not None:
            removed = f", {built.days_removed} removed" if built.days_removed else ""
            _output.message(f"profiles updated: {built.days_rebuilt} day(s) rebuilt{removed}")
        frozen = references_holding(ws, tenant)
        if frozen:
            names = ", ".join(i.name + (" (pooled)" if i.pooled else "") for i in frozen)
            _output.message(
                f"note: stored drift references are frozen and may still hold the tenant's "
                f"profiles: {names}; delete them with `assay profile reference delete NAME` "
                "(or save them again) if the tenant must leave them"
            )
        if not result.total:
            # Nothing erased and no event of the tenant: likely a typo, not an erased tenant.
            require_tenant(ws, tenant)
