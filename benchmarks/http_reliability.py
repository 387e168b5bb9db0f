"""HTTP reliability: ``assay serve`` killed with SIGKILL again and again under load loses nothing.

The long version of ``tests/integration/test_service_reliability.py``. For ``--duration``
seconds, ``--clients`` load clients (``http_load.py reliable``, one process each, one tenant
each, with a tenant key) send batches of new events and retry the same bytes after a connection
error, a 5xx or a 429 until acknowledged, logging the acknowledged ids with fsync. Meanwhile
the server is killed with SIGKILL every ``--kill-min`` to ``--kill-max`` seconds (random, from
``--seed``) and restarted on the same port. A third of the kills fall at a random moment, a third
just after the server's next commit of the ``content`` table (before its events are committed),
a third just after its next commit of ``events`` (before the answer). At the end the clients
finish their last batch, the server is stopped with SIGTERM, and the workspace is checked:

- every acknowledged event is stored (``lost acknowledged`` must be 0);
- no ``(tenant_id, event_id)`` is stored twice (``duplicates stored`` must be 0), in the events
  and in the content table;
- nothing is stored that no client sent; every stored event has its one content row;
- every batch a client sent was acknowledged in the end.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/http_reliability.py --duration 120
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import _bench

HERE = Path(__file__).resolve().parent
LOAD_CLIENT = HERE / "http_load.py"
KILL_MODES = ("random", "content commit", "events commit")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=3, help="client processes")
    parser.add_argument("--batch-size", type=int, default=200, help="events per batch")
    parser.add_argument("--kill-min", type=float, default=3.0, help="seconds between kills, min")
    parser.add_argument("--kill-max", type=float, default=12.0, help="seconds between kills, max")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _start(ws: Path, port: int, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Start ``assay serve``; return it and the seconds until it answered /healthz."""
    start = time.perf_counter()
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [*_bench.ASSAY_CLI, "serve", "-w", str(ws), "--port", str(port)],
            stdout=err,
            stderr=err,
            env=_bench.child_env(),
            cwd=_bench.ROOT,
        )
    deadline = time.monotonic() + 60
    while not _healthy(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)
    return proc, time.perf_counter() - start


def _next_commit(table: Path) -> Path:
    return table / "_delta_log" / f"{len(list((table / '_delta_log').glob('*.json'))):020d}.json"


def _read_log(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def main() -> None:
    args = _parse_args()
    rng = random.Random(args.seed)
    work = _bench.BENCH_DIR / "http-reliability"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ws = work / "ws"
    server_log = work / "server.log"

    from assay.store import Workspace

    keys = {}
    with Workspace.init(ws) as w:
        for c in range(args.clients):
            keys[c] = w.keys.create(tenant_id=f"tenant-{c}", scopes=("ingest",))[1]

    port = _free_port()
    server, startup = _start(ws, port, server_log)
    startups = [startup]
    clients: dict[int, subprocess.Popen[bytes]] = {}
    kills: Counter[str] = Counter()
    downtime = 0.0
    _bench.note(
        f"{args.clients} clients for {args.duration:.0f} s, kills every "
        f"{args.kill_min:g}-{args.kill_max:g} s; work dir {work}"
    )
    start = time.monotonic()
    try:
        for c in range(args.clients):
            clients[c] = subprocess.Popen(
                [
                    sys.executable,
                    str(LOAD_CLIENT),
                    "reliable",
                    "--port",
                    str(port),
                    "--key",
                    keys[c],
                    "--tenant",
                    f"tenant-{c}",
                    "--log",
                    str(work / f"client-{c}.jsonl"),
                    "--client",
                    str(c),
                    "--batch-size",
                    str(args.batch_size),
                    "--duration",
                    str(args.duration),
                    "--deadline",
                    str(args.duration + 300),
                ],
                stdout=subprocess.DEVNULL,
                stderr=(work / f"client-{c}.err").open("wb"),
            )
        while True:
            wait = rng.uniform(args.kill_min, args.kill_max)
            if time.monotonic() + wait > start + args.duration:
                break
            time.sleep(wait)
            mode = rng.choice(KILL_MODES)
            if mode != "random":
                table = ws / mode.split()[0]
                commit = _next_commit(table)
                deadline = time.monotonic() + 30
                while not commit.exists() and time.monotonic() < deadline:
                    time.sleep(0.0005)
            server.send_signal(signal.SIGKILL)
            server.wait()
            down = time.perf_counter()
            kills[mode] += 1
            server, startup = _start(ws, port, server_log)
            startups.append(startup)
            downtime += time.perf_counter() - down
            _bench.note(
                f"  {time.monotonic() - start:6.1f} s: killed ({mode}), back in {startup:.1f} s"
            )
        for c, proc in clients.items():
            code = proc.wait(timeout=args.duration + 600)
            if code != 0:
                _bench.note(f"client {c} exited with {code}")
        elapsed = time.monotonic() - start
        server.send_signal(signal.SIGTERM)
        term_exit = server.wait(timeout=120)
    finally:
        for proc in [*clients.values(), server]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    sent: set[str] = set()
    acked: list[str] = []
    batches_sent = batches_acked = failed = gave_up = retried = answered_duplicate = 0
    errors: Counter[str] = Counter()
    for c in range(args.clients):
        for r in _read_log(work / f"client-{c}.jsonl"):
            if "sent" in r:
                batches_sent += 1
                sent.update(f"rel-{c}-{r['sent']}-{i}" for i in range(args.batch_size))
            elif "acked" in r:
                batches_acked += 1
                acked.extend(r["ids"])
                retried += r["attempts"] > 1
                answered_duplicate += r["duplicates"] > 0
            elif "failed" in r:
                failed += 1
            elif "gave_up" in r:
                gave_up += 1
            elif "done" in r:
                errors.update(r["errors"])

    with Workspace.open(ws) as w:
        events = w.read("events").select(["tenant_id", "event_id"])
        content = w.read("content").select(["tenant_id", "event_id"])
    keys_stored = Counter(
        zip(events["tenant_id"].to_pylist(), events["event_id"].to_pylist(), strict=True)
    )
    keys_content = Counter(
        zip(content["tenant_id"].to_pylist(), content["event_id"].to_pylist(), strict=True)
    )
    stored = {e for _, e in keys_stored}
    dup_events = sum(n - 1 for n in keys_stored.values())
    dup_content = sum(n - 1 for n in keys_content.values())
    lost = set(acked) - stored
    unsent = stored - sent
    without_content = set(keys_stored) - set(keys_content)
    content_orphans = set(keys_content) - set(keys_stored)
    repairs = server_log.read_text().count("repaired an interrupted ingest")

    _bench.print_machine()
    rows = [
        ("load", f"{args.clients} clients x batches of {args.batch_size}, {elapsed:.0f} s"),
        ("kills (SIGKILL)", f"{sum(kills.values())} ({dict(kills)})"),
        (
            "server restarts",
            f"{len(startups) - 1}, each back in {min(startups[1:] or [0]):.1f}-"
            f"{max(startups[1:] or [0]):.1f} s; down {downtime:.0f} s in all",
        ),
        ("repairs of an interrupted commit", str(repairs)),
        ("client errors (retried)", str(dict(errors))),
        ("batches sent / acknowledged", f"{batches_sent:,} / {batches_acked:,}"),
        ("batches retried", f"{retried:,} ({answered_duplicate} answered as duplicates)"),
        ("batches failed / given up", f"{failed} / {gave_up} (must be 0 / 0)"),
        ("events acknowledged", f"{len(acked):,} ({len(set(acked)):,} distinct)"),
        ("events stored", f"{events.num_rows:,} ({len(stored):,} distinct)"),
        ("acknowledged events/s", f"{len(acked) / elapsed:,.0f} (with the downtime)"),
        ("duplicates stored", f"{dup_events} (must be 0)"),
        ("lost acknowledged", f"{len(lost)} (must be 0)"),
        ("stored but never sent", f"{len(unsent)} (must be 0)"),
        (
            "content: duplicates / missing / orphans",
            f"{dup_content} / {len(without_content)} / {len(content_orphans)} (must be 0 / 0 / 0)",
        ),
        ("server exit code after SIGTERM", f"{term_exit} (0 expected)"),
    ]
    _bench.print_block("HTTP reliability", rows)
    bad = (
        failed
        + gave_up
        + dup_events
        + len(lost)
        + len(unsent)
        + dup_content
        + len(without_content)
        + len(content_orphans)
    )
    bad += batches_sent != batches_acked
    print(
        "\nmarkdown row (duration | clients | kills | acknowledged | stored | duplicates stored |"
        " lost acknowledged | verdict):"
    )
    print(
        _bench.markdown_row(
            [
                f"{elapsed:.0f} s",
                str(args.clients),
                str(sum(kills.values())),
                f"{len(acked):,}",
                f"{events.num_rows:,}",
                str(dup_events),
                str(len(lost)),
                "ok" if not bad else "**FAILED**",
            ]
        )
    )
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
