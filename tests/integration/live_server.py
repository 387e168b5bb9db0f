"""One way for integration tests to run a real ``assay serve`` on 127.0.0.1.

The server is a child process (``python -c 'from assay.cli import main; main()' serve``) on a
free port, with this test process's ``sys.path`` and without any ``ASSAY_*`` variable of the
environment (so that a developer's ``ASSAY_WORKSPACE`` cannot leak in); its stderr goes to a
file the test can read. :func:`running_server` starts it, waits for ``/healthz`` and kills it
when the block ends, whatever happened inside.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

SERVE = [sys.executable, "-c", "from assay.cli import main; main()", "serve"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env() -> dict[str, str]:
    """The environment of a child ``assay``: this one, less ``ASSAY_*``, with our path."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")},
        "PYTHONPATH": os.pathsep.join(sys.path),
        "TERM": "dumb",
    }


def start_server(root: Path, port: int, stderr: Path, *args: str) -> subprocess.Popen[bytes]:
    """``assay serve -w root --port port [args]``, its stderr appended to ``stderr``."""
    with stderr.open("ab") as err:
        return subprocess.Popen(
            [*SERVE, "-w", str(root), "--host", "127.0.0.1", "--port", str(port), *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=server_env(),
        )


def wait_healthy(
    proc: subprocess.Popen[bytes], port: int, stderr: Path, *, timeout: float = 60
) -> None:
    """Return once ``/healthz`` answers 200; fail the test if the server exits or is too slow."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{stderr.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"the server did not answer /healthz within {timeout:g} s")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Kill the server if it still runs, and reap it."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def running_server(
    root: Path, stderr: Path, *args: str, timeout: float = 60
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A healthy ``assay serve`` on the workspace ``root``: (process, port); killed on exit."""
    port = free_port()
    proc = start_server(root, port, stderr, *args)
    try:
        wait_healthy(proc, port, stderr, timeout=timeout)
        yield proc, port
    finally:
        stop(proc)
