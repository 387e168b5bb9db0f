"""Group commits: many small prepared batches, stored together by one writer thread.

A Delta commit costs milliseconds whatever its size, so committing each HTTP request on its
own caps throughput at a few hundred requests a second. The writer thread here takes every
batch that queued up while it was committing and stores them in one
:meth:`Ingestor.store_many`, so the commit rate adapts to the load: one batch per commit when
idle, dozens under load. Each submitter gets a future that resolves once its rows are
committed (or the commit failed); nothing is acknowledged before that.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from assay._errors import WorkspaceError
from assay.ingest._pipeline import BatchOutcome, Ingestor, _Prepared

log = logging.getLogger("assay.ingest")

CommitHook = Callable[[int, int, float], None]
"""on_commit(batches, rows, seconds) after each group commit."""


def sync_filesystem(path: os.PathLike[str]) -> None:
    """Flush the file system holding ``path`` to disk: ``syncfs`` on Linux, else ``sync``.

    delta-rs writes data files and the commit file without fsync; this makes a committed
    version durable. ``syncfs`` flushes one file system only, not every disk of the machine.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs is not None and _syncfs(fd) == 0:
            return
        os.sync()
    finally:
        os.close(fd)


def _load_syncfs() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        fn = getattr(ctypes.CDLL(name, use_errno=True), "syncfs", None)
    except OSError:
        return None
    return fn


_syncfs = _load_syncfs()


def take_group(
    source: queue.SimpleQueue[Any], first: Any, size: Callable[[Any], int], limit: int
) -> tuple[list[Any], bool]:
    """``first`` and whatever else is waiting in ``source``, up to ``limit`` in ``size``.

    Returns the group and whether the stop marker was met while taking it (the group is still
    to be handled). Shared by the writer and the request pipeline's workers.
    """
    group = [first]
    total = size(first)
    while total < limit:
        try:
            item = source.get_nowait()
        except queue.Empty:
            break
        if item is STOP:
            return group, True
        group.append(item)
        total += size(item)
    return group, False


@dataclass
class _Item:
    prep: _Prepared
    future: Future[BatchOutcome]


def _rows(item: _Item) -> int:
    return int(item.prep.batch.table.num_rows)


#: Put on a worker's queue to end it after what is queued before.
STOP = object()


class GroupWriter:
    """Store prepared batches from many threads through one writer thread.

    Parameters
    ----------
    ingestor : the ingestor whose :meth:`~Ingestor.store_many` does the work; only the writer
        thread calls it.
    max_rows : the most rows one group commit takes (the rest wait for the next).
    on_commit : called after each group commit, for metrics.
    fsync : flush the workspace's file system to disk after each commit, before any future
        resolves, so that an acknowledged batch survives a power loss, not only a crash.
    """

    def __init__(
        self,
        ingestor: Ingestor,
        *,
        max_rows: int = 200_000,
        on_commit: CommitHook | None = None,
        fsync: bool = True,
    ) -> None:
        self._ingestor = ingestor
        self._fsync = fsync
        self._max_rows = max_rows
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="assay-group-writer", daemon=True)
        self._thread.start()

    def submit(self, prep: _Prepared) -> Future[BatchOutcome]:
        """Queue a prepared batch; the future resolves when it is committed."""
        future: Future[BatchOutcome] = Future()
        with self._lock:
            if self._closed:
                raise WorkspaceError("the writer is shutting down; retry on the next server")
            self._pending += 1
        self._queue.put(_Item(prep, future))
        return future

    def close(self, timeout: float | None = None) -> None:
        """Commit everything submitted so far, then stop the writer thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is STOP:
                return
            group, stop = take_group(self._queue, first, _rows, self._max_rows)
            self._commit(group, sum(_rows(item) for item in group))
            if stop:
                return

    def _commit(self, group: list[_Item], rows: int) -> None:
        start = time.perf_counter()
        try:
            outcomes = self._ingestor.store_many([item.prep for item in group])
            if self._fsync:
                sync_filesystem(self._ingestor.ws.path)
        except BaseException as exc:  # every waiter must hear of the failure
            log.error(
                "group commit failed",
                extra={"assay": {"batches": len(group), "rows": rows}},
                exc_info=True,
            )
            for item in group:
                item.future.set_exception(exc)
        else:
            for item, outcome in zip(group, outcomes, strict=True):
                item.future.set_result(outcome)
        finally:
            with self._lock:
                self._pending -= len(group)
        if self._on_commit is not None:
            self._on_commit(len(group), rows, time.perf_counter() - start)
