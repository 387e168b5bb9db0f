"""A kill mid-ingest leaves the workspace consistent; concurrent writers store each event once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from assay import Workspace
from assay.synth import SynthConfig, write

pytestmark = pytest.mark.slow


def _cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from assay.cli import main; main()", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("synth")
    result = write(out, SynthConfig(tenants=4, users=120, days=30, seed=3))
    return out, result.events


def _env(batch_rows: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "ASSAY_BATCH_ROWS": str(batch_rows),
    }


def _assert_exactly_once(root: Path, expected: int) -> None:
    with Workspace.open(root) as ws, ws.duckdb() as con:
        files = ws.files("events")
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT (tenant_id, event_id)) FROM read_parquet(?)", [files]
        ).fetchone() or (0, 0)
        ctotal, cdistinct = con.execute(
            "SELECT count(*), count(DISTINCT (tenant_id, event_id)) FROM read_parquet(?)",
            [ws.files("content")],
        ).fetchone() or (0, 0)
    assert total == distinct == expected
    assert ctotal == cdistinct


def test_kill_mid_ingest_then_rerun_stores_everything_once(
    tmp_path: Path, data: tuple[Path, int]
) -> None:
    folder, n_events = data
    root = tmp_path / "ws"
    env = _env(batch_rows=1500)
    proc = _cli(["ingest", str(folder), "--workspace", str(root)], env)
    deadline = time.monotonic() + 120
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        log = root / "events" / "_delta_log"
        if log.exists() and DeltaTable(str(root / "events")).version() >= 4:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert killed, "ingest finished before it could be killed; make the data larger"
    with Workspace.open(root) as ws:
        partial = ws.read("events").num_rows
    assert 0 < partial < n_events
    rerun = _cli(["ingest", str(folder), "--workspace", str(root)], env)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read() if rerun.stderr else ""
    _assert_exactly_once(root, n_events)


def test_two_concurrent_ingests_of_the_same_files_store_each_event_once(
    tmp_path: Path, data: tuple[Path, int]
) -> None:
    folder, n_events = data
    root = tmp_path / "ws"
    with Workspace.init(root):
        pass
    env = _env(batch_rows=4000)
    procs = [_cli(["ingest", str(folder), "--workspace", str(root)], env) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read() if p.stderr else ""
    _assert_exactly_once(root, n_events)
