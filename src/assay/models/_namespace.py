"""``ws.models``: the model lifecycle bound to one workspace.

:class:`WorkspaceModels` adds to :class:`~assay.models.Models` (datasets and features over the
events) what needs the whole workspace: training and registering, the registry's versions and
aliases, and batch scoring. Each method is the function of the same name in
``assay.models._lifecycle`` with the workspace filled in; ``docs/models.md`` documents them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assay.models import _lifecycle
from assay.models._dataset import Models

if TYPE_CHECKING:
    import pyarrow as pa

    from assay._api import Workspace
    from assay.models._lifecycle import TrainOutcome
    from assay.models._registry import Registry, VersionRef


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
