"""The evaluation functions that share the ranking kernel, against an older checkout of them.

``cohort_auc``, ``AUCAccumulator``, the metric functions (``roc_auc``, ``average_precision``,
``precision_at_recall``, quantile ``expected_calibration_error``), ``bootstrap_ci`` and
``slice_report`` all rank rows with ``assay.evaluation._rank``. This benchmark times each of
them here and, with ``--old-src PATH``, the same calls on the package at ``PATH`` (e.g.
``git archive 4e21f2f src | tar -x -C /tmp/eval-base`` then ``--old-src /tmp/eval-base/src``),
both loaded in this one process, on the same arrays. Goal: no call slower than its baseline
(ratio new / old <= 1.0 within noise).

Timing: CPU time of this process (``time.process_time``: numpy runs these on one thread, and the
machine may be shared), the minimum over ``--rounds`` rounds after one warm-up, the old and the
new call alternating and swapping order each round. Data: scores uniform, rounded to 4 decimals
(ties), labels Bernoulli(0.3 + 0.4 score), cohorts uniform, weights uniform in [0.1, 3].

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/evaluation_kernel.py --old-src /tmp/eval-base/src
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from _bench import markdown_row, print_block, print_machine

Cases = dict[str, Callable[[], Any]]


def _load(src: Path | None) -> ModuleType:
    """``assay.evaluation`` from ``src`` (or this checkout), then forgotten by ``sys.modules``.

    The functions keep their own module globals, so two versions can run side by side.
    """
    saved = {k: v for k, v in sys.modules.items() if k == "assay" or k.startswith("assay.")}
    for k in saved:
        del sys.modules[k]
    if src is not None:
        sys.path.insert(0, str(src))
    try:
        import assay.evaluation as evaluation
    finally:
        if src is not None:
            sys.path.remove(str(src))
        for k in [k for k in sys.modules if k == "assay" or k.startswith("assay.")]:
            del sys.modules[k]
        sys.modules.update(saved)
    return evaluation


def _cases(ev: ModuleType, rows: int, cohorts: int, boot_rows: int, seed: int) -> Cases:
    rng = np.random.default_rng(seed)
    s = np.round(rng.random(rows), 4)
    y = rng.random(rows) < 0.3 + 0.4 * s
    c = rng.integers(0, cohorts, rows)
    w = rng.uniform(0.1, 3.0, rows)
    smooth = rng.random(rows)
    m = boot_rows
    features = {
        name: np.char.add(f"{name[:2]}-", rng.integers(0, k, m).astype(str))
        for name, k in {"locale": 8, "platform": 4, "model_version": 12}.items()
    }

    def accumulate() -> Any:
        acc = ev.AUCAccumulator()
        for part in np.array_split(np.arange(rows), 10):
            acc.update(y[part], s[part], c[part])
        return acc.result()

    k = f"{cohorts // 1000}k" if cohorts >= 1000 else str(cohorts)
    return {
        f"cohort_auc, {k} cohorts": lambda: ev.cohort_auc(y, s, c),
        f"cohort_auc, {k} cohorts, weighted": lambda: ev.cohort_auc(y, s, c, sample_weight=w),
        f"cohort_auc, {k} cohorts, no ties": lambda: ev.cohort_auc(y, smooth, c),
        "AUCAccumulator, 10 batches": accumulate,
        "roc_auc": lambda: ev.roc_auc(y, s),
        f"roc_auc, {k} cohorts": lambda: ev.roc_auc(y, s, cohort_id=c),
        f"average_precision, {k} cohorts": lambda: ev.average_precision(y, s, cohort_id=c),
        "precision_at_recall": lambda: ev.precision_at_recall(y, s, 0.5),
        f"ECE quantile, {k} cohorts": lambda: ev.expected_calibration_error(
            y, s, strategy="quantile", cohort_id=c
        ),
        f"bootstrap_ci roc_auc, {m:,} rows x 200": lambda: ev.bootstrap_ci(
            "roc_auc", y[:m], s[:m], n_boot=200
        ),
        f"bootstrap_ci AP, {m:,} rows x 200, 100 cohorts": lambda: ev.bootstrap_ci(
            "average_precision", y[:m], s[:m], cohort_id=c[:m] % 100, n_boot=200
        ),
        f"slice_report, {m:,} rows, 3 features + pairs x 20": lambda: ev.slice_report(
            y[:m], s[:m], features, n_boot=20
        ),
    }


def _cpu(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--cohorts", type=int, default=10_000)
    parser.add_argument("--boot-rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--old-src", type=Path, help="package source of an older commit")
    args = parser.parse_args()
    print_machine()
    new = _cases(_load(None), args.rows, args.cohorts, args.boot_rows, args.seed)
    old = None
    if args.old_src is not None:
        old = _cases(_load(args.old_src), args.rows, args.cohorts, args.boot_rows, args.seed)
    results: list[tuple[str, float, float | None]] = []
    for name, fn in new.items():
        sides = [(fn, [])] if old is None else [(fn, []), (old[name], [])]
        for f, _ in sides:
            f()  # warm-up
        times: list[list[float]] = [t for _, t in sides]
        for r in range(args.rounds):
            for f, t in sides if r % 2 == 0 else sides[::-1]:
                t.append(_cpu(f))
        results.append((name, min(times[0]), min(times[1]) if old is not None else None))
        print(f"  {name}: {results[-1][1]:.3f} s", flush=True)

    lines = []
    for name, t_new, t_old in results:
        ratio = "" if t_old is None else f" vs {t_old:.3f} old = {t_new / t_old:.2f}x"
        lines.append((name, f"{t_new:.3f}{ratio}"))
    print_block(f"evaluation kernel (CPU s, min of {args.rounds})", lines)
    if old is None:
        return
    print(f"\n| call ({args.rows:,} rows unless said) | old (s) | new (s) | new / old |")
    print("|---|---|---|---|")
    for name, t_new, t_old in results:
        assert t_old is not None
        print(markdown_row([name, f"{t_old:.3f}", f"{t_new:.3f}", f"{t_new / t_old:.2f}x"]))


if __name__ == "__main__":
    main()
