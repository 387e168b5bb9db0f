"""Evaluating a trained model on held-out days with :mod:`assay.evaluation` (no metric code here).

:func:`evaluate_model` reports, on the test part (days the model never saw):

- ROC-AUC, PR-AUC (average precision), Brier score and expected calibration error (10
  equal-width bins), each with its percentile bootstrap interval
  (:func:`assay.evaluation.bootstrap_ci`, stratified by class);
- precision at a fixed recall and recall at a fixed precision, with bootstrap intervals;
- an **operating point** that caps the alert rate: the threshold is chosen on the
  *validation* part as the lowest score whose share of validation rows at or above it is at
  most ``max_alert_rate``; on test it reports the alert rate, precision and recall at that
  threshold, each with its Wilson interval (:func:`assay.evaluation.wilson_interval`);
- a slice report (:func:`assay.evaluation.slice_report`) by tenant, locale, platform,
  model_version and prompt_template, flagging slices significantly worse than overall;
- permutation feature importance on (a sample of) the validation part: scikit-learn's
  ``permutation_importance`` of the pipeline, scored by the drop in average precision.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from assay.evaluation import (
    SliceReport,
    average_precision,
    bootstrap_ci,
    brier_score,
    expected_calibration_error,
    precision_at_recall,
    recall_at_precision,
    roc_auc,
    slice_report,
    wilson_interval,
)
from assay.models._train import QualityModel, labels_of, model_frame

#: The slice features of the report, when the table has them.
SLICE_FEATURES: tuple[str, ...] = (
    "tenant_id",
    "locale",
    "platform",
    "model_version",
    "prompt_template",
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ModelEvaluation:
    """A model's evaluation on held-out rows.

    Attributes
    ----------
    metrics : name -> ``{"estimate", "ci_low", "ci_high"}`` (None where undefined).
    operating_point : the threshold chosen on validation and, on test, ``alert_rate``,
        ``precision`` and ``recall`` with their Wilson intervals.
    slices : the :class:`~assay.evaluation.SliceReport` of the test part.
    importance : ``{"feature", "importance", "std"}`` rows, most important first.
    settings : the evaluation's options and row counts.
    """

    metrics: dict[str, dict[str, float | None]]
    operating_point: dict[str, Any]
    slices: SliceReport = field(repr=False)
    importance: list[dict[str, Any]]
    settings: dict[str, Any]

    def flat_metrics(self, prefix: str = "test_") -> dict[str, float]:
        """The numbers as one flat mapping (for a registry): ``test_roc_auc``,
        ``test_roc_auc_ci_low``, ... ; undefined values are left out."""
        out: dict[str, float] = {}
        for name, values in self.metrics.items():
            for key, value in values.items():
                if value is not None and math.isfinite(value):
                    suffix = "" if key == "estimate" else f"_{key}"
                    out[f"{prefix}{name}{suffix}"] = float(value)
        op = self.operating_point
        for key in ("threshold", "alert_rate", "precision", "recall"):
            value = op.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                out[f"{prefix}op_{key}"] = float(value)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything but the plots, as plain JSON values."""
        return {
            "metrics": self.metrics,
            "operating_point": self.operating_point,
            "slices_flagged": _jsonable(self.slices.flagged().to_pylist()),
            "slices": _jsonable(self.slices.table.to_pylist()),
            "importance": self.importance,
            "settings": self.settings,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False)

    def to_html(self, *, title: str = "Model evaluation") -> str:
        """A self-contained HTML page: the model's figures, then the slice report's page."""
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td class=n>{_fmt(v['estimate'])}</td>"
            f"<td class=n>{_fmt(v['ci_low'])} to {_fmt(v['ci_high'])}</td></tr>"
            for name, v in self.metrics.items()
        )
        op = self.operating_point
        op_rows = "".join(
            f"<tr><td>{key}</td><td class=n>{_fmt(op.get(key))}</td>"
            f"<td class=n>{_fmt((op.get(key + '_ci') or [None, None])[0])} to "
            f"{_fmt((op.get(key + '_ci') or [None, None])[1])}</td></tr>"
            for key in ("alert_rate", "precision", "recall")
        )
        imp_rows = "".join(
            f"<tr><td>{html.escape(str(r['feature']))}</td><td class=n>{_fmt(r['importance'])}"
            f"</td><td class=n>{_fmt(r['std'])}</td></tr>"
            for r in self.importance
        )
        section = f"""<h2>Model</h2>
<p class="meta">Test part: {self.settings["test_rows"]} rows, {self.settings["test_positive"]}
positive. Intervals: {self.settings["n_boot"]} stratified bootstrap replicates, 95%.</p>
<table><thead><tr><th>metric</th><th>estimate</th><th>interval</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>Operating point</h2>
<p class="meta">Threshold {_fmt(op.get("threshold"))}, chosen on validation to keep the alert
rate at or under {_fmt(op.get("max_alert_rate"))}; Wilson intervals on test.</p>
<table><thead><tr><th>on test</th><th>value</th><th>interval</th></tr></thead>
<tbody>{op_rows}</tbody></table>
<h2>Permutation importance (validation, drop in average precision)</h2>
<table><thead><tr><th>feature</th><th>importance</th><th>sd</th></tr></thead>
<tbody>{imp_rows}</tbody></table>
"""
        page = self.slices.to_html(title=title)
        marker = "<h2>Overall</h2>"
        if marker in page:
            return page.replace(marker, section + "<h2>Slices: overall</h2>", 1)
        return page.replace("</body>", section + "</body>", 1)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        clean = {}
        for key, value in row.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            clean[key] = value
        out.append(clean)
    return out


def _interval(
    name: str, y: BoolArray, p: FloatArray, n_boot: int, seed: int, **kwargs: Any
) -> dict[str, float | None]:
    metric: Any = {
        "roc_auc": roc_auc,
        "average_precision": average_precision,
        "brier_score": brier_score,
        "ece": expected_calibration_error,
    }[name]
    estimate = metric(y, p, **kwargs)
    ci = bootstrap_ci(name, y, p, n_boot=n_boot, seed=seed, **kwargs) if n_boot else None
    return _triple(estimate, ci)


def _triple(estimate: Any, ci: Any) -> dict[str, float | None]:
    low, high = ci if isinstance(ci, tuple) else (None, None)
    return {
        "estimate": None if estimate is None else float(estimate),
        "ci_low": None if low is None else float(low),
        "ci_high": None if high is None else float(high),
    }


def alert_threshold(scores: FloatArray, max_alert_rate: float) -> float:
    """The lowest score ``t`` with ``mean(scores >= t) <= max_alert_rate`` (``inf`` when
    even the highest score alerts more often than that).

    Examples
    --------
    Ten scores, at most 20% alerted: 0.9 and 0.8 alert (2 of 10); 0.7 would make it 3.

    >>> alert_threshold(np.array([0.1] * 5 + [0.5, 0.6, 0.7, 0.8, 0.9]), 0.2)
    0.8
    """
    values, counts = np.unique(scores, return_counts=True)
    at_or_above = np.cumsum(counts[::-1])[::-1]  # rows with score >= values[i]
    ok = np.flatnonzero(at_or_above <= max_alert_rate * scores.size)
    return float(values[ok[0]]) if ok.size else math.inf


def operating_point(
    y_test: BoolArray, p_test: FloatArray, threshold: float, max_alert_rate: float
) -> dict[str, Any]:
    """Alert rate, precision and recall at ``threshold`` on test, with Wilson intervals."""
    alerts = p_test >= threshold
    n_alerts, n_pos, n = int(alerts.sum()), int(y_test.sum()), int(y_test.size)
    hits = int((alerts & y_test).sum())
    out: dict[str, Any] = {
        "threshold": threshold if math.isfinite(threshold) else None,
        "max_alert_rate": max_alert_rate,
        "alerts": n_alerts,
        "hits": hits,
    }
    for key, k, total in (
        ("alert_rate", n_alerts, n),
        ("precision", hits, n_alerts),
        ("recall", hits, n_pos),
    ):
        out[key] = k / total if total else None
        out[f"{key}_ci"] = list(wilson_interval(k, total)) if total else None
    return out


def permutation_importance_ap(
    model: QualityModel,
    table: pa.Table,
    *,
    max_rows: int = 20_000,
    n_repeats: int = 3,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Permutation importance of each feature: the mean drop in average precision of the
    raw probabilities when the feature's column is shuffled, on at most ``max_rows`` rows."""
    from sklearn.inspection import permutation_importance

    y = labels_of(table)
    if not y.any() or y.all():
        return []
    rows = np.arange(table.num_rows)
    if rows.size > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    sample = table.take(pa.array(rows))
    frame = model_frame(sample, model.numeric, model.categorical)
    ys = y[rows]
    if not ys.any():
        return []

    def score(estimator: Any, x: Any, y_true: Any) -> float:
        value = average_precision(y_true, estimator.predict_proba(x)[:, 1])
        return math.nan if value is None else float(value)

    result = permutation_importance(
        model.pipeline, frame, ys, scoring=score, n_repeats=n_repeats, random_state=seed
    )
    out = [
        {"feature": name, "importance": float(m), "std": float(s)}
        for name, m, s in zip(
            frame.columns, result.importances_mean, result.importances_std, strict=True
        )
    ]
    out.sort(key=lambda r: (-r["importance"], r["feature"]))
    return out


def evaluate_model(
    model: QualityModel,
    test: pa.Table,
    valid: pa.Table,
    *,
    target_recall: float = 0.5,
    target_precision: float = 0.5,
    max_alert_rate: float = 0.05,
    n_boot: int = 200,
    seed: int = 0,
    slice_features: Sequence[str] = SLICE_FEATURES,
    importance_rows: int = 20_000,
    scores: FloatArray | None = None,
) -> ModelEvaluation:
    """Evaluate ``model`` on ``test``; the operating point and importance use ``valid``.

    Parameters
    ----------
    model : a trained :class:`~assay.models._train.QualityModel`.
    test, valid : the test and validation parts of the split.
    target_recall, target_precision : the fixed recall (precision) of ``precision_at_recall``
        (``recall_at_precision``).
    max_alert_rate : the alert-rate cap of the operating point.
    n_boot : bootstrap replicates per interval (0: no intervals).
    seed : seeds the bootstrap and the permutations.
    slice_features : the columns to slice by (those present in ``test``).
    importance_rows : rows of ``valid`` used for permutation importance.
    scores : the model's scores of ``test`` when already computed (e.g. from its ONNX export).
    """
    y = labels_of(test)
    p = model.predict_proba(test) if scores is None else np.asarray(scores, dtype=np.float64)
    metrics: dict[str, dict[str, float | None]] = {}
    both = bool(y.any()) and not bool(y.all())
    metrics["roc_auc"] = _interval("roc_auc", y, p, n_boot, seed) if both else _triple(None, None)
    metrics["average_precision"] = (
        _interval("average_precision", y, p, n_boot, seed) if y.any() else _triple(None, None)
    )
    metrics["brier_score"] = _interval("brier_score", y, p, n_boot, seed)
    metrics["ece"] = _interval("ece", y, p, n_boot, seed, n_bins=10)
    for name, fn, value in (
        (f"precision_at_recall_{target_recall:g}", precision_at_recall, target_recall),
        (f"recall_at_precision_{target_precision:g}", recall_at_precision, target_precision),
    ):
        estimate = fn(y, p, value) if y.any() else None
        ci = None
        if estimate is not None and n_boot:

            def metric(
                yt: Any, ys: Any, sample_weight: Any = None, _fn: Any = fn, _v: float = value
            ) -> float:
                out = _fn(yt, ys, _v, sample_weight=sample_weight)
                return math.nan if out is None else float(out)

            ci = bootstrap_ci(metric, y, p, n_boot=n_boot, seed=seed)
        metrics[name] = _triple(estimate, ci)
    p_valid = model.predict_proba(valid)
    threshold = alert_threshold(p_valid, max_alert_rate)
    op = operating_point(y, p, threshold, max_alert_rate)
    slices = {
        name: test.column(name).to_pylist() for name in slice_features if name in test.column_names
    }
    report = slice_report(
        y,
        p,
        slices,
        metrics=("roc_auc", "average_precision", "brier_score"),
        pairs=False,
        n_boot=n_boot,
        seed=seed,
    )
    importance = permutation_importance_ap(model, valid, max_rows=importance_rows, seed=seed)
    settings = {
        "n_boot": n_boot,
        "seed": seed,
        "target_recall": target_recall,
        "target_precision": target_precision,
        "max_alert_rate": max_alert_rate,
        "test_rows": int(y.size),
        "test_positive": int(y.sum()),
        "valid_rows": int(valid.num_rows),
    }
    return ModelEvaluation(metrics, op, report, importance, settings)
