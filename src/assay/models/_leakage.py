"""The leakage guard: splits by time, and a probe that trains each feature alone.

A feature that predicts the label too well on its own (validation ROC AUC >= 0.95 by
default), or that is present for one class and absent for the other, is almost always a
feature written after the outcome: an attribute set by the escalation flow, a field back-filled
once the thumbs-down came in. The probe flags it and :class:`LeakageError` refuses to go on,
with a report, unless the caller overrides it on purpose.

- **Numeric feature**: its raw value, missing values ranked below every present value, scored
  by ROC AUC on the validation part in both directions (the larger of AUC and 1 - AUC): a
  monotone one-feature model needs no fitting.
- **Categorical feature**: a target encoding fit on the training part (each value's positive
  rate, shrunk towards the overall rate with weight 1; missing is a value of its own; a value
  unseen in training gets the overall rate), scored by ROC AUC on the validation part.
- **Present for one class**: the feature is non-null in some rows of one class and in no row
  of the other, and that absence is unlikely by chance (at the first class's presence rate
  the other class would expect at least 3 present rows, so the chance of none is <= e^-3).

ROC AUC comes from :func:`assay.evaluation.roc_auc`; nothing here defines a metric.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import AssayError, UsageError
from assay.evaluation import roc_auc
from assay.models._dataset import feature_columns

#: Validation AUC at or above which a feature alone is implausible.
DEFAULT_THRESHOLD = 0.95

#: The expected count, in the class where a feature never appears, that makes its absence
#: evidence (the chance of seeing none is at most e^-3, about 5%).
_MIN_EXPECTED_PRESENT = 3.0

_REPORT_SCHEMA = pa.schema(
    [
        pa.field("feature", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("auc", pa.float64()),
        pa.field("present_positive", pa.float64()),
        pa.field("present_negative", pa.float64()),
        pa.field("flagged", pa.bool_(), nullable=False),
        pa.field("reason", pa.string()),
    ]
)


class LeakageError(AssayError):
    """Training refused: a feature looks like it was written after the outcome.

    Attributes
    ----------
    report : the :class:`LeakageReport` with every feature's figures.
    """

    def __init__(self, report: LeakageReport) -> None:
        self.report = report
        super().__init__(report.message())


class Split(NamedTuple):
    """Train, validation and test parts of a dataset, earlier days before later ones."""

    train: pa.Table
    valid: pa.Table
    test: pa.Table


@dataclass(frozen=True)
class LeakageReport:
    """What :func:`leakage_probe` found, one row per feature.

    Attributes
    ----------
    table : ``feature, kind, auc, present_positive, present_negative, flagged, reason``
        (presence as shares of each class over train and validation; ``auc`` null when the
        validation part lacks a class or the feature is never present).
    threshold : the AUC threshold used.
    """

    table: pa.Table
    threshold: float

    @property
    def flagged(self) -> list[str]:
        """The flagged features, in report order."""
        mask = self.table.column("flagged")
        return [str(f) for f in self.table.filter(mask).column("feature").to_pylist()]

    @property
    def ok(self) -> bool:
        """True when no feature is flagged."""
        return not self.flagged

    def message(self) -> str:
        """A readable account of the flagged features and how to go on."""
        rows = [r for r in self.table.to_pylist() if r["flagged"]]
        if not rows:
            return "leakage probe: no feature flagged"
        lines = [
            f"leakage probe: {len(rows)} feature(s) look written after the outcome "
            f"(expected every feature alone to reach validation AUC < {self.threshold:g} and "
            "to be present for both classes):"
        ]
        for r in rows:
            auc = "n/a" if r["auc"] is None else f"{r['auc']:.3f}"
            lines.append(
                f"  - {r['feature']} ({r['kind']}): AUC {auc}, present in "
                f"{_share(r['present_positive'])} of positives and "
                f"{_share(r['present_negative'])} of negatives; {r['reason']}"
            )
        lines.append(
            "Fix: drop these features (for attr_<key>, leave the key out of attributes=), or "
            "check how they are logged; to train anyway, pass the explicit override "
            "(allow_leakage=True)."
        )
        return "\n".join(lines)

    def raise_if_flagged(self) -> None:
        """Raise :class:`LeakageError` when a feature is flagged."""
        if not self.ok:
            raise LeakageError(self)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


# -- time split --------------------------------------------------------------------------------


def _check_days(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(
            f"{name} must be a whole number of days >= {minimum} (got {value!r}); e.g. {name}=7"
        )
    return value


def _days_of(table: pa.Table) -> list[dt.date]:
    if "day" not in table.column_names:
        raise UsageError(
            "the table has no 'day' column (expected a table from ws.models.dataset); "
            "build it with ws.models.dataset(...)"
        )
    return sorted({d for d in table.column("day").to_pylist() if d is not None})


def time_split(
    table: pa.Table,
    *,
    valid_days: int = 7,
    test_days: int = 7,
    user_disjoint: bool = False,
) -> Split:
    """Split a dataset by day: train on earlier days, validate and test on later ones.

    With ``last`` the dataset's last ``day``: test holds the ``test_days`` calendar days
    ending on ``last``, validation the ``valid_days`` days before those, train everything
    earlier. A training row whose label window (``assay.label_window_days`` in the metadata)
    ends after the validation part begins is dropped: its label reads days the validation
    part covers, which a model trained on that day could not have known. (Validation rows
    are kept whole: a window longer than the validation part would otherwise empty it.) With
    ``user_disjoint``, rows of users (``tenant_id``, ``user_id``) that appear in the
    validation or test part are removed from train.

    Parameters
    ----------
    table : a dataset from ``ws.models.dataset``.
    valid_days : calendar days of validation, >= 1.
    test_days : calendar days of test, >= 0 (0: no test part, an empty table).
    user_disjoint : also keep validation and test users out of train.

    Raises
    ------
    UsageError
        When train or validation (or test, when ``test_days`` > 0) comes out empty: the
        message lists the days the dataset has and how to change the split.

    Examples
    --------
    >>> import datetime as dt, pyarrow as pa
    >>> days = [dt.date(2026, 1, d) for d in range(1, 11)]
    >>> t = pa.table({"day": days, "tenant_id": ["t"] * 10, "user_id": list("abcdefghij")})
    >>> parts = time_split(t, valid_days=2, test_days=2)
    >>> [p.num_rows for p in parts]
    [6, 2, 2]
    """
    v = _check_days("valid_days", valid_days, 1)
    k = _check_days("test_days", test_days, 0)
    days = _days_of(table)
    if not days:
        raise UsageError(
            "the dataset has no rows to split (expected sessions on at least "
            f"{v + k + 1} days); widen since/until or wait until label windows close"
        )
    last = days[-1]
    test_start = last - dt.timedelta(days=k - 1) if k else last + dt.timedelta(days=1)
    valid_start = test_start - dt.timedelta(days=v)
    day = table.column("day")
    window = _label_window(table)

    test = table.filter(pc.greater_equal(day, pa.scalar(test_start, pa.date32())))
    valid = table.filter(
        pc.and_(
            pc.greater_equal(day, pa.scalar(valid_start, pa.date32())),
            pc.less(day, pa.scalar(test_start, pa.date32())),
        )
    )
    train = table.filter(pc.less(day, pa.scalar(valid_start, pa.date32())))
    train = _purge(train, valid_start, window)
    if user_disjoint:
        held = _users(valid) | _users(test)
        keep = [u not in held for u in _user_keys(train)]
        train = train.filter(pa.array(keep, pa.bool_()))

    empty = [
        name
        for name, part in (("train", train), ("valid", valid), ("test", test))
        if part.num_rows == 0 and not (name == "test" and k == 0)
    ]
    if empty:
        shown = _day_range(days)
        raise UsageError(
            f"time_split left {' and '.join(empty)} empty (expected rows in each part; the "
            f"dataset has {len(days)} day(s) with sessions: {shown}; valid_days={v}, "
            f"test_days={k}{', user_disjoint' if user_disjoint else ''}); use fewer "
            "valid/test days, a longer since/until range, or drop user_disjoint"
        )
    return Split(train, valid, test)


def _label_window(table: pa.Table) -> int:
    meta = table.schema.metadata or {}
    raw = meta.get(b"assay.label_window_days")
    return int(raw) if raw is not None else 0


def _purge(part: pa.Table, boundary: dt.date, window_days: int) -> pa.Table:
    """Drop rows whose label window (prediction time + window) ends after ``boundary``."""
    if window_days <= 0 or "prediction_time" not in part.column_names or part.num_rows == 0:
        return part
    limit = dt.datetime.combine(boundary, dt.time(), dt.UTC) - dt.timedelta(days=window_days)
    pt = part.column("prediction_time")
    return part.filter(pc.less_equal(pt, pa.scalar(limit, pt.type)))


def _user_keys(table: pa.Table) -> list[tuple[object, object]]:
    return list(
        zip(
            table.column("tenant_id").to_pylist(),
            table.column("user_id").to_pylist(),
            strict=True,
        )
    )


def _users(table: pa.Table) -> set[tuple[object, object]]:
    return set(_user_keys(table))


def _day_range(days: list[dt.date]) -> str:
    if len(days) <= 6:
        return ", ".join(d.isoformat() for d in days)
    head = ", ".join(d.isoformat() for d in days[:3])
    return f"{head}, ..., {days[-1].isoformat()}"


# -- the probe ---------------------------------------------------------------------------------


def _labels(table: pa.Table, name: str) -> np.ndarray:
    if "label" not in table.column_names:
        raise UsageError(
            f"the {name} table has no 'label' column (expected a table from ws.models.dataset)"
        )
    y = table.column("label")
    if y.null_count:
        raise UsageError(f"the {name} table's label has {y.null_count} null(s); expected bool")
    return np.asarray(y.to_numpy(zero_copy_only=False), dtype=bool)


def _numeric(table: pa.Table, name: str) -> np.ndarray:
    """The column as float64 with NaN for missing (null or NaN)."""
    column = table.column(name).cast(pa.float64())
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _strings(table: pa.Table, name: str) -> list[str | None]:
    return [None if v is None else str(v) for v in table.column(name).to_pylist()]


def _numeric_auc(train: pa.Table, valid: pa.Table, name: str, y: np.ndarray) -> float | None:
    x = _numeric(valid, name)
    present = ~np.isnan(x)
    if not present.any():
        return None
    floor = float(np.nanmin(np.concatenate([x, _numeric(train, name)])))
    score = np.where(present, x, floor - 1.0)
    auc = roc_auc(y, score)
    return None if auc is None else max(auc, 1.0 - auc)


def _categorical_auc(
    train: pa.Table, valid: pa.Table, name: str, y_train: np.ndarray, y_valid: np.ndarray
) -> float | None:
    prior = float(y_train.mean()) if len(y_train) else 0.0
    sums: dict[str | None, list[float]] = {}
    for value, label in zip(_strings(train, name), y_train, strict=True):
        acc = sums.setdefault(value, [0.0, 0.0])
        acc[0] += float(label)
        acc[1] += 1.0
    # One pseudo-row at the prior keeps a value seen once from scoring 0 or 1.
    encoding = {value: (pos + prior) / (n + 1.0) for value, (pos, n) in sums.items()}
    score = np.array([encoding.get(v, prior) for v in _strings(valid, name)], dtype=np.float64)
    return roc_auc(y_valid, score)


def _presence(table: pa.Table, name: str, numeric: bool) -> np.ndarray:
    if numeric:
        return np.asarray(~np.isnan(_numeric(table, name)), dtype=bool)
    return np.asarray(table.column(name).is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def leakage_probe(
    train: pa.Table,
    valid: pa.Table,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    features: tuple[list[str], list[str]] | None = None,
) -> LeakageReport:
    """Train each feature alone and flag the ones that look written after the outcome.

    See the module docstring for the exact rules. A feature is flagged when its validation
    AUC is at or above ``threshold``, or when it is present for only one class.

    Parameters
    ----------
    train, valid : parts of a dataset (e.g. from :func:`time_split`), with ``label``.
    threshold : the AUC at or above which a feature alone is implausible; in (0.5, 1].
    features : (numeric, categorical) column names; default read from the metadata
        (:func:`~assay.models.feature_columns`).

    Returns
    -------
    LeakageReport
        Call ``report.raise_if_flagged()`` to refuse training with :class:`LeakageError`.

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"x": [0.1, 0.2, 0.3, 0.9, 0.8, 0.4], "label": [0, 0, 0, 1, 1, 1]})
    >>> t = t.set_column(1, "label", t.column("label").cast(pa.bool_()))
    >>> report = leakage_probe(t, t, features=(["x"], []))
    >>> report.flagged, report.table.column("auc").to_pylist()
    (['x'], [1.0])
    """
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0.5 < float(threshold) <= 1.0
    ):
        raise UsageError(
            f"threshold must be a number in (0.5, 1] (got {threshold!r}); the default is "
            f"{DEFAULT_THRESHOLD}"
        )
    numeric, categorical = features if features is not None else feature_columns(train)
    y_train = _labels(train, "train")
    y_valid = _labels(valid, "valid")
    y_all = np.concatenate([y_train, y_valid])
    n_pos, n_neg = int(y_all.sum()), int((~y_all).sum())
    rows = []
    for kind, names in (("numeric", numeric), ("categorical", categorical)):
        for name in names:
            for part, part_name in ((train, "train"), (valid, "valid")):
                if name not in part.column_names:
                    raise UsageError(
                        f"feature {name!r} is not a column of the {part_name} table "
                        "(expected the dataset's feature columns); pass features= to match"
                    )
            is_numeric = kind == "numeric"
            if is_numeric:
                auc = _numeric_auc(train, valid, name, y_valid)
            else:
                auc = _categorical_auc(train, valid, name, y_train, y_valid)
            present = np.concatenate(
                [_presence(train, name, is_numeric), _presence(valid, name, is_numeric)]
            )
            pos_rate = float(present[y_all].mean()) if n_pos else None
            neg_rate = float(present[~y_all].mean()) if n_neg else None
            reasons = []
            if auc is not None and auc >= threshold:
                reasons.append(f"alone it reaches validation AUC {auc:.3f} >= {threshold:g}")
            one_sided = _one_sided(pos_rate, neg_rate, n_pos, n_neg)
            if one_sided:
                reasons.append(one_sided)
            rows.append(
                {
                    "feature": name,
                    "kind": kind,
                    "auc": None if auc is None or math.isnan(auc) else float(auc),
                    "present_positive": pos_rate,
                    "present_negative": neg_rate,
                    "flagged": bool(reasons),
                    "reason": "; ".join(reasons) if reasons else None,
                }
            )
    table = pa.Table.from_pylist(rows, schema=_REPORT_SCHEMA)
    meta = {b"assay.threshold": json.dumps(float(threshold)).encode()}
    return LeakageReport(table.replace_schema_metadata(meta), float(threshold))


def _one_sided(pos: float | None, neg: float | None, n_pos: int, n_neg: int) -> str | None:
    if pos is None or neg is None:
        return None
    if pos > 0 and neg == 0 and n_neg * pos >= _MIN_EXPECTED_PRESENT:
        return "present only for positives"
    if neg > 0 and pos == 0 and n_pos * neg >= _MIN_EXPECTED_PRESENT:
        return "present only for negatives"
    return None


__all__ = [
    "DEFAULT_THRESHOLD",
    "LeakageError",
    "LeakageReport",
    "Split",
    "leakage_probe",
    "time_split",
]
