"""Serving latency of an intent model: ``POST /v1/models/{name}/predict`` on ``assay serve``.

Protocol (issue 14, "Quality and speed: Latency"): a tfidf intent model trained on the shipped
CLINC150 data (``--data full``, or ``small`` for a quick run) is registered in a workspace and
``assay serve`` runs on it at 127.0.0.1; the load client runs on the same machine (httpx,
async, one utterance per request, the utterances of CLINC150's test part in turn).

1. **Baseline, in this process**: :meth:`IntentPredictor.predict` on one utterance (redaction,
   normalisation, ONNX Runtime), p50 and p99 over ``--calls`` calls; the same without
   redaction, for its share; and redaction alone, :func:`redact_array` (Python ``re`` on a
   small array) against the Arrow path it replaced there.
2. **Maximum throughput**: ``--concurrency`` connections in a closed loop for ``--seconds`` (at
   most ``--max-requests`` requests): utterances/s answered 200.
3. **Latency at half of that**: requests sent open loop at half the maximum throughput (request
   ``i`` due at ``i / rate`` s, its latency counted from then, so a server that falls behind shows
   it), ``--calls`` requests: p50 and p99.

Steps 2 and 3 run twice, on fresh copies of the workspace: without recording, and with each
prediction recorded as an event (``"record": true`` with a session and user id: the answer then
waits for the events' group commit). Ratios are against the baseline measured in the same run
and between the two servers. Server CPU seconds per phase come from ``/proc``.

The trained workspace is kept under ``$ASSAY_BENCH_DIR`` (default ``/tmp/assay-bench``) and
copied for each server, so a second run does not train again. Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/serve_predict.py --data full
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import _bench

DATA = {
    "full": _bench.SRC / "assay/data/clinc150/data_full.json",
    "small": _bench.SRC / "assay/data/clinc150/data_small.json",
}
TENANT = "bench"
MODEL = "intent"


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="full", help="full, small, or a CLINC150 JSON file")
    parser.add_argument("--seconds", type=float, default=8.0, help="max-throughput phase length")
    parser.add_argument("--max-requests", type=int, default=20_000, help="max-throughput bound")
    parser.add_argument("--concurrency", type=int, default=16, help="max-throughput connections")
    parser.add_argument("--calls", type=int, default=1000, help="requests in a latency phase")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    return parser.parse_args()


# -- the workspace -----------------------------------------------------------------------------
def trained_workspace(data: Path) -> Path:
    """A workspace with the intent model registered (trained once, then reused)."""
    # Keyed by the intent model's code, not all of src/ (others change it all the time).
    code = (_bench.SRC / "assay/models/_intent.py").read_bytes()
    digest = hashlib.sha256(code + data.read_bytes()).hexdigest()[:8]
    folder = _bench.BENCH_DIR / f"serve-predict-{data.stem}-{digest}"
    done = folder / ".trained"
    if done.exists():
        return folder
    import assay

    shutil.rmtree(folder, ignore_errors=True)
    _bench.note(f"training the intent model on {data.name} into {folder} (kept for next runs)")
    start = time.perf_counter()
    with assay.Workspace.init(folder) as ws:
        outcome = ws.models.train_intent(data, name=MODEL)
    summary = outcome.summary()
    summary["train_seconds"] = time.perf_counter() - start
    done.write_text(json.dumps(summary, default=str), encoding="utf-8")
    return folder


def fresh_copy(template: Path, path: Path) -> str:
    """A copy of the trained workspace, with a tenant key that may predict; its plaintext."""
    from assay.store import Workspace

    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(template, path)
    with Workspace.open(path) as ws:
        _, key = ws.keys.create(tenant_id=TENANT, scopes=("predict",))
    return key


# -- the server --------------------------------------------------------------------------------
class Server:
    """``assay serve`` on a free port of 127.0.0.1, as a child process."""

    def __init__(self, workspace: Path, log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        cmd = [*_bench.ASSAY_CLI, "serve", "-w", str(workspace), "--port", str(self.port)]
        cmd += ["--host", "127.0.0.1", "--no-access-log"]
        self.log = log
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                cmd, stdout=err, stderr=err, env=_bench.child_env(), cwd=_bench.ROOT
            )
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(self.url("/healthz"), timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- the load ----------------------------------------------------------------------------------
@dataclass
class Phase:
    requests: int
    statuses: Counter[int]
    seconds: float
    latencies: list[float]  # of the 200 answers, seconds
    server_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.statuses[200] / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        return float(np.percentile(self.latencies, p)) if self.latencies else float("nan")


def _body(text: str, i: int, record: bool) -> bytes:
    body: dict[str, Any] = {"inputs": [text]}
    if record:
        body.update(record=True, session_id=f"s-{i // 8}", user_id=f"u-{i % 97}")
    return json.dumps(body).encode()


async def _send(client: httpx.AsyncClient, body: bytes) -> int:
    answer = await client.post(
        f"/v1/models/{MODEL}/predict", content=body, headers={"content-type": "application/json"}
    )
    return answer.status_code


def _client(server: Server, key: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        base_url=server.url(""),
        headers={"authorization": f"Bearer {key}"},
        limits=limits,
        timeout=60,
    )


async def closed_loop(
    server: Server, key: str, bodies: list[bytes], *, connections: int, seconds: float
) -> Phase:
    """``connections`` workers, each sending its next request when answered, until the time or
    the bodies run out."""
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    it = iter(bodies)
    async with _client(server, key, connections) as client:
        await _send(client, bodies[0])  # warm: the model version loads on first use
        start = time.perf_counter()
        stop = start + seconds

        async def worker() -> None:
            for body in it:
                if time.perf_counter() > stop:
                    return
                t0 = time.perf_counter()
                status = await _send(client, body)
                statuses[status] += 1
                if status == 200:
                    latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(connections)))
        wall = time.perf_counter() - start
    return Phase(sum(statuses.values()), statuses, wall, latencies)


async def paced(server: Server, key: str, bodies: list[bytes], *, rate: float) -> Phase:
    """Open loop: request ``i`` is sent at ``i / rate`` s; latency from when it was due."""
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    async with _client(server, key, 256) as client:
        for body in bodies[:20]:
            await _send(client, body)  # warm the connections and the model
        start = time.perf_counter()

        async def one(i: int, body: bytes) -> None:
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            status = await _send(client, body)
            statuses[status] += 1
            if status == 200:
                latencies.append(time.perf_counter() - due)

        await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
        wall = time.perf_counter() - start
    return Phase(len(bodies), statuses, wall, latencies)


def baseline(workspace: Path, texts: list[str], calls: int) -> dict[str, float]:
    """One utterance per call through IntentPredictor, in this process."""
    from assay.models._intent import IntentPredictor
    from assay.models._registry import Registry

    registry = Registry(workspace)
    _, raw = registry.load_onnx(MODEL)
    predictor = IntentPredictor(raw)
    out: dict[str, float] = {}
    for redact in (True, False):
        for text in texts[:50]:
            predictor.predict([text], redact=redact)
        times = []
        for i in range(calls):
            t0 = time.perf_counter()
            predictor.predict([texts[i % len(texts)]], redact=redact)
            times.append(time.perf_counter() - t0)
        tag = "" if redact else "_no_redact"
        out[f"p50{tag}"] = float(np.percentile(times, 50))
        out[f"p99{tag}"] = float(np.percentile(times, 99))
    # Redaction of one utterance: redact_array (Python re for small arrays) against the Arrow
    # path it replaces there, on the same texts.
    import pyarrow as pa

    from assay.privacy import _redact, redact_array

    for tag, redact_fn in (("python", redact_array), ("arrow", _redact._redact_chunk)):
        times = []
        for i in range(calls):
            one = pa.array([texts[i % len(texts)]], type=pa.string())
            t0 = time.perf_counter()
            redact_fn(one)
            times.append(time.perf_counter() - t0)
        out[f"redact_{tag}_p50"] = float(np.percentile(times, 50))
        out[f"redact_{tag}_p99"] = float(np.percentile(times, 99))
    return out


# -- the run -----------------------------------------------------------------------------------
def serve_phases(
    template: Path, texts: list[str], args: argparse.Namespace, *, record: bool
) -> tuple[Phase, Phase]:
    tag = "record" if record else "plain"
    work = _bench.BENCH_DIR / "serve-predict-runs"
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"ws-{tag}"
    key = fresh_copy(template, path)
    _bench.note(f"server {tag}: max throughput, then {args.calls} requests at half of it")
    server = Server(path, work / f"server-{tag}.log")
    try:
        n = args.max_requests
        bodies = [_body(texts[i % len(texts)], i, record) for i in range(n)]
        cpu0 = server.cpu_seconds()
        top = asyncio.run(
            closed_loop(server, key, bodies, connections=args.concurrency, seconds=args.seconds)
        )
        top.server_cpu = server.cpu_seconds() - cpu0
        # Other ids than the max phase's, so recorded events are all new.
        calls = [_body(texts[i % len(texts)], n + i, record) for i in range(args.calls)]
        cpu0 = server.cpu_seconds()
        half = asyncio.run(paced(server, key, calls, rate=top.rate / 2))
        half.server_cpu = server.cpu_seconds() - cpu0
    finally:
        server.stop()
    return top, half


def _ms(x: float) -> str:
    return f"{1000 * x:.2f}"


def _ratios(p50: float, p99: float, base: dict[str, float]) -> str:
    return f"{p50 / base['p50']:.2f} / {p99 / base['p99']:.2f}"


def main() -> None:
    args = _parse_args()
    data = DATA.get(args.data, Path(args.data))
    _bench.print_machine()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    template = trained_workspace(data)
    trained = json.loads((template / ".trained").read_text(encoding="utf-8"))
    from assay.models._intent_data import load_intent_data

    texts = list(load_intent_data(data).test.texts)
    _bench.note("baseline: IntentPredictor.predict in this process")
    base = baseline(template, texts, args.calls)
    results: dict[str, Any] = {
        "started": started,
        "data": str(data.relative_to(_bench.ROOT))
        if data.is_relative_to(_bench.ROOT)
        else str(data),
        "model": trained.get("model"),
        "train_seconds": trained.get("train_seconds"),
        "baseline": base,
        "command": _bench.command_line(),
        "source_digest": _bench.source_digest(),
    }
    rows = [
        (
            "in-process IntentPredictor.predict (baseline)",
            "",
            "",
            _ms(base["p50"]),
            _ms(base["p99"]),
            "1.00 / 1.00",
        ),
        (
            "in-process, redact=False",
            "",
            "",
            _ms(base["p50_no_redact"]),
            _ms(base["p99_no_redact"]),
            _ratios(base["p50_no_redact"], base["p99_no_redact"], base),
        ),
    ]
    for tag, label in (("python", "Python re, small arrays"), ("arrow", "Arrow RE2 kernels")):
        rows.append(
            (
                f"redaction alone, {label}",
                "",
                "",
                _ms(base[f"redact_{tag}_p50"]),
                _ms(base[f"redact_{tag}_p99"]),
                _ratios(base[f"redact_{tag}_p50"], base[f"redact_{tag}_p99"], base),
            )
        )
    phases: dict[str, tuple[Phase, Phase]] = {}
    for record in (False, True):
        top, half = serve_phases(template, texts, args, record=record)
        tag = "record" if record else "plain"
        phases[tag] = (top, half)
        results[tag] = {
            "max_utterances_per_s": top.rate,
            "max_statuses": dict(top.statuses),
            "max_server_cpu_s": top.server_cpu,
            "max_seconds": top.seconds,
            "half_rate": top.rate / 2,
            "half_statuses": dict(half.statuses),
            "half_p50_s": half.pct(50),
            "half_p99_s": half.pct(99),
            "half_server_cpu_s": half.server_cpu,
        }
        rows.append(
            (
                f"served, {'recording predictions' if record else 'not recording'}",
                f"{top.rate:,.0f}",
                f"{top.rate / 2:,.0f}",
                _ms(half.pct(50)),
                _ms(half.pct(99)),
                _ratios(half.pct(50), half.pct(99), base),
            )
        )
    plain, rec = phases["plain"], phases["record"]
    results["record_cost"] = {
        "max_throughput_ratio": rec[0].rate / plain[0].rate if plain[0].rate else None,
        "p50_ratio": rec[1].pct(50) / plain[1].pct(50),
        "p99_ratio": rec[1].pct(99) / plain[1].pct(99),
    }
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print()
    print(
        _bench.markdown_row(
            ["setting", "max utt/s", "load utt/s", "p50 ms", "p99 ms", "p50 / p99 vs baseline"]
        )
    )
    print(_bench.markdown_row(["---"] * 6))
    for row in rows:
        print(_bench.markdown_row(list(row)))
    cost = results["record_cost"]
    print(
        f"\nrecording predictions: max throughput x{cost['max_throughput_ratio']:.2f}, "
        f"p50 x{cost['p50_ratio']:.2f}, p99 x{cost['p99_ratio']:.2f} (against not recording)"
    )
    for tag, (top, half) in phases.items():
        print(
            f"{tag}: max phase {top.requests} requests in {top.seconds:.1f} s "
            f"(statuses {dict(top.statuses)}, server CPU {top.server_cpu:.1f} s); "
            f"half phase statuses {dict(half.statuses)}, server CPU {half.server_cpu:.1f} s"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
