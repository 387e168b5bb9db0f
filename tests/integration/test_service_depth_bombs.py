"""Depth bombs over HTTP: a real ``assay serve`` answers them per event and stays up.

A body with one line nesting 20,000 arrays (40 KB) used to crash the server inside
``pyarrow.json`` (SIGSEGV: no answer, every tenant down). The server runs as a child process
here, so that a regression fails these tests (a dead server answers nothing) instead of
killing pytest.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import running_server

from assay.store import Settings, Workspace

TENANT = "acme"
RAW_USER = "rawuser-depth-4242"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    key: str
    root: Path
    stderr: Path

    def post(self, body: bytes, content_type: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": content_type}
        return httpx.post(f"{self.url}/v1/events", content=body, headers=headers, timeout=120)

    def alive(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("depth")
    root = tmp / "ws"
    with Workspace.init(root) as ws:
        _, key = ws.keys.create(tenant_id=TENANT, scopes=("ingest", "read"))
    # Room for a million nested objects (6 MB); the default limit is 5 MiB.
    settings = Settings.from_mapping({"http_fsync": False, "http_max_body_bytes": 16 << 20})
    (root / "assay.toml").write_text(settings.to_toml(), encoding="utf-8")
    err_path = tmp / "server.err"
    with running_server(root, err_path) as (proc, port):
        yield Server(proc, f"http://127.0.0.1:{port}", key, root, err_path)


def _event(event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_time": (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tenant_id": TENANT,
        "user_id": RAW_USER,
        "session_id": "s-1",
        "event_type": "turn",
    }


def _bomb(event_id: str, depth: int, objects: bool) -> bytes:
    inner = '{"a": ' * depth + "1" + "}" * depth if objects else "[" * depth + "]" * depth
    return json.dumps(_event(event_id))[:-1].encode() + b', "attributes": ' + inner.encode() + b"}"


@pytest.mark.parametrize("depth", [10**5, 10**6])
@pytest.mark.parametrize("objects", [False, True], ids=["arrays", "objects"])
@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/json"])
def test_a_depth_bomb_is_rejected_at_its_index_and_its_neighbours_are_stored(
    server: Server, depth: int, objects: bool, content_type: str
) -> None:
    tag = f"{depth}-{'o' if objects else 'a'}-{content_type.rsplit('/', 1)[1]}"
    records = [
        json.dumps(_event(f"before-{tag}")).encode(),
        _bomb(f"bomb-{tag}", depth, objects),
        json.dumps(_event(f"after-{tag}")).encode(),
    ]
    if content_type == "application/json":
        body = b"[" + b",\n".join(records) + b"]"
    else:
        body = b"\n".join(records) + b"\n"
    try:
        answer = server.post(body, content_type)
    except httpx.TransportError as exc:
        pytest.fail(f"no answer ({exc!r}); server exit code {server.proc.poll()}")
    assert answer.status_code == 207, answer.text[:2000]
    got = answer.json()
    assert (got["accepted"], got["duplicates"], got["rejected"]) == (2, 0, 1)
    assert [(r["index"], r["status"]) for r in got["results"]] == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "accepted"),
    ]
    error = got["results"][1]["error"]
    assert (error["code"], error["field"], error["rule"]) == (
        "unreadable_event",
        "attributes",
        "depth",
    )
    assert "deeper than 64 levels" in error["message"]
    assert server.alive()
    with Workspace.open(server.root) as ws:
        stored = set(ws.read("events").column("event_id").to_pylist())
        rules = ws.read("quarantine").column("rule").to_pylist()
    assert {f"before-{tag}", f"after-{tag}"} <= stored
    assert f"bomb-{tag}" not in stored
    assert "depth" in rules
