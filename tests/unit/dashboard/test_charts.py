"""The chart assets: the vendored uPlot is the file its README names (hashes), served with the
right content types from the package, and no template of the pages drawn by charts.js holds
an inline script or style the Content-Security-Policy would refuse."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import assay
from assay.dashboard._render import STATIC, TEMPLATES
from assay.service import create_app

VENDOR = STATIC / "vendor"
#: The templates of the pages with charts, and their includes (D2's pages).
TEMPLATE_NAMES = (
    "incident.html",
    "drift.html",
    "models.html",
    "model_version.html",
    "sessions.html",
    "session.html",
    "_rollouts.html",
    "_model_incidents.html",
    "rollout.html",
)


def test_vendored_files_match_the_hashes_in_their_readme() -> None:
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"\| `(uplot/[^`]+)` \| `([0-9a-f]{64})` \|", readme))
    assert set(listed) == {"uplot/uPlot.iife.min.js", "uplot/uPlot.min.css", "uplot/LICENSE"}
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    licence = (VENDOR / "uplot" / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("The MIT License (MIT)")
    assert "| [uPlot](https://github.com/leeoniya/uPlot) by Leon Sorokin | 1.6.32 | MIT" in readme
    head = (VENDOR / "uplot" / "uPlot.iife.min.js").read_text(encoding="utf-8")[:60]
    assert head.startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")


def test_templates_have_no_inline_script_style_or_handler() -> None:
    for name in TEMPLATE_NAMES:
        text = (TEMPLATES / name).read_text(encoding="utf-8")
        assert not re.search(r"\sstyle\s*=", text), name
        assert not re.search(r"\son[a-z]+\s*=", text), name
        assert "<style" not in text, name
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (name, tag)


def test_charts_script_reads_the_convention_and_sets_an_accessible_label() -> None:
    script = (STATIC / "charts.js").read_text(encoding="utf-8")
    for kind in ("line", "band", "spark", "heat", "bar", "hist", "curve"):
        assert re.search(rf"\b{kind}:\s*build|kind === \"{kind}\"", script), kind
    assert 'setAttribute("role", "img")' in script
    assert 'setAttribute("aria-label"' in script
    assert "innerHTML" not in script  # data is never parsed as markup
    assert "eval(" not in script
    assert "new Function" not in script


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path = tmp_path_factory.mktemp("charts") / "ws"
    with assay.Workspace.open(path, create=True):
        pass
    with TestClient(create_app(path), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    ("url", "media", "source"),
    [
        (
            "/ui/static/vendor/uplot/uPlot.iife.min.js",
            "javascript",
            "vendor/uplot/uPlot.iife.min.js",
        ),
        ("/ui/static/vendor/uplot/uPlot.min.css", "text/css", "vendor/uplot/uPlot.min.css"),
        ("/ui/static/charts.js", "javascript", "charts.js"),
    ],
)
def test_assets_are_served_with_their_content_type_and_bytes(
    client: TestClient, url: str, media: str, source: str
) -> None:
    client.cookies.clear()
    r = client.get(url)  # no sign-in needed for static files
    assert r.status_code == 200
    assert media in r.headers["content-type"]
    assert r.content == (STATIC / source).read_bytes()
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in r.headers["content-security-policy"]


def test_every_template_named_here_exists() -> None:
    assert all(Path(TEMPLATES / name).is_file() for name in TEMPLATE_NAMES)
