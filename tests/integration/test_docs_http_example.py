"""The Python example of docs/http.md runs against a real server and does what it says."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from assay.store import Workspace

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_httpx_example_of_the_http_docs_runs_against_a_real_server(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "http.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    ws_path = tmp_path / "ws"
    with Workspace.init(ws_path) as ws:
        _, key = ws.keys.create(tenant_id="acme", scopes=("ingest", "read"))
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from assay.cli import main; main()",
            "serve",
            "-w",
            str(ws_path),
            "--port",
            str(port),
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "the server did not start in 60 s"
            time.sleep(0.2)
        run = subprocess.run(
            [sys.executable, "-c", example],
            env={**env, "ASSAY_URL": f"http://127.0.0.1:{port}", "ASSAY_KEY": key},
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
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
    # SIGTERM drains and ends the server normally.
    assert server.returncode == 0
