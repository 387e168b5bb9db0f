"""The service once as a real server: ``assay serve`` on 127.0.0.1, spoken to with httpx.

Everything else about the service is tested in process (TestClient); this checks what only a
real server shows: gzip NDJSON over a socket, and a SIGTERM while requests are in flight
(every one is answered, and whatever was acknowledged is stored).
"""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from live_server import running_server

from assay.store import Workspace

TENANT = "acme"
IN_FLIGHT = 8
EVENTS_PER_REQUEST = 50
NDJSON_GZIP = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}


def _event(event_id: str, when: datetime, **extra: object) -> dict[str, object]:
    return {
        "event_id": event_id,
        "event_time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "tenant_id": TENANT,
        "user_id": "u-1",
        "session_id": "s-1",
        "event_type": "turn",
        **extra,
    }


def _ndjson_gzip(events: list[dict[str, object]]) -> bytes:
    return gzip.compress(b"".join(json.dumps(e).encode() + b"\n" for e in events))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, str, Path, Path]]:
    """A running ``assay serve``: (process, base url, ingest+read key, workspace, stderr file)."""
    root = tmp_path / "ws"
    with Workspace.init(root) as ws:
        _, key = ws.keys.create(tenant_id=TENANT, scopes=("ingest", "read"))
    err_path = tmp_path / "server.err"
    with running_server(root, err_path, timeout=30) as (proc, port):
        yield proc, f"http://127.0.0.1:{port}", key, root, err_path


def test_real_server_answers_gzip_ndjson_and_drains_requests_in_flight_on_sigterm(
    server: tuple[subprocess.Popen[bytes], str, str, Path, Path],
) -> None:
    proc, url, key, root, err_path = server
    auth = {"Authorization": f"Bearer {key}"}
    now = datetime.now(UTC) - timedelta(minutes=1)
    first = [
        _event("a-1", now, text="hello there"),
        _event("a-2", now, event_type="session_start"),
        _event("a-3", now, event_type="no_such_type"),
        _event("a-1", now, text="hello there"),
    ]
    with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
        answer = client.post("/v1/events", content=_ndjson_gzip(first), headers=NDJSON_GZIP)
    assert answer.status_code == 207
    body = answer.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 1)
    assert [(r["index"], r["event_id"], r["status"]) for r in body["results"]] == [
        (0, "a-1", "accepted"),
        (1, "a-2", "accepted"),
        (2, "a-3", "rejected"),
        (3, "a-1", "duplicate"),
    ]
    error = body["results"][2]["error"]
    assert (error["code"], error["field"]) == ("invalid_event", "event_type")

    # Requests whose last bytes are held back until the server has been told to stop.
    release = threading.Event()
    answers: dict[int, httpx.Response | BaseException] = {}
    bodies = [
        _ndjson_gzip(
            [_event(f"b-{k}-{i}", now, text=f"in flight {k}") for i in range(EVENTS_PER_REQUEST)]
        )
        for k in range(IN_FLIGHT)
    ]

    def held_back(data: bytes) -> Iterator[bytes]:
        yield data[:-8]
        release.wait(30)
        yield data[-8:]

    def send(k: int) -> None:
        try:
            with httpx.Client(base_url=url, headers=auth, timeout=60) as client:
                answers[k] = client.post(
                    "/v1/events", content=held_back(bodies[k]), headers=NDJSON_GZIP
                )
        except BaseException as exc:
            answers[k] = exc

    threads = [threading.Thread(target=send, args=(k,)) for k in range(IN_FLIGHT)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 15
        # Their bodies are still arriving (they take no shared slot until they have).
        while httpx.get(f"{url}/healthz", timeout=5).json()["receiving"] < IN_FLIGHT:
            assert time.monotonic() < deadline, "the requests did not all reach the server"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        # The server stops listening before it has drained what is in flight.
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
            except httpx.TransportError:
                break
            assert time.monotonic() < deadline, "the server still accepts after SIGTERM"
            time.sleep(0.01)
        assert proc.poll() is None, "the server exited with requests in flight"
    finally:
        release.set()
        for t in threads:
            t.join(timeout=60)
    exit_code = proc.wait(timeout=30)

    statuses = {
        k: a.status_code if isinstance(a, httpx.Response) else repr(a) for k, a in answers.items()
    }
    assert statuses == dict.fromkeys(range(IN_FLIGHT), 200)
    for k in range(IN_FLIGHT):
        result = answers[k].json()  # type: ignore[union-attr]
        assert result["accepted"] == EVENTS_PER_REQUEST
    with Workspace.open(root) as ws:
        stored = ws.read("events")["event_id"].to_pylist()
        texts = ws.read("content")["event_id"].to_pylist()
    expected = {"a-1", "a-2"} | {
        f"b-{k}-{i}" for k in range(IN_FLIGHT) for i in range(EVENTS_PER_REQUEST)
    }
    assert sorted(stored) == sorted(expected)
    log = err_path.read_text()
    assert "hello there" not in log
    assert "in flight" not in log
    # One content row per stored event with text: a-1's repeat in the first batch is a
    # duplicate, its text must not be stored a second time.
    assert sorted(texts) == sorted(expected - {"a-2"})
    # A graceful stop is a normal exit (docs/cli.md: 0 "Done"), not death by the signal.
    assert exit_code == 0, f"assay serve exited with {exit_code} after SIGTERM"
