"""`assay rag eval|...`: RAG evaluation (retrieval metrics on labelled sets, comparisons)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from assay.cli import _output
from assay.cli._common import command_group, handle_errors

app = command_group(
    help="RAG evaluation: retrieval metrics on labelled sets, citations and groundedness.",
)

EvalFormat = Literal["table", "json"]
Missing = Literal["zero", "skip"]
_DEFAULT_METRICS = "R@10,P@10,RR,nDCG@10,AP,Rprec"
_ONE_RUN: tuple[str, ...] = ("slice", "metric", "n_queries", "mean", "ci_low", "ci_high")
_TWO_RUNS: tuple[str, ...] = (
    "slice",
    "metric",
    "n_queries",
    "mean_a",
    "mean_b",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
    "effect_size",
)


def _slice_text(row: dict[str, Any]) -> str:
    if row["by"] is None:
        return "(all)"
    return f"{row['by']}={'(none)' if row['slice'] is None else row['slice']}"


@app.command("eval")
def eval_(
    qrels: Annotated[
        Path,
        typer.Option(
            "--qrels",
            help="Relevance judgements: TREC qrels (`query_id 0 doc_id relevance`) or JSONL "
            "(`query_id`, `doc_id`, `relevance`).",
            show_default=False,
        ),
    ],
    run: Annotated[
        Path,
        typer.Option(
            "--run",
            help="The run (A): TREC run (`query_id Q0 doc_id rank score tag`) or JSONL "
            "(`query_id`, `doc_id`, `score` or `rank`).",
            show_default=False,
        ),
    ],
    run_b: Annotated[
        Path | None,
        typer.Option("--run-b", help="A second run (B), compared with A on the same queries."),
    ] = None,
    metrics: Annotated[
        str,
        typer.Option(
            "--metrics",
            help="Comma-separated: recall@k (R@k), P@k, RR (MRR), nDCG@k, AP (MAP), Rprec.",
        ),
    ] = _DEFAULT_METRICS,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Slice by a per-query field, e.g. locale or tenant_id."),
    ] = None,
    queries: Annotated[
        Path | None,
        typer.Option("--queries", help="JSONL of `query_id` and per-query fields, for --by."),
    ] = None,
    missing: Annotated[
        Missing,
        typer.Option(
            "--missing",
            help="Queries of the qrels a run does not answer: zero (trec_eval -c) or skip.",
        ),
    ] = "zero",
    n_boot: Annotated[
        int, typer.Option("--n-boot", min=1, help="Bootstrap replicates of the intervals.")
    ] = 2000,
    n_permutations: Annotated[
        int,
        typer.Option("--n-permutations", min=1, help="Sign patterns of the paired test."),
    ] = 10_000,
    alpha: Annotated[
        float, typer.Option("--alpha", help="1 - confidence level of the intervals.")
    ] = 0.05,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap and test.")] = 0,
    per_query: Annotated[
        bool,
        typer.Option("--per-query", help="Print each query's values instead of the summary."),
    ] = False,
    fmt: Annotated[
        EvalFormat, typer.Option("--format", "-f", help="Output format: table or json.")
    ] = "table",
) -> None:
    """Retrieval metrics of a run on a labelled set (trec_eval's definitions), averaged with
    bootstrap intervals, per slice with --by; with --run-b, a paired comparison of two runs
    (difference B - A, its interval, a randomisation-test p-value and Cohen's d_z)."""
    from assay.rag import compare_runs, evaluate_run, read_qrels, read_queries, read_run

    with handle_errors():
        judged = read_qrels(qrels)
        run_a = read_run(run)
        fields = read_queries(queries) if queries is not None else None
        common: dict[str, Any] = {
            "by": by,
            "queries": fields,
            "missing": missing,
            "n_boot": n_boot,
            "alpha": alpha,
            "seed": seed,
        }
        if run_b is None:
            report = evaluate_run(judged, run_a, metrics, **common)
            per = {"a": report.per_query.rows()}
            head = {"run": report.run}
            columns, summary, names = _ONE_RUN, report.summary, report.metrics
            n = len(report.per_query.query_ids)
        else:
            b = read_run(run_b)
            if b.name == run_a.name:
                b = dataclasses.replace(b, name=f"{b.name} (B)")
            paired = compare_runs(
                judged, run_a, b, metrics, n_permutations=n_permutations, **common
            )
            per = {"a": paired.per_query_a.rows(), "b": paired.per_query_b.rows()}
            head = {"run_a": paired.run_a, "run_b": paired.run_b}
            columns, summary, names = _TWO_RUNS, paired.summary, paired.metrics
            n = len(paired.per_query_a.query_ids)
        if fmt == "json":
            _output.print_json(
                {
                    **head,
                    "missing": missing,
                    "alpha": alpha,
                    "n_boot": n_boot,
                    "summary": summary,
                    "per_query": per if run_b is not None else per["a"],
                }
            )
            return
        if per_query:
            run_names = dict(zip(per, head.values(), strict=True))
            rows = [{"run": run_names[k], **r} for k, rs in per.items() for r in rs]
            table = _output.rows_table(rows, ["run", "query_id", *names])
            _output.print_table(table, "table")
            return
        shown = [{**r, "slice": _slice_text(r)} for r in summary]
        level = f"{100 * (1 - alpha):g}%"
        note = "count 0" if missing == "zero" else "left out"
        runs = " vs ".join(str(v) for v in head.values())
        _output.print_table(
            _output.rows_table(shown, columns),
            "table",
            title=f"{runs}: {n} queries; {level} bootstrap intervals; unanswered queries {note}",
        )
