"""What one running service holds: the writer's workspace handle and a pool of readers', the
ingest writer, the limits (global and per key), and the refresher that keeps the workspace's
profiles current."""

from __future__ import annotations

import os
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from assay._api import Workspace
from assay.ingest._group import GroupWriter
from assay.ingest._pipeline import Ingestor
from assay.ingest._request import RequestPipeline
from assay.models._registry import Registry
from assay.models._serving import ModelPool, Router, Routing, ServingConfig
from assay.profiles import DEFAULT_REFRESH_INTERVAL, ProfileRefresher
from assay.service._errors import ApiError
from assay.service._observe import Observability
from assay.store import ApiKey, KeyStore, Settings

if TYPE_CHECKING:
    from assay.rollout import Rollout
    from assay.rollout._evaluate import RolloutSchedule

Work = Literal["ingest", "read", "predict"]


class KeyLimits:
    """How many requests of each kind every key has running, refused with 429 over a limit.

    Counts are changed only on the event loop (ingest) or under a lock (reads run in
    FastAPI's thread pool); one lock serves both, as it is held for a few instructions.
    """

    def __init__(
        self,
        limits: dict[Work, tuple[int, str]],
        on_refused: Callable[[Work], None] = lambda work: None,
    ) -> None:
        self._limits = limits
        self._on_refused = on_refused
        self._running: Counter[tuple[Work, str]] = Counter()
        self._lock = threading.Lock()

    def running(self, work: Work, key_id: str) -> int:
        return self._running[(work, key_id)]

    @contextmanager
    def hold(self, work: Work, key: ApiKey) -> Iterator[None]:
        """One slot of ``key`` for ``work``, for the ``with`` block; 429 when none is free."""
        limit, setting = self._limits[work]
        slot = (work, key.key_id)
        with self._lock:
            if self._running[slot] >= limit:
                self._on_refused(work)
                raise ApiError(
                    429,
                    "too_many_requests",
                    f"this key (id {key.key_id}) already has {limit} {work} requests running "
                    f"(the {setting} setting); wait for an answer, or retry after the "
                    "Retry-After delay",
                    headers={"Retry-After": "1"},
                )
            self._running[slot] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[slot] -= 1
                if not self._running[slot]:
                    del self._running[slot]


@dataclass
class ServiceState:
    """Created when the app starts, closed when it stops (after draining in-flight writes).

    Writes go through ``writer_ws`` (one ingestor, one writer thread); reads through one of
    ``readers`` (``http_readers`` handles, each serving one read at a time: a handle's engine
    connection and loaded tables are not shared between threads), so that one slow read holds
    one handle, not every reader. ``keys`` bound what each API key has running.
    ``inflight`` counts ingest requests holding one of the ``http_queue_requests`` slots (taken
    once the body has arrived); ``receiving`` those whose body is still arriving.
    ``profiles`` (None in parse-only mode) rebuilds profiles in the background, through a
    handle of its own, after the events router marks a commit.
    ``models`` serves ``POST /v1/models/{name}/predict`` (loaded versions, micro-batches).
    ``rollouts`` (None in parse-only mode) evaluates the live rollouts every
    ``rollout_interval_seconds``, through a handle of its own.
    """

    path: Path
    settings: Settings
    writer_ws: Workspace
    readers: queue.SimpleQueue[Workspace]
    keys: KeyStore
    limits: KeyLimits
    ingestor: Ingestor
    writer: GroupWriter
    pipeline: RequestPipeline
    prepare_pool: ThreadPoolExecutor
    obs: Observability
    inflight: int = 0
    receiving: int = 0
    _reader_list: list[Workspace] = field(default_factory=list)
    parse_only: bool = False
    profiles: ProfileRefresher | None = None
    models: ModelPool | None = None
    rollouts: RolloutSchedule | None = None

    @classmethod
    def start(
        cls,
        path: Path,
        obs: Observability,
        *,
        parse_only: bool = False,
        profile_interval: float = DEFAULT_REFRESH_INTERVAL,
        serving: ServingConfig | None = None,
        router: Router | None = None,
    ) -> ServiceState:
        serving = serving or ServingConfig()
        writer_ws = Workspace.open(path)
        settings = writer_ws.settings
        reader_list = [Workspace.open(path) for _ in range(max(1, settings.http_readers))]
        readers: queue.SimpleQueue[Workspace] = queue.SimpleQueue()
        for reader in reader_list:
            readers.put(reader)
        ingestor = Ingestor(writer_ws, max_lateness=timedelta(days=settings.http_max_lateness_days))
        ingestor.warm()
        writer = GroupWriter(ingestor, on_commit=obs.on_commit, fsync=settings.http_fsync)
        workers = max(2, min(4, os.cpu_count() or 2))
        # One worker: what is left in Python holds the GIL; a second one only contends for it.
        pipeline = RequestPipeline(ingestor, writer, workers=1, span=obs.group_span)
        profiles = None
        if not parse_only:
            profiles = ProfileRefresher.open(
                path, interval=profile_interval, on_result=obs.on_profile_refresh
            )
            obs.watch_profiles(profiles)
            profiles.start()
        models = ModelPool(
            lambda: Registry(path, settings.mlflow_uri),
            serving,
            hooks=obs.predict_hooks(),
            router=router if router is not None else rollout_router(writer_ws),
        )
        rollouts = None
        if not parse_only:
            rollouts = rollout_schedule(path, settings, models)
            rollouts.start()
        return cls(
            path=path,
            settings=settings,
            writer_ws=writer_ws,
            readers=readers,
            keys=reader_list[0].keys,
            limits=KeyLimits(
                {
                    "ingest": (settings.http_key_requests, "http_key_requests"),
                    "read": (settings.http_key_reads, "http_key_reads"),
                    "predict": (serving.key_requests, "--predict-key-requests"),
                },
                on_refused=obs.on_key_refused,
            ),
            ingestor=ingestor,
            writer=writer,
            pipeline=pipeline,
            prepare_pool=ThreadPoolExecutor(workers, thread_name_prefix="assay-prepare"),
            obs=obs,
            parse_only=parse_only,
            profiles=profiles,
            # MLflow is imported on the first predict request, not at start.
            models=models,
            rollouts=rollouts,
            _reader_list=reader_list,
        )

    @contextmanager
    def reader(self, key: ApiKey) -> Iterator[Workspace]:
        """A reader handle for one read of ``key``, for the ``with`` block.

        429 when the key already has ``http_key_reads`` reads running; otherwise waits for a
        free handle (every key holds few, so the wait is bounded by the reads running).
        """
        with self.limits.hold("read", key):
            ws = self.readers.get()
            try:
                yield ws
            finally:
                self.readers.put(ws)

    def close(self) -> None:
        """Finish what is queued, commit it, then release everything.

        A profile build in progress is abandoned after its current day; the next start of the
        service takes in what it left.
        """
        if self.rollouts is not None:
            self.rollouts.stop()
        if self.models is not None:
            self.models.close()
        self.prepare_pool.shutdown(wait=True)
        self.pipeline.close()
        self.writer.close()
        if self.profiles is not None:
            self.profiles.stop()
        self.ingestor.close()
        self.writer_ws.close()
        for reader in self._reader_list:
            reader.close()


def rollout_schedule(path: Path, settings: Settings, models: ModelPool) -> RolloutSchedule:
    """Evaluates the live rollouts every ``rollout_interval_seconds`` through a handle of its
    own; a rollback also makes the pool ask the router again at once."""
    from assay.rollout._evaluate import RolloutSchedule

    def rolled_back(r: Rollout) -> None:
        if r.model is not None:
            models.forget_routing(r.model)

    return RolloutSchedule(
        lambda: Workspace.open(path),
        settings.rollout_interval_seconds,
        on_rolled_back=rolled_back,
    )


def rollout_router(ws: Workspace) -> Router:
    """The pool's default router: the workspace's live served rollouts (:func:`assay.rollout.
    routing`), read from its metadata store (thread-safe: the pool calls it in a worker
    thread). ``assay.rollout`` is imported on the first predict request, not at start."""

    def route(name: str) -> Routing | None:
        from assay.rollout import routing

        return routing(ws, name)

    return route
