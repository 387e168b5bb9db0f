"""Retrieval metrics on a labelled set: ``assay rag eval``'s library calls vs ir-measures alone.

What is timed, on ``--queries`` synthetic queries (20 judged documents each, grades 0-3, about a
third relevant; runs of 100 documents with scores rounded to 2 decimals, so many ties), in TREC
files:

- assay: ``read_qrels`` + ``read_run`` (validated readers), ``per_query`` (the six default
  metrics through ir-measures' pytrec_eval provider), and ``evaluate_run`` with ``--n-boot``
  bootstrap replicates; ``compare_runs`` of two runs (paired bootstrap and ``--n-permutations``
  sign patterns), all from the files.
- baseline: ir-measures alone, ``read_trec_qrels`` + ``read_trec_run`` +
  ``pytrec_eval.calc_aggregate`` of the same metrics (no intervals, no validation).

The means are cross-checked against the baseline's (to 1e-12). Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/rag_retrieval.py --queries 10000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _bench import markdown_row, print_block, print_machine
from assay.rag import compare_runs, evaluate_run, per_query, read_qrels, read_run
from assay.rag._retrieval import DEFAULT_METRICS


def _write(folder: Path, queries: int, seed: int) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(seed)
    qrels, run_a, run_b = folder / "qrels.txt", folder / "a.txt", folder / "b.txt"
    with qrels.open("w") as fq, run_a.open("w") as fa, run_b.open("w") as fb:
        for q in range(queries):
            judged = rng.choice(500, size=20, replace=False)
            grades = rng.choice(4, size=20, p=[0.65, 0.15, 0.12, 0.08])
            fq.writelines(f"q{q} 0 d{d} {g}\n" for d, g in zip(judged, grades, strict=True))
            relevant = {int(d) for d, g in zip(judged, grades, strict=True) if g > 0}
            for out, lift in ((fa, 0.3), (fb, 0.35)):
                docs = rng.choice(500, size=100, replace=False)
                scores = np.round(rng.random(100) + lift * np.isin(docs, list(relevant)), 2)
                out.writelines(
                    f"q{q} Q0 d{d} {i} {s} run\n"
                    for i, (d, s) in enumerate(zip(docs, scores, strict=True), 1)
                )
    return qrels, run_a, run_b


def _timed(fn, repeat: int):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--n-permutations", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import ir_measures

    print_machine()
    with tempfile.TemporaryDirectory() as tmp:
        qrels_path, a_path, b_path = _write(Path(tmp), args.queries, args.seed)
        measures = [ir_measures.parse_measure(m) for m in DEFAULT_METRICS]

        def baseline() -> dict[str, float]:
            qrels = list(ir_measures.read_trec_qrels(str(qrels_path)))
            run = list(ir_measures.read_trec_run(str(a_path)))
            agg = ir_measures.pytrec_eval.calc_aggregate(measures, qrels, run)
            return {str(k): float(v) for k, v in agg.items()}

        t_base, base = _timed(baseline, args.repeat)
        t_read, (qrels, run_a) = _timed(lambda: (read_qrels(qrels_path), read_run(a_path)), 1)
        t_pq, pq = _timed(lambda: per_query(qrels, run_a), args.repeat)
        means = dict(zip(pq.metrics, pq.values.mean(axis=0), strict=True))
        worst = max(abs(means[k] - base[k]) for k in means)
        assert worst < 1e-12, f"means differ from ir-measures' by {worst}"
        t_eval, _ = _timed(lambda: evaluate_run(qrels, run_a, n_boot=args.n_boot), args.repeat)
        run_b = read_run(b_path)
        t_cmp, cmp = _timed(
            lambda: compare_runs(
                qrels, run_a, run_b, n_boot=args.n_boot, n_permutations=args.n_permutations
            ),
            1,
        )
    rows = [
        ("queries", f"{args.queries:,} (20 judged, 100 retrieved each)"),
        ("ir-measures alone (read + aggregate)", f"{t_base:.2f} s"),
        ("assay read_qrels + read_run", f"{t_read:.2f} s"),
        ("assay per_query (6 metrics)", f"{t_pq:.2f} s"),
        ("assay read + per_query / baseline", f"{(t_read + t_pq) / t_base:.2f}x"),
        (f"assay evaluate_run (n_boot {args.n_boot})", f"{t_eval:.2f} s"),
        (
            f"assay compare_runs (n_boot {args.n_boot}, {args.n_permutations} patterns)",
            f"{t_cmp:.2f} s",
        ),
        ("max |mean - ir-measures mean|", f"{worst:.1e}"),
        ("nDCG@10 diff B - A", f"{cmp.summary[3]['diff']:.4f} (p {cmp.summary[3]['p_value']:.4f})"),
    ]
    print_block("rag retrieval", rows)
    print()
    print(markdown_row([f"{args.queries:,}", *(v for _, v in rows[1:7])]))


if __name__ == "__main__":
    main()
