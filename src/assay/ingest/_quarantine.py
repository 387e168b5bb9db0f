"""Reading the quarantine: the rejected rows, as stored (redacted, pseudonymised), newest first.

One reader for ``assay quarantine list`` and ``GET /v1/quarantine``.
"""

from __future__ import annotations

import pyarrow as pa

from assay._errors import UsageError
from assay.store import Workspace

#: Rows returned when no limit is given.
DEFAULT_QUARANTINE_LIMIT = 100


def read_quarantine(
    ws: Workspace, *, tenant: str | None = None, limit: int = DEFAULT_QUARANTINE_LIMIT
) -> pa.Table:
    """The quarantined rows, newest first (then by line): every column of the ``quarantine``
    table except its partition column ``quarantine_date``.

    Parameters
    ----------
    ws : the workspace.
    tenant : only this tenant's rows. Rows that could not be parsed have the tenant of the
        API key that sent them, or none (files, admin keys): those appear only without
        ``tenant``.
    limit : at most this many rows, >= 1.

    Returns
    -------
    pyarrow.Table
        ``tenant_id, event_id, user_id, source, line, field, rule, message, row,
        quarantined_at``; ``user_id`` is the stored pseudonym, ``row`` the redacted row.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise UsageError(f"limit must be a whole number >= 1 (got {limit!r}); e.g. --limit 100")
    where = "ORDER BY quarantined_at DESC, line LIMIT ?"
    params: list[object] = [limit]
    if tenant is not None:
        where, params = "WHERE tenant_id = ? " + where, [tenant, limit]
    return ws.read("quarantine", where=where, params=params).drop_columns(["quarantine_date"])


__all__ = ["DEFAULT_QUARANTINE_LIMIT", "read_quarantine"]
