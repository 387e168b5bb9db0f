"""Read isolation: one tenant's heavy metric reads against another tenant's light read.

Issue 18 (item 5): 8 threads of ``GET /v1/metrics/active?window=...&by=prompt_template`` from one
tenant's key moved another tenant's ``GET /v1/tenants`` from 0.1 s to 4.9 s. This starts
``assay serve`` on a synth workspace (10 tenants, 60 days), measures tenant B's ``/v1/tenants``
alone, then while tenant A's threads read, and prints both with their ratio; ``--compare-src``
does the same for a server run from another tree's ``src/`` in the same run (alternating), and
prints the ratio of the two "under load" latencies. A's answers are counted by status (with the
per-key limit, most of A's reads are refused with 429 at once).

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/http_read_isolation.py --compare-src /tmp/base/src
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

import _bench


def _workspace(path: Path) -> dict[str, str]:
    from assay.ingest import ingest_paths
    from assay.store import Workspace
    from assay.synth import SynthConfig, write

    data = path.parent / "synth"
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=62)
    out = write(data, SynthConfig(tenants=10, users=300, days=60, start=start), format="jsonl")
    with Workspace.init(path) as ws:
        ingest_paths(ws, [str(f) for f in out.files])
        tenants = ws.tenants()
        keys = {
            "a": ws.keys.create(tenant_id=tenants[0], scopes=("read",))[1],
            "b": ws.keys.create(tenant_id=tenants[1], scopes=("read",))[1],
        }
    (path / "assay.toml").write_text("[assay]\n", encoding="utf-8")
    return keys


def _measure(
    src: str, path: Path, keys: dict[str, str], args: argparse.Namespace
) -> dict[str, float]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**_bench.child_env(), "PYTHONPATH": src}
    cmd = [sys.executable, "-c", "from assay.cli import main; main()", "serve", "-w", str(path)]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--no-access-log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the server from {src} did not start")
            time.sleep(0.1)
        b = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {keys['b']}"}, timeout=120
        )

        def light(n: int) -> list[float]:
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                assert b.get("/v1/tenants").status_code == 200
                times.append(time.perf_counter() - t0)
            return times

        light(3)
        alone = light(args.samples)
        stop = threading.Event()
        statuses: Counter[int] = Counter()

        def heavy() -> None:
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {keys['a']}"}, timeout=120
            ) as a:
                while not stop.is_set():
                    r = a.get(
                        "/v1/metrics/active",
                        params={"window": args.window, "by": "prompt_template"},
                    )
                    statuses[r.status_code] += 1
                    if r.status_code == 429:
                        time.sleep(float(r.headers.get("Retry-After", "1")))

        threads = [threading.Thread(target=heavy, daemon=True) for _ in range(args.threads)]
        for t in threads:
            t.start()
        time.sleep(2)
        loaded = light(args.samples)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        b.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    result = {"alone": statistics.median(alone), "loaded": statistics.median(loaded)}
    result["loaded_max"] = max(loaded)
    _bench.note(
        f"  {src}: B alone {result['alone'] * 1e3:.0f} ms, under A's reads "
        f"{result['loaded'] * 1e3:.0f} ms (max {result['loaded_max'] * 1e3:.0f}); "
        f"A's statuses {dict(statuses)}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--window", type=int, default=365)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compare-src", type=Path, default=None, metavar="DIR")
    args = parser.parse_args()
    work = _bench.BENCH_DIR / "read-isolation"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    keys = _workspace(work / "ws")
    trees = {"this checkout": str(_bench.SRC)}
    if args.compare_src is not None:
        trees = {"baseline": str(args.compare_src.resolve()), **trees}
    got: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for r in range(args.rounds):
        for name in list(trees) if r % 2 == 0 else list(trees)[::-1]:
            got[name].append(_measure(trees[name], work / "ws", keys, args))
    _bench.print_machine()
    rows = []
    for name, runs in got.items():
        alone = statistics.median(x["alone"] for x in runs)
        loaded = statistics.median(x["loaded"] for x in runs)
        rows.append(
            (
                name,
                f"B's /v1/tenants {alone * 1e3:.0f} ms alone, {loaded * 1e3:.0f} ms under "
                f"{args.threads} threads of A's reads (window {args.window}): "
                f"{loaded / alone:.1f}x",
            )
        )
    if "baseline" in got:
        base = statistics.median(x["loaded"] for x in got["baseline"])
        this = statistics.median(x["loaded"] for x in got["this checkout"])
        rows.append(("under load, this / baseline", f"{this / base:.2f}x"))
    _bench.print_block("HTTP read isolation", rows)


if __name__ == "__main__":
    main()
