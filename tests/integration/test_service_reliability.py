"""Acknowledged means stored exactly once: a real ``assay serve`` killed with SIGKILL under load.

The load client (``benchmarks/http_load.py reliable``) runs in its own process: it sends
batches of new events with ids ``rel-{client}-{batch}-{i}``, retries the same bytes after a
connection error, a 5xx or a 429, and appends the ids of each acknowledged batch to a log with
fsync. The server is killed twice while the client sends, each time restarted on the same port:
once just after a group's content commit (before its events commit), once just after its events
commit (before the answer). Then the client finishes, the server stops on SIGTERM, and the
stored events must be exactly the acknowledged ones, each once, each with one content row.
The long version, with several clients and many kills, is ``benchmarks/http_reliability.py``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from live_server import free_port, start_server, stop, wait_healthy

from assay.store import Workspace

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LOAD_CLIENT = ROOT / "benchmarks" / "http_load.py"
TENANT = "acme"
BATCHES = 60
BATCH_SIZE = 200
KILL_AFTER_ACKED = 6


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written
            break
    return records


def _acked_batches(path: Path) -> int:
    return sum(1 for r in _read_log(path) if "acked" in r)


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "ws"
    with Workspace.init(root) as ws:
        _, key = ws.keys.create(tenant_id=TENANT, scopes=("ingest",))
    return root, key


def _next_commit(table: Path) -> Path:
    """The file of the table's next Delta commit (it appears once that commit is done)."""
    return table / "_delta_log" / f"{len(list((table / '_delta_log').glob('*.json'))):020d}.json"


def _kill_at_commit(
    server: subprocess.Popen[bytes],
    client: subprocess.Popen[bytes],
    log: Path,
    table: Path,
    acked: int,
) -> None:
    """Once ``acked`` batches are acknowledged, SIGKILL the server as soon as its next commit
    of ``table`` lands: before the writer has answered, in most runs."""
    deadline = time.monotonic() + 30
    while _acked_batches(log) < acked:
        assert client.poll() is None, "the client stopped before the kill"
        assert time.monotonic() < deadline, "the client acknowledged too few batches"
        time.sleep(0.005)
    commit = _next_commit(table)
    while not commit.exists():
        assert client.poll() is None, "the client stopped before the kill"
        assert time.monotonic() < deadline, f"no commit {commit.name} within 30 s"
        time.sleep(0.001)
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)


def _stored_ids(root: Path) -> set[str]:
    with Workspace.open(root) as ws:
        return set(ws.read("events")["event_id"].to_pylist())


def _acked_ids(records: list[dict[str, Any]]) -> list[str]:
    return [str(i) for r in records if "acked" in r for i in r["ids"]]


def test_sigkill_under_load_stores_every_acknowledged_event_exactly_once(
    tmp_path: Path, workspace: tuple[Path, str]
) -> None:
    root, key = workspace
    port = free_port()
    log = tmp_path / "acks.jsonl"
    stderr = tmp_path / "server.err"
    servers: list[subprocess.Popen[bytes]] = []
    client = None
    # Kill 1 lands between a group's content commit and its events commit (the marker
    # case), kill 2 between its events commit and the answer (the retry finds duplicates).
    kills = [(root / "content", KILL_AFTER_ACKED), (root / "events", 2 * KILL_AFTER_ACKED)]
    at_kill: list[tuple[set[str], set[str]]] = []
    try:
        servers.append(start_server(root, port, stderr))
        wait_healthy(servers[-1], port, stderr)
        client = subprocess.Popen(
            [
                sys.executable,
                str(LOAD_CLIENT),
                "reliable",
                "--port",
                str(port),
                "--key",
                key,
                "--tenant",
                TENANT,
                "--log",
                str(log),
                "--client",
                "0",
                "--batches",
                str(BATCHES),
                "--batch-size",
                str(BATCH_SIZE),
                "--deadline",
                "60",
                "--backoff",
                "0.02",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for table, after in kills:
            _kill_at_commit(servers[-1], client, log, table, after)
            at_kill.append((set(_acked_ids(_read_log(log))), _stored_ids(root)))
            servers.append(start_server(root, port, stderr))
            wait_healthy(servers[-1], port, stderr)
        _, client_err = client.communicate(timeout=60)
        assert client.returncode == 0, client_err.decode()

        servers[-1].send_signal(signal.SIGTERM)
        term_exit = servers[-1].wait(timeout=30)
    finally:
        for proc in (client, *servers):
            stop(proc)

    # What was acknowledged before a kill had been stored before it.
    for acked_then, stored_then in at_kill:
        assert acked_then <= stored_then
    assert len(at_kill[-1][0]) < BATCHES * BATCH_SIZE, "the client finished before the last kill"

    records = _read_log(log)
    done = records[-1]
    assert done.get("done") == BATCHES
    assert done.get("failed_batches") == 0
    assert done.get("errors"), "the client never saw the server down"
    assert not [r for r in records if "failed" in r or "gave_up" in r]
    # A batch whose events were stored before a kill, unanswered, is answered on retry with
    # every event a duplicate; a batch none of whose events were stored, with none.
    for r in records:
        if "acked" in r:
            ids = set(r["ids"])
            stored_before = [ids <= stored for then, stored in at_kill if not ids & then]
            if any(stored_before):
                assert r["duplicates"] == BATCH_SIZE, r["acked"]
            else:
                assert r["duplicates"] == 0, r["acked"]
    acked = _acked_ids(records)
    expected = {f"rel-0-{b}-{i}" for b in range(BATCHES) for i in range(BATCH_SIZE)}
    assert len(acked) == len(set(acked)) == len(expected)
    assert set(acked) == expected

    with Workspace.open(root) as ws:
        events = ws.read("events").select(["tenant_id", "event_id"])
        content = ws.read("content").select(["tenant_id", "event_id", "text"])
        quarantined = ws.read("quarantine").num_rows
    assert set(pc.unique(events["tenant_id"]).to_pylist()) == {TENANT}
    stored = Counter(events["event_id"].to_pylist())
    assert [e for e, n in stored.items() if n > 1] == []
    assert set(stored) == expected
    texts = Counter(content["event_id"].to_pylist())
    assert [e for e, n in texts.items() if n > 1] == []
    assert set(texts) == expected
    by_id = dict(zip(content["event_id"].to_pylist(), content["text"].to_pylist(), strict=True))
    assert by_id["rel-0-0-0"] == "reliability check 0 0"
    assert by_id[f"rel-0-{BATCHES - 1}-7"] == f"reliability check {BATCHES - 1} 7"
    assert quarantined == 0
    # The access log names routes and counts, never an event's text or a raw user id.
    server_log = stderr.read_text()
    assert "reliability check" not in server_log
    assert "user-0-" not in server_log
    # A graceful stop is a normal exit (docs/cli.md: 0 "Done"), not death by the signal.
    assert term_exit == 0, f"assay serve exited with {term_exit} after SIGTERM"
