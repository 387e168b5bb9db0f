"""Slice reports: ``assay.evaluation.slice_report`` against Fairlearn's ``MetricFrame``.

Goal (issue #4): ``slice_report`` with 200 bootstrap replicates on 1 M rows and 3 slice
features is at least 10x faster than Fairlearn ``MetricFrame`` with the same metrics and groups.

The same work on both sides: ROC AUC, average precision and the Brier score (scikit-learn's
functions on the Fairlearn side) for every value of each of the 3 features and of each pair of
features (``MetricFrame`` per feature and per pair), with bootstrap confidence intervals
(``n_boot`` replicates, 2.5% and 97.5% quantiles). Fairlearn's bootstrap costs the same for
every replicate, so it is timed with ``--fairlearn-boot`` replicates (default 3) and with 1,
and the cost of one replicate is scaled linearly to ``--boot``; the printout says so.
Features: ``locale`` (8 values), ``platform`` (4), ``model_version`` (12).

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/evaluation_slices.py
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

import numpy as np

from _bench import markdown_row, print_block, print_machine
from assay.evaluation._slices import slice_report

FEATURES = {"locale": 8, "platform": 4, "model_version": 12}


def _data(rows: int, seed: int) -> tuple[Any, Any, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(rows), 4)
    labels = rng.random(rows) < 0.2 + 0.6 * scores
    slices = {
        name: np.char.add(f"{name[:2]}-", rng.integers(0, k, rows).astype(str))
        for name, k in FEATURES.items()
    }
    return labels, scores, slices


def _fairlearn(labels: Any, scores: Any, slices: dict[str, Any], n_boot: int) -> None:
    import pandas as pd
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    metrics = {
        "roc_auc": roc_auc_score,
        "average_precision": average_precision_score,
        "brier_score": brier_score_loss,
    }
    groups = [[name] for name in slices] + [list(p) for p in itertools.combinations(slices, 2)]
    for names in groups:
        MetricFrame(
            metrics=metrics,
            y_true=labels,
            y_pred=scores,
            sensitive_features=pd.DataFrame({n: slices[n] for n in names}),
            n_boot=n_boot,
            ci_quantiles=[0.025, 0.975],
            random_state=0,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--fairlearn-boot", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print_machine()
    labels, scores, slices = _data(args.rows, args.seed)

    slice_report(labels, scores, slices, n_boot=2, seed=args.seed)  # warm-up
    start = time.perf_counter()
    report = slice_report(labels, scores, slices, n_boot=args.boot, seed=args.seed)
    t_assay = time.perf_counter() - start

    start = time.perf_counter()
    _fairlearn(labels, scores, slices, args.fairlearn_boot)
    t_fl = time.perf_counter() - start
    start = time.perf_counter()
    _fairlearn(labels, scores, slices, 1)
    t_fl1 = time.perf_counter() - start
    per_boot = max(t_fl - t_fl1, 0.0) / max(args.fairlearn_boot - 1, 1)
    t_fl_scaled = t_fl1 + per_boot * (args.boot - 1)

    speedup = t_fl_scaled / t_assay
    print_block(
        "slice report",
        [
            (
                "rows, features",
                f"{args.rows:,}, {', '.join(f'{k} ({v})' for k, v in FEATURES.items())} and pairs",
            ),
            ("report rows", f"{report.to_arrow().num_rows:,}"),
            (f"assay slice_report, n_boot={args.boot}", f"{t_assay:.2f} s"),
            (f"Fairlearn MetricFrame, n_boot={args.fairlearn_boot}", f"{t_fl:.2f} s"),
            ("Fairlearn MetricFrame, n_boot=1", f"{t_fl1:.2f} s"),
            (
                f"Fairlearn scaled to n_boot={args.boot}",
                f"{t_fl_scaled:.1f} s ({per_boot:.2f} s a replicate)",
            ),
            ("speed-up", f"{speedup:.0f}x"),
        ],
    )
    print("| goal | measured | met? |\n|---|---|---|")
    print(
        markdown_row(
            [
                f"slice_report ≥ 10x Fairlearn MetricFrame ({args.rows:,} rows, 3 features and "
                f"pairs, {args.boot} bootstrap replicates)",
                f"{speedup:.0f}x ({t_assay:.2f} s vs {t_fl_scaled:.1f} s, Fairlearn scaled from "
                f"{args.fairlearn_boot} replicates)",
                "yes" if speedup >= 10 else "**no**",
            ]
        )
    )


if __name__ == "__main__":
    main()
