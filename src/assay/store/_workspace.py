"""The workspace: a folder of Delta tables, settings, a pseudonymisation key and metadata.

Layout::

    events/        Delta table, partitioned by event_date, files sorted by tenant and user
    content/       Delta table of redacted text keyed by (tenant_id, event_id)
    quarantine/    Delta table of rejected rows (redacted, pseudonymised) with the reason
    assay.toml     settings
    assay.sqlite   metadata: job runs, API keys (as hashes), incidents
    secret.key     the pseudonymisation key (mode 0600), unless ASSAY_SECRET is set
    .write.lock    the workspace write lock

Every commit happens while the write lock is held. Delta statistics are kept only for time and
date columns, so that no id or text ever lands in the transaction log (``forget`` could not
remove it from there).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Literal, Self
from urllib.parse import unquote

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from assay._errors import NotFoundError, WorkspaceError
from assay.privacy import new_key, pseudonym
from assay.schema import CONTENT_SCHEMA, EVENTS_SCHEMA, PARTITION_BY, QUARANTINE_SCHEMA
from assay.store._incidents import IncidentStore
from assay.store._keys import KeyStore
from assay.store._lock import WriteLock
from assay.store._meta import MetaStore
from assay.store._settings import SETTINGS_FILE, Settings

TableName = Literal["events", "content", "quarantine"]
TABLES: tuple[TableName, ...] = ("events", "content", "quarantine")
SCHEMAS: dict[str, pa.Schema] = {
    "events": EVENTS_SCHEMA,
    "content": CONTENT_SCHEMA,
    "quarantine": QUARANTINE_SCHEMA,
}
_STATS_COLUMNS = {
    "events": "event_time,event_date,ingested_at",
    "content": "event_date,ingested_at",
    "quarantine": "quarantined_at,quarantine_date",
}
DEFAULT_WORKSPACE = "assay-workspace"
SECRET_FILE = "secret.key"
META_FILE = "assay.sqlite"
LOCK_FILE = ".write.lock"
_COMMIT_RETRIES = 8


def resolve_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The workspace folder: ``path``, else ``ASSAY_WORKSPACE``, else ``./assay-workspace``."""
    if path is None or str(path) == "":
        path = os.environ.get("ASSAY_WORKSPACE") or DEFAULT_WORKSPACE
    return Path(path).expanduser().absolute()


@dataclass(frozen=True)
class ForgetResult:
    """Rows removed by :meth:`Workspace.forget`, per table."""

    events: int
    content: int
    quarantine: int

    @property
    def total(self) -> int:
        return self.events + self.content + self.quarantine


class Workspace:
    """An assay workspace on disk. Use :meth:`open` or :meth:`init`, as a context manager.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with Workspace.init(d + "/ws") as ws:
    ...         sorted(p.name for p in ws.path.iterdir() if p.is_dir())
    ['content', 'events', 'quarantine']
    """

    def __init__(self, path: Path, settings: Settings, *, created: bool = False) -> None:
        self.path = path
        self.settings = settings
        self.created = created
        self.lock = WriteLock(path / LOCK_FILE)
        self.meta = MetaStore(path / META_FILE)
        self._secret: bytes | None = None
        self._tables: dict[str, DeltaTable] = {}
        self._tables_lock = threading.Lock()
        self._closed = False
        self._on_close: list[Callable[[], None]] = []

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def init(cls, path: str | os.PathLike[str] | None = None) -> Self:
        """Create a workspace at ``path`` (idempotent: an existing workspace is opened as is)."""
        root = resolve_path(path)
        if root.exists() and not root.is_dir():
            raise WorkspaceError(
                f"cannot create a workspace at {root}: a file of that name exists; "
                "choose another --workspace"
            )
        created = not (root / SETTINGS_FILE).exists()
        root.mkdir(parents=True, exist_ok=True)
        if created:
            (root / SETTINGS_FILE).write_text(Settings().to_toml(), encoding="utf-8")
        secret = root / SECRET_FILE
        if not secret.exists() and not os.environ.get("ASSAY_SECRET"):
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(new_key().hex() + "\n")
        ws = cls(root, Settings.load(root), created=created)
        with ws.lock.hold(ws.settings.lock_timeout_seconds):
            for name in TABLES:
                ws._ensure_table(name)
        return ws

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, *, create: bool = False) -> Self:
        """Open the workspace at ``path`` (see :func:`resolve_path`).

        Parameters
        ----------
        create : create the workspace if it does not exist (``ws.created`` tells).

        Raises
        ------
        WorkspaceError
            If there is no workspace there and ``create`` is false.
        """
        root = resolve_path(path)
        if not (root / SETTINGS_FILE).exists():
            if create:
                return cls.init(root)
            raise WorkspaceError(
                f"no assay workspace at {root} (no {SETTINGS_FILE}); create one with "
                f"`assay init --workspace {root}` or point --workspace / ASSAY_WORKSPACE at one"
            )
        return cls(root, Settings.load(root))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close connections this workspace opened (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for fn in reversed(self._on_close):
            fn()
        self._on_close.clear()
        self.meta.close()

    @property
    def keys(self) -> KeyStore:
        """The workspace's API keys (stored as hashes in ``assay.sqlite``)."""
        return KeyStore(self.meta)

    @property
    def incidents(self) -> IncidentStore:
        """The workspace's incidents (anomalies, drift, regressions) in ``assay.sqlite``."""
        return IncidentStore(self.meta)

    def on_close(self, fn: Callable[[], None]) -> None:
        """Register a function to run when the workspace closes (engines, caches)."""
        self._on_close.append(fn)

    # -- secrets --------------------------------------------------------------------------------
    @property
    def secret(self) -> bytes:
        """The pseudonymisation key: ``ASSAY_SECRET`` if set, else ``secret.key``.

        ``ASSAY_SECRET`` may hold the hex text of ``secret.key`` (the same key), or any other
        text of at least 16 characters, used as its UTF-8 bytes.
        """
        if self._secret is None:
            env = os.environ.get("ASSAY_SECRET")
            if env:
                if len(env) < 16:
                    raise WorkspaceError(
                        f"ASSAY_SECRET must be at least 16 characters (got {len(env)}); "
                        "use e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`"
                    )
                # The same text as secret.key (hex) gives the same key; any other text is
                # used as its UTF-8 bytes.
                try:
                    self._secret = bytes.fromhex(env) if len(env) >= 32 else env.encode()
                except ValueError:
                    self._secret = env.encode("utf-8")
            else:
                path = self.path / SECRET_FILE
                try:
                    self._secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
                except FileNotFoundError:
                    raise WorkspaceError(
                        f"the pseudonymisation key {path} is missing; restore it from a backup "
                        "or set ASSAY_SECRET (new ids would not match the stored pseudonyms)"
                    ) from None
                except ValueError:
                    raise WorkspaceError(
                        f"the pseudonymisation key {path} is not hex; restore it from a backup"
                    ) from None
        return self._secret

    def pseudonym(self, tenant_id: str, user_id: str) -> str:
        """The stored pseudonym of a user (the pair tenant, user)."""
        return pseudonym(self.secret, tenant_id, user_id)

    # -- tables ---------------------------------------------------------------------------------
    def table_path(self, name: TableName) -> Path:
        if name not in SCHEMAS:
            raise NotFoundError(f"no table {name!r}; tables are {', '.join(TABLES)}")
        return self.path / name

    def table(self, name: TableName) -> DeltaTable:
        """The current version of a Delta table.

        Loaded once, then brought up to date by reading only the log entries written since
        (a full load replays the whole log: it grows with every commit), and only when a stat
        shows a newer commit (our own writes update the loaded table in place).
        """
        path = self.table_path(name)
        try:
            with self._tables_lock:
                dt = self._tables.get(name)
                if dt is None:
                    dt = self._tables[name] = DeltaTable(str(path))
                elif self.has_commit_after(name, dt.version()):
                    dt.update_incremental()
                return dt
        except TableNotFoundError:
            raise WorkspaceError(
                f"table {name} is missing from the workspace {self.path}; run "
                f"`assay init --workspace {self.path}` to recreate empty tables"
            ) from None

    def has_commit_after(self, name: TableName, version: int) -> bool:
        """Whether the table has a commit newer than ``version`` (one stat of the log)."""
        return (self.table_path(name) / "_delta_log" / f"{version + 1:020d}.json").exists()

    def added_files(self, name: TableName, version: int) -> list[str]:
        """The data files one commit added, as local paths (as :meth:`files` gives them)."""
        root = self.table_path(name)
        log = root / "_delta_log" / f"{version:020d}.json"
        out = []
        for line in log.read_text(encoding="utf-8").splitlines():
            action = json.loads(line) if line.strip() else {}
            if "add" in action:
                out.append(str(root / unquote(action["add"]["path"])))
        return out

    def files(self, name: TableName) -> list[str]:
        """The Parquet files that make up the current version of a table, as local paths.

        delta-rs gives them percent-encoded (a space as ``%20``); readers want the real path.
        """
        return [unquote(uri) for uri in self.table(name).file_uris()]

    def version(self, name: TableName) -> int:
        return int(self.table(name).version())

    def _ensure_table(self, name: TableName) -> None:
        path = self.table_path(name)
        if (path / "_delta_log").exists():
            return
        DeltaTable.create(
            str(path),
            schema=SCHEMAS[name],
            partition_by=PARTITION_BY[name],
            configuration={
                "delta.enableDeletionVectors": "false",
                "delta.dataSkippingStatsColumns": _STATS_COLUMNS[name],
            },
        )

    def append(self, name: TableName, table: pa.Table) -> int:
        """Append rows to a table in one atomic commit; return the table's new version.

        The write lock must be held.
        """
        if not self.lock.held:
            raise WorkspaceError(f"internal: append to {name} without the workspace write lock")
        if table.num_rows == 0:
            return self.version(name)
        data = table.select(SCHEMAS[name].names).cast(SCHEMAS[name])
        self._commit(
            lambda: write_deltalake(
                self.table(name), data, mode="append", partition_by=PARTITION_BY[name]
            )
        )
        # The write updated the loaded table in place: no reload.
        return int(self._tables[name].version())

    def _commit(self, fn: Callable[[], object]) -> None:
        for attempt in range(_COMMIT_RETRIES):
            try:
                fn()
                return
            except CommitFailedError:
                if attempt == _COMMIT_RETRIES - 1:
                    raise
                time.sleep(0.05 * (2**attempt))

    @contextmanager
    def duckdb(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh in-process DuckDB connection pinned to UTC, closed on exit."""
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def read(self, name: TableName, *, where: str = "", params: Sequence[object] = ()) -> pa.Table:
        """Read a table (optionally filtered by a SQL ``where`` with ``?`` parameters)."""
        files = self.files(name)
        schema = SCHEMAS[name]
        if not files:
            return schema.empty_table()
        with self.duckdb() as con:
            sql = f"SELECT * FROM read_parquet(?, hive_partitioning = true) {where}"
            out = con.sql(sql, params=[files, *params]).to_arrow_table()
        return out.select(schema.names).cast(schema)

    def last_event_day(self) -> date | None:
        """The latest ``event_date`` stored, or None for an empty workspace."""
        files = self.files("events")
        if not files:
            return None
        with self.duckdb() as con:
            row = con.sql(
                "SELECT max(event_date) FROM read_parquet(?, hive_partitioning = true)",
                params=[files],
            ).fetchall()
        return row[0][0] if row else None

    def tenants(self) -> list[str]:
        """Tenants with at least one stored event, sorted."""
        files = self.files("events")
        if not files:
            return []
        with self.duckdb() as con:
            rows = con.sql(
                "SELECT DISTINCT tenant_id FROM read_parquet(?) ORDER BY 1", params=[files]
            ).fetchall()
        return [r[0] for r in rows]

    # -- repair -------------------------------------------------------------------------------
    def remove_orphan_content(self) -> int:
        """Remove content rows whose event is not stored (left by a crash between the content
        and the events commit of one batch). The write lock must be held."""
        if not self.lock.held:
            raise WorkspaceError("internal: repair without the workspace write lock")
        content, events = self.files("content"), self.files("events")
        if not content:
            return 0
        where = (
            "NOT EXISTS (SELECT 1 FROM read_parquet(?) e "
            "WHERE e.tenant_id = c.tenant_id AND e.event_id = c.event_id)"
        )
        with self.duckdb() as con:
            src = "read_parquet(?, hive_partitioning = true) c"
            if events:
                hits = con.sql(
                    f"SELECT event_date, count(*) FROM {src} WHERE {where} GROUP BY 1",
                    params=[content, events],
                ).fetchall()
            else:
                hits = con.sql(
                    f"SELECT event_date, count(*) FROM {src} GROUP BY 1", params=[content]
                ).fetchall()
            removed = 0
            for day, n in hits:
                keep_where = f"event_date = ? AND NOT ({where})" if events else "FALSE"
                params: list[object] = [content, day, events] if events else [content]
                keep = con.sql(
                    f"SELECT c.* FROM {src} WHERE {keep_where}", params=params
                ).to_arrow_table()
                keep = keep.select(SCHEMAS["content"].names).cast(SCHEMAS["content"])
                self._overwrite_partition("content", keep, f"event_date = '{day.isoformat()}'")
                removed += int(n)
        return removed

    # -- erasure --------------------------------------------------------------------------------
    def forget(self, tenant_id: str, user_id: str | None = None) -> ForgetResult:
        """Erase a tenant's (or one user's) events, content and quarantine rows, then vacuum.

        Affected partitions are rewritten without the rows (the commit records only the
        partition's date, never an id), and the replaced files are removed at once.
        """
        if not tenant_id:
            raise WorkspaceError("forget needs a tenant id (--tenant); got an empty string")
        where = "tenant_id = ?"
        params: list[object] = [tenant_id]
        if user_id is not None:
            where += " AND user_id = ?"
            params.append(self.pseudonym(tenant_id, user_id))
        counts: dict[str, int] = {}
        with self.lock.hold(self.settings.lock_timeout_seconds):
            for name in TABLES:
                counts[name] = self._forget_rows(name, where, params)
            for name in TABLES:
                self.table(name).vacuum(
                    retention_hours=0, enforce_retention_duration=False, dry_run=False
                )
        return ForgetResult(**counts)

    def _forget_rows(self, name: TableName, where: str, params: list[object]) -> int:
        files = self.files(name)
        if not files:
            return 0
        part = PARTITION_BY[name][0]
        with self.duckdb() as con:
            src = "read_parquet(?, hive_partitioning = true)"
            hits = con.sql(
                f"SELECT {part}, count(*) FROM {src} WHERE {where} GROUP BY 1 ORDER BY 1",
                params=[files, *params],
            ).fetchall()
            removed = 0
            for day, n in hits:
                keep = con.sql(
                    f"SELECT * FROM {src} WHERE {part} = ? AND ({where}) IS NOT TRUE",
                    params=[files, day, *params],
                ).to_arrow_table()
                keep = keep.select(SCHEMAS[name].names).cast(SCHEMAS[name])
                self._overwrite_partition(name, keep, f"{part} = '{day.isoformat()}'")
                removed += int(n)
        return removed

    def _overwrite_partition(self, name: TableName, rows: pa.Table, predicate: str) -> None:
        def write() -> None:
            write_deltalake(
                self.table(name),
                rows,
                mode="overwrite",
                predicate=predicate,
                partition_by=PARTITION_BY[name],
            )

        self._commit(write)
