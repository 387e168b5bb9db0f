"""The engine seam: where the stored ``events`` table becomes an Ibis table.

Metric and feature logic is written once as Ibis expressions; an :class:`Engine` only knows how
to turn the Delta table's current Parquet files into an Ibis table on its backend.

- ``duckdb`` (default): an in-process DuckDB connection, pinned to UTC, one thread per core.
- ``pyspark`` (optional extra ``assay[spark]``): a SparkSession, local or on a cluster, pinned
  to UTC in the session and in the JVMs. One session per process is shared by every engine.

The Parquet files of the ``events`` table do not hold the partition column ``event_date``: it
lives in the hive-style path (``.../event_date=2026-01-01/part-....parquet``), so both readers
recover it from the path, and both cast it to a DATE the same way, with no time zone involved.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, get_args, runtime_checkable

import ibis
import pyarrow as pa

from assay._errors import EngineError, UsageError
from assay.schema import EVENTS_SCHEMA

if TYPE_CHECKING:
    import ibis.expr.types as ir

EngineName = Literal["duckdb", "pyspark"]

ENGINE_NAMES: tuple[str, ...] = get_args(EngineName)

_SPARK_INSTALL_HINT = "pip install 'assay[spark]'"
_DEFAULT_SPARK_MASTER = "local[2]"
_SPARK_SHUFFLE_PARTITIONS = "4"


@runtime_checkable
class Engine(Protocol):
    """A query engine that exposes the stored events as an Ibis table.

    Attributes
    ----------
    name : the engine's name, ``"duckdb"`` or ``"pyspark"``.
    """

    name: EngineName

    def events(self, table_root: str, files: Sequence[str]) -> ir.Table:
        """Return the events stored in ``files`` as an Ibis table with ``EVENTS_SCHEMA``.

        Parameters
        ----------
        table_root : the root folder (or URI) of the Delta table; the files lie under it in
            hive-style ``event_date=YYYY-MM-DD`` folders.
        files : the table's current Parquet files, as ``DeltaTable(table_root).file_uris()``
            gives them. An empty list gives an empty table with the right schema.

        The same file list gives back the same table; a new list (a new Delta version)
        replaces it, and expressions built on the replaced table stop working. An engine is
        not meant to be shared between threads.
        """
        ...

    def close(self) -> None:
        """Release what the engine holds; the engine is unusable afterwards."""
        ...


def _ibis_events_schema() -> ibis.Schema:
    return ibis.schema(EVENTS_SCHEMA)


@dataclass(frozen=True)
class _Registered:
    files: tuple[str, ...]
    table: ir.Table
    drop: Callable[[], None]


class _RegisteringEngine:
    """What both engines share: one registered view per table root, replaced on change.

    Asking again for the same file list returns the same table, so repeated metric calls
    register nothing new; a new file list (a new Delta version) replaces the view and drops
    the old one, so a long-running process does not pile views up. Expressions built on a
    replaced table stop working: build and run a query before asking for a newer version.
    """

    name: EngineName

    def __init__(self) -> None:
        self._current: dict[str, _Registered] = {}
        self._lock = threading.Lock()
        self._closed = False

    def events(self, table_root: str, files: Sequence[str]) -> ir.Table:
        """Return the events in ``files`` as an Ibis table; see :meth:`Engine.events`."""
        if self._closed:
            raise EngineError(f"the {self.name} engine is closed; open a new one with connect()")
        key = tuple(files)
        with self._lock:
            current = self._current.get(table_root)
            if current is not None and current.files == key:
                return current.table
            table, drop = self._register(table_root, key)
            self._current[table_root] = _Registered(
                key, _conform(table, _ibis_events_schema()), drop
            )
            if current is not None:
                _quietly(current.drop)
            return self._current[table_root].table

    def _register(
        self, table_root: str, files: tuple[str, ...]
    ) -> tuple[ir.Table, Callable[[], None]]:
        raise NotImplementedError

    def _release(self) -> None:
        with self._lock:
            for registered in self._current.values():
                _quietly(registered.drop)
            self._current.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class DuckDBEngine(_RegisteringEngine):
    """The default engine: DuckDB in process, pinned to UTC.

    Parameters
    ----------
    threads : DuckDB worker threads; default one per core.
    """

    name: EngineName = "duckdb"

    def __init__(self, *, threads: int | None = None) -> None:
        super().__init__()
        self._con = ibis.duckdb.connect(threads=threads or os.cpu_count() or 1)
        # Days come from the stored event_date, never from a cast; pinning the session zone
        # keeps any timestamp shown or compared by DuckDB in UTC all the same.
        self._con.raw_sql("SET TimeZone = 'UTC'")

    @property
    def backend(self) -> Any:
        """The underlying Ibis DuckDB backend (for advanced use and tests)."""
        return self._con

    def _register(
        self, table_root: str, files: tuple[str, ...]
    ) -> tuple[ir.Table, Callable[[], None]]:
        name = _temp_name("assay_events")
        if not files:
            empty = pa.Table.from_batches([], schema=EVENTS_SCHEMA)
            table = self._con.create_table(name, obj=empty, temp=True)
            return table, lambda: self._con.drop_table(name, force=True)
        try:
            # union_by_name: files written before a column was added simply lack it.
            table = self._con.read_parquet(
                list(files), table_name=name, hive_partitioning=True, union_by_name=True
            )
        except Exception as exc:
            raise EngineError(
                f"DuckDB could not read the events table at {table_root!r} "
                f"({len(files)} files): {type(exc).__name__}; check that the workspace is intact "
                "and that no file under it was removed or changed by hand"
            ) from exc
        return table, lambda: self._con.drop_view(name, force=True)

    def close(self) -> None:
        """Close the DuckDB connection (idempotent)."""
        if not self._closed:
            self._closed = True
            self._current.clear()
            self._con.disconnect()


_spark_lock = threading.Lock()


class SparkEngine(_RegisteringEngine):
    """The distributed engine: Apache Spark through Ibis's pyspark backend.

    One SparkSession per process is shared (``SparkSession.builder.getOrCreate()``); closing
    an engine drops the views it registered but leaves the session running for the others.

    Parameters
    ----------
    master : the Spark master URL; default ``local[2]``. Executors must see the workspace path.
    """

    name: EngineName = "pyspark"

    def __init__(self, *, master: str | None = None) -> None:
        super().__init__()
        self._session = _spark_session(master)
        ibis_pyspark = _import_ibis_pyspark()
        self._con = ibis_pyspark.connect(self._session)

    @property
    def backend(self) -> Any:
        """The underlying Ibis pyspark backend (for advanced use and tests)."""
        return self._con

    @property
    def session(self) -> Any:
        """The shared SparkSession."""
        return self._session

    def _register(
        self, table_root: str, files: tuple[str, ...]
    ) -> tuple[ir.Table, Callable[[], None]]:
        from pyspark.sql.pandas.types import from_arrow_schema

        spark_schema = from_arrow_schema(EVENTS_SCHEMA)
        if not files:
            df = self._session.createDataFrame([], spark_schema)
        else:
            try:
                # A user schema that names the partition column makes Spark parse the
                # event_date=... path values straight as DATE: no type inference, no time zone.
                # Files that lack a (nullable) column read it as null.
                df = (
                    self._session.read.schema(spark_schema)
                    .option("basePath", table_root)
                    .parquet(*files)
                )
            except Exception as exc:
                raise EngineError(
                    f"Spark could not read the events table at {table_root!r} "
                    f"({len(files)} files): {type(exc).__name__}; check that the executors "
                    "see the workspace path and that the workspace is intact"
                ) from exc
        name = _temp_name("assay_events")
        df.select(*EVENTS_SCHEMA.names).createOrReplaceTempView(name)
        catalog = self._session.catalog
        return self._con.table(name), lambda: catalog.dropTempView(name)

    def close(self) -> None:
        """Drop this engine's temporary views (idempotent); the shared session stays up."""
        if not self._closed:
            self._closed = True
            self._release()


def _conform(table: ir.Table, schema: ibis.Schema) -> ir.Table:
    """Select the stored columns in schema order, each with its stored type.

    A nullable column that no file has yet (files written before the column existed) reads
    as nulls; a missing required column means the files are not an assay events table.
    """
    missing = [
        name for name in schema.names if name not in table.columns and not schema[name].nullable
    ]
    if missing:
        raise EngineError(
            "the events table does not match the stored schema: missing required columns "
            f"{', '.join(missing)}; the workspace may come from another assay version"
        )
    columns = []
    for name, dtype in schema.items():
        if name not in table.columns:
            columns.append(ibis.null(dtype).name(name))
            continue
        column = table[name]
        if not column.type().equals(dtype):
            column = column.cast(dtype)
        columns.append(column.name(name))
    return table.select(*columns)


def _quietly(action: Callable[[], None]) -> None:
    # Dropping a view is housekeeping: a failure must not hide the query's own outcome.
    with contextlib.suppress(Exception):
        action()


def _temp_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _import_pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError as exc:
        raise EngineError(
            f"the pyspark engine needs pyspark, which is not installed; run {_SPARK_INSTALL_HINT}"
        ) from exc
    return pyspark.sql


def _import_ibis_pyspark() -> Any:
    try:
        return ibis.pyspark
    except (ImportError, AttributeError) as exc:
        raise EngineError(
            "the pyspark engine needs Ibis's pyspark backend, which is not installed; "
            f"run {_SPARK_INSTALL_HINT}"
        ) from exc


def _spark_session(master: str | None) -> Any:
    sql = _import_pyspark()
    wanted = master or _DEFAULT_SPARK_MASTER
    with _spark_lock:
        active = sql.SparkSession.getActiveSession()
        if active is not None:
            running = active.sparkContext.master
            if master is not None and running != master:
                raise EngineError(
                    f"a Spark session is already running on master {running!r} in this "
                    f"process, not {master!r}; stop it first or drop --spark-master"
                )
            active.conf.set("spark.sql.session.timeZone", "UTC")
            return active
        builder = (
            sql.SparkSession.builder.master(wanted)
            .appName("assay")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
            .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
            .config("spark.sql.shuffle.partitions", _SPARK_SHUFFLE_PARTITIONS)
            .config("spark.default.parallelism", _SPARK_SHUFFLE_PARTITIONS)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        )
        if wanted.startswith("local"):
            # A local driver needs no routable host name; containers often have none.
            builder = builder.config("spark.driver.host", "127.0.0.1").config(
                "spark.driver.bindAddress", "127.0.0.1"
            )
        try:
            session = builder.getOrCreate()
        except Exception as exc:
            raise EngineError(
                f"Spark could not start on master {wanted!r} ({type(exc).__name__}); "
                "the pyspark engine needs Java 17 on PATH or JAVA_HOME, and a reachable master"
            ) from exc
        session.sparkContext.setLogLevel("ERROR")
        return session


def connect(name: EngineName = "duckdb", *, spark_master: str | None = None) -> Engine:
    """Open a query engine.

    Parameters
    ----------
    name : ``"duckdb"`` (default, in process) or ``"pyspark"`` (needs ``assay[spark]`` and
        Java 17).
    spark_master : the Spark master URL for ``pyspark``; default ``local[2]``.

    Returns
    -------
    Engine
        Close it when done (``engine.close()``); DuckDB connections left open at exit can hang.

    Raises
    ------
    UsageError
        For an unknown engine name, or a Spark master given to the DuckDB engine.
    EngineError
        When pyspark is not installed or Spark cannot start.

    Examples
    --------
    >>> from assay.store._engines import connect
    >>> engine = connect("duckdb")
    >>> engine.events("/nowhere", []).count().to_pyarrow().as_py()
    0
    >>> engine.close()
    """
    if name == "duckdb":
        if spark_master is not None:
            raise UsageError(
                "spark_master only applies to the pyspark engine (got engine 'duckdb'); "
                "add --engine pyspark or drop --spark-master"
            )
        return DuckDBEngine()
    if name == "pyspark":
        return SparkEngine(master=spark_master)
    raise UsageError(
        f"engine must be one of {', '.join(ENGINE_NAMES)} (got {name!r}); "
        "use --engine duckdb or --engine pyspark"
    )


__all__ = ["ENGINE_NAMES", "DuckDBEngine", "Engine", "EngineName", "SparkEngine", "connect"]
