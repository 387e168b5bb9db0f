"""The read API: ``GET /v1/tenants``, ``GET /v1/metrics/{name}``, ``GET /v1/quarantine``.

Each answers ``{"data": [...]}`` with the same records as the CLI's ``--format json``. A tenant
key reads its own tenant only; an admin key reads any tenant, or all of them. A key has at most
``http_key_reads`` reads running (429 beyond), each on a reader handle of its own, so that one
tenant's heavy reads cannot queue every other tenant's behind them.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from assay._records import records
from assay.ingest import read_quarantine
from assay.schema import SliceField
from assay.service._errors import ApiError, error_responses
from assay.service.deps import ReadKey, StateDep, tenant_for_read

router = APIRouter(tags=["read"])

MetricName = Literal["dau", "active", "rolling", "max-active", "retention", "sessions"]
#: API name → (Metrics method, parameters it takes besides tenant/since/until/by).
_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dau": ("dau", ()),
    "active": ("active_users", ("window",)),
    "rolling": ("dau_rolling", ("window", "threshold")),
    "max-active": ("max_active", ("window",)),
    "retention": ("retention", ()),
    "sessions": ("sessions", ()),
}

TenantQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=128,
        description="Only this tenant (a tenant key: its own, the default).",
    ),
]


def _data(rows: list[dict[str, Any]]) -> Response:
    return Response(json.dumps({"data": rows}, ensure_ascii=False), media_type="application/json")


_DATA_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The records.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {"data": {"type": "array", "items": {"type": "object"}}},
                }
            }
        },
    },
    **error_responses(401, 403, 422, 429, 503),
}


@router.get("/v1/tenants", summary="Tenants with events", responses=_DATA_DOC)
def tenants(key: ReadKey, state: StateDep) -> Response:
    """The tenants with stored events: every one for an admin key, its own for a tenant key."""
    with state.reader(key) as ws:
        names = ws.tenants()
    if key.tenant_id is not None:
        names = [t for t in names if t == key.tenant_id]
    return _data([{"tenant_id": t} for t in names])


@router.get("/v1/metrics/{name}", summary="A product metric", responses=_DATA_DOC)
def metric(
    name: Annotated[MetricName, Path(description="The metric, as in `assay metrics <name>`.")],
    key: ReadKey,
    state: StateDep,
    tenant_id: TenantQuery = None,
    since: Annotated[date | None, Query(description="First day (UTC), inclusive.")] = None,
    until: Annotated[date | None, Query(description="Last day (UTC), inclusive.")] = None,
    window: Annotated[
        int | None,
        Query(
            ge=1,
            description="Days (active, rolling, max-active); at most the http_max_window_days "
            "setting (400).",
        ),
    ] = None,
    threshold: Annotated[
        float | None, Query(ge=0, le=1, description="Relative drop that flags (rolling).")
    ] = None,
    by: Annotated[SliceField | None, Query(description="Break down by this field.")] = None,
) -> Response:
    """The records of ``assay metrics <name>``, with the same columns."""
    method, takes = _METRICS[name]
    kwargs: dict[str, Any] = {}
    for param, value in (("window", window), ("threshold", threshold)):
        if value is None:
            continue
        if param not in takes:
            raise ApiError(
                422,
                "invalid_parameter",
                f"{param} does not apply to {name}; it applies to "
                + ", ".join(n for n, (_, t) in _METRICS.items() if param in t),
                field=param,
            )
        kwargs[param] = value
    most = state.settings.http_max_window_days
    if window is not None and window > most:
        raise ApiError(
            422,
            "invalid_parameter",
            f"window must be at most {most} days over HTTP (got {window}); ask for a shorter "
            "window, or raise the http_max_window_days setting",
            field="window",
            rule="le",
        )
    if since is not None and until is not None and since > until:
        raise ApiError(
            422,
            "invalid_parameter",
            f"since ({since}) is after until ({until}); swap them",
            field="since",
        )
    tenant = tenant_for_read(key, tenant_id)
    with state.reader(key) as ws:
        table = getattr(ws.metrics, method)(
            tenant=tenant, since=since, until=until, by=by, **kwargs
        )
    return _data(records(table))


@router.get("/v1/quarantine", summary="Rejected events", responses=_DATA_DOC)
def quarantine(
    key: ReadKey,
    state: StateDep,
    tenant_id: TenantQuery = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Most rows, newest first.")] = 100,
) -> Response:
    """Rejected rows (redacted, pseudonymised) with their reasons, newest first.

    Records that could not be parsed belong to the tenant of the key that sent them; those
    sent by files or admin keys have no tenant and are shown to admin keys only.
    """
    tenant = tenant_for_read(key, tenant_id)
    with state.reader(key) as ws:
        table = read_quarantine(ws, tenant=tenant, limit=limit)
    return _data(records(table))
