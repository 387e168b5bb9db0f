"""Workspace creation, settings, the key file and the write lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from assay import LockTimeoutError, WorkspaceError
from assay.schema import EVENTS_SCHEMA
from assay.store import Settings, Workspace


def test_init_creates_tables_settings_and_a_private_key(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        assert ws.created
        for name in ("events", "content", "quarantine"):
            assert (ws.path / name / "_delta_log").is_dir()
            assert ws.files(name) == []
        key = ws.path / "secret.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert len(bytes.fromhex(key.read_text().strip())) == 32
        assert ws.table("events").schema().to_arrow().names == EVENTS_SCHEMA.names
    with Workspace.init(tmp_path / "ws") as again:
        assert not again.created


def test_open_missing_workspace_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="assay init --workspace"):
        Workspace.open(tmp_path / "nope")


def test_workspace_path_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_WORKSPACE", str(tmp_path / "envws"))
    with Workspace.open(create=True) as ws:
        assert ws.path == tmp_path / "envws"


def test_settings_read_toml_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "assay.toml").write_text("[assay]\nstore_text = false\nbatch_rows = 100\n")
    monkeypatch.setenv("ASSAY_BATCH_ROWS", "250")
    s = Settings.load(tmp_path)
    assert s.store_text is False
    assert s.batch_rows == 250
    assert s.max_future_seconds == 86_400


def test_unknown_or_mistyped_setting_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / "assay.toml").write_text("[assay]\nbatch_rowz = 1\n")
    with pytest.raises(WorkspaceError, match="known settings are"):
        Settings.load(tmp_path)
    (tmp_path / "assay.toml").write_text('[assay]\nbatch_rows = "many"\n')
    with pytest.raises(WorkspaceError, match="must be a int"):
        Settings.load(tmp_path)


def test_settings_round_trip_through_toml(tmp_path: Path) -> None:
    s = Settings(store_text=False, active_event_types=("turn", "feedback"), batch_rows=7)
    (tmp_path / "assay.toml").write_text(s.to_toml())
    assert Settings.load(tmp_path) == s


def test_append_without_the_lock_is_refused(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws, pytest.raises(WorkspaceError, match="lock"):
        ws.append("events", EVENTS_SCHEMA.empty_table())


def test_write_lock_excludes_another_process(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        holder = textwrap.dedent(
            f"""
            import sys, time
            from assay.store import Workspace
            ws = Workspace.open({str(ws.path)!r})
            with ws.lock.hold(10):
                print("held", flush=True)
                time.sleep(3)
            """
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        proc = subprocess.Popen(
            [sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True, env=env
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "held"
            with pytest.raises(LockTimeoutError, match="another assay process"), ws.lock.hold(0.3):
                pass
            # Once the other process lets go, the lock can be taken.
            with ws.lock.hold(20):
                assert ws.lock.held
        finally:
            proc.wait(timeout=30)


def test_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        with ws.lock.hold(1), ws.lock.hold(1):
            assert ws.lock.held
        assert not ws.lock.held


def test_read_of_empty_table_has_the_schema(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        t = ws.read("events")
        assert isinstance(t, pa.Table)
        assert t.num_rows == 0
        assert t.schema.names == EVENTS_SCHEMA.names
        assert ws.last_event_day() is None
        assert ws.tenants() == []


def test_assay_secret_with_the_key_files_hex_gives_the_same_pseudonyms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        from_file = ws.pseudonym("t", "u")
        hex_key = (ws.path / "secret.key").read_text().strip()
    monkeypatch.setenv("ASSAY_SECRET", hex_key)
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.pseudonym("t", "u") == from_file
    monkeypatch.setenv("ASSAY_SECRET", "a passphrase that is not hex")
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.pseudonym("t", "u") != from_file
    monkeypatch.setenv("ASSAY_SECRET", "short")
    with Workspace.open(tmp_path / "ws") as ws, pytest.raises(WorkspaceError, match="16"):
        ws.pseudonym("t", "u")
