"""The dashboard's routes under ``/ui/``, mounted on the service's app by :func:`mount`.

Each page module (``_fleet.py``, ``_tenant.py``, ...) has a ``router`` (an ``APIRouter``) whose
routes take the signed-in user through the :data:`~assay.dashboard._auth.User` dependency (or
:data:`~assay.dashboard._auth.CsrfUser` for a ``POST``); list the module in :data:`PAGES` to
mount it. The sign-in pages, the static files and the error pages are set up here.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from assay.dashboard._auth import (
    COOKIE,
    Backend,
    CsrfUser,
    SecurityHeaders,
    Sessions,
    SignInRequired,
    UiError,
    UiState,
    backend,
    form_data,
    safe_next,
    same_origin,
    ui_state,
)
from assay.dashboard._render import STATIC, render

#: The page modules of the dashboard (each with a ``router``), mounted in this order.
PAGES: tuple[str, ...] = ("_fleet", "_tenant", "_incident", "_sessions", "_drift", "_models")

router = APIRouter(include_in_schema=False)


@router.get("/ui")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/login")
def login_page(
    request: Request, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    return render(request, "login.html", next=safe_next(next), error=None)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    same_origin(request)
    form = await form_data(request)
    target = safe_next(form.get("next"))
    key = backend(request).keys.verify(form.get("api_key", "").strip())
    if key is None or "read" not in key.scopes:
        return render(
            request,
            "login.html",
            status_code=401,
            next=target,
            error="That key is unknown, revoked, or has no read scope. Paste a key made with "
            "`assay keys create --scope read`.",
        )
    token, _ = ui_state(request).sessions.open(key)
    answer = RedirectResponse(target, status_code=303)
    answer.set_cookie(
        COOKIE,
        token,
        max_age=int(ui_state(request).sessions.lifetime),
        path="/ui",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return answer


@router.post("/ui/logout")
def logout(request: Request, user: CsrfUser) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        ui_state(request).sessions.close(token)
    answer = RedirectResponse("/ui/login", status_code=303)
    answer.delete_cookie(
        COOKIE, path="/ui", secure=request.url.scheme == "https", httponly=True, samesite="strict"
    )
    return answer


def mount(
    app: FastAPI,
    backend: Callable[[Request], Backend],
    *,
    session_hours: float = 8.0,
) -> None:
    """Serve the dashboard under ``/ui/`` on ``app``; ``backend(request)`` gives the service's
    keys and reader handles. Sessions last ``session_hours``."""
    if not session_hours > 0:
        raise ValueError(f"session_hours must be > 0 (got {session_hours!r})")
    app.state.assay_ui = UiState(backend, Sessions(session_hours * 3600.0))
    app.include_router(router)
    for name in PAGES:
        module = importlib.import_module(f"assay.dashboard.{name}")
        app.include_router(module.router, include_in_schema=False)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(f"/ui/login?{_query(next=exc.next_url)}", status_code=303)

    @app.exception_handler(UiError)
    async def ui_error(request: Request, exc: UiError) -> Response:
        return render(
            request, "error.html", status_code=exc.status, title=exc.title, message=exc.message
        )

    # Under /ui a missing page or a malformed query is a page too; the API keeps its JSON.
    api_http = app.exception_handlers.get(StarletteHTTPException, http_exception_handler)
    api_invalid = app.exception_handlers.get(
        RequestValidationError, request_validation_exception_handler
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not _is_ui(request):
            return await _answer(api_http(request, exc))
        title, message = _HTTP_PAGES.get(
            exc.status_code, ("Error", "This request could not be answered.")
        )
        page = render(
            request, "error.html", status_code=exc.status_code, title=title, message=message
        )
        page.headers.update(getattr(exc, "headers", None) or {})
        return page

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if not _is_ui(request):
            return await _answer(api_invalid(request, exc))
        names = sorted({str(e["loc"][-1]) for e in exc.errors() if e.get("loc")})
        return render(
            request,
            "error.html",
            status_code=400,
            title="Bad address",
            message=f"The value of {', '.join(names)[:200] or 'a parameter'} in the address is "
            "not valid here (a page number is a whole number from 1, a tenant id has 1 to "
            "128 characters). Fix it in the address, or start again from the fleet.",
        )


_HTTP_PAGES: dict[int, tuple[str, str]] = {
    404: (
        "Not found",
        "There is no page at this address. Check the link, or start from the fleet.",
    ),
    405: ("Not allowed", "This address does not take that kind of request."),
}


async def _answer(result: Response | Awaitable[Response]) -> Response:
    return await result if inspect.isawaitable(result) else result


def _is_ui(request: Request) -> bool:
    path = request.url.path
    return path == "/ui" or path.startswith("/ui/")


def _query(**params: str) -> str:
    return urlencode(params)
