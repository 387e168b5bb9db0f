"""The tenant page ``/ui/tenants/{tenant_id}``: each headline metric over time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from assay.dashboard._auth import User, backend, not_found, require_tenant
from assay.dashboard._render import render

router = APIRouter()


@router.get("/ui/tenants/{tenant_id}")
def tenant(
    request: Request, user: User, tenant_id: Annotated[str, Path(min_length=1, max_length=128)]
) -> Response:
    require_tenant(user, tenant_id)
    with backend(request).reader(user.key) as ws:
        if tenant_id not in ws.tenants():
            raise not_found()
    return render(request, "tenant.html", nav="fleet", tenant_id=tenant_id)
