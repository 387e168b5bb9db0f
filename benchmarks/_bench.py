"""What the benchmarks share: synthetic data sets, timed child processes, machine facts.

Not a benchmark itself. Data sets and workspaces live under ``$ASSAY_BENCH_DIR`` (default
``/tmp/assay-bench``) and are reused between runs; delete that folder to start over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
BENCH_DIR = Path(os.environ.get("ASSAY_BENCH_DIR", "/tmp/assay-bench"))

# The synth data set behind ``--events N``: 50 tenants over 60 days, users scaled to N.
# 1.258 events per (tenant, user, day) is what the synth's defaults produce (10 M events with
# tenants=50, users=2650, days=60).
TENANTS = 50
DAYS = 60
EVENTS_PER_USER_DAY = 1.258

# The synth writes about 1% of event_time values as integer epoch milliseconds, which no
# single pyarrow.json column type can hold next to strings.
_EPOCH_TIME = re.compile(rb'"event_time":(-?\d+)([,}])')

# `python -m assay.cli` does not call main(), so the CLI is started the way its script is.
ASSAY_CLI = [sys.executable, "-c", "from assay.cli import main; main()"]


# The baselines of the ingest benchmarks, run as `python -c CODE SOURCE OUT`.
# The baseline: the whole file as one table, then one Parquet file (snappy).
SIMPLE_BASELINE = """
import sys
import pyarrow.json as pj
import pyarrow.parquet as pq
pq.write_table(pj.read_json(sys.argv[1]), sys.argv[2])
"""

# The same per 32 MiB block of lines, one Parquet file per block: bounded memory.
STREAM_BASELINE = """
import os, sys
import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq
source, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
rest, part = b"", 0
with open(source, "rb") as f:
    while True:
        chunk = f.read(32 << 20)
        data = rest + chunk
        cut = data.rfind(b"\\n") + 1 if chunk else len(data)
        if cut:
            table = pj.read_json(pa.BufferReader(data[:cut]))
            pq.write_table(table, f"{out}/part-{part:05d}.parquet")
            part += 1
        rest = data[cut:]
        if not chunk:
            break
"""


def child_env() -> dict[str, str]:
    """The environment of child processes: this checkout's ``src`` first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SRC), env.get("PYTHONPATH", "")) if p
    ).rstrip(os.pathsep)
    # Plain output from Rich: no progress bars redrawn into the log files.
    env["TERM"] = "dumb"
    env.pop("ASSAY_WORKSPACE", None)
    return env


@dataclass(frozen=True)
class ChildRun:
    """One finished child process: wall time, peak resident memory, exit code, output."""

    seconds: float
    max_rss: int
    returncode: int
    stdout: str
    stderr: str
    rss_trace: tuple[tuple[float, int], ...] = ()


def run_child(
    cmd: Sequence[str],
    *,
    check: bool = True,
    ok_codes: Sequence[int] = (0,),
    trace_every: float | None = None,
) -> ChildRun:
    """Run ``cmd`` as a child; time it and take its own peak RSS from ``wait4``.

    ``wait4`` gives the resource use of exactly this child (and the children it waited for),
    so each measurement is independent of earlier children of this process. With
    ``trace_every`` (seconds), the child's current RSS is also sampled from ``/proc`` as it
    runs, to show whether memory grows with the input or stays flat.
    """
    trace: list[tuple[float, int]] = []
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=child_env(), cwd=ROOT)
        sampler = None
        if trace_every is not None:
            sampler = threading.Thread(
                target=_sample_rss, args=(proc.pid, start, trace_every, trace), daemon=True
            )
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if sampler is not None:
            sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        run = ChildRun(
            seconds=seconds,
            max_rss=int(usage.ru_maxrss) * 1024,  # kilobytes on Linux
            returncode=proc.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            rss_trace=tuple(trace),
        )
    if check and run.returncode not in ok_codes:
        tail = "\n".join(run.stderr.splitlines()[-30:])
        raise SystemExit(
            f"child failed with exit code {run.returncode}: {' '.join(cmd[:6])} ...\n{tail}"
        )
    return run


def _sample_rss(pid: int, start: float, every: float, trace: list[tuple[float, int]]) -> None:
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            text = status.read_text()
        except OSError:
            return  # the child has been reaped
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                trace.append((time.perf_counter() - start, int(line.split()[1]) * 1024))
                break
        else:
            return  # a zombie has no VmRSS: the child has exited
        time.sleep(every)


def describe_trace(trace: Sequence[tuple[float, int]], parts: int = 10) -> str:
    """The largest RSS in each tenth of the run: flat, or growing with the input?"""
    if not trace:
        return "no samples"
    end = trace[-1][0] or 1.0
    peaks: list[int | None] = [None] * parts
    for t, rss in trace:
        i = min(parts - 1, int(t / end * parts))
        peaks[i] = max(peaks[i] or 0, rss)
    return " ".join("-" if p is None else f"{p / 2**20:,.0f}" for p in peaks) + " MiB"


@dataclass(frozen=True)
class DataSet:
    """A synthetic JSON Lines data set, concatenated into one file, plus a twin.

    ``path`` is what ``assay.synth.write`` wrote (day files concatenated in day order).
    ``strtime_path`` is the same lines with each epoch-millisecond ``event_time`` rewritten
    as the equal RFC 3339 string, so that ``pyarrow.json`` can read it as one table.
    """

    key: str
    config: dict[str, Any]
    path: Path
    strtime_path: Path
    events: int
    epoch_times: int
    bytes: int


def synth_config(events: int) -> Any:
    """The SynthConfig that makes about ``events`` events."""
    from assay.synth import SynthConfig

    users = max(1, round(events / (TENANTS * DAYS * EVENTS_PER_USER_DAY)))
    # A fixed start: results stay comparable across days (synth's default period ends yesterday).
    return SynthConfig(tenants=TENANTS, users=users, days=DAYS, start=dt.date(2026, 1, 1))


def _iso_ms(match: re.Match[bytes]) -> bytes:
    ms = int(match.group(1))
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    text = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return b'"event_time":"' + text.encode() + b'"' + match.group(2)


def dataset(events: int) -> DataSet:
    """The data set of about ``events`` events, generated on first use and then reused."""
    config = synth_config(events)
    key = f"t{config.tenants}-u{config.users}-d{config.days}-s{config.seed}"
    folder = BENCH_DIR / "data" / key
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        _generate(config, folder)
    meta = json.loads(meta_path.read_text())
    return DataSet(
        key=key,
        config=meta["config"],
        path=folder / "events.jsonl",
        strtime_path=folder / "events-strtime.jsonl",
        events=int(meta["events"]),
        epoch_times=int(meta["epoch_times"]),
        bytes=int(meta["bytes"]),
    )


def _generate(config: Any, folder: Path) -> None:
    from assay.synth import truth, write

    expected = truth(config)["expected_events"]
    note(f"generating about {expected:,} events ({config}) into {folder} ...")
    days = folder / "days"
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    out = write(days, config, format="jsonl")
    epoch_times = 0
    size = 0
    with (
        (folder / "events.jsonl").open("wb") as plain,
        (folder / "events-strtime.jsonl").open("wb") as twin,
    ):
        for path in out.files:
            data = path.read_bytes()
            plain.write(data)
            size += len(data)
            fixed, n = _EPOCH_TIME.subn(_iso_ms, data)
            twin.write(fixed)
            epoch_times += n
            path.unlink()
    shutil.rmtree(days)
    meta = {
        "config": {
            "tenants": config.tenants,
            "users": config.users,
            "days": config.days,
            "seed": config.seed,
            "start": config.start.isoformat(),
        },
        "events": out.events,
        "epoch_times": epoch_times,
        "bytes": size,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    note(f"  {out.events:,} events, {size / 1e9:.2f} GB, in {time.perf_counter() - start:.0f} s")


def ingest(
    source: Path, workspace: Path, *, trace_every: float | None = None
) -> tuple[ChildRun, dict[str, Any]]:
    """``assay ingest`` of ``source`` into a new workspace at ``workspace`` (replaced)."""
    shutil.rmtree(workspace, ignore_errors=True)
    # A kept workspace is marked finished only after a successful ingest (mark_ingested).
    workspace.with_suffix(".done").unlink(missing_ok=True)
    workspace.parent.mkdir(parents=True, exist_ok=True)
    cmd = [*ASSAY_CLI, "ingest", str(source), "--workspace", str(workspace), "--output", "json"]
    # Exit code 1 means "some rows were rejected": still a finished ingest.
    run = run_child(cmd, ok_codes=(0, 1), trace_every=trace_every)
    return run, _ingest_totals(run.stdout)


def _ingest_totals(stdout: str) -> dict[str, Any]:
    start = stdout.find("{")
    if start < 0:
        return {}
    try:
        summary = json.loads(stdout[start:])
    except json.JSONDecodeError:
        return {}
    totals = summary.get("totals", {}) if isinstance(summary, dict) else {}
    return totals if isinstance(totals, dict) else {}


def machine() -> dict[str, str]:
    """Facts about this machine and the library versions, for RESULTS.md."""
    import duckdb
    import pyarrow

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    except OSError:
        pass
    facts = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "pyarrow": pyarrow.__version__,
        "duckdb": duckdb.__version__,
    }
    now = source_digest()
    facts["assay src"] = (
        now
        if now == _DIGEST_AT_START
        else f"{now} (CHANGED during the run: was {_DIGEST_AT_START})"
    )
    for name in ("deltalake", "pandas", "ibis"):
        try:
            module = __import__(name)
            facts[name] = str(module.__version__)
        except Exception:
            facts[name] = "absent"
    return facts


def source_digest() -> str:
    """A short digest of every ``src/**/*.py``: which code was measured (there may be no commit)."""
    digest = hashlib.sha256()
    for path in sorted(SRC.rglob("*.py")):
        digest.update(str(path.relative_to(SRC)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


_DIGEST_AT_START = source_digest()


def command_line() -> str:
    """How this script was run, as one line to paste."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(ROOT))
    except ValueError:
        shown = str(script)
    return " ".join(["PYTHONPATH=src", ".venv/bin/python", shown, *sys.argv[1:]])


def note(text: str) -> None:
    """Progress on stderr, so stdout holds only the result block."""
    print(text, file=sys.stderr, flush=True)


def print_block(title: str, rows: Sequence[tuple[str, str]]) -> None:
    """A result block: a title, then aligned ``name : value`` lines."""
    width = max(len(name) for name, _ in rows)
    print()
    print(f"== {title} ==")
    for name, value in rows:
        print(f"  {name.ljust(width)} : {value}")


def print_machine() -> None:
    facts = machine()
    print_block("machine", [(k, v) for k, v in facts.items()])
    print_block("command", [("run", command_line())])


def markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def secs(s: float) -> str:
    return f"{s:.2f} s"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def workspace_path(data: DataSet) -> Path:
    """Where the kept workspace holding ``data`` lives (see :func:`ingested_workspace`)."""
    return BENCH_DIR / "ws" / data.key


def mark_ingested(data: DataSet, totals: dict[str, Any]) -> None:
    """Record that :func:`workspace_path` holds a finished ingest of ``data``."""
    marker = workspace_path(data).with_suffix(".done")
    marker.write_text(json.dumps(totals) + "\n")


def ingested_workspace(data: DataSet) -> Path:
    """A workspace holding ``data`` (the file as the synth wrote it), ingested once and kept."""
    path = workspace_path(data)
    if not path.with_suffix(".done").exists():
        note(f"ingesting {data.events:,} events into {path} (kept for later runs) ...")
        run, totals = ingest(data.path, path)
        note(f"  done in {run.seconds:.0f} s: {totals}")
        mark_ingested(data, totals)
    return path
