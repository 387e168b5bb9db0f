"""Models: point-in-time datasets and the leakage guard (training and the registry build on
them).

- :class:`Models` (``ws.models``): :meth:`Models.dataset` builds a point-in-time training set,
  one row per session, features as of its prediction time, written once in Ibis for every
  engine; :func:`feature_columns` reads its feature lists back; :data:`LABELS` names the labels.
- The leakage guard: :func:`time_split` splits by time (optionally user-disjoint),
  :func:`leakage_probe` trains each feature alone and flags the implausible ones, and
  :class:`LeakageError` refuses to go on with a readable report.

- Training and the registry: :func:`train_quality` fits calibrated logistic regression or
  LightGBM on a dataset, :func:`evaluate_model` evaluates it with ``assay.evaluation``,
  :func:`to_onnx` exports it, :class:`Registry` keeps versions and aliases in MLflow;
  ``ws.models`` (:class:`WorkspaceModels`) trains, registers, lists, promotes and predicts,
  retrains daily under an SLA (:class:`RetrainOutcome`) and monitors without labels
  (:class:`MonitorReport`).
- Intent models: :func:`train_intent` (TF-IDF or a pretrained sentence encoder from a local
  directory, out-of-scope detection), :class:`IntentPredictor` and :func:`predict_intent` run
  their ONNX export.
- Online inference: :class:`ModelPool` serves every registered model (loaded once, warmed,
  micro-batched, swapped when an alias moves) under the limits of :class:`ServingConfig`;
  ``assay serve`` answers ``POST /v1/models/{name}/predict`` with it.

Definitions and rules: ``docs/models.md``.
"""

from assay.models._dataset import (
    CATEGORICAL_FEATURES,
    DEFAULT_LABEL_WINDOW_DAYS,
    KEY_COLUMNS,
    LABELS,
    NUMERIC_FEATURES,
    Label,
    Models,
    feature_columns,
)
from assay.models._evaluate import ModelEvaluation, evaluate_model
from assay.models._holdout import Holdout
from assay.models._intent import (
    IntentModel,
    IntentOutcome,
    IntentPredictor,
    predict_intent,
    train_intent,
)
from assay.models._leakage import (
    DEFAULT_THRESHOLD,
    LeakageError,
    LeakageReport,
    Split,
    leakage_probe,
    time_split,
)
from assay.models._lifecycle import TrainOutcome
from assay.models._monitor import MonitorReport
from assay.models._namespace import WorkspaceModels
from assay.models._onnx import to_onnx
from assay.models._registry import Registry, VersionRef
from assay.models._retrain import GateResult, RetrainOutcome
from assay.models._serving import ModelPool, PredictResult, Routing, ServingConfig
from assay.models._train import Calibrator, QualityModel, TrainResult, train_quality

__all__ = [
    "CATEGORICAL_FEATURES",
    "DEFAULT_LABEL_WINDOW_DAYS",
    "DEFAULT_THRESHOLD",
    "KEY_COLUMNS",
    "LABELS",
    "NUMERIC_FEATURES",
    "Calibrator",
    "GateResult",
    "Holdout",
    "IntentModel",
    "IntentOutcome",
    "IntentPredictor",
    "Label",
    "LeakageError",
    "LeakageReport",
    "ModelEvaluation",
    "ModelPool",
    "Models",
    "MonitorReport",
    "PredictResult",
    "QualityModel",
    "Registry",
    "RetrainOutcome",
    "Routing",
    "ServingConfig",
    "Split",
    "TrainOutcome",
    "TrainResult",
    "VersionRef",
    "WorkspaceModels",
    "evaluate_model",
    "feature_columns",
    "leakage_probe",
    "predict_intent",
    "time_split",
    "to_onnx",
    "train_intent",
    "train_quality",
]
