"""The public workspace: storage plus the capabilities built on it (metrics, ...).

``assay.store.Workspace`` knows tables, files and locks; this subclass adds the layers above
storage so that users have one object: ``with assay.Workspace.open(path) as ws: ws.metrics.dau()``.
"""

from __future__ import annotations

import os
from typing import Self

import ibis

from assay.metrics import Metrics
from assay.models import WorkspaceModels
from assay.store import Workspace as _StoreWorkspace
from assay.store._engines import Engine, EngineName, connect


class Workspace(_StoreWorkspace):
    """An assay workspace with its metrics.

    Examples
    --------
    >>> import tempfile, assay
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with assay.Workspace.open(d + "/ws", create=True) as ws:
    ...         ws.metrics.dau().num_rows
    0
    """

    _engine_name: EngineName = "duckdb"
    _spark_master: str | None = None
    _engine: Engine | None = None
    _metrics: Metrics | None = None
    _models: WorkspaceModels | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        create: bool = False,
        engine: EngineName | None = None,
        spark_master: str | None = None,
    ) -> Self:
        """Open a workspace; ``engine`` picks the query engine (default: the settings')."""
        ws = super().open(path, create=create)
        ws._engine_name = engine or ws.settings.engine  # type: ignore[assignment]
        ws._spark_master = spark_master
        return ws

    @property
    def engine(self) -> Engine:
        """The query engine, connected on first use and closed with the workspace."""
        if self._engine is None:
            self._engine = connect(self._engine_name, spark_master=self._spark_master)
            self.on_close(self._engine.close)
        return self._engine

    def events(self) -> ibis.Table:
        """The current events table as an Ibis table on the workspace's engine."""
        return self.engine.events(str(self.table_path("events")), self.files("events"))

    @property
    def metrics(self) -> Metrics:
        """Product metrics over the stored events (see ``docs/metrics.md``)."""
        if self._metrics is None:
            self._metrics = Metrics(
                self.events, active_event_types=self.settings.active_event_types
            )
        return self._metrics

    @property
    def models(self) -> WorkspaceModels:
        """Point-in-time datasets and models over the stored events (see ``docs/models.md``)."""
        if self._models is None:
            self._models = WorkspaceModels(self)
        return self._models
