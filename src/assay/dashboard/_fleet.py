"""The fleet page ``/ui/``: every tenant the key may see, with its headline metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from assay.dashboard._auth import User, backend
from assay.dashboard._render import render

router = APIRouter()


@router.get("/ui/")
def fleet(request: Request, user: User) -> Response:
    with backend(request).reader(user.key) as ws:
        tenants = ws.tenants()
    if user.tenant_id is not None:
        tenants = [t for t in tenants if t == user.tenant_id]
    return render(request, "fleet.html", nav="fleet", tenants=tenants)
