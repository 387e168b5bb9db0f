"""``GET /healthz`` and the Prometheus ``GET /metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from assay.service.deps import StateDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness and readiness")
def healthz(state: StateDep) -> dict[str, object]:
    """``{"status": "ok"}`` while the server accepts events, with the ingest queue depth
    (``inflight``: requests holding one of the ``http_queue_requests`` slots; ``receiving``:
    requests whose body is still arriving) and the state of the background profile refresh
    (``null`` in parse-only mode).

    A failed profile refresh shows in ``profiles.last`` but leaves the status ``ok``:
    ingestion and reads do not depend on it.
    """
    profiles = None if state.profiles is None else state.profiles.status().as_dict()
    return {
        "status": "ok",
        "inflight": state.inflight,
        "receiving": state.receiving,
        "profiles": profiles,
    }


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(state: StateDep) -> Response:
    """Counters and histograms in the Prometheus text format (no ids but tenant ids)."""
    return Response(generate_latest(state.obs.registry), media_type=CONTENT_TYPE_LATEST)
