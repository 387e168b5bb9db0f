"""Keep stored profiles current: after an ingest or a ``forget``, and in a running service.

Two tools, one rule: profiles are only kept current in a workspace where they were built
before (:func:`~assay.profiles.profiles_built`); nobody gets profiles they never asked for.

- :func:`refresh_profiles` rebuilds, at once, the days whose events changed. ``assay ingest``
  and ``assay forget`` call it after their commit.
- :class:`ProfileRefresher` does the same in the background for a long-running writer such as
  ``assay serve``: the writer calls :meth:`~ProfileRefresher.mark_dirty` after each commit (a
  cheap, non-blocking call), and one worker thread rebuilds at most once per ``interval``
  seconds, never two builds at once. A failed build is logged (the exception type and a short
  reason, never raw text or ids) and retried after the next interval.

The store and ingest layers never import this module (DESIGN.md): the layer that commits calls
``mark_dirty`` (the service) or :func:`refresh_profiles` (the CLI) itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args

from assay._errors import AssayError, UsageError
from assay.profiles._build import (
    BuildSummary,
    ProgressFn,
    build_profiles,
    built_options,
    profiles_built,
)
from assay.store import Workspace

log = logging.getLogger("assay.profiles")

#: Seconds between two background builds by default (``assay serve --profile-interval``).
DEFAULT_REFRESH_INTERVAL = 60.0

RefreshOutcome = Literal["ok", "failed", "skipped", "abandoned"]
"""What one refresh did: ``ok`` built (possibly no day, when nothing changed); ``failed``
raised (retried after the next interval); ``skipped`` found no profiles to keep current;
``abandoned`` stopped between two days because the refresher was stopping."""

REFRESH_OUTCOMES: tuple[RefreshOutcome, ...] = get_args(RefreshOutcome)

#: A build that takes the progress callback it must call after each day (it raises there
#: when the refresher stops) and returns the build's summary, or None when it skipped.
BuildFn = Callable[[ProgressFn], BuildSummary | None]

_REASON_CHARS = 200


def refresh_profiles(
    ws: Workspace, *, create: bool = False, progress: ProgressFn | None = None
) -> BuildSummary | None:
    """Rebuild the stored profiles' changed days, if profiles were built in ``ws`` before.

    The days whose events data files changed since the last build (an ingest added events, a
    ``forget`` rewrote or removed them) are rebuilt from the committed events, with the
    slices and k the profiles were last built with; a day left without events loses its
    profiles. Nothing is built in a workspace that never had profiles, unless ``create``.

    Parameters
    ----------
    ws : the workspace.
    create : build even when no profiles were built before (the first build, with the
        default slices and k).
    progress : called with (days done, days to do) after each day.

    Returns
    -------
    BuildSummary or None
        What the build did, or None when there were no profiles to keep current.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d, Workspace.init(d + "/ws") as ws:
    ...     print(refresh_profiles(ws))
    ...     refresh_profiles(ws, create=True).days_rebuilt
    None
    0
    """
    if not profiles_built(ws) and not create:
        return None
    return build_profiles(ws, progress=progress, **built_options(ws))


@dataclass(frozen=True)
class RefreshResult:
    """One refresh by a :class:`ProfileRefresher`.

    Attributes
    ----------
    outcome : ``ok``, ``failed``, ``skipped`` or ``abandoned`` (see ``RefreshOutcome``).
    seconds : wall time of the attempt.
    summary : the build's summary when the outcome is ``ok``.
    error : for ``failed``, the exception type and a short reason (no raw text or ids).
    """

    outcome: RefreshOutcome
    seconds: float
    summary: BuildSummary | None = None
    error: str | None = None


@dataclass(frozen=True)
class RefreshStatus:
    """A snapshot of a :class:`ProfileRefresher`, for health checks and metrics.

    Attributes
    ----------
    enabled : whether the background worker refreshes (``interval > 0``).
    interval : least seconds between the starts of two background builds.
    running : whether the worker thread is alive.
    building : whether a build is in progress.
    pending : whether commits were marked that no build has started on yet.
    age_seconds : seconds since the oldest commit that the stored profiles do not include yet
        was marked (pending, or in the build in progress); 0 when they include every commit
        marked: how far the stored profiles lag behind the committed events.
    builds : refreshes so far, by outcome (every outcome present, 0 included).
    last : the last refresh, or None before the first.
    """

    enabled: bool
    interval: float
    running: bool
    building: bool
    pending: bool
    age_seconds: float
    builds: Mapping[str, int]
    last: RefreshResult | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields above, ``last`` as its outcome, seconds and error."""
        last = self.last
        return {
            "enabled": self.enabled,
            "interval": self.interval,
            "running": self.running,
            "building": self.building,
            "pending": self.pending,
            "age_seconds": round(self.age_seconds, 3),
            "builds": dict(self.builds),
            "last": None
            if last is None
            else {"outcome": last.outcome, "seconds": last.seconds, "error": last.error},
        }


def _oldest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


class _Abandoned(Exception):
    """Raised from the progress callback to stop a build between two days."""


def _reason(exc: BaseException) -> str:
    """The exception type and a reason that holds no input data: assay's own messages (which
    never quote raw text or ids), an OS error's description, or nothing."""
    if isinstance(exc, AssayError):
        reason = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    else:
        reason = ""
    reason = " ".join(reason.split())
    if len(reason) > _REASON_CHARS:
        reason = reason[: _REASON_CHARS - 3] + "..."
    return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__


@dataclass
class _Marks:
    """What the worker waits on (guarded by the refresher's condition)."""

    pending: bool = False
    since: float | None = None  # clock() when the oldest pending commit was marked
    building_since: float | None = None  # the same, of the commits the build in progress has
    last_start: float | None = None  # clock() when the last build started
    stopping: bool = False
    building: bool = False
    builds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REFRESH_OUTCOMES, 0))
    last: RefreshResult | None = None


class ProfileRefresher:
    """Rebuild profiles in the background after commits, at most once per ``interval``.

    The owner (a server) calls :meth:`start` once, :meth:`mark_dirty` after each commit of
    events, and :meth:`stop` when it shuts down. The first commit marked after a quiet spell is
    built at once; commits marked while a build runs, or less than ``interval`` seconds after
    the last build started, are taken in by one build when the interval is over. Builds never
    overlap, and request handling never waits for one (``mark_dirty`` only sets a flag).
    A failed build is logged and retried after the next interval. :meth:`stop` ends the worker:
    a build in progress is abandoned after the day it is building (what it stored stays
    consistent: each day is replaced whole, and the next build resumes from there).

    Parameters
    ----------
    build : the build; it gets a progress callback to call after each day, and returns its
        summary, or None when there were no profiles to keep current. Usually made by
        :meth:`open`.
    interval : least seconds between the starts of two background builds; 0 turns the
        background worker off (``run_once`` still builds on demand).
    on_result : called with each :class:`RefreshResult` (for metrics), from the thread that
        built.
    on_close : called once by :meth:`stop`, after the worker ended: releases what ``build``
        uses (:meth:`open` closes its workspace handle here).
    clock : monotonic seconds (a test may pass a fake clock).

    Examples
    --------
    >>> done = []
    >>> refresher = ProfileRefresher(lambda progress: done.append(1), interval=60)
    >>> refresher.mark_dirty()
    >>> refresher.run_once().outcome, refresher.run_once(), len(done)
    ('skipped', None, 1)
    """

    def __init__(
        self,
        build: BuildFn,
        *,
        interval: float = DEFAULT_REFRESH_INTERVAL,
        on_result: Callable[[RefreshResult], None] | None = None,
        on_close: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval >= 0:  # also refuses NaN
            raise UsageError(
                f"the profile refresh interval must be a number of seconds >= 0 (got "
                f"{interval!r}); use 0 to turn background refreshes off"
            )
        self.interval = float(interval)
        self._build = build
        self._on_result = on_result
        self._clock = clock
        self._cond = threading.Condition()
        self._build_lock = threading.Lock()
        self._marks = _Marks()
        self._thread: threading.Thread | None = None
        self._on_close = on_close

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        interval: float = DEFAULT_REFRESH_INTERVAL,
        on_result: Callable[[RefreshResult], None] | None = None,
    ) -> ProfileRefresher:
        """A refresher of the workspace at ``path``, through a workspace handle of its own
        (closed by :meth:`stop`), so that its builds never share a handle with requests.

        Each build is :func:`refresh_profiles`: nothing is built unless profiles were built
        in the workspace before.
        """
        ws = Workspace.open(path)
        try:
            return cls(
                lambda progress: refresh_profiles(ws, progress=progress),
                interval=interval,
                on_result=on_result,
                on_close=ws.close,
            )
        except BaseException:
            ws.close()
            raise

    # -- the owner's calls ---------------------------------------------------------------------
    def mark_dirty(self) -> None:
        """Note that events were committed: a build will take them in (never blocks on one)."""
        with self._cond:
            m = self._marks
            if not m.pending:
                m.pending = True
                m.since = self._clock()
            self._cond.notify_all()

    def start(self) -> None:
        """Start the worker thread (idempotent; nothing when ``interval`` is 0).

        The workspace is marked dirty first, so that the first build takes in commits made
        while no refresher ran (it rebuilds nothing when nothing changed).
        """
        if self.interval == 0:
            return
        with self._cond:
            if self._thread is not None or self._marks.stopping:
                return
            self._thread = threading.Thread(
                target=self._run, name="assay-profile-refresh", daemon=True
            )
        self.mark_dirty()
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Stop the worker, abandoning a build in progress after its current day.

        Returns whether the worker ended within ``timeout`` seconds (None: wait for it). Only
        then is the refresher's workspace handle closed; otherwise it is left to the worker
        thread (a daemon), and a warning is logged. Idempotent.
        """
        with self._cond:
            self._marks.stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning(
                    "profile refresh still running at shutdown; left to finish",
                    extra={"assay": {"timeout_seconds": timeout}},
                )
                return False
        self._close()
        return True

    def run_once(self, *, force: bool = False) -> RefreshResult | None:
        """Build now if commits are pending and the interval since the last build started is
        over (``force``: whatever the interval). What the worker calls; callable from any
        thread (a second caller waits for the build in progress, then decides).

        Returns
        -------
        RefreshResult or None
            The refresh, or None when nothing was due (or the refresher was stopped).
        """
        with self._build_lock:
            with self._cond:
                m = self._marks
                if m.stopping or not m.pending or not (force or self._wait_seconds() == 0):
                    return None
                m.building_since = m.since
                m.pending, m.since = False, None
                m.last_start = self._clock()
                m.building = True
            started = time.perf_counter()
            summary: BuildSummary | None = None
            error: str | None = None
            outcome: RefreshOutcome = "failed"
            try:
                summary = self._build(self._progress)
                outcome = "ok" if summary is not None else "skipped"
            except _Abandoned:
                outcome = "abandoned"
            except Exception as exc:
                error = _reason(exc)
                log.warning(
                    "profile refresh failed; retrying after the interval",
                    extra={"assay": {"error": error, "interval_seconds": self.interval}},
                )
            finally:
                # Also on an exception that ends the thread: never stuck "building".
                with self._cond:
                    m.building = False
                    if outcome in ("failed", "abandoned"):
                        # Not taken in: pending again, since the oldest commit this build had.
                        m.pending = True
                        m.since = _oldest(m.since, m.building_since)
                    m.building_since = None
                    self._cond.notify_all()
            result = RefreshResult(
                outcome=outcome,
                seconds=round(time.perf_counter() - started, 3),
                summary=summary,
                error=error,
            )
            with self._cond:
                m.builds[outcome] += 1
                m.last = result
                self._cond.notify_all()
        if self._on_result is not None:
            try:
                self._on_result(result)
            except Exception as exc:
                log.warning("profile refresh hook failed", extra={"assay": {"error": _reason(exc)}})
        return result

    def status(self) -> RefreshStatus:
        """A snapshot for health checks and metrics."""
        with self._cond:
            m = self._marks
            oldest = _oldest(m.since, m.building_since)
            age = 0.0 if oldest is None else max(0.0, self._clock() - oldest)
            return RefreshStatus(
                enabled=self.interval > 0,
                interval=self.interval,
                running=self._thread is not None and self._thread.is_alive(),
                building=m.building,
                pending=m.pending,
                age_seconds=age,
                builds=MappingProxyType(dict(m.builds)),
                last=m.last,
            )

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no commit is pending and no build runs; whether that happened within
        ``timeout`` seconds (for tests and orderly shutdowns)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._marks.pending or self._marks.building:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # -- the worker ----------------------------------------------------------------------------
    def _wait_seconds(self) -> float | None:
        """Seconds until a build is due: None when nothing is pending, 0 when due now.
        Called with the condition held."""
        m = self._marks
        if not m.pending:
            return None
        if m.last_start is None:
            return 0.0
        return max(0.0, m.last_start + self.interval - self._clock())

    def _progress(self, done: int, total: int) -> None:
        if self._marks.stopping:
            raise _Abandoned

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._marks.stopping:
                    wait = self._wait_seconds()
                    if wait == 0:
                        break
                    self._cond.wait(wait)
                if self._marks.stopping:
                    return
            self.run_once()

    def _close(self) -> None:
        with self._cond:
            close, self._on_close = self._on_close, None
        if close is not None:
            try:
                close()
            except Exception as exc:
                log.warning(
                    "closing the profile refresher failed", extra={"assay": {"error": _reason(exc)}}
                )
