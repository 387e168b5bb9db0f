"""The workspace metadata store (``assay.sqlite``): job runs and API keys; incidents later.

Nothing here holds raw text or raw user ids: job summaries are counts and pseudonymous names.
"""

from __future__ import annotations

import json
import sqlite3
import threading
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

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
