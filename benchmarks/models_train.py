"""Train + evaluate + register the session-quality model on N sessions; ONNX scoring speed.

Goal (issue #13): train, evaluate and register on 1 M sessions in under 5 minutes on 2 cores;
report ONNX batch scoring rows/s against the native model's ``predict_proba``.

The data is a dataset-shaped Arrow table made here (the columns and metadata of
``ws.models.dataset``): ``--days`` days of equal size, every numeric feature present (10%
missing), six categorical features, the label drawn from a known logistic model of latency,
errors, locale and the user's history at about a 2% positive rate. The true probability is
kept in a column ``true_p`` (not a feature), so the test ROC-AUC can be set against the
Bayes-optimal one on the same sessions. Building the dataset from
events is benchmarked separately (``benchmarks/models_dataset.py``).

Timed, in this process, one run each (stages as :func:`assay.models._lifecycle.train_on_table`
logs them): the time split and leakage probe, fitting each kind, calibration, the ONNX export
and its parity check, the evaluation (bootstrap intervals with ``--n-boot`` replicates, slice
report, permutation importance on 20k validation rows) and the registration in a fresh MLflow
SQLite registry under a temporary folder. Then scoring the test part: the native model's
``predict_proba`` against ONNX Runtime on the exported graph (batches of 65,536 rows), best of
3 rounds.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/models_train.py --sessions 100000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from assay.models._dataset import CATEGORICAL_FEATURES, NUMERIC_FEATURES, dataset_schema

LOCALES = ["en-US", "de-DE", "fr-FR", "ja-JP", "es-ES", "pt-BR", "it-IT", "nl-NL"]
LOCALE_EFFECT = [0.0, 0.4, -0.3, 0.2, 0.0, 0.5, -0.2, 0.1]


def make_table(sessions: int, days: int, seed: int) -> pa.Table:
    """A dataset-shaped table with a known logistic label model (about 2% positive)."""
    rng = np.random.default_rng(seed)
    n = sessions
    start = dt.date(2026, 1, 1)
    day_index = np.sort(rng.integers(0, days, size=n))
    cols: dict[str, Any] = {
        "tenant_id": pa.array([f"tenant-{i:03d}" for i in rng.integers(0, 20, size=n)]),
        "session_id": pa.array([f"s{i:09d}" for i in range(n)]),
        "user_id": pa.array([f"u{i:07d}" for i in rng.integers(0, n // 5 + 1, size=n)]),
        "day": pa.array(
            (np.datetime64(start.isoformat()) + day_index.astype("timedelta64[D]")).astype(
                "datetime64[D]"
            ),
            pa.date32(),
        ),
    }
    cols["prediction_time"] = pa.array(
        (
            cols["day"].to_numpy(zero_copy_only=False).astype("datetime64[us]")
            + np.timedelta64(12, "h")
        ),
        pa.timestamp("us", tz="UTC"),
    )
    for name in NUMERIC_FEATURES:
        values = rng.gamma(2.0, 1.0, size=n)
        values[rng.random(n) < 0.1] = np.nan
        cols[name] = values
    latency = rng.gamma(2.0, 600.0, size=n)
    errors = rng.poisson(0.2, size=n).astype(float)
    prev_td = rng.beta(1.0, 30.0, size=n)
    cols["latency_mean_ms"] = latency
    cols["n_errors"] = errors
    cols["user_prev_thumbs_down_rate"] = prev_td
    locale_idx = rng.integers(0, len(LOCALES), size=n)
    for name in CATEGORICAL_FEATURES:
        cols[name] = pa.array([f"{name}-{v}" for v in rng.integers(0, 6, size=n)])
    cols["locale"] = pa.array([LOCALES[i] for i in locale_idx])
    logit = (
        -4.6
        + 0.0008 * (latency - 1200.0)
        + 0.8 * errors
        + 12.0 * prev_td
        + np.asarray(LOCALE_EFFECT)[locale_idx]
    )
    true_p = 1 / (1 + np.exp(-logit))
    cols["label"] = rng.random(n) < true_p
    schema = dataset_schema()
    table = pa.table({f.name: cols[f.name] for f in schema}, schema=schema)
    # The true probability rides along (not a feature: the feature lists are the metadata's).
    table = table.append_column("true_p", pa.array(true_p, pa.float64()))
    meta = {
        b"assay.label": b"thumbs_down",
        b"assay.label_window_days": b"1",
        b"assay.features.numeric": json.dumps(list(NUMERIC_FEATURES)).encode(),
        b"assay.features.categorical": json.dumps(list(CATEGORICAL_FEATURES)).encode(),
    }
    return table.replace_schema_metadata(meta)


class StageTimes(logging.Handler):
    """Collects the stage durations ``assay.models`` logs."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "assay", {})
        if isinstance(fields, dict) and "seconds" in fields:
            self.seconds[str(fields["stage"])] = float(fields["seconds"])


def best_of(fn: Any, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--model", default="auto", choices=["auto", "logistic", "gbdt"])
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from assay.models._lifecycle import train_on_table
    from assay.models._onnx import onnx_scores, session
    from assay.models._registry import Registry

    log = logging.getLogger("assay.models")
    log.setLevel(logging.INFO)
    times = StageTimes()
    log.addHandler(times)

    build_start = time.perf_counter()
    table = make_table(args.sessions, args.days, args.seed)
    build_s = time.perf_counter() - build_start
    positives = int(np.asarray(table.column("label")).sum())

    with tempfile.TemporaryDirectory() as folder:
        reg = Registry(Path(folder))
        start = time.perf_counter()
        outcome = train_on_table(
            reg,
            table,
            "quality",
            model=args.model,  # type: ignore[arg-type]
            seed=args.seed,
            n_boot=args.n_boot,
        )
        total_s = time.perf_counter() - start

        # Scoring speed on the test days: the registered ONNX export against the native model.
        from assay.models._leakage import time_split

        test = time_split(table).test
        _, raw = reg.load_onnx(str(outcome.version))
        sess = session(raw)
        onnx_s = best_of(lambda: onnx_scores(sess, test))
    native_s = best_of(lambda: outcome.model.predict_proba(test))
    from assay.evaluation import roc_auc

    y_test = np.asarray(test.column("label"))
    bayes_auc = roc_auc(y_test, np.asarray(test.column("true_p")))

    result = {
        "sessions": args.sessions,
        "positives": positives,
        "model": args.model,
        "chosen": outcome.kind,
        "calibration": outcome.calibration,
        "rows": outcome.window["rows"],
        "build_table_s": round(build_s, 2),
        "train_evaluate_register_s": round(total_s, 2),
        "stages_s": times.seconds,
        "test_roc_auc": outcome.evaluation.metrics["roc_auc"]["estimate"],
        "test_roc_auc_ci": [
            outcome.evaluation.metrics["roc_auc"]["ci_low"],
            outcome.evaluation.metrics["roc_auc"]["ci_high"],
        ],
        "test_bayes_roc_auc": bayes_auc,
        "test_average_precision": outcome.evaluation.metrics["average_precision"]["estimate"],
        "test_ece": outcome.evaluation.metrics["ece"]["estimate"],
        "onnx_max_abs_diff": outcome.onnx_max_abs_diff,
        "test_rows": test.num_rows,
        "onnx_rows_per_s": round(test.num_rows / onnx_s),
        "native_rows_per_s": round(test.num_rows / native_s),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
