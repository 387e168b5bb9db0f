"""`assay rag eval|...`: RAG evaluation (retrieval metrics on labelled sets, comparisons)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from assay.cli import _output
from assay.cli._common import (
    FormatOpt,
    WorkspaceOpt,
    command_group,
    handle_errors,
    parse_day,
)

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


# -- groundedness: judge and audit (R3) ---------------------------------------------------------
JudgeChoice = Literal["auto", "lexical", "openai", "nli"]


@app.command("judge")
def judge(
    input_: Annotated[
        Path,
        typer.Option(
            "--input",
            help="JSONL of answers to judge: `answer`, `contexts` (list of strings), optional "
            "`tenant_id`, `event_id` (the event schema holds no answer or context text).",
            show_default=False,
        ),
    ],
    judge_name: Annotated[
        JudgeChoice,
        typer.Option(
            "--judge",
            help="lexical (baseline), openai (judge_url, judge_model settings, "
            "ASSAY_JUDGE_API_KEY) or nli (--nli-dir); auto: nli with --nli-dir, else openai "
            "when judge_url is set, else lexical.",
        ),
    ] = "auto",
    nli_dir: Annotated[
        Path | None,
        typer.Option("--nli-dir", help="Folder of an NLI cross-encoder (model.onnx, ...)."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="lexical: share of content words found (0.6); nli: entailment probability (0.5).",
        ),
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only answers whose stored event is on or after this day."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Only answers whose stored event is on or before this day."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Judge the first N only.")] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Answers judged at once.")
    ] = 4,
    rps: Annotated[
        float, typer.Option("--rps", help="openai: requests started per second at most.")
    ] = 5.0,
    timeout: Annotated[
        float, typer.Option("--timeout", help="openai: seconds per request.")
    ] = 30.0,
    retries: Annotated[
        int, typer.Option("--retries", min=0, help="openai: retries after 429/5xx/timeouts.")
    ] = 4,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Judge again even what the cache knows.")
    ] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Judge the groundedness of answers, store the judgements (no text) in the workspace, and
    show the run's summary and every judge's agreement with people's audit labels."""
    from assay.rag import judge_report, make_judge, read_judge_input, select_inputs
    from assay.store import Workspace

    with handle_errors(), Workspace.open(workspace) as ws:
        items = select_inputs(
            ws,
            read_judge_input(input_),
            tenant=tenant,
            since=parse_day(since, "--since"),
            until=parse_day(until, "--until"),
            limit=limit,
        )
        options = {"requests_per_second": rps, "timeout": timeout, "max_retries": retries}
        chosen = make_judge(
            judge_name, ws.settings, nli_dir=nli_dir, threshold=threshold, **options
        )
        with _output.progress() as bar:
            bar.task("answers judged", len(items))
            seen = [0]

            def advance(done: int) -> None:
                bar.advance("answers judged", done - seen[0])
                seen[0] = done

            report = judge_report(
                ws, chosen, items, concurrency=concurrency, use_cache=not no_cache, progress=advance
            )
        if fmt == "json":
            _output.print_json(
                {"summary": report.summary, "agreement": report.agreement.to_pylist()}
            )
            return
        summary = {k: v for k, v in report.summary.items() if k != "errors_by_kind"}
        summary["errors_by_kind"] = ", ".join(
            f"{k}={v}" for k, v in sorted(report.summary["errors_by_kind"].items())
        )
        table = _output.rows_table([summary], list(summary))
        if fmt == "csv":
            _output.print_table(table, "csv")
            return
        _output.print_table(table, "table", title="judge run")
        if report.agreement.num_rows:
            _output.print_table(report.agreement, "table", title="agreement with people")
        else:
            _output.message("no audit labels yet: `assay rag audit sample` then `audit import`")


audit_app = command_group(
    help="Measure a judge's agreement with people: sample judged answers, import their labels."
)
app.add_typer(audit_app, name="audit")


@audit_app.command("sample")
def audit_sample(
    n: Annotated[int, typer.Option("--n", min=1, help="Answers to sample.", show_default=False)],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write here (.csv: CSV, else JSONL); default stdout."),
    ] = None,
    input_: Annotated[
        Path | None,
        typer.Option("--input", help="The judged JSONL, to put answer and contexts in the file."),
    ] = None,
    judge_name: Annotated[
        str | None,
        typer.Option("--judge", help="Which stored judge (judge or judge:model), if several."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample.")] = 0,
    workspace: WorkspaceOpt = None,
) -> None:
    """A sample of judged answers stratified by tenant, release and the judge's verdict, with an
    empty `human_label` column for people to fill with grounded or not_grounded (the judge's
    verdict is left out: people label blind)."""
    from assay.rag import audit_sample as sample_answers
    from assay.rag import read_judge_input, write_sample
    from assay.store import Workspace

    with handle_errors(), Workspace.open(workspace) as ws:
        sample = sample_answers(ws, n, judge=judge_name, seed=seed)
        texts = None
        if input_ is not None:
            texts = {(i.tenant_id, i.event_id): vars(i) for i in read_judge_input(input_)}
        text = write_sample(sample, out, texts=texts)
        if out is None:
            sys.stdout.write(text)
        else:
            _output.message(f"wrote {sample.num_rows} answers to {out}")


@audit_app.command("import")
def audit_import(
    file: Annotated[
        Path, typer.Argument(help="The sample file with `human_label` filled in (CSV or JSONL).")
    ],
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Validate people's labels (grounded, not_grounded or blank) and store them; show every
    judge's agreement with them."""
    from assay.rag import agreement
    from assay.rag import audit_import as import_labels
    from assay.store import Workspace

    with handle_errors(), Workspace.open(workspace) as ws:
        summary = import_labels(ws, file)
        table = agreement(ws)
        _output.message(
            f"stored {summary.labelled} labels ({summary.not_grounded} not grounded), "
            f"{summary.blank} blank rows skipped"
        )
        _output.print_table(table, fmt, title="agreement with people")


# -- telemetry signals, the labelled set, and release comparison (R2) ---------------------------
qrels_app = command_group(help="The workspace's labelled set (qrels) for citation precision.")
app.add_typer(qrels_app, name="qrels")
_SIGNAL_COLUMNS = (
    "slice",
    "signal",
    "answers_a",
    "rate_a",
    "answers_b",
    "rate_b",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
)


@qrels_app.command("import")
def qrels_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="TREC qrels (`query_id 0 doc_id relevance`) or JSONL.", show_default=False
        ),
    ],
    workspace: WorkspaceOpt = None,
) -> None:
    """Store a labelled set in the workspace (replacing the one stored before): the qrels the
    citation precision and recall of `assay rag compare` and `assay.rag.rag_signals` use."""
    from assay.rag import read_qrels, store_qrels
    from assay.store import Workspace

    with handle_errors(), Workspace.open(workspace) as ws:
        judged = read_qrels(file)
        n = store_qrels(ws, judged)
        _output.message(f"stored {n:,} judgements of {len(judged.judgements):,} queries")


@app.command("compare")
def compare(
    a: Annotated[
        str,
        typer.Option(
            "--a", help="Release A as FIELD=VALUE, e.g. prompt_template=rag-v2.", show_default=False
        ),
    ],
    b: Annotated[
        str,
        typer.Option(
            "--b", help="Release B as FIELD=VALUE, e.g. prompt_template=rag-v3.", show_default=False
        ),
    ],
    qrels: Annotated[
        Path | None,
        typer.Option("--qrels", help="A labelled set to use instead of the stored one."),
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="First day (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last day (YYYY-MM-DD).")] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Slice by a field, e.g. locale or platform.")
    ] = None,
    judge_name: Annotated[
        str | None, typer.Option("--judge", help="Which stored judge, if several judged.")
    ] = None,
    workspace: WorkspaceOpt = None,
    fmt: Annotated[
        EvalFormat, typer.Option("--format", "-f", help="Output format: table or json.")
    ] = "table",
) -> None:
    """Two releases' RAG quality side by side: citation signals and groundedness (where
    judged) with a two-sample test over answers, and with a labelled set trec_eval's retrieval
    metrics on the queries both answered (paired), overall and per slice of --by."""
    from assay.rag import compare_releases, read_qrels
    from assay.store import Workspace

    with handle_errors(), Workspace.open(workspace) as ws:
        result = compare_releases(
            ws,
            a,
            b,
            qrels=read_qrels(qrels) if qrels is not None else None,
            tenant=tenant,
            since=parse_day(since, "--since"),
            until=parse_day(until, "--until"),
            by=by,
            judge=judge_name,
        )
        if fmt == "json":
            _output.print_json(result.as_dict())
            return
        for note in result.notes:
            _output.message(note)
        title = f"A = {result.a}, B = {result.b}: B - A with 95% intervals (answers independent)"
        _output.print_table(
            _output.rows_table(result.signals, _SIGNAL_COLUMNS), "table", title=title
        )
        if result.retrieval:
            _output.print_table(
                _output.rows_table(result.retrieval, _TWO_RUNS),
                "table",
                title="retrieval on the queries both answered (first answer each; paired)",
            )
        if result.agreement:
            import pyarrow as pa

            _output.print_table(
                pa.Table.from_pylist(result.agreement),
                "table",
                title="the judges' agreement with people (audit labels)",
            )
