"""What one running service holds: two workspace handles, the ingest writer, the limits, and
the refresher that keeps the workspace's profiles current."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from assay._api import Workspace
from assay.ingest._group import GroupWriter
from assay.ingest._pipeline import Ingestor
from assay.ingest._request import RequestPipeline
from assay.profiles import DEFAULT_REFRESH_INTERVAL, ProfileRefresher
from assay.service._observe import Observability
from assay.store import KeyStore, Settings


@dataclass
class ServiceState:
    """Created when the app starts, closed when it stops (after draining in-flight writes).

    Writes go through ``writer_ws`` (one ingestor, one writer thread); reads through
    ``reader_ws`` under ``read_lock``, so that a query never races a commit on one handle.
    ``profiles`` (None in parse-only mode) rebuilds profiles in the background, through a
    handle of its own, after the events router marks a commit.
    """

    path: Path
    settings: Settings
    writer_ws: Workspace
    reader_ws: Workspace
    keys: KeyStore
    ingestor: Ingestor
    writer: GroupWriter
    pipeline: RequestPipeline
    prepare_pool: ThreadPoolExecutor
    obs: Observability
    read_lock: threading.Lock = field(default_factory=threading.Lock)
    inflight: int = 0
    parse_only: bool = False
    profiles: ProfileRefresher | None = None

    @classmethod
    def start(
        cls,
        path: Path,
        obs: Observability,
        *,
        parse_only: bool = False,
        profile_interval: float = DEFAULT_REFRESH_INTERVAL,
    ) -> ServiceState:
        writer_ws = Workspace.open(path)
        reader_ws = Workspace.open(path)
        settings = writer_ws.settings
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
        return cls(
            path=path,
            settings=settings,
            writer_ws=writer_ws,
            reader_ws=reader_ws,
            keys=reader_ws.keys,
            ingestor=ingestor,
            writer=writer,
            pipeline=pipeline,
            prepare_pool=ThreadPoolExecutor(workers, thread_name_prefix="assay-prepare"),
            obs=obs,
            parse_only=parse_only,
            profiles=profiles,
        )

    def close(self) -> None:
        """Finish what is queued, commit it, then release everything.

        A profile build in progress is abandoned after its current day; the next start of the
        service takes in what it left.
        """
        self.prepare_pool.shutdown(wait=True)
        self.pipeline.close()
        self.writer.close()
        if self.profiles is not None:
            self.profiles.stop()
        self.ingestor.close()
        self.writer_ws.close()
        self.reader_ws.close()
