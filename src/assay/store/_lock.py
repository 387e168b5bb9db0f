"""The workspace write lock: one ``flock`` on ``.write.lock`` shared by every writer process.

Two processes that each check for duplicates and then append would both append; every commit to
a workspace table therefore happens while this lock is held, with the duplicate check inside it.
The lock is re-entrant within a process (threads of one server share it through an RLock).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from assay._errors import LockTimeoutError


class WriteLock:
    """An inter-process, intra-process re-entrant write lock on one file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextmanager
    def hold(self, timeout: float | None = 120.0) -> Iterator[None]:
        """Hold the lock for the body of a ``with`` block.

        Raises
        ------
        LockTimeoutError
            If another process holds the lock for longer than ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._local.acquire(timeout=-1 if timeout is None else timeout):
            raise self._timeout_error(timeout)
        try:
            if self._depth == 0:
                self._acquire_file(deadline, timeout)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release_file()
        finally:
            self._local.release()

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._depth > 0

    def _acquire_file(self, deadline: float | None, timeout: float | None) -> None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    raise self._timeout_error(timeout) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
                continue
            self._fd = fd
            return

    def _release_file(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _timeout_error(self, timeout: float | None) -> LockTimeoutError:
        return LockTimeoutError(
            f"could not take the workspace write lock {self._path} within {timeout} s: another "
            "assay process (an ingest or a server) is writing; wait for it to finish or raise "
            "lock_timeout_seconds in assay.toml"
        )
