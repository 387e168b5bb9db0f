"""Training the session-quality model: preprocessing, two model kinds, calibration, selection.

What :func:`train_quality` does, in order (each stage is logged on ``assay.models`` with its
duration):

1. **Split by time** with :func:`~assay.models.time_split` (train on earlier days, validate
   and test on later ones), then run the **leakage probe** on train and validation; a flagged
   feature raises :class:`~assay.models.LeakageError` unless ``allow_leakage=True``.
2. **Preprocess** inside one scikit-learn ``Pipeline`` that ONNX can hold: numeric features
   as float32 (NaN where missing), categorical features as strings (a missing value becomes
   the category ``"__missing__"``). For ``logistic``: median imputation and standardisation
   of the numeric features. For both kinds: one-hot encoding of each categorical feature over
   its **frequent categories** in train (at least ``min_category_count`` rows, at most
   ``max_categories`` per feature); every other value, rare in train or never seen, encodes
   to all zeros, which is the "other" bucket.
3. **Fit** ``logistic`` (scikit-learn ``LogisticRegression``, with balanced class weights:
   each class weighs half the total, so a 1 % positive rate is not learnt as "always
   negative"; they inflate the raw probabilities, which calibration then corrects) and/or
   ``gbdt`` (LightGBM, unweighted: its boosting starts from the base rate's log-odds, and
   weighting each of a few hundred positives ~50 times made it overfit them, see
   :data:`GBDT_NUM_LEAVES`).
4. **Calibrate** on validation. The validation rows are split in two halves, alternating
   within each class in (day, tenant, session) order: the *calibration half* fits Platt
   scaling (a logistic regression on the classifier's margin, its log-odds before the
   sigmoid: the logistic regression's decision function, LightGBM's raw score; its slope is
   kept positive: a fitted slope <= 0, noise or drift on a small half, would reverse the
   ranking learnt on train, so the slope stays 1 and only the offset is fitted) and, when that
   half holds at least ``ISOTONIC_MIN_POSITIVES`` (100) positives, isotonic regression; the
   *selection half* picks the calibration with the lower log loss, and (with
   ``model="auto"``) the model kind with the higher PR-AUC (average precision) of its
   calibrated scores. The test part is never used here: it is for the evaluation.

Deterministic for a given ``seed`` (LightGBM runs with ``deterministic=True``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import UsageError
from assay.evaluation import average_precision, log_loss
from assay.models._dataset import feature_columns
from assay.models._leakage import DEFAULT_THRESHOLD, LeakageReport, Split, leakage_probe, time_split

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

ModelKind = Literal["auto", "logistic", "gbdt"]
Calibration = Literal["platt", "isotonic"]
FloatArray = npt.NDArray[np.float64]

#: The category a missing categorical value becomes.
MISSING = "__missing__"
MODEL_KINDS: tuple[str, ...] = ("auto", "logistic", "gbdt")
#: Isotonic regression is a candidate only with at least this many positives in the
#: calibration half (with fewer it is a staircase of a few steps; Platt's two parameters are
#: the safer fit).
ISOTONIC_MIN_POSITIVES = 100
#: LightGBM's shape. The signal of session quality is weak (the synthetic world's Bayes-optimal
#: ROC-AUC is 0.58-0.65) and positives are about 1 %: 31-leaf trees at a 0.05 rate fitted the
#: training rows perfectly (train ROC-AUC 1.00) and ranked test sessions at 0.47-0.53. Small
#: trees, a slower rate, L2 on the leaves and leaves of at least 1 % of the training rows
#: (between 20 and 400, :func:`gbdt_min_child_samples`): 0.61 on 189k synthetic sessions
#: where the old shape gave 0.53 (Bayes 0.645). With the last- and previous-turn features,
#: 4-leaf trees on balanced weights still reached train ROC-AUC 0.71-0.74 against the true
#: probabilities' 0.59-0.65 on the same rows; stumps (2 leaves, an additive model) without
#: class weights had the best validation ROC-AUC of the shapes tried on the
#: ``benchmarks/models_quality.py`` seeds 1-3 (mean 0.613 vs 0.591; chosen on the validation
#: days only; 3 leaves, 150 or 600 trees, a larger leaf or L2 100 did worse there).
GBDT_NUM_LEAVES = 2
#: LightGBM's class weights (None: unweighted; see :data:`GBDT_NUM_LEAVES`).
GBDT_CLASS_WEIGHT: str | None = None
GBDT_LEARNING_RATE = 0.02
GBDT_REG_LAMBDA = 10.0

_log = logging.getLogger("assay.models")


@contextmanager
def stage(
    name: str, progress: Callable[[str], None] | None = None, **fields: Any
) -> Iterator[None]:
    """Log the start and the duration of one stage of a long job."""
    if progress is not None:
        progress(name)
    _log.info("stage %s started", name, extra={"assay": {"stage": name, **fields}})
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    _log.info(
        "stage %s done in %.2fs",
        name,
        seconds,
        extra={"assay": {"stage": name, "seconds": round(seconds, 3), **fields}},
    )


# -- inputs -----------------------------------------------------------------------------------


def model_frame(
    table: pa.Table, numeric: Sequence[str], categorical: Sequence[str]
) -> pd.DataFrame:
    """The model's input columns as a pandas DataFrame: float32 with NaN, strings with MISSING.

    The one conversion from a dataset to model inputs, shared by the native model and the
    ONNX export (which takes the same columns, one input per column).
    """
    import pandas as pd

    missing = [c for c in [*numeric, *categorical] if c not in table.column_names]
    if missing:
        raise UsageError(
            f"the table lacks the model's feature column(s) {', '.join(missing)} (expected the "
            "columns of the dataset the model was trained on); build the table with the same "
            "attributes= as at training"
        )
    data: dict[str, Any] = {}
    for name in numeric:
        col = table.column(name).cast(pa.float64())
        data[name] = col.to_numpy(zero_copy_only=False).astype(np.float32)
    for name in categorical:
        col = pc.fill_null(table.column(name).cast(pa.string()), MISSING)
        data[name] = np.asarray(col.to_pylist(), dtype=object)
    return pd.DataFrame(data, index=pd.RangeIndex(table.num_rows))


def labels_of(table: pa.Table) -> npt.NDArray[np.bool_]:
    """The ``label`` column as a boolean array (a null label is an error)."""
    if "label" not in table.column_names:
        raise UsageError("the table has no label column (expected a ws.models.dataset table)")
    col = table.column("label")
    if col.null_count:
        raise UsageError(f"the label column has {col.null_count} null(s); expected booleans")
    return np.asarray(col.cast(pa.bool_()).to_numpy(zero_copy_only=False), dtype=np.bool_)


def frequent_categories(
    table: pa.Table, categorical: Sequence[str], *, min_count: int, max_categories: int
) -> dict[str, list[str]]:
    """Per categorical feature, its categories with at least ``min_count`` rows, most
    frequent first (ties by value), at most ``max_categories``, then sorted by value."""
    out: dict[str, list[str]] = {}
    for name in categorical:
        col = pc.fill_null(table.column(name).cast(pa.string()), MISSING)
        counts = pc.value_counts(col).to_pylist()
        ranked = sorted(
            ((str(c["values"]), int(c["counts"])) for c in counts),
            key=lambda vc: (-vc[1], vc[0]),
        )
        keep = [v for v, n in ranked if n >= min_count][:max_categories]
        out[name] = sorted(keep)
    return out


# -- calibration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from a classifier's margin ``z`` (its log-odds) to a probability.

    ``platt``: ``sigmoid(a * z + b)``.
    ``isotonic``: of the raw probability ``q = sigmoid(z)``, linear interpolation through the
    knots ``(x, y)``, constant beyond the first and last knot: centred isotonic regression,
    one knot per block of scikit-learn's ``IsotonicRegression`` at its rows' mean ``q``.

    Working on the margin keeps the ONNX export exact in float32: a probability near 0 or 1
    has lost the digits its logit would need.
    """

    method: Calibration
    a: float = 1.0
    b: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def apply(self, z: FloatArray) -> FloatArray:
        """Calibrated probabilities of margins ``z``."""
        z = np.asarray(z, dtype=np.float64)
        if self.method == "platt":
            return sigmoid(self.a * z + self.b)
        return np.asarray(np.interp(sigmoid(z), self.x, self.y), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """The calibrator as plain values (JSON)."""
        return dataclasses.asdict(self)


def sigmoid(z: FloatArray) -> FloatArray:
    """The logistic function, without overflow warnings for large ``|z|``."""
    from scipy.special import expit

    return np.asarray(expit(z), dtype=np.float64)


def fit_calibrator(method: Calibration, z: FloatArray, y: npt.NDArray[np.bool_]) -> Calibrator:
    """Fit Platt scaling (on margins ``z``) or isotonic regression (on ``sigmoid(z)``) of
    labels ``y``."""
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        # A very weak penalty: Platt's two parameters, essentially unregularised.
        lr = LogisticRegression(C=1e6, max_iter=1000)
        lr.fit(np.asarray(z, dtype=np.float64).reshape(-1, 1), y)
        a = float(lr.coef_[0, 0])
        if a > 0.0:
            return Calibrator("platt", a=a, b=float(lr.intercept_[0]))
        # A calibration must not reverse the ranking learnt on train: a slope <= 0 fitted on
        # a small calibration half is noise or drift (on the demo workspace it turned a test
        # ROC-AUC of 0.57 into 0.43). Keep the classifier's own scale and fit the offset.
        _log.warning(
            "Platt scaling fitted a slope <= 0 on the calibration half; keeping slope 1",
            extra={"assay": {"slope": round(a, 6), "rows": int(np.size(y))}},
        )
        return Calibrator("platt", a=1.0, b=platt_offset(z, y))
    from sklearn.isotonic import IsotonicRegression

    q = sigmoid(z)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    fitted = iso.fit_transform(q, y.astype(np.float64))
    # Centred isotonic regression (Oron and Flournoy, 2017): one knot per constant block, at
    # the mean raw probability of its rows, joined by straight lines. Plain isotonic
    # regression jumps between two neighbouring rows, a slope float32 cannot follow to 1e-5.
    values, inverse = np.unique(fitted, return_inverse=True)
    x = np.bincount(inverse, weights=q) / np.bincount(inverse)
    order = np.argsort(x, kind="stable")
    return Calibrator(
        "isotonic",
        x=tuple(float(v) for v in x[order]),
        y=tuple(float(v) for v in values[order]),
    )


def platt_offset(z: FloatArray, y: npt.NDArray[np.bool_]) -> float:
    """The offset ``b`` of ``sigmoid(z + b)`` that maximises the likelihood of labels ``y``
    (slope fixed at 1): the root of ``sum(sigmoid(z + b)) = sum(y)``, which is increasing in
    ``b``. Needs both classes in ``y``.

    Examples
    --------
    >>> round(platt_offset(np.zeros(4), np.array([True, False, False, False])), 6)  # log(1/3)
    -1.098612
    """
    from scipy.optimize import brentq

    z = np.asarray(z, dtype=np.float64)
    positives = float(np.count_nonzero(y))
    if positives == 0 or positives == z.size:
        raise UsageError(
            f"Platt scaling needs both classes (got {int(positives)} positive(s) among {z.size})"
        )
    span = float(np.max(np.abs(z))) + 50.0
    return float(brentq(lambda b: float(sigmoid(z + b).sum()) - positives, -span, span, xtol=1e-12))


def halves(y: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Row positions of the calibration and selection halves: alternating within each class,
    in row order (the dataset's (day, tenant, session) order), so both halves cover the same
    days and keep the class ratio.

    Examples
    --------
    >>> cal, sel = halves(np.array([False, True, False, True, False, False]))
    >>> cal.tolist(), sel.tolist()
    ([0, 1, 4], [2, 3, 5])
    """
    first: list[npt.NDArray[np.int64]] = []
    second: list[npt.NDArray[np.int64]] = []
    for cls in (False, True):
        rows = np.flatnonzero(y == cls).astype(np.int64)
        first.append(rows[0::2])
        second.append(rows[1::2])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


# -- the model ----------------------------------------------------------------------------------


@dataclass
class QualityModel:
    """A trained, calibrated session-quality model.

    Attributes
    ----------
    kind : ``logistic`` or ``gbdt``.
    pipeline : the scikit-learn ``Pipeline`` (preprocessing and classifier).
    calibrator : the :class:`Calibrator` applied to its probability of the positive class.
    numeric, categorical : the feature columns, in input order.
    categories : the one-hot categories of each categorical feature.
    params : the training parameters.
    """

    kind: Literal["logistic", "gbdt"]
    pipeline: Pipeline
    calibrator: Calibrator
    numeric: list[str]
    categorical: list[str]
    categories: dict[str, list[str]]
    params: dict[str, Any] = field(default_factory=dict)

    def margin(self, table: pa.Table) -> FloatArray:
        """The classifier's margin (log-odds of the positive class, before calibration)."""
        frame = model_frame(table, self.numeric, self.categorical)
        x = self.pipeline[:-1].transform(frame)
        clf = self.pipeline.steps[-1][1]
        if self.kind == "gbdt":
            return np.asarray(clf.predict(x, raw_score=True), dtype=np.float64)
        return np.asarray(clf.decision_function(x), dtype=np.float64)

    def raw_proba(self, table: pa.Table) -> FloatArray:
        """Uncalibrated probabilities of the positive class (the classifier's own)."""
        return sigmoid(self.margin(table))

    def predict_proba(self, table: pa.Table) -> FloatArray:
        """Calibrated probabilities of the positive class, one per row of ``table``."""
        return self.calibrator.apply(self.margin(table))


def build_pipeline(
    kind: Literal["logistic", "gbdt"],
    numeric: Sequence[str],
    categories: dict[str, list[str]],
    *,
    seed: int,
    n_estimators: int = 300,
    learning_rate: float = GBDT_LEARNING_RATE,
    num_leaves: int = GBDT_NUM_LEAVES,
    min_child_samples: int = 20,
    n_jobs: int = 1,
) -> Pipeline:
    """The unfitted preprocessing + classifier pipeline of one model kind."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = list(categories)
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        if kind == "logistic":
            num: Any = Pipeline(
                [
                    ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                    ("scale", StandardScaler()),
                ]
            )
        else:
            num = "passthrough"  # LightGBM routes NaN itself
        transformers.append(("num", num, list(numeric)))
    for name in categorical:
        # Explicit categories with handle_unknown="ignore": any other value is all zeros.
        cats = categories[name] or [MISSING]
        transformers.append(
            (f"cat_{name}", OneHotEncoder(categories=[cats], handle_unknown="ignore"), [name])
        )
    # LightGBM bins a dense float matrix several times faster than a sparse one; the one-hot
    # columns are few (at most max_categories per feature), so dense fits in memory.
    pre = ColumnTransformer(transformers, sparse_threshold=0.0 if kind == "gbdt" else 0.3)
    clf: Any
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(class_weight="balanced", C=1.0, max_iter=2000, random_state=seed)
    else:
        from lightgbm import LGBMClassifier

        clf = LGBMClassifier(
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_child_samples=min_child_samples,
            reg_lambda=GBDT_REG_LAMBDA,
            class_weight=GBDT_CLASS_WEIGHT,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=seed,
            deterministic=True,
            force_row_wise=True,
            # One thread: on a shared 2-core machine, LightGBM's OpenMP threads spin against
            # each other (100k rows, 100 trees: 7 s on one thread, 63 s on two).
            n_jobs=n_jobs,
            verbose=-1,
        )
    return Pipeline([("pre", pre), ("clf", clf)])


def gbdt_min_child_samples(train_rows: int) -> int:
    """Rows a LightGBM leaf needs: 1 % of the training rows, between 20 and 400.

    Examples
    --------
    >>> gbdt_min_child_samples(1_000), gbdt_min_child_samples(33_486), gbdt_min_child_samples(10**6)
    (20, 334, 400)
    """
    return int(min(400, max(20, train_rows // 100)))


@dataclass(frozen=True)
class Candidate:
    """One fitted model kind and how it did on the validation halves."""

    model: QualityModel
    valid_pr_auc: float | None
    valid_log_loss: dict[str, float]


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_quality` returns.

    Attributes
    ----------
    model : the chosen :class:`QualityModel`.
    candidates : every kind fitted, by kind, with its selection-half figures.
    split : the train, validation and test parts used.
    leakage : the leakage probe's report.
    """

    model: QualityModel
    candidates: dict[str, Candidate]
    split: Split
    leakage: LeakageReport


def _check_kind(model: object) -> Literal["auto", "logistic", "gbdt"]:
    if model == "auto":
        return "auto"
    if model == "logistic":
        return "logistic"
    if model == "gbdt":
        return "gbdt"
    raise UsageError(f"model must be one of {', '.join(MODEL_KINDS)} (got {model!r})")


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be a whole number >= 1 (got {value!r})")
    return value


def _both_classes(y: npt.NDArray[np.bool_], part: str) -> None:
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        raise UsageError(
            f"the {part} part has {n_pos} positive(s) among {y.size} rows (expected both "
            "classes to train and calibrate); widen since/until, or use fewer validation days"
        )


def fit_candidate(
    kind: Literal["logistic", "gbdt"],
    split: Split,
    numeric: list[str],
    categorical: list[str],
    categories: dict[str, list[str]],
    *,
    seed: int,
    n_estimators: int,
    calibration: Calibration | None = None,
    progress: Callable[[str], None] | None = None,
) -> Candidate:
    """Fit one kind on train and calibrate it on the validation calibration half."""
    y_train = labels_of(split.train)
    y_valid = labels_of(split.valid)
    with stage(f"fit {kind}", progress, rows=split.train.num_rows):
        min_child = gbdt_min_child_samples(split.train.num_rows)
        pipeline = build_pipeline(
            kind,
            numeric,
            categories,
            seed=seed,
            n_estimators=n_estimators,
            min_child_samples=min_child,
        )
        pipeline.fit(model_frame(split.train, numeric, categorical), y_train)
    params: dict[str, Any] = {"kind": kind, "seed": seed, "class_weight": "balanced"}
    if kind == "gbdt":
        params.update(
            class_weight=GBDT_CLASS_WEIGHT or "none",
            n_estimators=n_estimators,
            learning_rate=GBDT_LEARNING_RATE,
            num_leaves=GBDT_NUM_LEAVES,
            min_child_samples=min_child,
            reg_lambda=GBDT_REG_LAMBDA,
        )
    else:
        params.update(C=1.0)
    model = QualityModel(
        kind, pipeline, Calibrator("platt"), numeric, categorical, categories, params
    )
    with stage(f"calibrate {kind}", progress, rows=split.valid.num_rows):
        q = model.margin(split.valid)
        cal_rows, sel_rows = halves(y_valid)
        _both_classes(y_valid[cal_rows], "validation calibration half")
        losses: dict[str, float] = {}
        fitted: dict[str, Calibrator] = {}
        methods: tuple[Calibration, ...] = (
            (calibration,)
            if calibration is not None
            else ("platt", "isotonic")
            if int(y_valid[cal_rows].sum()) >= ISOTONIC_MIN_POSITIVES
            else ("platt",)
        )
        for method in methods:
            cal = fit_calibrator(method, q[cal_rows], y_valid[cal_rows])
            fitted[method] = cal
            losses[method] = float(log_loss(y_valid[sel_rows], cal.apply(q[sel_rows])))
        best = min(losses, key=lambda m: (losses[m], m))
        model.calibrator = fitted[best]
        model.params["calibration"] = best
        p_sel = model.calibrator.apply(q[sel_rows])
        pr_auc = average_precision(y_valid[sel_rows], p_sel) if y_valid[sel_rows].any() else None
    return Candidate(model, None if pr_auc is None else float(pr_auc), losses)


def train_quality(
    table: pa.Table,
    *,
    model: ModelKind = "auto",
    valid_days: int = 7,
    test_days: int = 7,
    user_disjoint: bool = False,
    seed: int = 0,
    allow_leakage: bool = False,
    leakage_threshold: float = DEFAULT_THRESHOLD,
    max_categories: int = 30,
    min_category_count: int = 20,
    n_estimators: int = 300,
    calibration: Calibration | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train the calibrated session-quality model on a point-in-time dataset.

    See the module docstring for every stage and ``docs/models.md`` ("Training").

    Parameters
    ----------
    table : a dataset from ``ws.models.dataset`` (its feature lists are read from its
        metadata).
    model : ``logistic``, ``gbdt`` (LightGBM) or ``auto`` (both; the higher validation PR-AUC
        wins).
    valid_days, test_days, user_disjoint : the split, as in :func:`~assay.models.time_split`.
    seed : seeds the classifiers.
    allow_leakage : train even when the leakage probe flags a feature (the report is still
        returned); off by default.
    leakage_threshold : the probe's AUC threshold.
    max_categories, min_category_count : the one-hot frequency cap per categorical feature.
    n_estimators : boosting rounds of ``gbdt``.
    calibration : force ``platt`` or ``isotonic`` (default: the lower validation log loss).
    progress : called with each stage's name as it starts (the CLI prints them).

    Raises
    ------
    LeakageError
        When the probe flags a feature and ``allow_leakage`` is false.
    UsageError
        On bad options, or when a part lacks a class.
    """
    kind = _check_kind(model)
    _check_positive_int("max_categories", max_categories)
    _check_positive_int("min_category_count", min_category_count)
    _check_positive_int("n_estimators", n_estimators)
    if calibration not in (None, "platt", "isotonic"):
        raise UsageError(f"calibration must be platt or isotonic (got {calibration!r})")
    numeric, categorical = feature_columns(table)
    with stage("split", progress, rows=table.num_rows):
        split = time_split(
            table, valid_days=valid_days, test_days=test_days, user_disjoint=user_disjoint
        )
    _both_classes(labels_of(split.train), "train")
    _both_classes(labels_of(split.valid), "validation")
    with stage("leakage probe", progress, features=len(numeric) + len(categorical)):
        report = leakage_probe(
            split.train, split.valid, threshold=leakage_threshold, features=(numeric, categorical)
        )
    if not allow_leakage:
        report.raise_if_flagged()
    elif not report.ok:
        _log.warning(
            "training with flagged features (allow_leakage)",
            extra={"assay": {"flagged": report.flagged}},
        )
    categories = frequent_categories(
        split.train, categorical, min_count=min_category_count, max_categories=max_categories
    )
    kinds: tuple[Literal["logistic", "gbdt"], ...] = (
        ("logistic", "gbdt") if kind == "auto" else (kind,)
    )
    candidates: dict[str, Candidate] = {
        k: fit_candidate(
            k,
            split,
            numeric,
            categorical,
            categories,
            seed=seed,
            n_estimators=n_estimators,
            calibration=calibration,
            progress=progress,
        )
        for k in kinds
    }
    chosen = max(
        kinds,
        key=lambda k: (
            -np.inf if candidates[k].valid_pr_auc is None else candidates[k].valid_pr_auc,
            k == "logistic",  # ties: the simpler model
        ),
    )
    best = candidates[chosen].model
    best.params.update(
        model=kind,
        valid_days=valid_days,
        test_days=test_days,
        user_disjoint=user_disjoint,
        max_categories=max_categories,
        min_category_count=min_category_count,
        allow_leakage=allow_leakage,
        leakage_threshold=leakage_threshold,
    )
    return TrainResult(best, candidates, split, report)
