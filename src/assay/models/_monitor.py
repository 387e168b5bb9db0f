"""Monitoring the deployed model without labels: confidence-based performance estimation (CBPE),
realised metrics where labels exist, score and feature drift against the training window.

**CBPE** (as NannyML describes it): a calibrated score ``p_i`` is the probability that session
``i`` is positive, so the labels of unlabelled sessions are modelled as independent Bernoulli
draws ``y_i ~ B(p_i)`` and a metric is estimated by its expectation under that model. With
``P = sum p_i`` (expected positives) and ``N = sum (1 - p_i)`` (expected negatives):

- **precision at the operating point** ``t``: ``E[TP] / alerts = sum_{p_i >= t} p_i / #{p_i >= t}``
  (exact: the alert count does not depend on the labels);
- **ROC-AUC**: the expected count of correctly ordered (positive, negative) pairs over the
  expected count of pairs, each over distinct sessions ``i != j``::

      sum_{i != j} p_i (1 - p_j) ([s_i > s_j] + [s_i = s_j] / 2)  /  (P N - sum p_i (1 - p_i))

  computed as the weighted ROC-AUC of every session entered twice, as a positive of weight
  ``p_i`` and a negative of weight ``1 - p_i`` (:func:`assay.evaluation.roc_auc`), with the
  pairs of a session with itself taken back out;
- **PR-AUC** (average precision, precision summed over the recall steps): with sessions in
  descending score order and ``G`` a group of tied scores ending at rank ``K``,
  ``E[sum_{i in G} y_i * TP_K] = P_G (1 + S_K) - Q_G`` where ``S_K`` is the sum of ``p`` over
  the first ``K`` sessions, ``P_G`` and ``Q_G`` the sums of ``p`` and ``p**2`` over ``G``; the
  estimate is ``sum_G (P_G (1 + S_K) - Q_G) / K / P``.

The AUC and PR-AUC estimates are ratios of expectations (CBPE's choice); their bias is of the
order of ``1 / P`` and far below their sampling error. They are right exactly when the scores
are calibrated on the sessions monitored; a shift that breaks calibration (concept drift) is
invisible without labels, which is why realised values are reported wherever labels exist.

:func:`monitor` (``assay models monitor quality``) scores the recent sessions with the
champion's ONNX export, estimates its metrics overall and per day, compares them with the
realised ones on the sessions whose label window has closed, reports score and feature drift
against the champion's training days with :mod:`assay.drift`, and opens a ``model`` incident
when the estimated ROC-AUC falls more than ``max_auc_drop`` below the champion's test ROC-AUC
or the estimated PR-AUC below ``(1 - max_ap_drop)`` times its test PR-AUC.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import UsageError
from assay.drift import categorical_stats, column_verdict, numeric_stats
from assay.evaluation import average_precision, roc_auc
from assay.models._dataset import LABELS
from assay.models._onnx import input_names, onnx_scores, session
from assay.models._registry import TAG_PREFIX
from assay.store._incidents import IncidentStore, NewIncident

if TYPE_CHECKING:
    from assay._api import Workspace

FloatArray = npt.NDArray[np.float64]

#: The ``job_runs`` kind of a monitoring run.
JOB_KIND = "models.monitor"
#: An estimated ROC-AUC this far below the champion's test ROC-AUC opens an incident.
DEFAULT_MAX_AUC_DROP = 0.05
#: An estimated PR-AUC below (1 - this) times the champion's test PR-AUC opens an incident.
DEFAULT_MAX_AP_DROP = 0.3
#: Days monitored by default (ending on the last stored day).
DEFAULT_SINCE_DAYS = 7


def _scores(p: object) -> FloatArray:
    arr = np.asarray(p, dtype=np.float64).ravel()
    if arr.size and not (np.all(np.isfinite(arr)) and arr.min() >= 0.0 and arr.max() <= 1.0):
        raise UsageError(
            "calibrated scores must be probabilities in [0, 1] (got values outside it or NaN); "
            "pass the model's calibrated scores"
        )
    return arr


def expected_precision(p: object, threshold: float) -> float | None:
    """CBPE precision at ``threshold``: the mean score of the sessions alerted (None when none
    is).

    >>> expected_precision([0.9, 0.5, 0.1], 0.5)
    0.7
    """
    arr = _scores(p)
    alerted = arr[arr >= threshold]
    return float(alerted.mean()) if alerted.size else None


def expected_roc_auc(p: object, scores: object | None = None) -> float | None:
    """CBPE ROC-AUC of sessions ranked by ``scores`` (default: ``p`` itself) whose labels are
    independent Bernoulli(``p``) draws (see the module docstring). None with fewer than two
    sessions or no expected positive or negative.

    Two sessions of 0.8 and 0.2: the pairs (1 positive, 2 negative) weigh 0.8 * 0.8 = 0.64 and
    are ordered, (2 positive, 1 negative) weigh 0.04 and are not: 0.64 / 0.68.

    >>> round(expected_roc_auc([0.8, 0.2]), 6) == round(0.64 / 0.68, 6)
    True
    """
    arr = _scores(p)
    s = arr if scores is None else np.asarray(scores, dtype=np.float64).ravel()
    expected_pos, expected_neg = float(arr.sum()), float((1 - arr).sum())
    self_pairs = float(np.sum(arr * (1 - arr)))
    total_pairs = expected_pos * expected_neg - self_pairs
    if arr.size < 2 or total_pairs <= 0:
        return None
    y = np.concatenate([np.ones(arr.size, bool), np.zeros(arr.size, bool)])
    auc = roc_auc(y, np.concatenate([s, s]), sample_weight=np.concatenate([arr, 1 - arr]))
    if auc is None:
        return None
    # The weighted AUC's numerator holds each session paired with itself, a tie (1/2).
    concordant = float(auc) * expected_pos * expected_neg - 0.5 * self_pairs
    return concordant / total_pairs


def expected_average_precision(p: object, scores: object | None = None) -> float | None:
    """CBPE PR-AUC (average precision) of sessions ranked by ``scores`` (default ``p``) whose
    labels are independent Bernoulli(``p``) draws (see the module docstring).

    One session of 0.5: AP is 1 when it is positive, undefined otherwise; the ratio of
    expectations is E[y * TP] / E[y] = 0.5 / 0.5.

    >>> expected_average_precision([0.5])
    1.0
    """
    arr = _scores(p)
    s = arr if scores is None else np.asarray(scores, dtype=np.float64).ravel()
    total = float(arr.sum())
    if total <= 0:
        return None
    order = np.argsort(-s, kind="stable")
    ps, ss = arr[order], s[order]
    ends = np.flatnonzero(np.r_[ss[1:] != ss[:-1], True])  # last rank of each tie group
    starts = np.r_[0, ends[:-1] + 1]
    cum = np.cumsum(ps)
    p_g = np.add.reduceat(ps, starts)
    q_g = np.add.reduceat(ps * ps, starts)
    k = ends + 1.0
    return float(np.sum((p_g * (1.0 + cum[ends]) - q_g) / k) / total)


def estimate(p: object, threshold: float | None) -> dict[str, Any]:
    """Every CBPE figure of scores ``p``: rows, expected positives, ROC-AUC, PR-AUC, and the
    alert rate and precision at ``threshold``."""
    arr = _scores(p)
    alerted = None if threshold is None else int(np.sum(arr >= threshold))
    return {
        "rows": int(arr.size),
        "expected_positives": float(arr.sum()),
        "roc_auc": expected_roc_auc(arr),
        "average_precision": expected_average_precision(arr),
        "alert_rate": None if alerted is None or not arr.size else alerted / arr.size,
        "precision": None if threshold is None else expected_precision(arr, threshold),
    }


def realised(y: npt.NDArray[np.bool_], p: FloatArray, threshold: float | None) -> dict[str, Any]:
    """The same figures from labels (:mod:`assay.evaluation`)."""
    both = bool(y.any()) and not bool(y.all())
    alerts = None if threshold is None else p >= threshold
    return {
        "rows": int(y.size),
        "positives": int(y.sum()),
        "roc_auc": roc_auc(y, p) if both else None,
        "average_precision": average_precision(y, p) if y.any() else None,
        "alert_rate": None if alerts is None or not y.size else float(alerts.mean()),
        "precision": None
        if alerts is None or not alerts.any()
        else float((alerts & y).sum() / alerts.sum()),
    }


@dataclass(frozen=True)
class MonitorReport:
    """What :func:`monitor` found.

    Attributes
    ----------
    model : the version monitored (``NAME/VERSION``).
    days : first and last day monitored.
    reference : the champion's test figures (ROC-AUC, PR-AUC, precision at its threshold)
        and its training days.
    estimated : CBPE figures over every session monitored.
    labelled : on the sessions whose label window has closed: CBPE and realised figures.
    per_day : CBPE figures per day.
    score_drift : drift statistics of the scores against the training days, with a verdict.
    feature_drift : per feature, its statistics' headline and verdict.
    alerts : the drops that opened incidents (metric, reference, estimate).
    incidents : their ids.
    run_id : the ``job_runs`` id of the run.
    """

    model: str
    days: tuple[str | None, str | None]
    reference: dict[str, Any]
    estimated: dict[str, Any]
    labelled: dict[str, Any]
    per_day: list[dict[str, Any]]
    score_drift: dict[str, Any]
    feature_drift: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    incidents: list[int]
    run_id: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "days": list(self.days),
            "reference": self.reference,
            "estimated": self.estimated,
            "labelled": self.labelled,
            "per_day": self.per_day,
            "score_drift": self.score_drift,
            "feature_drift": self.feature_drift,
            "alerts": self.alerts,
            "incidents": self.incidents,
            "run_id": self.run_id,
        }


def drops(
    reference: dict[str, Any],
    estimated: dict[str, Any],
    *,
    max_auc_drop: float = DEFAULT_MAX_AUC_DROP,
    max_ap_drop: float = DEFAULT_MAX_AP_DROP,
) -> list[dict[str, Any]]:
    """The sharp estimated drops: ROC-AUC more than ``max_auc_drop`` below the reference, PR-AUC
    below ``(1 - max_ap_drop)`` times it.

    >>> drops({"roc_auc": 0.8, "average_precision": 0.3}, {"roc_auc": 0.7,
    ...        "average_precision": 0.25})
    [{'metric': 'roc_auc', 'reference': 0.8, 'estimate': 0.7, 'bound': 0.75}]
    """
    out = []
    ref_auc, est_auc = reference.get("roc_auc"), estimated.get("roc_auc")
    if ref_auc is not None and est_auc is not None and est_auc < ref_auc - max_auc_drop:
        bound = round(ref_auc - max_auc_drop, 12)
        out.append({"metric": "roc_auc", "reference": ref_auc, "estimate": est_auc, "bound": bound})
    ref_ap, est_ap = reference.get("average_precision"), estimated.get("average_precision")
    if ref_ap is not None and est_ap is not None and est_ap < (1 - max_ap_drop) * ref_ap:
        bound = round((1 - max_ap_drop) * ref_ap, 12)
        out.append(
            {"metric": "average_precision", "reference": ref_ap, "estimate": est_ap, "bound": bound}
        )
    return out


def _numeric(table: pa.Table, name: str) -> FloatArray:
    col = table.column(name).cast(pa.float64())
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _counts(table: pa.Table, name: str) -> tuple[dict[str, int], int]:
    col = table.column(name).cast(pa.string())
    counts = {
        str(c["values"]): int(c["counts"]) for c in pc.value_counts(pc.drop_null(col)).to_pylist()
    }
    return counts, int(col.null_count)


def feature_drift(
    reference: pa.Table, current: pa.Table, numeric: Sequence[str], categorical: Sequence[str]
) -> list[dict[str, Any]]:
    """Per feature: its drift statistics (:func:`assay.drift.numeric_stats` or
    :func:`~assay.drift.categorical_stats`) and :func:`~assay.drift.column_verdict`; drifted
    features first."""
    out: list[dict[str, Any]] = []
    for name in numeric:
        ref, cur = _numeric(reference, name), _numeric(current, name)
        if np.isnan(ref).all() or np.isnan(cur).all():
            continue
        stats = numeric_stats(ref, cur)
        out.append(
            {
                "feature": name,
                "kind": "numeric",
                "drift": column_verdict(stats, "numeric"),
                "distance": stats["wasserstein_normed"],
                "psi": stats["psi"],
                "p_value": stats["ks_p_value"],
            }
        )
    for name in categorical:
        (rc, rm), (cc, cm) = _counts(reference, name), _counts(current, name)
        if not rc or not cc:
            continue
        stats = categorical_stats(rc, cc, ref_missing=rm, cur_missing=cm)
        out.append(
            {
                "feature": name,
                "kind": "categorical",
                "drift": column_verdict(stats, "categorical"),
                "distance": stats["js_distance"],
                "psi": stats["psi"],
                "p_value": stats["chi_square_p_value"],
            }
        )
    out.sort(key=lambda r: (not r["drift"], -r["distance"], r["feature"]))
    return out


def _day(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def monitor(
    ws: Workspace,
    ref: str = "quality",
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    max_auc_drop: float = DEFAULT_MAX_AUC_DROP,
    max_ap_drop: float = DEFAULT_MAX_AP_DROP,
    record: bool = True,
) -> MonitorReport:
    """Monitor a registered model (``ref``: ``NAME`` is its champion) on the sessions of
    [since, until] (default: the last 7 stored days). See the module docstring."""
    from assay.models._lifecycle import registry, scoring_rows

    reg = registry(ws)
    found, raw = reg.load_onnx(ref)
    info = reg.show(f"{found.name}/{found.version}")
    tags, metrics = info["tags"], info["metrics"]
    label = tags.get(TAG_PREFIX + "label", LABELS[0])
    window = json.loads(tags.get(TAG_PREFIX + "window", "{}"))
    threshold = metrics.get("test_op_threshold")
    sess = session(raw)
    numeric, categorical = input_names(sess)
    attributes = [c[len("attr_") :] for c in categorical if c.startswith("attr_")]
    end = until if until is not None else ws.last_event_day()
    if end is None:
        raise UsageError("the workspace has no events; ingest some before monitoring")
    start = since if since is not None else end - dt.timedelta(days=DEFAULT_SINCE_DAYS - 1)
    run_id = ws.meta.start_job(JOB_KIND) if record else 0
    try:
        current = scoring_rows(ws, since=start, until=end, attributes=attributes)
        p = onnx_scores(sess, current) if current.num_rows else np.empty(0)
        days = current.column("day").to_pylist()
        per_day = []
        for day in sorted(set(days)):
            mask = np.array([d == day for d in days])
            per_day.append({"day": day.isoformat(), **estimate(p[mask], threshold)})

        labelled: dict[str, Any] = {"rows": 0}
        table = ws.models.dataset(label, since=start, until=end, attributes=attributes)
        if table.num_rows:
            index = {
                key: i
                for i, key in enumerate(
                    zip(
                        current.column("tenant_id").to_pylist(),
                        current.column("session_id").to_pylist(),
                        strict=True,
                    )
                )
            }
            keys = zip(
                table.column("tenant_id").to_pylist(),
                table.column("session_id").to_pylist(),
                strict=True,
            )
            rows = np.array([index.get(k, -1) for k in keys])
            keep = rows >= 0
            y = np.asarray(table.column("label").to_pylist(), dtype=bool)[keep]
            pl = p[rows[keep]]
            labelled = {
                "estimated": estimate(pl, threshold),
                "realised": realised(y, pl, threshold),
            }

        reference = {
            "roc_auc": metrics.get("test_roc_auc"),
            "average_precision": metrics.get("test_average_precision"),
            "precision": metrics.get("test_op_precision"),
            "threshold": threshold,
            "train_days": window.get("train_days"),
        }
        score_drift: dict[str, Any] = {}
        drift_rows: list[dict[str, Any]] = []
        train_days = window.get("train_days") or [None, None]
        if train_days[0] is not None and current.num_rows:
            ref_rows = scoring_rows(
                ws, since=_day(train_days[0]), until=_day(train_days[1]), attributes=attributes
            )
            if ref_rows.num_rows:
                ref_p = onnx_scores(sess, ref_rows)
                stats = numeric_stats(ref_p, p)
                score_drift = {
                    "drift": column_verdict(stats, "numeric"),
                    "reference_mean": float(ref_p.mean()),
                    "current_mean": float(p.mean()),
                    **{
                        k: stats[k]
                        for k in ("psi", "wasserstein_normed", "ks_statistic", "ks_p_value")
                    },
                }
                present = set(ref_rows.column_names) & set(current.column_names)
                drift_rows = feature_drift(
                    ref_rows,
                    current,
                    [n for n in numeric if n in present],
                    [c for c in categorical if c in present],
                )

        est = estimate(p, threshold)
        alerts = drops(reference, est, max_auc_drop=max_auc_drop, max_ap_drop=max_ap_drop)
        ids: list[int] = []
        if record:
            store = IncidentStore(ws.meta)
            for a in alerts:
                inc, _ = store.record(
                    NewIncident(
                        kind="model",
                        key=f"model|{found.name}|monitor={a['metric']}",
                        tenant_id=None,
                        metric=f"estimated_{a['metric']}",
                        slice={},
                        start=start,
                        end=end,
                        direction="down",
                        severity="high" if a["estimate"] < a["bound"] - max_auc_drop else "medium",
                        expected=a["reference"],
                        observed=a["estimate"],
                        score=None,
                        details={"model": str(found), "run_id": run_id, **a},
                    )
                )
                if inc is not None:
                    ids.append(inc.id)
        report = MonitorReport(
            model=str(found),
            days=(start.isoformat(), end.isoformat()),
            reference=reference,
            estimated=est,
            labelled=labelled,
            per_day=per_day,
            score_drift=score_drift,
            feature_drift=drift_rows,
            alerts=alerts,
            incidents=ids,
            run_id=run_id,
        )
    except Exception as exc:
        if record:
            failure = {"name": found.name, "champion": str(found), "error": type(exc).__name__}
            ws.meta.finish_job(run_id, "failed", failure)
        raise
    if record:
        summary = {
            "name": found.name,
            "champion": str(found),
            "days": list(report.days),
            "estimated": est,
            "alerts": alerts,
            "incidents": ids,
            "score_drift": score_drift.get("drift"),
            "features_drifted": [r["feature"] for r in drift_rows if r["drift"]],
        }
        ws.meta.finish_job(run_id, "alert" if alerts else "ok", summary)
    return report
