"""Root-cause quality of ``assay explain``: exact-match F1 on labelled multi-dimensional cases.

Issue #5 asks for a labelled set of root-cause cases generated the way the RCA papers do
(several dimensions, one to three causes per case, causes of one to three dimensions, noise),
and the exact-match F1 of the ``root_cause`` set: a predicted slice counts only if its
dimension=value set equals a labelled cause. Cases come from
``assay.anomaly.synthetic_rca_cases`` (3-4 dimensions of 5-10 values, noise 0-10%); the F1 is
printed per seed and pooled, with the time per case. A second run doubles the noise range.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/explain_quality.py --cases 200 --seeds 5
"""

from __future__ import annotations

import argparse
import time

from _bench import markdown_row, print_block, print_machine
from assay.anomaly import exact_match_f1, explain_table, synthetic_rca_cases


def _run(cases: int, seed: int, noise: tuple[float, float]) -> tuple[float, float, list, list]:
    generated = synthetic_rca_cases(cases, seed=seed, noise=noise)
    start = time.perf_counter()
    predicted = [
        explain_table(c.table, time_col="time", dims=c.dims, value="value", at=c.at).root_causes
        for c in generated
    ]
    seconds = time.perf_counter() - start
    labelled = [c.causes for c in generated]
    return exact_match_f1(predicted, labelled), seconds / cases, predicted, labelled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    print_machine()
    rows = []
    for noise in ((0.0, 0.1), (0.0, 0.2)):
        all_pred: list = []
        all_lab: list = []
        per_seed = []
        per_case = []
        for seed in range(args.seeds):
            f1, secs, pred, lab = _run(args.cases, seed, noise)
            per_seed.append(f1)
            per_case.append(secs)
            all_pred += pred
            all_lab += lab
        pooled = exact_match_f1(all_pred, all_lab)
        rows.append((noise, per_seed, pooled, sum(per_case) / len(per_case)))
    print_block(
        "explain: exact-match F1 of the root-cause set",
        [
            (
                f"noise {lo:.0%}-{hi:.0%}",
                f"pooled {pooled:.3f}; per seed {', '.join(f'{f:.3f}' for f in per_seed)}; "
                f"{secs * 1000:.0f} ms a case",
            )
            for (lo, hi), per_seed, pooled, secs in rows
        ],
    )
    print(
        "| cases | noise | exact-match F1 (pooled) | per seed | ms a case |\n|---|---|---|---|---|"
    )
    for (lo, hi), per_seed, pooled, secs in rows:
        print(
            markdown_row(
                [
                    f"{args.cases} x {args.seeds} seeds",
                    f"{lo:.0%}-{hi:.0%}",
                    f"{pooled:.3f}",
                    ", ".join(f"{f:.3f}" for f in per_seed),
                    f"{secs * 1000:.0f}",
                ]
            )
        )


if __name__ == "__main__":
    main()
