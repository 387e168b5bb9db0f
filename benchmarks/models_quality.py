"""The session-quality model against the Bayes-optimal AUC of the synthetic world (issue #13).

For each seed: synthesise telemetry (``assay.synth.write``, Parquet, with ``truth.json``'s
``session_labels``: each session's true probability of each label), ingest it into a fresh
workspace, build the training set with ``ws.models.dataset``, train, evaluate and register
through the library (:func:`assay.models._lifecycle.train_on_table`), then on the test days:

- the model's ROC-AUC and the **Bayes-optimal** ROC-AUC, that of the true probabilities, on the
  same sessions and labels, with a paired stratified bootstrap interval of the difference
  (model - Bayes). Goal: within 0.02, and never above by more than its sampling error (above
  it would mean the model sees the label);
- the same two ROC-AUCs on the train and validation days (train far above Bayes is
  overfitting; the model is chosen on validation only);
- the model's calibration error (ECE, 10 bins; goal <= 0.02) and, as its floor, the ECE of the
  true probabilities on the same labels;
- a **planted leaky attribute**: ``csat_flag`` set on the ``session_start`` event of exactly
  the sessions that get a thumbs-down (as if written back after it), opted in as a feature:
  the leakage guard must refuse to train (``LeakageError``).

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/models_quality.py --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay._api import Workspace
from assay.evaluation import expected_calibration_error, roc_auc
from assay.ingest import ingest_paths
from assay.models import LeakageError, time_split
from assay.models._lifecycle import train_on_table
from assay.models._registry import Registry
from assay.models._train import labels_of, train_quality
from assay.synth import SynthConfig, write


def plant_leak(data: Path) -> int:
    """Set attribute ``csat_flag=low`` on the session_start of every session with a negative
    feedback (rewrites the Parquet files in place); returns the sessions marked."""
    files = sorted(data.glob("events-*.parquet"))
    bad: set[tuple[str, str]] = set()
    for path in files:
        t = pq.read_table(path)
        neg = pc.or_kleene(
            pc.equal(t.column("feedback"), -1),
            pc.less_equal(t.column("rating"), 2),
        )
        hit = t.filter(pc.fill_null(neg, False))
        bad |= set(
            zip(
                hit.column("tenant_id").to_pylist(),
                hit.column("session_id").to_pylist(),
                strict=True,
            )
        )
    for path in files:
        t = pq.read_table(path)
        keys = zip(
            t.column("tenant_id").to_pylist(), t.column("session_id").to_pylist(), strict=True
        )
        types = t.column("event_type").to_pylist()
        attrs = t.column("attributes").to_pylist()
        new = []
        for key, kind, a in zip(keys, types, attrs, strict=True):
            if kind == "session_start" and key in bad:
                a = [*(a or []), ("csat_flag", "low")]
            new.append(a)
        i = t.column_names.index("attributes")
        t = t.set_column(i, t.schema.field(i), pa.array(new, t.schema.field(i).type))
        pq.write_table(t, path, compression="zstd")
    return len(bad)


def paired_bootstrap(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float, float]:
    """Standard deviation and 95% percentile interval of AUC(a) - AUC(b), resampling the
    positives and the negatives separately (the same rows for both)."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    diffs = np.empty(n_boot)
    for k in range(n_boot):
        rows = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        yy = y[rows]
        diffs[k] = float(roc_auc(yy, a[rows])) - float(roc_auc(yy, b[rows]))
    low, high = np.quantile(diffs, [0.025, 0.975])
    return float(diffs.std(ddof=1)), float(low), float(high)


def _scored(
    part: pa.Table, p_model: np.ndarray, true_p: dict[tuple[str, str], float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, model scores, true probabilities) of the rows of ``part`` that truth knows."""
    keys = zip(
        part.column("tenant_id").to_pylist(), part.column("session_id").to_pylist(), strict=True
    )
    found = [true_p.get(k) for k in keys]
    p_true = np.array([np.nan if v is None else v for v in found])
    keep = ~np.isnan(p_true)
    return labels_of(part)[keep], np.asarray(p_model)[keep], p_true[keep]


def run_seed(args: argparse.Namespace, seed: int, root: Path) -> dict[str, Any]:
    cfg = SynthConfig(tenants=args.tenants, users=args.users, days=args.days, seed=seed)
    data, ws_dir = root / f"data-{seed}", root / f"ws-{seed}"
    t0 = time.perf_counter()
    out = write(data, cfg, format="parquet")
    truth = out.truth["session_labels"]
    true_p = {
        (t, s): p
        for t, s, p in zip(truth["tenant_id"], truth["session_id"], truth[args.label], strict=True)
    }
    with Workspace.open(ws_dir, create=True) as ws:
        ingest_paths(ws, [data])
        table = ws.models.dataset(args.label)
    t1 = time.perf_counter()
    if args.native:
        # Training and calibration only (no ONNX export, evaluation or registry).
        fitted: Any = train_quality(table, model=args.model, seed=seed)
        kind, calibration = fitted.model.kind, fitted.model.calibrator.method
    else:
        fitted = train_on_table(
            Registry(ws_dir),
            table,
            "quality",
            label=args.label,
            model=args.model,
            seed=seed,
            n_boot=args.n_boot,
        )
        kind, calibration = fitted.kind, fitted.calibration
    t2 = time.perf_counter()
    if args.keep_tables is not None:
        args.keep_tables.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, args.keep_tables / f"dataset-{seed}.parquet")
        pq.write_table(
            pa.table(
                {
                    "tenant_id": [k[0] for k in true_p],
                    "session_id": [k[1] for k in true_p],
                    "p_true": list(true_p.values()),
                }
            ),
            args.keep_tables / f"truth-{seed}.parquet",
        )
    parts = time_split(table, valid_days=7, test_days=7)
    aucs = {}
    for name in ("train", "valid"):
        part = getattr(parts, name)
        yy, pm, pt_ = _scored(part, fitted.model.predict_proba(part), true_p)
        aucs[name] = {"model": float(roc_auc(yy, pm)), "bayes": float(roc_auc(yy, pt_))}
    test = parts.test
    y, p_model, p_true = _scored(test, fitted.model.predict_proba(test), true_p)
    missing = test.num_rows - int(y.size)
    auc_model, auc_bayes = float(roc_auc(y, p_model)), float(roc_auc(y, p_true))
    sd, low, high = paired_bootstrap(y, p_model, p_true, args.n_boot, seed)
    row = {
        "seed": seed,
        "events": out.events,
        "sessions": table.num_rows,
        "test_sessions": int(y.size),
        "test_positives": int(y.sum()),
        "unmatched": missing,
        "kind": kind,
        "calibration": calibration,
        "auc_train": aucs["train"],
        "auc_valid": aucs["valid"],
        "auc_model": auc_model,
        "auc_bayes": auc_bayes,
        "gap": auc_model - auc_bayes,
        "gap_sd": sd,
        "gap_ci": [low, high],
        "ece_model": float(expected_calibration_error(y, p_model, n_bins=10)),
        "ece_true": float(expected_calibration_error(y, p_true, n_bins=10)),
        "seconds_data": round(t1 - t0, 1),
        "seconds_train": round(t2 - t1, 1),
    }
    if args.leak:
        marked = plant_leak(data)
        leak_ws = root / f"ws-leak-{seed}"
        with Workspace.open(leak_ws, create=True) as ws:
            ingest_paths(ws, [data])
            leaky = ws.models.dataset(args.label, attributes=["csat_flag"])
        try:
            train_on_table(
                Registry(leak_ws),
                leaky,
                "quality",
                label=args.label,
                model="logistic",
                attributes=["csat_flag"],
                seed=seed,
                n_boot=20,
            )
            row["leak"] = {"marked": marked, "caught": False}
        except LeakageError as exc:
            row["leak"] = {"marked": marked, "caught": True, "flagged": exc.report.flagged}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--tenants", type=int, default=20)
    ap.add_argument("--users", type=int, default=250)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--label", default="thumbs_down", choices=["thumbs_down", "handoff"])
    ap.add_argument("--model", default="logistic", choices=["logistic", "gbdt", "auto"])
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--no-leak", dest="leak", action="store_false")
    ap.add_argument(
        "--native",
        action="store_true",
        help="Train and calibrate only (no ONNX export or registry): the native model's scores.",
    )
    ap.add_argument("--out", type=Path, default=None, help="Also write the rows as JSON here.")
    ap.add_argument(
        "--keep-tables",
        type=Path,
        default=None,
        help="Also write each seed's dataset and true probabilities (Parquet) to this folder.",
    )
    args = ap.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, commit {commit}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="assay-models-quality-") as tmp:
        for seed in args.seeds:
            row = run_seed(args, seed, Path(tmp))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        "| seed | events | test sessions (pos) | model | train AUC (Bayes) | valid AUC (Bayes) "
        "| ROC-AUC model | Bayes | gap [95% CI] | ECE model | ECE true p | leak caught |"
    )
    print("|" + "---|" * 12)
    for r in rows:
        leak = r.get("leak", {})
        caught = "yes: " + ", ".join(leak.get("flagged", [])) if leak.get("caught") else "NO"
        print(
            f"| {r['seed']} | {r['events']:,} | {r['test_sessions']:,} ({r['test_positives']}) | "
            f"{r['kind']}/{r['calibration']} | "
            f"{r['auc_train']['model']:.4f} ({r['auc_train']['bayes']:.4f}) | "
            f"{r['auc_valid']['model']:.4f} ({r['auc_valid']['bayes']:.4f}) | "
            f"{r['auc_model']:.4f} | {r['auc_bayes']:.4f} | "
            f"{r['gap']:+.4f} [{r['gap_ci'][0]:+.4f}, {r['gap_ci'][1]:+.4f}] | "
            f"{r['ece_model']:.4f} | {r['ece_true']:.4f} | {caught if leak else '-'} |"
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
