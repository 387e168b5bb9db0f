"""A load client for ``POST /v1/events``: keep-alive connections, pre-encoded bodies, stdlib only.

Shared by ``http_ingest.py``, ``http_reliability.py`` and the reliability test
(``tests/integration/test_service_reliability.py``), which run it as a separate process so that
the client's CPU work is not charged to the server (and a server crash does not take the client
with it). Not a benchmark itself.

Modes (``python benchmarks/http_load.py MODE --help``):

``closed``
    Send every body of a bodies file once, over ``--connections`` keep-alive connections, each
    sending its next body as soon as the previous one is answered. Prints a JSON report: events
    accepted, duplicate and rejected (from the answers), HTTP statuses, wall time, latencies.
``paced``
    The same, open loop: body ``i`` is due at ``i / rate`` seconds after the start, whatever the
    answers; a body's latency runs from when it was due (not when a free connection sent it), so
    a server that falls behind shows it in the latencies.
``reliable``
    Send deterministic batches of new events (ids ``{prefix}-{client}-{batch}-{i}``, recent
    ``event_time``, a ``text``), one at a time, and retry the same bytes after a connection error,
    a 5xx or a 429 until the batch is acknowledged (200 or 207 whose every result is
    ``accepted`` or ``duplicate``). After each acknowledgement the ids the server acknowledged
    are appended to ``--log`` with flush and fsync, so the log never claims more than was
    acknowledged, even if this process dies. Log lines (JSON): ``{"sent": b}`` before the first
    attempt of batch ``b``; ``{"acked": b, "ids": [...], "accepted": n, "duplicates": d,
    "attempts": k}`` after it; ``{"failed": b, ...}`` when a batch got an answer that is not an
    acknowledgement nor retryable (e.g. a rejected event); ``{"done": ..., "errors": {...}}``
    at the end.

The answer's counts are read with a regular expression from its first bytes (the server writes
``accepted``, ``duplicates`` and ``rejected`` first), so that parsing a thousand results per
answer does not slow the client in ``closed`` and ``paced``; ``reliable`` parses the whole
answer to check each event's id and status.
"""

from __future__ import annotations

import argparse
import gzip as gzip_module
import http.client
import json
import os
import re
import resource
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CONTENT_TYPES = {"ndjson": "application/x-ndjson", "array": "application/json"}

_COUNTS = re.compile(rb'"accepted":\s*(\d+),\s*"duplicates":\s*(\d+),\s*"rejected":\s*(\d+)')

#: Statuses after which the same request is sent again.
RETRYABLE = frozenset({429, 500, 502, 503, 504})


# -- bodies ----------------------------------------------------------------------------------------
def encode_bodies(
    lines: Sequence[bytes], *, batch: int, kind: str, gzip: bool, level: int = 6
) -> list[bytes]:
    """Split JSON lines (one event each, no newline) into request bodies of ``batch`` events."""
    bodies = []
    for start in range(0, len(lines), batch):
        part = lines[start : start + batch]
        if kind == "ndjson":
            raw = b"\n".join(part) + b"\n"
        elif kind == "array":
            raw = b"[" + b",".join(part) + b"]"
        else:
            raise ValueError(f"kind is ndjson or array (got {kind!r})")
        bodies.append(gzip_module.compress(raw, level, mtime=0) if gzip else raw)
    return bodies


def write_bodies(path: Path, bodies: Sequence[bytes]) -> None:
    """Bodies as length-prefixed records (8-byte little-endian length, then the bytes)."""
    with path.open("wb") as f:
        for body in bodies:
            f.write(struct.pack("<Q", len(body)))
            f.write(body)


def read_bodies(path: Path) -> list[bytes]:
    data = path.read_bytes()
    bodies, at = [], 0
    while at < len(data):
        (n,) = struct.unpack_from("<Q", data, at)
        bodies.append(data[at + 8 : at + 8 + n])
        at += 8 + n
    return bodies


# -- one keep-alive connection ---------------------------------------------------------------------
class Connection:
    """One keep-alive HTTP/1.1 connection that reconnects after an error."""

    def __init__(self, host: str, port: int, key: str, *, timeout: float = 60.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.headers = {"Authorization": f"Bearer {key}"}
        self._conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """Send one request; an ``OSError`` or ``HTTPException`` closes the connection."""
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self._conn.request("POST", path, body=body, headers={**self.headers, **headers})
            response = self._conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, data

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def body_headers(kind: str, gzip: bool) -> dict[str, str]:
    headers = {"Content-Type": CONTENT_TYPES[kind]}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    return headers


# -- closed and paced load -------------------------------------------------------------------------
@dataclass
class Report:
    """What a run of many requests saw."""

    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    retries: int = 0
    warmup_accepted: int = 0
    cpu_seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "requests": self.requests,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "retries": self.retries,
            "warmup_accepted": self.warmup_accepted,
            "cpu_seconds": self.cpu_seconds,
            "statuses": dict(self.statuses),
            "seconds": self.seconds,
            "latency_ms": {
                "p50": percentile(lat, 50) * 1e3,
                "p90": percentile(lat, 90) * 1e3,
                "p99": percentile(lat, 99) * 1e3,
                "max": (lat[-1] if lat else 0.0) * 1e3,
            },
        }


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (the smallest value with at least p% of values at or below)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def run_load(
    host: str,
    port: int,
    key: str,
    bodies: Sequence[bytes],
    *,
    kind: str,
    gzip: bool,
    connections: int,
    rate: float | None = None,
    warmup: int = 0,
    max_seconds: float = 600.0,
) -> Report:
    """Send every body once (``rate`` bodies/s open loop, else closed loop); retry 429/5xx.

    The first ``warmup`` bodies are sent one by one before the clock starts: their events
    count in the totals (and ``warmup_accepted``), not in the time nor the latencies.
    """
    headers = body_headers(kind, gzip)
    report = Report()
    conn = Connection(host, port, key)
    try:
        for body in bodies[:warmup]:
            status, data = conn.post("/v1/events", body, headers)
            report.statuses[f"warmup {status}"] += 1
            match = _COUNTS.search(data, 0, 200)
            if match:
                report.accepted += int(match[1])
                report.warmup_accepted += int(match[1])
                report.duplicates += int(match[2])
                report.rejected += int(match[3])
    finally:
        conn.close()
    bodies = bodies[warmup:]
    lock = threading.Lock()
    next_index = 0
    start = 0.0
    deadline = 0.0
    barrier = threading.Barrier(connections + 1)

    def worker() -> None:
        nonlocal next_index
        conn = Connection(host, port, key)
        local = Report()
        barrier.wait()
        try:
            while True:
                with lock:
                    i = next_index
                    next_index += 1
                if i >= len(bodies):
                    break
                due = start + i / rate if rate else time.perf_counter()
                if rate:
                    delay = due - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                while True:
                    if time.perf_counter() > deadline:
                        raise TimeoutError("the load did not finish within max_seconds")
                    try:
                        status, data = conn.post("/v1/events", bodies[i], headers)
                    except (OSError, http.client.HTTPException):
                        local.statuses["connection_error"] += 1
                        local.retries += 1
                        time.sleep(0.05)
                        continue
                    local.statuses[str(status)] += 1
                    if status in RETRYABLE:
                        local.retries += 1
                        time.sleep(0.05 if status != 429 else 0.2)
                        continue
                    break
                local.latencies.append(time.perf_counter() - due)
                local.requests += 1
                match = _COUNTS.search(data, 0, 200)
                if status in (200, 207) and match:
                    local.accepted += int(match[1])
                    local.duplicates += int(match[2])
                    local.rejected += int(match[3])
        finally:
            conn.close()
            with lock:
                report.requests += local.requests
                report.accepted += local.accepted
                report.duplicates += local.duplicates
                report.rejected += local.rejected
                report.retries += local.retries
                report.statuses.update(local.statuses)
                report.latencies.extend(local.latencies)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    cpu = _cpu_seconds()
    start = time.perf_counter()
    deadline = start + max_seconds
    barrier.wait()
    for t in threads:
        t.join()
    report.seconds = time.perf_counter() - start
    report.cpu_seconds = _cpu_seconds() - cpu
    return report


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- reliable sending ------------------------------------------------------------------------------
def event_id(prefix: str, client: int, batch: int, i: int) -> str:
    return f"{prefix}-{client}-{batch}-{i}"


def reliable_body(
    prefix: str, client: int, batch: int, size: int, tenant: str, now: datetime
) -> bytes:
    """Batch ``batch`` of client ``client``: ``size`` turn events, gzip NDJSON."""
    lines = []
    for i in range(size):
        when = now - timedelta(seconds=batch % 3600, milliseconds=i)
        lines.append(
            json.dumps(
                {
                    "event_id": event_id(prefix, client, batch, i),
                    "event_time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "tenant_id": tenant,
                    "user_id": f"user-{client}-{i % 17}",
                    "session_id": f"session-{client}-{batch}",
                    "event_type": "turn",
                    "turn_index": i,
                    "text": f"reliability check {batch} {i}",
                },
                separators=(",", ":"),
            ).encode()
        )
    return gzip_module.compress(b"\n".join(lines) + b"\n", 6, mtime=0)


class _Log:
    def __init__(self, path: Path) -> None:
        self._f = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def run_reliable(args: argparse.Namespace) -> int:
    """Send batches until ``--batches`` are acknowledged or ``--duration`` has passed."""
    log = _Log(Path(args.log))
    conn = Connection(args.host, args.port, args.key, timeout=args.request_timeout)
    headers = body_headers("ndjson", gzip=True)
    now = datetime.now(UTC) - timedelta(minutes=5)
    start = time.monotonic()
    deadline = start + args.deadline
    errors: Counter[str] = Counter()
    failed = 0
    batch = 0
    try:
        while batch < args.batches and time.monotonic() - start < args.duration:
            body = reliable_body(args.prefix, args.client, batch, args.batch_size, args.tenant, now)
            expected = [
                event_id(args.prefix, args.client, batch, i) for i in range(args.batch_size)
            ]
            log.write({"sent": batch})
            attempts = 0
            while True:
                if time.monotonic() > deadline:
                    log.write({"gave_up": batch, "errors": dict(errors)})
                    return 3
                attempts += 1
                try:
                    status, data = conn.post("/v1/events", body, headers)
                except (OSError, http.client.HTTPException) as exc:
                    errors[type(exc).__name__] += 1
                    time.sleep(args.backoff)
                    continue
                if status in RETRYABLE:
                    errors[str(status)] += 1
                    time.sleep(args.backoff)
                    continue
                answer: dict[str, Any] = json.loads(data) if status in (200, 207) else {}
                results = answer.get("results", [])
                ok = [
                    r["event_id"] for r in results if r.get("status") in ("accepted", "duplicate")
                ]
                if answer and ok == expected:
                    log.write(
                        {
                            "acked": batch,
                            "ids": ok,
                            "accepted": answer["accepted"],
                            "duplicates": answer["duplicates"],
                            "attempts": attempts,
                        }
                    )
                    break
                failed += 1
                log.write({"failed": batch, "status": status, "answer": data[:2000].decode()})
                break
            batch += 1
    finally:
        conn.close()
        log.write({"done": batch, "failed_batches": failed, "errors": dict(errors)})
        log.close()
    return 0 if failed == 0 else 2


# -- command line ----------------------------------------------------------------------------------
def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode in ("closed", "paced"):
        p = sub.add_parser(mode)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--key", required=True)
        p.add_argument("--bodies", required=True, help="a file from write_bodies")
        p.add_argument("--kind", choices=sorted(CONTENT_TYPES), default="ndjson")
        p.add_argument("--gzip", action="store_true")
        p.add_argument("--connections", type=int, default=4)
        p.add_argument("--max-seconds", type=float, default=600.0)
        p.add_argument("--warmup", type=int, default=0, help="untimed bodies sent first")
        p.add_argument("--limit", type=int, default=None, help="send only the first N bodies")
        if mode == "paced":
            p.add_argument("--rate", type=float, required=True, help="bodies per second")
            p.add_argument("--seconds", type=float, default=None, help="send this long at most")
    p = sub.add_parser("reliable")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--tenant", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--prefix", default="rel")
    p.add_argument("--client", type=int, default=0)
    p.add_argument("--batches", type=int, default=1_000_000)
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--duration", type=float, default=1e9, help="start no batch after this")
    p.add_argument("--deadline", type=float, default=60.0, help="give up after this")
    p.add_argument("--backoff", type=float, default=0.05)
    p.add_argument("--request-timeout", type=float, default=30.0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.mode == "reliable":
        return run_reliable(args)
    bodies = read_bodies(Path(args.bodies))
    if args.limit is not None:
        bodies = bodies[: args.limit]
    rate = None
    if args.mode == "paced":
        rate = args.rate
        if args.seconds is not None:
            bodies = bodies[: args.warmup + max(1, round(args.seconds * rate))]
    report = run_load(
        args.host,
        args.port,
        args.key,
        bodies,
        kind=args.kind,
        gzip=args.gzip,
        connections=args.connections,
        rate=rate,
        warmup=args.warmup,
        max_seconds=args.max_seconds,
    )
    json.dump(report.as_dict(), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
