"""Fixtures of the dashboard's browser tests (helpers and the world they read: dashboard_world.py).

One workspace and one ``assay serve`` on 127.0.0.1 for the whole run; pytest-playwright's
``browser`` launches Debian's Chromium (``/usr/bin/chromium``, or ``$ASSAY_CHROMIUM``) headless,
and every test's page is a :class:`~dashboard_world.Guard`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

# The suite runs with ``--import-mode=importlib``: these folders on ``sys.path`` let the tests
# import this folder's helpers and share the integration tests' real-server helper.
sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
sys.path.insert(0, str(Path(__file__).parent))

from dashboard_world import (
    CHROMIUM,
    LOCAL_HOSTS,
    VIEWPORT,
    Guard,
    World,
    build_world,
    require_chromium,
)
from live_server import running_server


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    require_chromium()
    return build_world(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(scope="session")
def server_url(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``assay serve`` on the world's workspace, on a free port of 127.0.0.1."""
    stderr = tmp_path_factory.mktemp("server") / "stderr.log"
    with running_server(world.workspace, stderr) as (_, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("ASSAY_ARTEFACTS")
    path = Path(where) if where else tmp_path_factory.getbasetemp() / "artefacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


# pytest-playwright keeps Playwright (and with it the sync API's asyncio event loop, running in
# the main thread) for the whole session: every test that a worker runs after these, and calls
# asyncio.run(), would fail with "cannot be called from a running event loop". Here Playwright,
# the browser type and the browser live for this folder's module only, and stop with it.
@pytest.fixture(scope="module")
def playwright(_pw_api_request_contexts: Any) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    if _pw_api_request_contexts:
        _pw_api_request_contexts.instrument(pw)
    yield pw
    pw.stop()


@pytest.fixture(scope="module")
def browser_type(playwright: Any, browser_name: str) -> Any:
    return getattr(playwright, browser_name)


@pytest.fixture(scope="module")
def launch_browser(browser_type_launch_args: dict[str, Any], browser_type: Any) -> Any:
    def launch(**kwargs: Any) -> Any:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="module")
def browser(launch_browser: Any) -> Iterator[Any]:
    b = launch_browser()
    yield b
    b.close()


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright's launch options: Debian's Chromium, headless."""
    require_chromium()
    return {"executable_path": str(CHROMIUM), "headless": True}


@pytest.fixture(scope="module")
def browser_context_args(server_url: str) -> dict[str, Any]:
    """Every context's options (pytest-playwright's own, which would need its session-long
    Playwright for device presets, are not used: no device is emulated here)."""
    return {"base_url": server_url, "viewport": VIEWPORT}


@pytest.fixture
def guard(page: Any) -> Iterator[Guard]:
    """The test's page, guarded: requests leaving 127.0.0.1 are aborted and recorded, console
    errors (CSP violations among them) and uncaught page errors collected; both must be empty
    at the end of the test."""
    g = Guard(page)

    def route(r: Any) -> None:
        url = r.request.url
        parts = urlsplit(url)
        if parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname not in LOCAL_HOSTS:
            g.outside.append(url)
            r.abort()
        else:
            r.continue_()

    # On the context, so that every page the test opens is guarded.
    page.context.route("**/*", route)
    page.context.on("console", lambda m: g.errors.append(m.text) if m.type == "error" else None)
    page.context.on("weberror", lambda e: g.errors.append(f"page error: {e.error}"))
    yield g
    assert g.outside == [], f"requests left 127.0.0.1 (aborted): {g.outside}"
    assert g.unexpected_errors() == [], f"console or page errors: {g.unexpected_errors()}"
