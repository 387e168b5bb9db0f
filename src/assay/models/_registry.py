"""The model registry: MLflow, in the workspace by default, or any MLflow tracking server.

Layout (default, no server): the tracking and registry store is SQLite at
``<workspace>/models/mlflow.db``, artifacts live under ``<workspace>/models/artifacts/`` (the
``assay`` experiment's artifact location). The ``mlflow_uri`` setting points at a tracking
server (or another store URI) instead.

Each trained model is one **run** of the ``assay`` experiment (parameters, metrics, tags,
the evaluation report as ``evaluation/evaluation.json`` and ``evaluation/report.html``) and
one **model version** of a registered model (the ONNX export, logged with the MLflow ``onnx``
flavour and its signature; the model version carries the same tags). Aliases ``champion`` and
``challenger`` mark the versions in service and on trial.

References: ``NAME@ALIAS``, ``NAME/VERSION``, or ``NAME`` alone (its ``champion``, else its
latest version).

MLflow is imported lazily (``import assay`` stays fast), with ``MLFLOW_DISABLE_TELEMETRY``
set first (otherwise it looks up a telemetry host), and its INFO logs and warnings silenced.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from assay._errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from mlflow import MlflowClient

EXPERIMENT = "assay"
ALIASES: tuple[str, ...] = ("champion", "challenger")
#: Tag keys (run and model version) written by assay.
TAG_PREFIX = "assay."

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_QUIET_LOGGERS = ("mlflow", "alembic", "alembic.runtime.migration", "sqlalchemy")


def _import_mlflow() -> ModuleType:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mlflow
            import mlflow.onnx
    except ImportError as exc:
        raise UsageError(
            "the model registry needs MLflow (not installed); install the models extra: "
            "pip install 'assay[models]'"
        ) from exc
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No MLflow warnings, and none of the lines it prints itself ("Successfully registered
    model ...", written straight to stderr, not through logging)."""
    sink = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stderr(sink),
        contextlib.redirect_stdout(sink),
    ):
        warnings.simplefilter("ignore")
        yield


def check_name(name: object) -> str:
    """A registered model name: letters, digits, ``_``, ``.``, ``-``; 1-128 characters."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError(
            f"a model name must be 1-128 letters, digits, '_', '.' or '-' starting with a "
            f"letter or digit (got {str(name)[:60]!r}); e.g. quality"
        )
    return name


def check_alias(alias: object) -> str:
    """An alias: ``champion``, ``challenger``, or another name of the same form."""
    if not isinstance(alias, str) or not _NAME.fullmatch(alias) or alias.isdigit():
        raise UsageError(
            f"an alias must be a name such as champion or challenger (got {str(alias)[:60]!r})"
        )
    return alias


def fingerprint(table: pa.Table) -> str:
    """SHA-256 of a table's content: its schema (with metadata) and every row, in order."""
    h = hashlib.sha256()
    h.update(table.schema.serialize().to_pybytes())
    for batch in table.to_batches(max_chunksize=65_536):
        h.update(batch.serialize().to_pybytes())
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class VersionRef:
    """A resolved model version."""

    name: str
    version: int
    aliases: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name}/{self.version}"


#: Held while MLflow's process-wide fluent API points at one registry (:meth:`Registry._active`).
_FLUENT = threading.RLock()


class Registry:
    """The MLflow registry of one workspace.

    Parameters
    ----------
    workspace : the workspace folder (holds ``models/`` in the default layout).
    uri : a tracking URI (the ``mlflow_uri`` setting); empty for the workspace's own store.
    """

    def __init__(self, workspace: Path, uri: str = "") -> None:
        self.workspace = Path(workspace)
        self.local = not uri
        folder = self.workspace / "models"
        self.uri = uri or f"sqlite:///{folder / 'mlflow.db'}"
        self.artifacts = folder / "artifacts"
        self._client: MlflowClient | None = None

    # -- plumbing -----------------------------------------------------------------------------

    def _mlflow(self) -> ModuleType:
        mlflow = _import_mlflow()
        if self.local:
            self.artifacts.mkdir(parents=True, exist_ok=True)
        return mlflow

    @property
    def client(self) -> MlflowClient:
        """An ``MlflowClient`` on this registry (tracking and registry on the same URI)."""
        if self._client is None:
            mlflow = self._mlflow()
            with _quiet():
                self._client = mlflow.MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    @contextlib.contextmanager
    def _active(self) -> Iterator[ModuleType]:
        """MLflow's fluent API pointed at this registry for the body, restored afterwards.

        The fluent API's tracking URI is process-wide, so one body runs at a time in the
        process (two registries registering from two threads would otherwise write into each
        other's stores). Reads go through :attr:`client`, which carries its own URIs.
        """
        mlflow = self._mlflow()
        with _FLUENT:
            before_t, before_r = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
            mlflow.set_tracking_uri(self.uri)
            mlflow.set_registry_uri(self.uri)
            try:
                with _quiet():
                    yield mlflow
            finally:
                mlflow.set_tracking_uri(before_t)
                mlflow.set_registry_uri(before_r)

    def _experiment_id(self) -> str:
        client = self.client
        with _quiet():
            exp = client.get_experiment_by_name(EXPERIMENT)
            if exp is not None:
                return str(exp.experiment_id)
            location = self.artifacts.resolve().as_uri() if self.local else None
            return str(client.create_experiment(EXPERIMENT, artifact_location=location))

    # -- writing ------------------------------------------------------------------------------

    def register(
        self,
        name: str,
        onnx_model: Any,
        *,
        inputs: tuple[list[str], list[str]],
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        texts: Mapping[str, str],
    ) -> VersionRef:
        """Log one trained model as a run and a new version of ``name``; return the version.

        ``inputs`` are the (numeric, categorical) input columns of the ONNX graph (its
        signature); ``texts`` are artifact files (path under the run -> text).
        """
        check_name(name)
        experiment_id = self._experiment_id()
        with self._active() as mlflow:
            from mlflow.models import ModelSignature
            from mlflow.types import ColSpec, Schema

            numeric, categorical = inputs
            specs: list[Any] = [ColSpec("float", n) for n in numeric]
            specs += [ColSpec("string", c) for c in categorical]
            signature = ModelSignature(
                inputs=Schema(specs), outputs=Schema([ColSpec("float", "score")])
            )
            with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{name}"):
                mlflow.log_params({k: _param(v) for k, v in params.items()})
                mlflow.log_metrics(dict(metrics))
                mlflow.set_tags(dict(tags))
                for path, text in texts.items():
                    mlflow.log_text(text, path)
                info = mlflow.onnx.log_model(
                    onnx_model,
                    name="model",
                    signature=signature,
                    registered_model_name=name,
                    pip_requirements=["onnxruntime"],
                )
        version = int(info.registered_model_version)
        with _quiet():
            for key, value in tags.items():
                self.client.set_model_version_tag(name, str(version), key, value)
        return VersionRef(name, version, ())

    def promote(self, name: str, version: int, alias: str = "champion") -> VersionRef:
        """Point ``alias`` of ``name`` at ``version`` (moving it from any other version)."""
        check_alias(alias)
        ref = self.resolve(f"{check_name(name)}/{version}")
        with _quiet():
            self.client.set_registered_model_alias(name, alias, str(ref.version))
        return self.resolve(f"{name}/{ref.version}")

    # -- reading ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """The registered model names, sorted."""
        with _quiet():
            models = self.client.search_registered_models(max_results=1000)
        return sorted(m.name for m in models)

    def _model(self, name: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            with _quiet():
                return self.client.get_registered_model(name)
        except MlflowException:
            known = self.names()
            hint = (
                f"known models: {', '.join(known)}"
                if known
                else "no model is registered yet; train one with `assay models train quality`"
            )
            raise NotFoundError(f"no registered model {name!r}; {hint}") from None

    def _versions(self, name: str) -> list[Any]:
        with _quiet():
            return list(self.client.search_model_versions(f"name='{name}'", max_results=10_000))

    def resolve(self, ref: str) -> VersionRef:
        """The version a reference names: ``NAME@ALIAS``, ``NAME/VERSION`` or ``NAME`` (its
        champion, else its latest version).

        Raises
        ------
        NotFoundError
            For an unknown name (listing the known ones), alias or version (listing those of
            the model).
        UsageError
            For a reference of none of these forms.
        """
        text = str(ref).strip()
        name, alias, version = text, None, None
        if "@" in text:
            name, alias = text.split("@", 1)
        elif "/" in text:
            name, raw = text.split("/", 1)
            if not raw.isdigit() or int(raw) < 1:
                raise UsageError(
                    f"a model reference is NAME, NAME@ALIAS or NAME/VERSION with VERSION a "
                    f"whole number >= 1 (got {text[:80]!r}); e.g. quality/3"
                )
            version = int(raw)
        check_name(name)
        model = self._model(name)
        aliases: dict[str, str] = dict(getattr(model, "aliases", {}) or {})
        versions = sorted(int(v.version) for v in self._versions(name))
        if alias is not None:
            if alias not in aliases:
                shown = ", ".join(f"{a} -> {v}" for a, v in sorted(aliases.items())) or "none"
                raise NotFoundError(
                    f"model {name!r} has no alias {alias!r} (its aliases: {shown}); set it "
                    f"with `assay models promote {name} VERSION --alias {alias}`"
                )
            version = int(aliases[alias])
        elif version is None:
            if not versions:
                raise NotFoundError(f"model {name!r} has no version; train one first")
            version = int(aliases["champion"]) if "champion" in aliases else versions[-1]
        if version not in versions:
            raise NotFoundError(
                f"model {name!r} has no version {version} (its versions: "
                f"{', '.join(map(str, versions)) or 'none'})"
            )
        held = tuple(sorted(a for a, v in aliases.items() if int(v) == version))
        return VersionRef(name, version, held)

    def show(self, ref: str) -> dict[str, Any]:
        """Everything the registry holds about one version: its run's parameters, metrics
        and tags, the version's tags, aliases and artifact source."""
        found = self.resolve(ref)
        with _quiet():
            mv = self.client.get_model_version(found.name, str(found.version))
            run = self.client.get_run(mv.run_id) if mv.run_id else None
        return {
            "name": found.name,
            "version": found.version,
            "aliases": list(found.aliases),
            "created": _utc(mv.creation_timestamp),
            "source": str(mv.source),
            "run_id": mv.run_id,
            "tags": dict(mv.tags or {}),
            "params": dict(run.data.params) if run else {},
            "metrics": dict(run.data.metrics) if run else {},
        }

    def list(self) -> pa.Table:
        """One row per model version: name, version, aliases, kind, label, created (UTC),
        test PR-AUC, ROC-AUC and calibration error."""
        rows = []
        for name in self.names():
            model = self._model(name)
            aliases: dict[str, str] = dict(getattr(model, "aliases", {}) or {})
            for mv in sorted(self._versions(name), key=lambda v: int(v.version)):
                tags = dict(mv.tags or {})
                with _quiet():
                    run = self.client.get_run(mv.run_id) if mv.run_id else None
                m = dict(run.data.metrics) if run else {}
                rows.append(
                    {
                        "name": name,
                        "version": int(mv.version),
                        "aliases": ",".join(
                            sorted(a for a, v in aliases.items() if int(v) == int(mv.version))
                        ),
                        "kind": tags.get(TAG_PREFIX + "kind"),
                        "label": tags.get(TAG_PREFIX + "label"),
                        "created": _utc(mv.creation_timestamp),
                        "test_average_precision": m.get("test_average_precision"),
                        "test_roc_auc": m.get("test_roc_auc"),
                        "test_ece": m.get("test_ece"),
                    }
                )
        return pa.Table.from_pylist(rows, schema=LIST_SCHEMA)

    def load_onnx(self, ref: str) -> tuple[VersionRef, bytes]:
        """The ONNX export of a version, as bytes."""
        found = self.resolve(ref)
        with self._active() as mlflow:
            proto = mlflow.onnx.load_model(f"models:/{found.name}/{found.version}")
        return found, bytes(proto.SerializeToString())


LIST_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("version", pa.int64()),
        ("aliases", pa.string()),
        ("kind", pa.string()),
        ("label", pa.string()),
        ("created", pa.timestamp("ms", tz="UTC")),
        ("test_average_precision", pa.float64()),
        ("test_roc_auc", pa.float64()),
        ("test_ece", pa.float64()),
    ]
)


def _utc(ms: Any) -> dt.datetime:
    """MLflow's creation time (milliseconds since the epoch) as a UTC datetime."""
    return dt.datetime.fromtimestamp(int(ms) / 1000, dt.UTC)


def _param(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."
