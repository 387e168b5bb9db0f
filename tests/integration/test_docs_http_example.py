"""The Python example of docs/http.md runs against a real server and does what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from live_server import running_server, server_env

from assay.store import Workspace

ROOT = Path(__file__).resolve().parents[2]


def test_httpx_example_of_the_http_docs_runs_against_a_real_server(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "http.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    ws_path = tmp_path / "ws"
    with Workspace.init(ws_path) as ws:
        _, key = ws.keys.create(tenant_id="acme", scopes=("ingest", "read"))
    with running_server(ws_path, tmp_path / "server.err", "--no-access-log") as (server, port):
        run = subprocess.run(
            [sys.executable, "-c", example],
            env={**server_env(), "ASSAY_URL": f"http://127.0.0.1:{port}", "ASSAY_KEY": key},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        # Three new events accepted, none rejected; then today's DAU row of acme: one user.
        assert lines[0] == "3 0 0"
        assert "'tenant_id': 'acme'" in lines[-1]
        assert "'dau': 1" in lines[-1]
        # SIGTERM drains and ends the server normally.
        server.terminate()
        assert server.wait(timeout=30) == 0
