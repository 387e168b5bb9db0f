"""The dashboard in a real browser (issue 16, item 5): Debian's Chromium, driven by Playwright,
against ``assay serve`` on 127.0.0.1 (fixtures in conftest.py).

Every test runs on a guarded page: a request to any host but 127.0.0.1 is aborted and fails the
test, and so does any console error (a CSP violation is one) or uncaught page error. The whole
module runs in one xdist worker (``--dist loadscope`` keeps a module together), so the
workspace and the server are made once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from dashboard_world import Guard, World, record, screenshot, sign_in

pytestmark = pytest.mark.browser

#: Chromium logs a refused page (a 403 or 404 document) as a console error.
REFUSED = r"Failed to load resource: the server responded with a status of 40[34]"


def test_an_unsigned_visit_is_sent_to_sign_in_and_comes_back(guard: Guard, world: World) -> None:
    page = guard.page
    page.goto(f"/ui/tenants/{world.tenant}")
    assert re.search(r"/ui/login\?next=", page.url), page.url
    page.get_by_label("API key").fill(world.admin_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/ui/tenants/{world.tenant}")
    assert world.tenant in page.locator("h1").inner_text()


def test_a_wrong_key_is_refused_with_a_message(guard: Guard, world: World) -> None:
    guard.expected.append(r"status of 401")
    page = guard.page
    page.goto("/ui/login")
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").is_visible()
    assert "unknown" in page.get_by_role("alert").inner_text()
    assert "/ui/login" in page.url


def test_the_fleet_lists_every_tenant_for_an_admin(
    guard: Guard, world: World, artefacts: Path
) -> None:
    page = guard.page
    sign_in(page, world.admin_key)
    page.goto("/ui/")
    for tenant in (world.tenant, world.other_tenant):
        assert page.get_by_role("link", name=tenant, exact=True).count() >= 1
    screenshot(page, artefacts, "fleet")


def test_a_tenant_key_sees_its_own_tenant_only(guard: Guard, world: World) -> None:
    guard.expected.append(REFUSED)
    page = guard.page
    sign_in(page, world.tenant_key)
    page.goto("/ui/")
    assert page.get_by_role("link", name=world.tenant, exact=True).count() >= 1
    assert page.get_by_role("link", name=world.other_tenant, exact=True).count() == 0
    answer = page.goto(f"/ui/tenants/{world.other_tenant}")
    assert answer is not None
    assert answer.status in (403, 404), answer.status
    assert world.other_tenant not in _visible_text(page)


def test_first_contentful_paint_of_the_fleet_is_under_a_second(
    guard: Guard, world: World, artefacts: Path
) -> None:
    page = guard.page
    sign_in(page, world.admin_key)
    page.goto("/ui/")
    page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0")
    fcp = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime")
    record(artefacts, "fleet_first_contentful_paint_ms", fcp)
    # The goal for the test browser, with its generous bound: not a timing of our code.
    assert 0 < fcp < 1000, f"first contentful paint of the fleet page took {fcp:.0f} ms"


def _visible_text(page: Any) -> str:
    return str(page.locator("body").inner_text())
