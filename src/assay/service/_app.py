"""The FastAPI app of ``assay serve``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from opentelemetry.trace import TracerProvider

from assay import __version__
from assay._errors import UsageError
from assay.dashboard import mount as mount_dashboard
from assay.models._serving import Router, ServingConfig
from assay.profiles import DEFAULT_REFRESH_INTERVAL
from assay.service import _errors
from assay.service._observe import Observability, middleware
from assay.service._state import ServiceState
from assay.service.deps import get_state, known_query
from assay.service.routers import events, health, predict, reads
from assay.store import Settings, resolve_path


def create_app(
    workspace: str | os.PathLike[str] | None = None,
    *,
    parse_only: bool = False,
    tracer_provider: TracerProvider | None = None,
    profile_interval: float = DEFAULT_REFRESH_INTERVAL,
    serving: ServingConfig | None = None,
    router: Router | None = None,
) -> FastAPI:
    """The service for one workspace (which must exist: ``assay init``).

    ``parse_only`` makes ``POST /v1/events`` decode and parse bodies and answer every
    parsed event as accepted without validating or storing anything: the ceiling that the
    ingest benchmark compares the real server with. Never use it in production.
    ``tracer_provider`` overrides the ``otlp_endpoint`` setting (to embed the app in a process
    that already traces, or to test the spans).
    ``profile_interval`` is the least number of seconds between two background rebuilds of
    the workspace's profiles after events are committed (only where profiles were built
    before; 0 turns the background rebuilds off).
    ``serving`` holds the limits and timings of ``POST /v1/models/{name}/predict`` (batch size
    and wait, queue, input sizes, how often aliases are resolved again).
    ``router`` gives the traffic split of a model under a rollout (model name to
    :class:`~assay.models.Routing`, or None), read at most every ``serving.refresh_seconds``.

    The workspace is opened when the app starts (its lifespan) and closed when it stops,
    after every request in flight has been answered and its events committed.

    Examples
    --------
    >>> app = create_app("assay-workspace")
    >>> for path in sorted(p for p in app.openapi()["paths"] if p.startswith("/v1")):
    ...     print(path)
    /v1/events
    /v1/metrics/{name}
    /v1/models/refresh
    /v1/models/{name}/predict
    /v1/quarantine
    /v1/tenants
    """
    if not profile_interval >= 0:  # also refuses NaN
        raise UsageError(
            f"profile_interval must be a number of seconds >= 0 (got {profile_interval!r}); "
            "use 0 to turn background profile refreshes off"
        )
    path: Path = resolve_path(workspace)
    endpoint = Settings.load(path).otlp_endpoint if path.is_dir() else ""
    obs = Observability(endpoint, tracer_provider)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ServiceState.start(
            path,
            obs,
            parse_only=parse_only,
            profile_interval=profile_interval,
            serving=serving,
            router=router,
        )
        app.state.assay = state
        try:
            yield
        finally:
            state.close()
            obs.close()

    app = FastAPI(
        title="assay",
        version=__version__,
        summary="Private telemetry ingestion and product metrics for an AI assistant.",
        lifespan=lifespan,
        # FastAPI's docs pages load their scripts from a CDN; nothing may be fetched at run time.
        docs_url=None,
        redoc_url=None,
    )
    app.middleware("http")(middleware(obs))
    _errors.install(app)
    app.include_router(health.router)
    # The API's routes refuse a query parameter they do not declare (the operations endpoints,
    # probed by load balancers and scrapers, take none and change no meaning by one).
    app.include_router(events.router, dependencies=[Depends(known_query)])
    app.include_router(reads.router, dependencies=[Depends(known_query)])
    app.include_router(predict.router, dependencies=[Depends(known_query)])
    mount_dashboard(app, get_state)
    return app
