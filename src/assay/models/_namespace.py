"""``ws.models``: the model lifecycle bound to one workspace.

:class:`WorkspaceModels` adds to :class:`~assay.models.Models` (datasets and features over the
events) what needs the whole workspace: training and registering, the registry's versions and
aliases, batch scoring, the daily retrain and label-free monitoring, and intent models. Each
method is a library function with the workspace filled in; ``docs/models.md`` documents them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assay.models import _intent, _lifecycle, _monitor, _retrain
from assay.models._dataset import Models

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

    from assay._api import Workspace
    from assay.models._intent import IntentOutcome
    from assay.models._lifecycle import TrainOutcome
    from assay.models._monitor import MonitorReport
    from assay.models._registry import Registry, VersionRef
    from assay.models._retrain import RetrainOutcome


class WorkspaceModels(Models):
    """Datasets, training, the registry and scoring of one workspace (``ws.models``).

    Examples
    --------
    >>> import tempfile, assay
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with assay.Workspace.open(d + "/ws", create=True) as ws:
    ...         type(ws.models).__name__
    'WorkspaceModels'
    """

    def __init__(self, ws: Workspace) -> None:
        super().__init__(ws.events)
        self._ws = ws

    @property
    def registry(self) -> Registry:
        """The MLflow registry (``models/`` in the workspace, or the ``mlflow_uri`` setting)."""
        return _lifecycle.registry(self._ws)

    def train(self, name: str | None = None, **options: Any) -> TrainOutcome:
        """Build the training set, train, evaluate, export to ONNX and register a version.

        ``options`` are those of ``assay.models._lifecycle.train`` (label, since, until, days,
        model, attributes, valid_days, test_days, user_disjoint, seed, allow_leakage, n_boot,
        n_estimators, progress).
        """
        return _lifecycle.train(self._ws, name, **options)

    def list(self) -> pa.Table:
        """Every registered model version, one row each."""
        return _lifecycle.list_models(self._ws)

    def show(self, ref: str) -> dict[str, Any]:
        """One version (``NAME``, ``NAME@ALIAS`` or ``NAME/VERSION``): params, metrics, tags."""
        return _lifecycle.show(self._ws, ref)

    def promote(self, name: str, version: int, alias: str = "champion") -> VersionRef:
        """Point ``alias`` (``champion`` by default, or ``challenger``) at ``version``."""
        return _lifecycle.promote(self._ws, name, version, alias)

    def predict(self, ref: str, **options: Any) -> pa.Table:
        """Score sessions (``since``, ``until``) with a version's ONNX export:
        ``tenant_id, session_id, day, score``."""
        return _lifecycle.predict(self._ws, ref, **options)

    def retrain(self, name: str | None = None, **options: Any) -> RetrainOutcome:
        """One retrain run under an SLA: rebuild, train, compare with the champion on the same
        held-out days, register the candidate as ``challenger`` if it passes the gate.

        ``options``: label, days, until, sla_seconds, max_ece, model, attributes, seed, clock,
        progress (``assay.models._retrain.retrain``).
        """
        return _retrain.retrain(self._ws, name, **options)

    def runs(self, *, limit: int = 20) -> pa.Table:
        """The recorded retrain and monitor runs, newest first."""
        return _retrain.runs(self._ws.meta, limit=limit)

    def monitor(self, ref: str = "quality", **options: Any) -> MonitorReport:
        """Estimate a deployed model's performance without labels (CBPE), with realised values
        where labels exist and score and feature drift against its training window.

        ``options``: since, until, max_auc_drop, max_ap_drop, record.
        """
        return _monitor.monitor(self._ws, ref, **options)

    def train_intent(self, data: str | Path, **options: Any) -> IntentOutcome:
        """Train, export and register an intent classifier from ``data`` (CLINC150's JSON
        layout, or JSONL/CSV of ``text,label``). ``options``: name, encoder (``tfidf`` or a
        sentence-encoder directory), oos_label, seed, progress."""
        return _intent.train_intent_model(self._ws, data, **options)
