"""The workspace metadata store (``assay.sqlite``): job runs, API keys, incidents and launch
sign-offs.

Nothing here holds raw text or raw user ids: job summaries are counts and pseudonymous names.
Every table is created with ``CREATE TABLE IF NOT EXISTS`` when the store opens, so a workspace
made by an older assay gains the newer tables in place.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS job_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    tenant_id TEXT,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    tenant_id TEXT,
    metric TEXT NOT NULL,
    slice TEXT NOT NULL,
    start_day TEXT NOT NULL,
    end_day TEXT NOT NULL,
    direction TEXT NOT NULL,
    severity TEXT NOT NULL,
    expected REAL,
    observed REAL,
    score REAL,
    details TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    acknowledged_at TEXT,
    resolved_at TEXT,
    merged_into INTEGER
);
CREATE INDEX IF NOT EXISTS incidents_kind_key ON incidents (kind, key);
CREATE TABLE IF NOT EXISTS launch_signoffs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    signed_by TEXT NOT NULL,
    decision TEXT NOT NULL,
    notes TEXT NOT NULL,
    signed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS launch_signoffs_model ON launch_signoffs (model, version);
"""


class MetaStore:
    """A thin, thread-safe wrapper over the workspace's SQLite file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        path.chmod(0o600)

    def start_job(self, kind: str) -> int:
        """Record the start of a job and return its id."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO job_runs (kind, started_at, status) VALUES (?, ?, 'running')",
                (kind, _now()),
            )
            return int(cur.lastrowid or 0)

    def finish_job(self, job_id: int, status: str, summary: dict[str, Any]) -> None:
        """Record the end of a job with a summary of counts (never raw text or ids)."""
        with self._lock:
            self._conn.execute(
                "UPDATE job_runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
                (_now(), status, json.dumps(summary, sort_keys=True, default=str), job_id),
            )

    def jobs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The most recent job runs, newest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, kind, started_at, finished_at, status, summary FROM job_runs "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        cols = ("id", "kind", "started_at", "finished_at", "status", "summary")
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement under the store's lock and return its rows."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One SQLite write transaction under the store's lock: committed on exit, rolled back
        on an exception.

        ``BEGIN IMMEDIATE`` takes SQLite's write lock at once, so a read-then-write inside the
        block is atomic across threads (the store's lock) and processes (SQLite's lock).
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
