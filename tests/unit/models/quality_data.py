"""Hand-made datasets in the shape of ``ws.models.dataset`` for the training tests.

The label is drawn from a known logistic model of two numeric features and one categorical
one, so the true probability of every row is known (``true_probability``).
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa

from assay.models._dataset import CATEGORICAL_FEATURES, NUMERIC_FEATURES, dataset_schema

LOCALE_EFFECT = {"en-US": 0.0, "de-DE": 0.8, "fr-FR": -0.5, "ja-JP": 0.3, "xx-RARE": 2.0}


def quality_table(
    *,
    days: int = 30,
    rows_per_day: int = 200,
    seed: int = 0,
    intercept: float = -3.0,
    start: dt.date = dt.date(2026, 1, 1),
    u_shape: bool = False,
) -> pa.Table:
    """A dataset table: ``days`` days of ``rows_per_day`` sessions, label from a known model."""
    rng = np.random.default_rng(seed)
    n = days * rows_per_day
    schema = dataset_schema()
    cols: dict[str, object] = {
        "tenant_id": [f"t{i % 3}" for i in range(n)],
        "session_id": [f"s{i:07d}" for i in range(n)],
        "user_id": [f"u{i % 97}" for i in range(n)],
        "day": [start + dt.timedelta(days=i // rows_per_day) for i in range(n)],
        "prediction_time": [
            dt.datetime.combine(start + dt.timedelta(days=i // rows_per_day), dt.time(12), dt.UTC)
            for i in range(n)
        ],
    }
    for name in NUMERIC_FEATURES:
        values = rng.normal(size=n)
        values[rng.random(n) < 0.1] = np.nan
        cols[name] = values
    latency = rng.gamma(2.0, 500.0, size=n)
    errors = rng.poisson(0.3, size=n).astype(float)
    cols["latency_mean_ms"] = latency
    cols["n_errors"] = errors
    locales = rng.choice(list(LOCALE_EFFECT), size=n, p=[0.5, 0.2, 0.15, 0.145, 0.005])
    locale_values: list[str | None] = [str(v) for v in locales]
    for i in np.flatnonzero(rng.random(n) < 0.05):
        locale_values[i] = None
    for name in CATEGORICAL_FEATURES:
        cols[name] = [f"{name}-{v}" for v in rng.integers(0, 4, size=n)]
    cols["locale"] = locale_values
    effect = np.array([0.0 if v is None else LOCALE_EFFECT[v] for v in locale_values])
    logit = intercept + 0.0015 * (latency - 1000.0) + 0.9 * errors + effect
    if u_shape:
        # Unsatisfied at both ends of intent_confidence: no linear model can rank this.
        x = np.nan_to_num(cols["intent_confidence"])  # type: ignore[arg-type]
        logit = intercept + 4.0 * (np.abs(x) > 1.2)
    p = 1.0 / (1.0 + np.exp(-logit))
    cols["label"] = rng.random(n) < p
    table = pa.table({f.name: cols[f.name] for f in schema}, schema=schema)
    meta = {
        b"assay.label": b"thumbs_down",
        b"assay.label_window_days": b"1",
        b"assay.features.numeric": json.dumps(list(NUMERIC_FEATURES)).encode(),
        b"assay.features.categorical": json.dumps(list(CATEGORICAL_FEATURES)).encode(),
        b"assay.window": json.dumps(
            {"since": None, "until": None, "horizon": None, "label_window_days": 1}
        ).encode(),
    }
    return table.replace_schema_metadata(meta)


def true_probability(table: pa.Table, intercept: float = -3.0) -> np.ndarray:
    """The probability the label was drawn with (the same model as :func:`quality_table`)."""
    latency = table.column("latency_mean_ms").to_numpy()
    errors = table.column("n_errors").to_numpy()
    effect = np.array(
        [0.0 if v is None else LOCALE_EFFECT[v] for v in table.column("locale").to_pylist()]
    )
    logit = intercept + 0.0015 * (latency - 1000.0) + 0.9 * errors + effect
    return 1.0 / (1.0 + np.exp(-logit))
