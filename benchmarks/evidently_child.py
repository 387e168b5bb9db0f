"""Evidently's side of ``drift_vs_evidently.py``: run by the benchmark-only Evidently venv.

Not imported by assay and not run in the project venv (Evidently is not a dependency: see
``benchmarks/evidently-requirements.txt``). Usage::

    /tmp/evidently-venv/bin/python benchmarks/evidently_child.py REF.parquet CUR.parquet \
        --numeric a,b,... --categorical c,d,...

It reads both Parquet files with pandas, wraps them in Evidently 0.7 ``Dataset`` objects with
a ``DataDefinition`` naming the numeric and categorical columns (without it, Evidently infers
the types itself), and runs ``Report(metrics=[DataDriftPreset()], include_tests=True)`` with
every preset default (method chosen per column, default thresholds, drift share 0.5).
``include_tests`` makes the report carry one pass/fail test per column: that status is
Evidently's own per-column verdict, read as is.

Prints one JSON object on stdout: ``evidently`` (version), ``import_seconds`` (importing
pandas and Evidently), ``read_seconds`` (both ``pd.read_parquet``), ``dataset_seconds``
(building the two ``Dataset`` objects), ``report_seconds`` (``Report.run``), ``columns``
(per column: ``method``, ``threshold``, ``score``, ``drifted``) and ``dataset_drifted``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

START = time.perf_counter()

# The imports below are timed (START, IMPORTED), hence not at the top.
import pandas as pd  # noqa: E402
from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently import __version__ as evidently_version  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

IMPORTED = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("current")
    parser.add_argument("--numeric", required=True, help="comma-separated numeric columns")
    parser.add_argument("--categorical", required=True, help="comma-separated categorical columns")
    args = parser.parse_args()
    numeric = [c for c in args.numeric.split(",") if c]
    categorical = [c for c in args.categorical.split(",") if c]

    t0 = time.perf_counter()
    ref = pd.read_parquet(args.reference)
    cur = pd.read_parquet(args.current)
    t1 = time.perf_counter()
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    ref_ds = Dataset.from_pandas(ref, data_definition=definition)
    cur_ds = Dataset.from_pandas(cur, data_definition=definition)
    t2 = time.perf_counter()
    report = Report(metrics=[DataDriftPreset()], include_tests=True)
    snapshot = report.run(cur_ds, ref_ds)  # current first, then reference (0.7 signature)
    t3 = time.perf_counter()
    result = snapshot.dict()

    # Each ValueDrift metric names its column, method and threshold; its test's status
    # (FAIL = drift detected) is Evidently's verdict for the column.
    metrics = {m["id"]: m for m in result["metrics"]}
    columns: dict[str, dict[str, object]] = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type") == "evidently:metric_v2:ValueDrift":
            columns[config["column"]] = {
                "method": config.get("method"),
                "threshold": config.get("threshold"),
                "score": metric["value"],
                "drifted": None,
            }
    dataset_drifted = None
    for test in result["tests"]:
        metric = metrics.get(test["metric_config"]["metric_id"])
        if metric is None:
            continue
        config = metric["config"]
        failed = test["status"] == "FAIL"
        if config.get("type") == "evidently:metric_v2:ValueDrift":
            columns[config["column"]]["drifted"] = failed
        elif config.get("type") == "evidently:metric_v2:DriftedColumnsCount":
            dataset_drifted = failed
    missing = [c for c, v in columns.items() if v["drifted"] is None]
    if missing or set(columns) != set(numeric) | set(categorical):
        sys.exit(
            f"expected one drift test per column of {numeric + categorical}; got metrics for "
            f"{sorted(columns)} and no test for {missing}: check the Evidently version (0.7.x)"
        )
    print(
        json.dumps(
            {
                "evidently": evidently_version,
                "pandas": pd.__version__,
                "import_seconds": IMPORTED - START,
                "read_seconds": t1 - t0,
                "dataset_seconds": t2 - t1,
                "report_seconds": t3 - t2,
                "rows": [len(ref), len(cur)],
                "columns": columns,
                "dataset_drifted": dataset_drifted,
            }
        )
    )


if __name__ == "__main__":
    main()
