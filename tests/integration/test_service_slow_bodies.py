"""Slow and broken bodies against a real ``assay serve`` on 127.0.0.1 (issue 18, item 2 and 6).

A client that sends its headers and then trickles its body must not hold the ingest slots every
tenant shares, must be cut off by the body deadline (small here: ``http_body_timeout_seconds``
of 3 s), and a client that goes away mid-body is an aborted request in the log and the metrics,
not an error with a traceback. Sockets are raw (the point is what an ordinary client does not
do); every loop is bounded and every socket has a timeout, so each test stops by itself within
a few seconds.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from live_server import running_server

from assay.store import Settings, Workspace

SLOW_SOCKETS = 6
#: The deadline the server is given for a body here (plus 1 s per 1,000 bytes received).
BODY_TIMEOUT = 3.0
#: The deadline for a request's headers here.
HEADER_TIMEOUT = 1.0


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    keys: dict[str, str]
    err: Path

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Authorization": f"Bearer {self.keys[key]}"},
            timeout=10,
        )


def _event(tenant: str, event_id: str) -> dict[str, object]:
    when = datetime.now(UTC) - timedelta(minutes=5)
    return {
        "event_id": event_id,
        "event_time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tenant_id": tenant,
        "user_id": "u-1",
        "session_id": "s-1",
        "event_type": "turn",
    }


@contextmanager
def _serving(tmp: Path) -> Iterator[Server]:
    """``assay serve`` with 4 shared slots, 2 per key, a 3 s body deadline and 1 s for headers."""
    root = tmp / "ws"
    settings = {
        "http_fsync": False,
        "http_queue_requests": 4,
        "http_key_requests": 2,
        "http_body_timeout_seconds": BODY_TIMEOUT,
        "http_body_min_bytes_per_second": 1000,
        "http_header_timeout_seconds": HEADER_TIMEOUT,
    }
    with Workspace.init(root) as ws:
        (root / "assay.toml").write_text(Settings.from_mapping(settings).to_toml())
        keys = {
            name: ws.keys.create(tenant_id=name, scopes=("ingest", "read"))[1]
            for name in ("slow", "other")
        }
    err = tmp / "server.err"
    with running_server(root, err, "--no-access-log") as (proc, port):
        yield Server(proc, port, keys, err)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own: for the tests that count in its metrics or read its log."""
    with _serving(tmp_path) as started:
        yield started


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that neither count in its metrics nor read its log (each
    starts from no request in flight, which they check): a start costs a few seconds."""
    with _serving(tmp_path_factory.mktemp("slow-bodies")) as started:
        yield started


def _start_slow_body(port: int, key: str, length: int = 100_000) -> socket.socket:
    """A request whose headers announce ``length`` bytes, and one byte of its body."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        (
            "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/x-ndjson\r\n"
            f"Content-Length: {length}\r\n\r\n{{"
        ).encode()
    )
    return sock


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or the socket's timeout passes)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return data


def _response(sock: socket.socket) -> bytes:
    """One answer: its head and its Content-Length bytes (the connection may stay open)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection mid-answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-answer"
        body += chunk
    return head + b"\r\n\r\n" + body


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


def _healthz(server: Server) -> dict[str, int]:
    body = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).json()
    return {"inflight": body["inflight"], "receiving": body.get("receiving", 0)}


def _wait_receiving(server: Server, count: int) -> None:
    deadline = time.monotonic() + 5
    while _healthz(server)["receiving"] + _healthz(server)["inflight"] < count:
        assert time.monotonic() < deadline, f"{count} slow bodies did not reach the server"
        time.sleep(0.02)


def test_slow_bodies_of_one_key_do_not_lock_other_tenants_out(server: Server) -> None:
    with ExitStack() as stack:
        socks = []
        for k in range(SLOW_SOCKETS):
            sock = _start_slow_body(server.port, server.keys["slow"])
            stack.callback(sock.close)
            socks.append(sock)
            if k == 1:  # two bodies arriving: the key's limit
                _wait_receiving(server, 2)
        # The key's own limit (2) refuses the rest of its sockets at once, with 429.
        refused = [_status(_response(sock)) for sock in socks[2:]]
        assert refused == [429] * (SLOW_SOCKETS - 2)
        assert _healthz(server) == {"inflight": 0, "receiving": 2}
        # Another tenant is served while the two slow bodies are still arriving.
        with server.client("other") as other:
            answer = other.post(
                "/v1/events",
                content=json.dumps(_event("other", "o-1")) + "\n",
                headers={"Content-Type": "application/x-ndjson"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["accepted"] == 1
        # The two slow bodies are cut off by the deadline: 408, and the connection closed.
        for sock in socks[:2]:
            raw = _answer(sock)
            assert _status(raw) == 408, raw[:300]
            assert b'"code":"body_timeout"' in raw
            assert b"connection: close" in raw.lower()
    assert _healthz(server) == {"inflight": 0, "receiving": 0}
    metrics = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5).text
    assert 'assay_ingest_refused_requests_total{reason="body_timeout"} 2.0' in metrics
    assert f'assay_ingest_refused_requests_total{{reason="key_busy"}} {SLOW_SOCKETS - 2}.0' in (
        metrics
    )


def test_a_body_that_keeps_arriving_at_the_minimum_rate_is_accepted(
    shared_server: Server,
) -> None:
    server = shared_server
    assert _healthz(server) == {"inflight": 0, "receiving": 0}
    # 16 events at about 4,000 bytes/s: slower than the 3 s deadline alone allows for the whole
    # body, faster than the 1,000 bytes/s minimum rate, so it must be read to the end.
    lines = [json.dumps({**_event("slow", f"s-{i}"), "text": "x" * 900}) for i in range(16)]
    body = ("\n".join(lines) + "\n").encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    with sock:
        sock.sendall(
            (
                "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                f"Authorization: Bearer {server.keys['slow']}\r\n"
                f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
        )
        for start in range(0, len(body), 400):
            sock.sendall(body[start : start + 400])
            time.sleep(0.1)
        raw = _answer(sock)
    assert _status(raw) == 200, raw[:300]
    assert b'"accepted":16' in raw.replace(b" ", b"")


def test_a_client_gone_mid_body_is_an_aborted_request_without_traceback(server: Server) -> None:
    for _ in range(2):
        sock = _start_slow_body(server.port, server.keys["slow"])
        _wait_receiving(server, 1)
        sock.close()
        deadline = time.monotonic() + 5
        while _healthz(server) != {"inflight": 0, "receiving": 0}:
            assert time.monotonic() < deadline, "the aborted request is still in flight"
            time.sleep(0.02)
    metrics = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5).text
    assert 'assay_http_aborted_requests_total{route="/v1/events"} 2.0' in metrics
    server.proc.terminate()
    server.proc.wait(timeout=30)
    log = server.err.read_text()
    assert "Traceback" not in log, log
    assert "ERROR" not in log.upper().replace('"LEVEL": "WARNING"', ""), log
    aborted = [line for line in log.splitlines() if "aborted request" in line]
    assert len(aborted) == 2, log


@pytest.mark.parametrize(
    "sent",
    [b"", b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"],
    ids=["nothing", "half the headers"],
)
def test_a_connection_slow_to_send_its_headers_is_closed(
    shared_server: Server, sent: bytes
) -> None:
    server = shared_server
    assert _healthz(server) == {"inflight": 0, "receiving": 0}
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(sent)
        for _ in range(3):  # a header line now and then, as slowloris does
            time.sleep(HEADER_TIMEOUT / 4)
            try:
                sock.sendall(b"X-Wait: 1\r\n" if sent else b"")
            except OSError:
                break
        # Closed without an answer well before the socket's own 10 s timeout.
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        except TimeoutError:
            pytest.fail("the server still holds a connection that never completed its headers")
        assert data == b""
    # A complete request on a new connection is served as before.
    with server.client("other") as other:
        assert other.get("/v1/tenants").status_code == 200
