"""`assay demo` ends with the dashboard: the serve command, the URL and a key to sign in with."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from assay.cli import app
from assay.store import Workspace

runner = CliRunner()


def test_the_demo_ends_with_the_dashboard_url_and_an_admin_read_key(tmp_path: Path) -> None:
    args = ["demo", "--dir", str(tmp_path / "demo"), "--tenants", "2", "--users", "5"]
    result = runner.invoke(app, [*args, "--days", "14", "--intent", "none", "--no-rollout"])
    assert result.exit_code == 0, result.output
    lines = result.stderr.rstrip().splitlines()
    workspace = tmp_path / "demo" / "workspace"
    assert f"  assay serve --workspace {workspace}" in lines[-4:]
    assert "http://127.0.0.1:8000/ui/" in lines[-2]
    key = lines[-1].strip()
    with Workspace.open(workspace) as ws:
        signed = ws.keys.verify(key)
    assert signed is not None, "the printed key is not a key of the demo's workspace"
    assert (signed.tenant_id, signed.scopes) == (None, ("read",))
    assert key not in result.stdout  # data on stdout, the key with the messages on stderr
