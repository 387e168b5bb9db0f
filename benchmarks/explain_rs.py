"""Root cause of real incidents: ``assay explain table`` on the RS development cases (issue 12).

The RS data set (RobustSpot paper; distributed with the public ``riskloc`` repository) holds
real incidents of a video CDN: per-minute rows with three to five dimensions, a failure count
``value`` and a request count ``cnt`` (the KPI is ``value / cnt``). 45 of its 135 labelled
cases are the development half in ``../shared/data/rca-dev`` (the rest is kept aside). For each
case this runs :func:`assay.anomaly.explain_table` as ``assay explain table FILE --time-col min
--dims ... --value value --total cnt --at T --baseline 4`` does, and scores the ``root_cause``
set by exact match (the README's rule: a predicted slice counts only if its ``dim=value`` set
equals a labelled cause; F1 = 2TP / (2TP + FP + FN) pooled over cases).

``--cv`` also runs a 3-fold cross-validation of the rate search's two constants (cases
``i, i+3, ...`` form fold ``i mod 3``): tuned on two folds, scored on the third, pooled.
``--old-src PATH`` runs the same cases with the package at ``PATH`` (e.g. a git worktree of an
older commit: ``git worktree add /tmp/explain-base 3bffba0`` then ``--old-src
/tmp/explain-base/src``) and prints its totals alongside. ``--leaves`` times one generated
ratio table of that many leaves (5 time points).

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/explain_rs.py --cv
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rca-dev"
NOT_DIMS = ("min", "value", "cnt")


def _cases(data: Path) -> list[tuple[str, pa.Table, list[str], int, list[dict[str, str]]]]:
    labels = json.loads((data / "labels.json").read_text())
    out = []
    for lab in labels:
        path = data / "cases" / f"{lab['data']}.csv"
        names = pacsv.read_csv(path).column_names
        dims = [c for c in names if c not in NOT_DIMS]
        # Dimension values as text, as the labels write them.
        convert = pacsv.ConvertOptions(column_types=dict.fromkeys(dims, pa.string()))
        table = pacsv.read_csv(path, convert_options=convert)
        out.append((lab["data"], table, dims, int(lab["timestamp"]), lab["causes"]))
    return out


def _explain(table: pa.Table, dims: list[str], at: int) -> list[dict[str, Any]]:
    from assay.anomaly import explain_table

    ex = explain_table(
        table, time_col="min", dims=dims, value="value", total="cnt", at=at, baseline=4
    )
    return [{k: str(v) for k, v in c.items()} for c in ex.root_causes]


def _score(pred: list[dict[str, str]], truth: list[dict[str, str]]) -> tuple[int, int, int]:
    p = {frozenset(s.items()) for s in pred}
    t = {frozenset(s.items()) for s in truth}
    return len(p & t), len(p - t), len(t - p)


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def _text(slices: list[dict[str, str]]) -> str:
    return "; ".join(", ".join(f"{k}={v}" for k, v in s.items()) or "(whole table)" for s in slices)


def _run_all(cases: list[Any], verbose: bool) -> list[tuple[int, int, int]]:
    import assay.anomaly  # noqa: F401  (imported before the clock starts: scipy takes ~2 s)

    per_case = []
    for name, table, dims, at, truth in cases:
        start = time.perf_counter()
        pred = _explain(table, dims, at)
        seconds = time.perf_counter() - start
        tp, fp, fn = _score(pred, truth)
        per_case.append((tp, fp, fn))
        if verbose:
            status = "ok" if fp == fn == 0 else "ERR"
            print(
                f"{status:3} {name[:30]:30} {seconds:6.3f} s  TP {tp} FP {fp} FN {fn}  "
                f"truth [{_text(truth)}]  predicted [{_text(pred)}]"
            )
    return per_case


def _totals(per_case: list[tuple[int, int, int]], idx: list[int] | None = None) -> tuple:
    chosen = [per_case[i] for i in (idx if idx is not None else range(len(per_case)))]
    tp, fp, fn = (sum(c[j] for c in chosen) for j in range(3))
    return tp, fp, fn, _f1(tp, fp, fn)


def _cross_validate(cases: list[Any]) -> None:
    import assay.anomaly._explain as explain_module

    grid = [(llr, share) for llr in (2.0, 3.0, 5.0, 10.0) for share in (0.2, 0.3, 0.5, 0.7)]
    saved = (explain_module._RATE_LLR_MIN, explain_module._RATE_EXPLAINED)
    results = {}
    try:
        for llr, share in grid:
            explain_module._RATE_LLR_MIN, explain_module._RATE_EXPLAINED = llr, share
            results[(llr, share)] = _run_all(cases, verbose=False)
    finally:
        explain_module._RATE_LLR_MIN, explain_module._RATE_EXPLAINED = saved
    folds = [list(range(i, len(cases), 3)) for i in range(3)]
    held = [0, 0, 0]
    print("\n3-fold cross-validation of (_RATE_LLR_MIN, _RATE_EXPLAINED):")
    for i, fold in enumerate(folds):
        train = [j for j in range(len(cases)) if j not in fold]
        best = max(grid, key=lambda g: (_totals(results[g], train)[3], -grid.index(g)))
        tp, fp, fn, f1 = _totals(results[best], fold)
        held = [held[0] + tp, held[1] + fp, held[2] + fn]
        print(
            f"  fold {i}: chose {best} on the other two folds; held out TP {tp} FP {fp} FN {fn}"
            f" F1 {f1:.3f}"
        )
    print(
        f"  CV estimate (held-out folds pooled): TP {held[0]} FP {held[1]} FN {held[2]} "
        f"F1 {_f1(*held):.3f}"
    )
    for g in grid:
        tp, fp, fn, f1 = _totals(results[g])
        print(f"  full dev at {g}: F1 {f1:.3f} ({tp}/{fp}/{fn})")


def _time_leaves(n_leaves: int) -> None:
    from assay.anomaly import explain_table

    rng = np.random.default_rng(0)
    sizes = [10, 10, 10, 5, 2]
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, 5)
    grid = grid[:n_leaves]
    cnt = rng.poisson(200, (5, len(grid))).astype(float)
    fails = rng.poisson(0.02 * cnt)
    cause = (grid[:, 0] == 3) & (grid[:, 3] == 1)
    fails[4, cause] = rng.poisson(0.2 * cnt[4, cause])
    cols: dict[str, Any] = {"min": np.repeat(np.arange(5), len(grid))}
    for j in range(5):
        cols[f"d{j}"] = np.tile(np.array([f"v{x}" for x in grid[:, j]]), 5)
    cols["value"], cols["cnt"] = fails.reshape(-1), cnt.reshape(-1)
    table = pa.table(cols)
    start = time.perf_counter()
    ex = explain_table(
        table,
        time_col="min",
        dims=[f"d{j}" for j in range(5)],
        value="value",
        total="cnt",
        at=4,
        baseline=4,
    )
    seconds = time.perf_counter() - start
    print(
        f"\n{len(grid)} leaves x 5 time points, 5 dimensions: {seconds:.3f} s; "
        f"causes [{_text([{k: str(v) for k, v in c.items()} for c in ex.root_causes])}] "
        "(injected: d0=v3, d3=v1)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the rca-dev folder")
    parser.add_argument("--cv", action="store_true", help="also run 3-fold cross-validation")
    parser.add_argument("--old-src", type=Path, help="package source of an older commit")
    parser.add_argument("--leaves", type=int, default=10_000, help="leaves of the timed table")
    parser.add_argument("--quiet", action="store_true", help="totals only")
    args = parser.parse_args()
    if not (args.data / "labels.json").exists():
        print(
            f"skipped: no RS development cases at {args.data} (labels.json and cases/); "
            "pass --data PATH"
        )
        return
    cases = _cases(args.data)
    per_case = _run_all(cases, verbose=not args.quiet)
    tp, fp, fn, f1 = _totals(per_case)
    print(
        f"TOTAL {len(cases)} cases: TP {tp} FP {fp} FN {fn} exact-match F1 {f1:.3f} "
        f"({(tp + fp) / len(cases):.2f} causes a case; labelled "
        f"{(tp + fn) / len(cases):.2f})"
    )
    if args.old_src is not None:
        env = {**os.environ, "PYTHONPATH": str(args.old_src)}
        old = subprocess.run(
            [sys.executable, __file__, "--data", str(args.data), "--quiet", "--leaves", "0"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        line = [x for x in old.stdout.splitlines() if x.startswith("TOTAL")]
        print(f"OLD ({args.old_src}): {line[0] if line else old.stdout + old.stderr}")
    if args.cv:
        _cross_validate(cases)
    if args.leaves > 0:
        _time_leaves(args.leaves)


if __name__ == "__main__":
    main()
