"""HTTP ingest throughput: ``POST /v1/events`` on a real server against file ingest, same events.

Goals (issue #3), all on 127.0.0.1 with batches of ``--batch`` (1,000) events:

- at least 50,000 accepted events/s sent as gzip NDJSON;
- at least 25,000 accepted events/s sent as JSON arrays (not compressed);
- HTTP (gzip NDJSON) at least 0.5x the events/s of ingesting the same events from one file;
- p99 latency of a batch under 250 ms at half the maximum throughput (of gzip NDJSON).

The events come from ``assay.synth`` (JSON Lines with text, 50 tenants) over the 25 days before
yesterday, so that none is older than the HTTP lateness limit (30 days); they are generated once
per day and size, and kept under ``$ASSAY_BENCH_DIR``. Every body is encoded (and gzipped)
before anything is timed. Each measurement starts a fresh server on a fresh workspace (the same
events, all new to it), with an admin key; the server is ``assay serve`` as users run it
(access log on, ``http_fsync`` on), stopped with SIGTERM after the run.

What is timed:

``gzip NDJSON`` / ``JSON array``
    The load client (``http_load.py closed``) in a second process: ``--connections`` keep-alive
    connections, each sending its next body as soon as the previous one is answered, until every
    body was sent once. Time from the first request to the last answer, after ``--warmup``
    untimed bodies. Every event must come back ``accepted`` and be stored (checked).
``parse-only ceiling``
    The same gzip NDJSON bodies to ``create_app(ws, parse_only=True)`` on uvicorn: HTTP, gzip
    and JSON parsing, no validation and no storage. What the server could do if storing were
    free.
``file ingest``
    The same events as one JSONL file, ``assay.ingest.ingest_paths`` in a child process, timed
    inside the child (interpreter start and imports excluded, as for the server).
``latency at half max``
    ``http_load.py paced``: bodies due at a fixed rate, half the gzip NDJSON events/s measured
    above, for ``--seconds`` (or until the bodies run out); a body's latency runs from when it was
    due to its answer, so queueing in the client counts.

Also shown: CPU seconds used by the server and by the client during each run (from ``/proc``
and ``getrusage``), and the server's group commits (count, mean requests per commit, time spent
committing) from its ``/metrics``, and the CPU the whole machine used (much more than server
plus client means another process took CPU from the server: rerun then). ``--profile``
additionally samples the server with py-spy (``pip install py-spy``) during one more gzip
NDJSON run, only the thread holding the GIL (``py-spy record --gil``), and lists where that
time goes.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/http_ingest.py --events 300000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _bench
import http_load
from _bench import secs

HERE = Path(__file__).resolve().parent
LOAD_CLIENT = HERE / "http_load.py"

GOAL_NDJSON = 50_000
GOAL_ARRAY = 25_000
GOAL_FILE_RATIO = 0.5
GOAL_P99_MS = 250.0

TENANTS = 50
DAYS = 25

#: Extra environment of the servers (``--env``) and Python run before ``assay serve``
#: (``--server-prelude``), for experiments such as ``ASSAY_HTTP_FSYNC=false``.
SERVER_ENV: dict[str, str] = {}
SERVER_PRELUDE = ""

PARSE_ONLY_SERVER = """
import sys
import uvicorn
from assay.service import create_app
uvicorn.run(create_app(sys.argv[1], parse_only=True), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning")
"""

FILE_INGEST = """
import json, sys, time
from assay.ingest import ingest_paths
from assay.store import Workspace
ws = Workspace.init(sys.argv[2])
start = time.perf_counter()
summary = ingest_paths(ws, [sys.argv[1]])
seconds = time.perf_counter() - start
ws.close()
print(json.dumps({"seconds": seconds, "totals": summary.as_dict()["totals"]}))
"""


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000, help="about this many events")
    parser.add_argument("--batch", type=int, default=1000, help="events per request")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="length of the paced latency run"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed bodies first")
    parser.add_argument("--profile", action="store_true", help="also sample the server with py-spy")
    parser.add_argument("--top", type=int, default=25, help="functions listed by --profile")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="server environment"
    )
    parser.add_argument(
        "--server-prelude", default="", help="Python run in the server before assay serve"
    )
    parser.add_argument(
        "--only-ndjson", action="store_true", help="measure gzip NDJSON only (experiments)"
    )
    parser.add_argument(
        "--compare-src",
        type=Path,
        default=None,
        metavar="DIR",
        help="instead of the goals: gzip NDJSON max and paced p99 of this checkout's server "
        "against a server run from DIR (another tree's src/), interleaved, --rounds times",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --compare-src")
    parser.add_argument(
        "--src",
        type=Path,
        default=_bench.SRC,
        metavar="DIR",
        help="with --compare-src: the tree measured against it (default: this checkout's src/)",
    )
    return parser.parse_args()


# -- data ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Events:
    path: Path
    lines: list[bytes]
    start: dt.date
    config: str


def recent_events(n: int) -> Events:
    """About ``n`` synth events over the ``DAYS`` days up to the day before yesterday (UTC)."""
    from assay.synth import SynthConfig, write

    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DAYS + 1)
    users = max(1, round(n / (TENANTS * DAYS * _bench.EVENTS_PER_USER_DAY)))
    config = SynthConfig(tenants=TENANTS, users=users, days=DAYS, start=start)
    key = f"http-t{TENANTS}-u{users}-d{DAYS}-{start.isoformat()}"
    folder = _bench.BENCH_DIR / "data" / key
    path = folder / "events.jsonl"
    if not (folder / "done").exists():
        _bench.note(f"generating about {n:,} events ({config}) into {folder} ...")
        shutil.rmtree(folder, ignore_errors=True)
        out = write(folder / "days", config, format="jsonl")
        with path.open("wb") as f:
            for day in out.files:
                f.write(day.read_bytes())
        shutil.rmtree(folder / "days")
        (folder / "done").write_text(f"{out.events}\n")
    lines = [line for line in path.read_bytes().split(b"\n") if line]
    return Events(path=path, lines=lines, start=start, config=str(config))


# -- servers ---------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_workspace(path: Path) -> str:
    """A new workspace at ``path`` and an admin key (every tenant) with the ingest scope."""
    from assay.store import Workspace

    shutil.rmtree(path, ignore_errors=True)
    with Workspace.init(path) as ws:
        _, key = ws.keys.create(tenant_id=None, scopes=("ingest",))
    # Defaults without a file: a server of another tree (--compare-src) may not know every
    # setting this one writes.
    (path / "assay.toml").write_text("[assay]\n", encoding="utf-8")
    return key


class Server:
    """``assay serve`` (or the parse-only app) as a child process, on a free port."""

    def __init__(self, workspace: Path, log: Path, *, parse_only: bool = False) -> None:
        self.port = _free_port()
        if parse_only:
            cmd = [sys.executable, "-c", PARSE_ONLY_SERVER, str(workspace), str(self.port)]
        else:
            code = f"{SERVER_PRELUDE}\nfrom assay.cli import main; main()"
            cmd = [sys.executable, "-c", code, "serve", "-w", str(workspace)]
            cmd += ["--port", str(self.port)]
        self.log = log
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                cmd,
                stdout=err,
                stderr=err,
                env={**_bench.child_env(), **SERVER_ENV},
                cwd=_bench.ROOT,
            )
        deadline = time.monotonic() + 60
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url("/healthz"), timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(self.url("/metrics"), timeout=10) as answer:
            text = answer.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            m = re.match(r"^(assay_ingest_commit_\w+_(?:sum|count))\s+(\S+)$", line)
            if m:
                out[m[1]] = float(m[2])
        return out

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


# -- runs ------------------------------------------------------------------------------------------
@dataclass
class HttpRun:
    label: str
    report: dict[str, Any]
    events_per_s: float
    server_cpu: float
    client_cpu: float
    machine_cpu: float
    commits: dict[str, float]
    stored: int | None
    exit_code: int


def _client(mode: str, server: Server, key: str, bodies: Path, args: list[str]) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(LOAD_CLIENT),
        mode,
        "--port",
        str(server.port),
        "--key",
        key,
        "--bodies",
        str(bodies),
        *args,
    ]
    run = _bench.run_child(cmd)
    report: dict[str, Any] = json.loads(run.stdout)
    return report


def http_run(
    label: str,
    work: Path,
    bodies: Path,
    client_args: list[str],
    *,
    mode: str = "closed",
    parse_only: bool = False,
    profile: Path | None = None,
    expect_events: int,
) -> HttpRun:
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    ws = work / f"ws-{slug}"
    key = fresh_workspace(ws)
    server = Server(ws, work / f"server-{slug}.log", parse_only=parse_only)
    spy = None
    try:
        if profile is not None:
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(server.proc.pid),
                    "--format",
                    "raw",
                    "--rate",
                    "200",
                    "--threads",
                    "--gil",
                    "--output",
                    str(profile),
                ],
                stdout=subprocess.DEVNULL,
                stderr=(work / "py-spy.log").open("wb"),
            )
        cpu0, busy0 = server.cpu_seconds(), _machine_busy()
        report = _client(mode, server, key, bodies, client_args)
        server_cpu, busy = server.cpu_seconds() - cpu0, _machine_busy() - busy0
        commits = {} if parse_only else server.metrics()
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        exit_code = server.stop()
    stored = None
    if not parse_only:
        from assay.store import Workspace

        with Workspace.open(ws) as w:
            stored = w.read("events").num_rows
    shutil.rmtree(ws, ignore_errors=True)
    timed = report["accepted"] - report["warmup_accepted"]
    run = HttpRun(
        label=label,
        report=report,
        events_per_s=timed / report["seconds"] if report["seconds"] else 0.0,
        server_cpu=server_cpu,
        client_cpu=report["cpu_seconds"],
        machine_cpu=busy,
        commits=commits,
        stored=stored,
        exit_code=exit_code,
    )
    ok = report["accepted"] == expect_events and report["rejected"] == 0
    ok = ok and report["duplicates"] == 0 and stored in (None, expect_events)
    _bench.note(
        f"  {label:<22} {run.events_per_s:>10,.0f} events/s  accepted {report['accepted']:,}"
        f"  stored {stored}  statuses {report['statuses']}  p99 "
        f"{report['latency_ms']['p99']:.0f} ms  server exit {exit_code}"
    )
    if not ok:
        raise SystemExit(
            f"{label}: expected {expect_events:,} accepted and stored events, got {report} "
            f"(stored {stored}); see {server.log}"
        )
    return run


def _machine_busy() -> float:
    """CPU seconds all processes of the machine have used since boot (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:7]) - idle) / os.sysconf("SC_CLK_TCK")  # steal excluded


def file_ingest(events: Events, work: Path) -> tuple[float, dict[str, Any]]:
    ws = work / "ws-file"
    shutil.rmtree(ws, ignore_errors=True)
    run = _bench.run_child([sys.executable, "-c", FILE_INGEST, str(events.path), str(ws)])
    shutil.rmtree(ws, ignore_errors=True)
    out = json.loads(run.stdout.strip().splitlines()[-1])
    totals: dict[str, Any] = out["totals"]
    if totals.get("accepted") != len(events.lines):
        raise SystemExit(f"file ingest accepted {totals} of {len(events.lines):,} events")
    return float(out["seconds"]), totals


# -- profile ---------------------------------------------------------------------------------------
def summarise_profile(path: Path, top: int) -> None:
    """Own and inclusive samples per function from py-spy's collapsed stacks, by thread."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        n = int(count_text)
        frames = stack.split(";")
        total += n
        threads[_thread_name(frames[0])] += n
        names = [re.sub(r" \((.*/)?([^/]*)\)$", r" (\2)", f) for f in frames[1:]]
        if names:
            own[names[-1]] += n
        for name in set(names):
            incl[name] += n
    print(f"\n== py-spy: {total:,} samples of the server thread holding the GIL ==")
    print("\nby thread:")
    for name, n in threads.most_common():
        print(f"  {n / total:6.1%}  {name}")
    print(f"\ntop {top} by own samples:")
    for name, n in own.most_common(top):
        print(f"  {n / total:6.1%}  {name}")
    print(f"\ntop {top} by inclusive samples:")
    for name, n in incl.most_common(top):
        print(f"  {n / total:6.1%}  {name}")


def _thread_name(frame: str) -> str:
    name = re.sub(r"\(?0x[0-9a-f]+\)?", "", frame)
    name = re.sub(r"-\d+", "-N", name).strip()
    return name or frame


# -- main ------------------------------------------------------------------------------------------
def _pct(a: float, b: float) -> str:
    return f"{a / b:.0%}" if b else "n/a"


def _commit_line(run: HttpRun) -> str:
    c = run.commits
    n = c.get("assay_ingest_commit_duration_seconds_count", 0.0)
    if not n:
        return "n/a"
    busy = c.get("assay_ingest_commit_duration_seconds_sum", 0.0)
    per = c.get("assay_ingest_commit_batches_sum", 0.0) / n
    return (
        f"{n:,.0f} commits, {per:.1f} requests each, {busy / n * 1e3:.0f} ms each, "
        f"{busy:.1f} s in all ({_pct(busy, run.report['seconds'])} of the wall time)"
    )


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _run_line(run: HttpRun) -> str:
    wall = run.report["seconds"]
    lat = run.report["latency_ms"]
    return (
        f"{run.events_per_s:,.0f} events/s ({wall:.1f} s; p50 {lat['p50']:.0f} ms, "
        f"p99 {lat['p99']:.0f} ms; server CPU {run.server_cpu:.1f} s = "
        f"{run.server_cpu / wall:.2f} cores; client CPU {run.client_cpu:.1f} s; the whole "
        f"machine {run.machine_cpu / wall:.2f} cores; statuses {run.report['statuses']})"
    )


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def compare(args: argparse.Namespace, events: Events, work: Path, ndjson: Path, n: int) -> None:
    """This checkout's server against the one of ``--compare-src``, alternating which goes
    first in each round (the machine is shared: only ratios of neighbouring runs mean much).

    Each round: gzip NDJSON closed loop for both, then paced at half the baseline's max of
    that round, for both (the same rate, so their latencies compare).
    """
    other = str(Path(args.compare_src).resolve())
    trees = {"baseline": other, "this checkout": str(Path(args.src).resolve())}
    common = ["--connections", str(args.connections), "--warmup", str(args.warmup)]
    rates: dict[str, list[float]] = {name: [] for name in trees}
    p99s: dict[str, list[float]] = {name: [] for name in trees}
    rate_ratios: list[float] = []
    p99_ratios: list[float] = []
    for r in range(args.rounds):
        order = list(trees) if r % 2 == 0 else list(trees)[::-1]

        def each(label: str, client: list[str], mode: str, expect: int) -> dict[str, HttpRun]:
            runs = {}
            for name in order:  # noqa: B023 (used in this round only)
                SERVER_ENV["PYTHONPATH"] = trees[name]
                runs[name] = http_run(
                    f"{name} {label} r{r}",  # noqa: B023
                    work,
                    ndjson,
                    client,
                    mode=mode,
                    expect_events=expect,
                )
            return runs

        got = each("max", [*common, "--kind", "ndjson", "--gzip"], "closed", n)
        rate = got["baseline"].events_per_s / 2 / args.batch
        paced_bodies = max(1, min(n // args.batch - args.warmup, round(args.seconds * rate)))
        paced_client = [
            *["--connections", str(max(args.connections, 8)), "--kind", "ndjson", "--gzip"],
            *["--rate", f"{rate:.4f}", "--warmup", str(args.warmup)],
            *["--limit", str(args.warmup + paced_bodies)],
        ]
        paced_events = len(events.lines[: (args.warmup + paced_bodies) * args.batch])
        paced = each("paced", paced_client, "paced", paced_events)
        for name in trees:
            rates[name].append(got[name].events_per_s)
            p99s[name].append(paced[name].report["latency_ms"]["p99"])
        rate_ratios.append(got["this checkout"].events_per_s / got["baseline"].events_per_s)
        p99_ratios.append(
            paced["this checkout"].report["latency_ms"]["p99"]
            / paced["baseline"].report["latency_ms"]["p99"]
        )
    _bench.print_machine()
    rows = [("events", f"{n:,} ({events.config})"), ("baseline src", other)]
    rows += [("this checkout src", trees["this checkout"]), ("connections", str(args.connections))]
    for name in trees:
        rows.append(
            (
                name,
                f"gzip NDJSON {_median(rates[name]):,.0f} events/s (rounds: "
                + ", ".join(f"{v:,.0f}" for v in rates[name])
                + f"); paced p99 {_median(p99s[name]):.0f} ms (rounds: "
                + ", ".join(f"{v:.0f}" for v in p99s[name])
                + ")",
            )
        )
    rows += [
        (
            "this / baseline, events/s",
            f"median {_median(rate_ratios):.2f}x (rounds: "
            + ", ".join(f"{v:.2f}" for v in rate_ratios)
            + ")",
        ),
        (
            "this / baseline, paced p99",
            f"median {_median(p99_ratios):.2f}x (rounds: "
            + ", ".join(f"{v:.2f}" for v in p99_ratios)
            + ")",
        ),
    ]
    _bench.print_block("HTTP ingest, this checkout against a baseline tree", rows)


def main() -> None:
    global SERVER_PRELUDE
    args = _parse_args()
    load_at_start = _load()
    SERVER_ENV.update(item.split("=", 1) for item in args.env)
    SERVER_PRELUDE = args.server_prelude
    events = recent_events(args.events)
    n = len(events.lines)
    work = _bench.BENCH_DIR / "http-runs"
    work.mkdir(parents=True, exist_ok=True)

    _bench.note(f"encoding {n:,} events into bodies of {args.batch:,} ...")
    ndjson = work / "bodies-ndjson-gzip.bin"
    array = work / "bodies-array.bin"
    ndjson_bodies = http_load.encode_bodies(
        events.lines, batch=args.batch, kind="ndjson", gzip=True
    )
    array_bodies = http_load.encode_bodies(events.lines, batch=args.batch, kind="array", gzip=False)
    http_load.write_bodies(ndjson, ndjson_bodies)
    http_load.write_bodies(array, array_bodies)
    raw_bytes = sum(len(line) + 1 for line in events.lines)
    gz_bytes = sum(len(b) for b in ndjson_bodies)

    if args.compare_src is not None:
        compare(args, events, work, ndjson, n)
        return
    common = ["--connections", str(args.connections), "--warmup", str(args.warmup)]
    _bench.note(f"runs ({n:,} events, {len(ndjson_bodies)} bodies, {args.connections} conns):")
    gzip_run = http_run(
        "gzip NDJSON", work, ndjson, [*common, "--kind", "ndjson", "--gzip"], expect_events=n
    )
    if args.only_ndjson:
        _bench.print_machine()
        extra = [("server env", str(SERVER_ENV)), ("server prelude", SERVER_PRELUDE or "none")]
        rows = [("events", f"{n:,}"), ("connections", str(args.connections)), *extra]
        rows += [(gzip_run.label, _run_line(gzip_run)), ("commits", _commit_line(gzip_run))]
        _bench.print_block("HTTP ingest (gzip NDJSON only)", rows)
        return
    array_run = http_run("JSON array", work, array, [*common, "--kind", "array"], expect_events=n)
    ceiling = http_run(
        "parse-only ceiling",
        work,
        ndjson,
        [*common, "--kind", "ndjson", "--gzip"],
        parse_only=True,
        expect_events=n,
    )
    file_seconds, file_totals = file_ingest(events, work)
    file_rate = n / file_seconds
    _bench.note(f"  {'file ingest':<22} {file_rate:>10,.0f} events/s  {file_totals}")

    half = gzip_run.events_per_s / 2
    rate = half / args.batch
    paced_bodies = max(1, min(len(ndjson_bodies) - args.warmup, round(args.seconds * rate)))
    paced_events = len(events.lines[: (args.warmup + paced_bodies) * args.batch])
    paced = http_run(
        "paced at half max",
        work,
        ndjson,
        [
            "--connections",
            str(max(args.connections, 8)),
            "--kind",
            "ndjson",
            "--gzip",
            "--rate",
            f"{rate:.4f}",
            "--warmup",
            str(args.warmup),
            "--limit",
            str(args.warmup + paced_bodies),
        ],
        mode="paced",
        expect_events=paced_events,
    )
    profile_path = None
    if args.profile:
        profile_path = work / "server-py-spy.txt"
        http_run(
            "gzip NDJSON (py-spy)",
            work,
            ndjson,
            [*common, "--kind", "ndjson", "--gzip"],
            profile=profile_path,
            expect_events=n,
        )

    ratio = gzip_run.events_per_s / file_rate
    lat = paced.report["latency_ms"]
    _bench.print_machine()
    rows = [
        ("events", f"{n:,} ({events.config})"),
        (
            "bodies",
            f"{len(ndjson_bodies)} of {args.batch:,} events; NDJSON {raw_bytes / 1e6:.0f} MB, "
            f"gzip {gz_bytes / 1e6:.1f} MB",
        ),
        ("connections", f"{args.connections} (closed loop), warm-up {args.warmup} bodies"),
    ]
    rows += [(run.label, _run_line(run)) for run in (gzip_run, array_run, ceiling)]
    rows += [
        ("group commits (gzip NDJSON)", _commit_line(gzip_run)),
        ("group commits (JSON array)", _commit_line(array_run)),
        ("file ingest (in process)", f"{file_rate:,.0f} events/s ({secs(file_seconds)})"),
        ("ratio gzip NDJSON / file", f"{ratio:.2f}x"),
        ("ratio gzip NDJSON / parse-only", f"{gzip_run.events_per_s / ceiling.events_per_s:.2f}x"),
        (
            "paced at half max",
            f"{half:,.0f} events/s for {paced.report['seconds']:.1f} s ({paced_bodies} bodies): "
            f"p50 {lat['p50']:.0f} ms, p90 {lat['p90']:.0f} ms, p99 {lat['p99']:.0f} ms, "
            f"max {lat['max']:.0f} ms",
        ),
        ("1-min load average", f"{load_at_start} at the start, {_load()} at the end"),
        (
            "server exit codes after SIGTERM",
            ", ".join(str(r.exit_code) for r in (gzip_run, array_run, ceiling, paced)),
        ),
    ]
    _bench.print_block("HTTP ingest", rows)

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    print("\n| goal | measured | met? |")
    print("|---|---|---|")
    print(
        f"| gzip NDJSON ≥ {GOAL_NDJSON:,} events/s | {gzip_run.events_per_s:,.0f} | "
        f"{met(gzip_run.events_per_s >= GOAL_NDJSON)} |"
    )
    print(
        f"| JSON arrays ≥ {GOAL_ARRAY:,} events/s | {array_run.events_per_s:,.0f} | "
        f"{met(array_run.events_per_s >= GOAL_ARRAY)} |"
    )
    print(
        f"| HTTP ≥ {GOAL_FILE_RATIO}x file ingest | {ratio:.2f}x ({file_rate:,.0f} events/s "
        f"from the file) | {met(ratio >= GOAL_FILE_RATIO)} |"
    )
    print(
        f"| p99 < {GOAL_P99_MS:.0f} ms at half max | p99 {lat['p99']:.0f} ms, p50 "
        f"{lat['p50']:.0f} ms at {half:,.0f} events/s | {met(lat['p99'] < GOAL_P99_MS)} |"
    )
    print(f"| (ceiling) parse-only server | {ceiling.events_per_s:,.0f} events/s | - |")
    if profile_path is not None and profile_path.exists():
        summarise_profile(profile_path, args.top)


if __name__ == "__main__":
    main()
