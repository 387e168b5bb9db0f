"""The model lifecycle on a workspace: train and register, list, show, promote, predict.

Module-level functions taking the workspace (``ws.models`` exposes them as methods); the
CLI calls them and only formats. Registry writes (a new version, an alias) hold the workspace
write lock, as every other write does; training itself does not.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from assay._errors import UsageError
from assay.models._dataset import (
    DEFAULT_LABEL_WINDOW_DAYS,
    LABELS,
    PREDICTION_TIME_RULE,
    Label,
)
from assay.models._evaluate import ModelEvaluation, evaluate_model
from assay.models._holdout import HOLDOUT_JSON, Holdout
from assay.models._leakage import LeakageReport
from assay.models._onnx import input_names, onnx_scores, session, to_onnx
from assay.models._registry import TAG_PREFIX, Registry, VersionRef, fingerprint
from assay.models._train import (
    FloatArray,
    ModelKind,
    QualityModel,
    fit_calibrator,
    halves,
    labels_of,
    stage,
    train_quality,
)

if TYPE_CHECKING:
    from assay._api import Workspace

#: Largest tolerated difference between the ONNX export's scores and the native model's.
PARITY_TOLERANCE = 1e-5

#: What each label means, recorded with every model version.
LABEL_DEFINITIONS: dict[str, str] = {
    "thumbs_down": "a feedback -1 or a rating <= 2 in the session, within the label window "
    "after the prediction time",
    "handoff": "a handoff event in the session within the label window after the prediction time",
    "thumbs_down_next": "a thumbs_down in the user's next session, if it starts within 7 days",
}

PREDICT_SCHEMA = pa.schema(
    [
        ("tenant_id", pa.string()),
        ("session_id", pa.string()),
        ("day", pa.date32()),
        ("score", pa.float64()),
    ]
)


def registry(ws: Workspace) -> Registry:
    """The workspace's model registry (its ``mlflow_uri`` setting, else its own store)."""
    return Registry(ws.path, getattr(ws.settings, "mlflow_uri", ""))


def default_name(label: str) -> str:
    """The registered name of the quality model of ``label``: ``quality`` for the default
    label, ``quality-<label>`` otherwise (``quality-handoff``)."""
    return "quality" if label == LABELS[0] else f"quality-{label.replace('_', '-')}"


@dataclass(frozen=True)
class TrainOutcome:
    """What :func:`train` did.

    Attributes
    ----------
    version : the registered version.
    kind, calibration : the chosen model kind and calibration.
    evaluation : its evaluation on the test days.
    candidates : per kind fitted, its validation PR-AUC and calibration log losses.
    leakage : the leakage probe's report.
    onnx_max_abs_diff : largest |ONNX score - native score| on the test days.
    window : the dataset's days and row counts per part.
    model : the trained model itself (native, for comparisons).
    """

    version: VersionRef
    kind: str
    calibration: str
    evaluation: ModelEvaluation
    candidates: dict[str, dict[str, Any]]
    leakage: LeakageReport
    onnx_max_abs_diff: float
    window: dict[str, Any]
    model: QualityModel

    def summary(self) -> dict[str, Any]:
        """Plain values for printing: the version, the choices and the headline metrics."""
        return {
            "model": str(self.version),
            "kind": self.kind,
            "calibration": self.calibration,
            "window": self.window,
            "candidates": self.candidates,
            "onnx_max_abs_diff": self.onnx_max_abs_diff,
            "metrics": self.evaluation.metrics,
            "operating_point": self.evaluation.operating_point,
            "slices_flagged": self.evaluation.to_dict()["slices_flagged"],
            "importance": self.evaluation.importance[:10],
        }


def _assay_version() -> str:
    try:
        return importlib.metadata.version("assay")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _days_of(table: pa.Table) -> tuple[str | None, str | None]:
    if table.num_rows == 0:
        return None, None
    days = table.column("day")
    low, high = pa.compute.min(days).as_py(), pa.compute.max(days).as_py()
    return low.isoformat(), high.isoformat()


def _export(model: QualityModel, test: pa.Table) -> tuple[Any, FloatArray, float]:
    """The ONNX export, the native scores of ``test`` and the largest difference."""
    proto = to_onnx(model)
    native = model.predict_proba(test)
    exported = onnx_scores(session(proto), test)
    diff = float(np.max(np.abs(native - exported))) if native.size else 0.0
    return proto, native, diff


def train(
    ws: Workspace,
    name: str | None = None,
    *,
    label: Label = "thumbs_down",
    since: dt.date | None = None,
    until: dt.date | None = None,
    days: int | None = None,
    model: ModelKind = "auto",
    attributes: Sequence[str] = (),
    valid_days: int = 7,
    test_days: int = 7,
    user_disjoint: bool = False,
    seed: int = 0,
    allow_leakage: bool = False,
    n_boot: int = 200,
    n_estimators: int = 300,
    progress: Callable[[str], None] | None = None,
) -> TrainOutcome:
    """Build the training set, train, evaluate, export to ONNX and register a new version.

    Parameters
    ----------
    name : the registered model name; default :func:`default_name` of ``label``.
    label : ``thumbs_down`` (default), ``handoff`` or ``thumbs_down_next``.
    since, until : the sessions' days; ``days`` N instead of ``since`` takes the N days
        ending on ``until`` (default: the last stored day).
    model : ``logistic``, ``gbdt`` or ``auto``.
    attributes : attribute keys opted in as features.
    valid_days, test_days, user_disjoint, seed, allow_leakage, n_estimators : as in
        :func:`~assay.models._train.train_quality`.
    n_boot : bootstrap replicates of the evaluation's intervals.
    progress : called with each stage's name.

    Raises
    ------
    LeakageError
        When the leakage probe flags a feature (and ``allow_leakage`` is false).
    UsageError
        On bad options, too few days, or an export whose scores differ from the native
        model's by more than 1e-5.
    """
    if label not in LABELS:
        raise UsageError(f"label must be one of {', '.join(LABELS)} (got {label!r})")
    model_name = name if name is not None else default_name(label)
    reg = registry(ws)
    from assay.models._registry import check_name

    check_name(model_name)
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise UsageError(f"days must be a whole number >= 1 (got {days!r})")
        if since is not None:
            raise UsageError("give since or days, not both (days counts back from until)")
        end = until if until is not None else ws.last_event_day()
        if end is None:
            raise UsageError("the workspace has no events; ingest some before training")
        since = end - dt.timedelta(days=days - 1)
    with stage("dataset", progress):
        table = ws.models.dataset(label, since=since, until=until, attributes=attributes)
    return train_on_table(
        reg,
        table,
        model_name,
        label=label,
        since=since,
        until=until,
        model=model,
        attributes=attributes,
        valid_days=valid_days,
        test_days=test_days,
        user_disjoint=user_disjoint,
        seed=seed,
        allow_leakage=allow_leakage,
        n_boot=n_boot,
        n_estimators=n_estimators,
        progress=progress,
        lock=lambda: ws.lock.hold(ws.settings.lock_timeout_seconds),
    )


def train_on_table(
    reg: Registry,
    table: pa.Table,
    model_name: str,
    *,
    label: Label = "thumbs_down",
    since: dt.date | None = None,
    until: dt.date | None = None,
    model: ModelKind = "auto",
    attributes: Sequence[str] = (),
    valid_days: int = 7,
    test_days: int = 7,
    user_disjoint: bool = False,
    seed: int = 0,
    allow_leakage: bool = False,
    n_boot: int = 200,
    n_estimators: int = 300,
    progress: Callable[[str], None] | None = None,
    lock: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> TrainOutcome:
    """:func:`train` on a dataset already built: train, evaluate, export, register (the
    registry write inside ``lock()``)."""
    result = train_quality(
        table,
        model=model,
        valid_days=valid_days,
        test_days=test_days,
        user_disjoint=user_disjoint,
        seed=seed,
        allow_leakage=allow_leakage,
        n_estimators=n_estimators,
        progress=progress,
    )
    chosen = result.model
    split = result.split
    with stage("export onnx", progress):
        proto, native, diff = _export(chosen, split.test)
        if diff > PARITY_TOLERANCE and chosen.calibrator.method == "isotonic":
            # A steep isotonic segment float32 cannot follow: Platt's smooth curve can.
            y_valid = labels_of(split.valid)
            cal_rows, _ = halves(y_valid)
            z = chosen.margin(split.valid)[cal_rows]
            chosen.calibrator = fit_calibrator("platt", z, y_valid[cal_rows])
            chosen.params["calibration"] = "platt"
            chosen.params["calibration_fallback"] = f"isotonic export off by {diff:.2e}"
            proto, native, diff = _export(chosen, split.test)
    if not diff <= PARITY_TOLERANCE:
        raise UsageError(
            f"the ONNX export's scores differ from the native model's by up to {diff:.2e} on "
            f"the test days (expected <= {PARITY_TOLERANCE:g}); retrain with --model logistic, "
            "or report this with the model kind and calibration"
        )
    with stage("evaluate", progress, rows=split.test.num_rows):
        evaluation = evaluate_model(
            chosen, split.test, split.valid, n_boot=n_boot, seed=seed, scores=native
        )
    numeric, categorical = chosen.numeric, chosen.categorical
    window = {
        "since": None if since is None else since.isoformat(),
        "until": None if until is None else until.isoformat(),
        "train_days": list(_days_of(split.train)),
        "valid_days": list(_days_of(split.valid)),
        "test_days": list(_days_of(split.test)),
        "rows": {
            "train": split.train.num_rows,
            "valid": split.valid.num_rows,
            "test": split.test.num_rows,
        },
    }
    window_days = DEFAULT_LABEL_WINDOW_DAYS[label]
    meta = table.schema.metadata or {}
    if b"assay.label_window_days" in meta:
        window_days = int(meta[b"assay.label_window_days"])
    tags = {
        TAG_PREFIX + "kind": chosen.kind,
        TAG_PREFIX + "calibration": chosen.calibrator.method,
        TAG_PREFIX + "label": label,
        TAG_PREFIX + "label_definition": LABEL_DEFINITIONS[label],
        TAG_PREFIX + "label_window_days": str(window_days),
        TAG_PREFIX + "prediction_time": PREDICTION_TIME_RULE,
        TAG_PREFIX + "features_numeric": json.dumps(numeric),
        TAG_PREFIX + "features_categorical": json.dumps(categorical),
        TAG_PREFIX + "attributes": json.dumps(list(attributes)),
        TAG_PREFIX + "window": json.dumps(window, sort_keys=True),
        TAG_PREFIX + "data_fingerprint": fingerprint(table),
        TAG_PREFIX + "assay_version": _assay_version(),
        TAG_PREFIX + "leakage_flagged": json.dumps(result.leakage.flagged),
    }
    params = {**chosen.params, "label": label, "n_boot": n_boot}
    params["calibrator"] = json.dumps(chosen.calibrator.to_dict())[:5000]
    metrics = evaluation.flat_metrics()
    metrics["onnx_max_abs_diff"] = diff
    candidates = {
        kind: {
            "valid_pr_auc": c.valid_pr_auc,
            "calibration": c.model.calibrator.method,
            "valid_log_loss": c.valid_log_loss,
        }
        for kind, c in result.candidates.items()
    }
    for kind, cand in result.candidates.items():
        if cand.valid_pr_auc is not None and math.isfinite(cand.valid_pr_auc):
            metrics[f"valid_pr_auc_{kind}"] = cand.valid_pr_auc
    texts = {
        "evaluation/evaluation.json": json.dumps(
            {"candidates": candidates, "window": window, **evaluation.to_dict()},
            indent=2,
            sort_keys=True,
        ),
        "evaluation/report.html": evaluation.to_html(title=f"{model_name}: evaluation"),
        "evaluation/leakage.json": json.dumps(result.leakage.table.to_pylist(), indent=2),
        HOLDOUT_JSON: json.dumps(_holdout(split.test, native, evaluation).to_dict()),
    }
    with stage("register", progress), lock():
        version = reg.register(
            model_name,
            proto,
            inputs=(numeric, categorical),
            params=params,
            metrics=metrics,
            tags=tags,
            texts=texts,
        )
    return TrainOutcome(
        version=version,
        kind=chosen.kind,
        calibration=chosen.calibrator.method,
        evaluation=evaluation,
        candidates=candidates,
        leakage=result.leakage,
        onnx_max_abs_diff=diff,
        window=window,
        model=chosen,
    )


#: The sensitive attributes the quality model's held-out predictions carry (for the launch
#: gate's fairness criteria), where the dataset has them.
HOLDOUT_ATTRIBUTES: tuple[str, ...] = ("locale", "platform")


def _holdout(test: pa.Table, scores: FloatArray, evaluation: ModelEvaluation) -> Holdout:
    """The test days' labels, scores and alerts at the operating point, with the sensitive
    attributes of each row (a missing value as ``"(missing)"``)."""
    threshold = evaluation.operating_point.get("threshold")
    cut = math.inf if threshold is None else float(threshold)
    groups = {
        a: ["(missing)" if v is None else str(v) for v in test.column(a).to_pylist()]
        for a in HOLDOUT_ATTRIBUTES
        if a in test.column_names
    }
    return Holdout.of(
        labels_of(test).tolist(), (scores >= cut).tolist(), y_score=scores.tolist(), groups=groups
    )


def list_models(ws: Workspace) -> pa.Table:
    """Every registered model version (see :meth:`Registry.list`)."""
    return registry(ws).list()


def show(ws: Workspace, ref: str) -> dict[str, Any]:
    """One model version: parameters, metrics, tags, aliases (see :meth:`Registry.show`)."""
    return registry(ws).show(ref)


def promote(ws: Workspace, name: str, version: int, alias: str = "champion") -> VersionRef:
    """Point ``alias`` (``champion`` by default, or ``challenger``) of ``name`` at
    ``version``."""
    with ws.lock.hold(ws.settings.lock_timeout_seconds):
        return registry(ws).promote(name, version, alias)


def scoring_rows(
    ws: Workspace,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    attributes: Sequence[str] = (),
) -> pa.Table:
    """Every session with a turn in [since, until], its features as of its prediction time,
    whether or not its label window has closed (the rows a deployed model scores):
    ``ws.models.features``."""
    return ws.models.features(since=since, until=until, attributes=attributes)


def predict(
    ws: Workspace,
    ref: str,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> pa.Table:
    """Score every session in [since, until] with a registered model's ONNX export.

    Returns
    -------
    pyarrow.Table
        ``tenant_id, session_id, day, score`` (the calibrated probability), sorted by day,
        tenant and session; schema metadata ``assay.model`` names the version.
    """
    found, raw = registry(ws).load_onnx(ref)
    sess = session(raw)
    _, categorical = input_names(sess)
    attributes = [c[len("attr_") :] for c in categorical if c.startswith("attr_")]
    rows = scoring_rows(ws, since=since, until=until, attributes=attributes)
    scores = onnx_scores(sess, rows) if rows.num_rows else np.empty(0)
    out = pa.table(
        {
            "tenant_id": rows.column("tenant_id").cast(pa.string()),
            "session_id": rows.column("session_id").cast(pa.string()),
            "day": rows.column("day"),
            "score": pa.array(scores, pa.float64()),
        },
        schema=PREDICT_SCHEMA,
    )
    return out.replace_schema_metadata({b"assay.model": str(found).encode()})
