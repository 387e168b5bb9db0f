"""What the dashboard's browser tests share (their fixtures are in conftest.py): the world
they read, the guard of each page, and sign-in, screenshot and measure helpers.

The browser tests drive Debian's Chromium with Playwright against a real ``assay serve`` on
127.0.0.1.

One small workspace is built for the whole run (``assay.synth`` with its injected incidents,
ingested and scanned as the demo does), with an admin ``read`` key and a tenant ``read`` key;
one server serves it. Every test gets a :class:`Guard`: a page whose requests to any host
other than 127.0.0.1 are aborted and recorded, and whose console errors and page errors are
collected; both lists must be empty when the test ends.

Chromium comes from Debian (``apt-get install -y chromium``), not from ``playwright install``
(which downloads, and cannot work here). Without it the tests skip, saying so; with ``CI=true``
they fail instead, since CI must run them (``.ci/run`` installs Chromium).

Artefacts (screenshots, ``measures.json``) go to ``$ASSAY_ARTEFACTS`` (default:
``artefacts/`` in the run's pytest temporary folder); with ``ASSAY_UPDATE_SCREENSHOTS=1`` the
screenshots are also written to ``docs/img/`` for the docs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("ASSAY_CHROMIUM", "/usr/bin/chromium"))
ON_CI = os.environ.get("CI", "").lower() in {"true", "1", "yes"}
DOCS_IMG = Path(__file__).parents[2] / "docs" / "img"
#: The docs' screenshots: one viewport, PNG, and small enough to keep in git.
VIEWPORT = {"width": 1280, "height": 800}
MAX_SCREENSHOT_BYTES = 300_000
#: The synthetic world's last day: fixed, so the incidents fall on the same days every run.
END = dt.date(2026, 2, 25)
LOCAL_HOSTS = {"127.0.0.1"}


def require_chromium() -> None:
    """Skip without Chromium, saying where it was looked for; fail instead under CI=true."""
    if CHROMIUM.exists():
        return
    reason = (
        f"Chromium not found at {CHROMIUM} (expected Debian's package: "
        "`apt-get install -y chromium`, or set ASSAY_CHROMIUM to its path)"
    )
    if ON_CI:
        pytest.fail(f"{reason}; CI=true, so the browser tests must run: .ci/run installs it")
    pytest.skip(reason)


@dataclass(frozen=True)
class World:
    """The workspace the browser tests read, and what is known about it."""

    workspace: Path
    admin_key: str
    #: A tenant key of ``tenant`` (scope ``read``).
    tenant_key: str
    #: The tenant of synth's injected handoff jump (a new model_version in one locale).
    tenant: str
    #: The tenant of synth's injected outage, which the tenant key must not see.
    other_tenant: str
    #: Incident id -> its key (``tenant=...`` or ``release|field=value``).
    incidents: dict[int, str]
    #: The incident of ``tenant`` the scan opened for the injected release, and its cause.
    release_incident: int
    release: tuple[str, str]
    #: The incident of ``other_tenant``'s outage.
    outage_incident: int
    truth: dict[str, Any]


def build_world(root: Path) -> World:
    """Synthesise 6 tenants x 42 days with synth's injected incidents, ingest, scan by tenant,
    locale and model_version (as the demo does), and make the keys. About 20 s here."""
    from assay._api import Workspace
    from assay.anomaly import scan_workspace
    from assay.ingest import ingest_paths
    from assay.profiles import build_profiles
    from assay.synth import SynthConfig, write

    config = SynthConfig(tenants=6, users=100, days=42, seed=3, end=END)
    out = write(root / "data", config, format="parquet")
    injected = {i["kind"]: i for i in out.truth["incidents"]}
    jump, outage = injected["handoff_jump"], injected["outage"]
    tenant, other = str(jump["tenant_id"]), str(outage["tenant_id"])
    release = ("model_version", str(jump["model_version"]))
    with Workspace.open(root / "ws", create=True) as ws:
        ingest_paths(ws, [root / "data"])
        build_profiles(ws)  # for the Drift page
        for by in (None, "locale", "model_version"):
            scan_workspace(ws, since=config.start, by=by)
        found = ws.incidents.list()
        _, admin = ws.keys.create(tenant_id=None, scopes=("read",))
        _, tenant_key = ws.keys.create(tenant_id=tenant, scopes=("read",))
    incidents = {i.id: i.key for i in found}
    by_key = {(i.key, i.tenant_id): i.id for i in found}
    want = [(f"release|{release[0]}={release[1]}", tenant), (f"tenant={other}", other)]
    missing = [k for k in want if k not in by_key]
    assert not missing, (
        f"the scan of the browser tests' world opened {sorted(map(str, by_key))}, expected "
        f"among them {missing} (synth's injected release and outage): the world needs changing"
    )
    return World(
        workspace=root / "ws",
        admin_key=admin,
        tenant_key=tenant_key,
        tenant=tenant,
        other_tenant=other,
        incidents=incidents,
        release_incident=by_key[want[0]],
        release=release,
        outage_incident=by_key[want[1]],
        truth=out.truth,
    )


@dataclass
class Guard:
    """A page, what it tried to fetch from elsewhere, and its console and page errors."""

    page: Any
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Console errors a test expects (a refused page logs its 403), as regular expressions.
    expected: list[str] = field(default_factory=list)

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(re.search(p, e) for p in self.expected)]


def sign_in(page: Any, key: str) -> None:
    """Sign in through the login form with ``key``; return on the page it leads to."""
    page.goto("/ui/login")
    page.get_by_label(re.compile("key", re.I)).fill(key)
    page.get_by_role("button", name=re.compile("sign in", re.I)).click()
    page.wait_for_url(re.compile(r"/ui/(?!login)"))


def screenshot(page: Any, artefacts: Path, name: str) -> Path:
    """Save the viewport as ``dashboard-NAME.png`` among the artefacts (and in docs/img/ with
    ASSAY_UPDATE_SCREENSHOTS=1); fail if it is too big to keep in the docs."""
    path = artefacts / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=False)
    size = path.stat().st_size
    assert size < MAX_SCREENSHOT_BYTES, (
        f"the {name} screenshot is {size:,} bytes (expected < {MAX_SCREENSHOT_BYTES:,}); "
        "a page this busy at 1280x800 needs a simpler first screen"
    )
    if os.environ.get("ASSAY_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        (DOCS_IMG / path.name).write_bytes(path.read_bytes())
    return path


def record(artefacts: Path, name: str, value: Any) -> None:
    """Add ``name: value`` to the artefacts' ``measures.json``."""
    path = artefacts / "measures.json"
    measures = json.loads(path.read_text()) if path.exists() else {}
    measures[name] = value
    path.write_text(json.dumps(measures, indent=2, sort_keys=True))
