"""RAG signals from telemetry: ``assay.rag.rag_signals`` (Ibis) against hand-written DuckDB SQL.

Goal (issue #17): on 10 M events, the telemetry signals take at most 2x the time of
hand-written DuckDB SQL computing the same rates over the same Parquet files, in the same run.

The sides, each computing per tenant and day ``answers, cited_answers, citations, retrieved,
uncited_retrieved`` (the counts behind ``cited_rate``, ``citations_per_answer`` and
``uncited_retrieved_share``; no labelled set, no judgements) from the workspace's current files,
timed in this process, best of ``--repeat`` rounds after one untimed warm-up round whose
results are cross-checked:

``assay``
    ``with Workspace.open(ws) as w: rag_signals(w)`` (opening the workspace and its DuckDB
    engine included; Arrow out, rates included).
``sql``
    One query on a new DuckDB connection over ``read_parquet(files, hive_partitioning =
    true)``, with DuckDB's list functions (``list_distinct``, ``list_filter`` with lambdas,
    ``list_contains``) per answer: what one would write by hand.

The workspace: ``--workspace PATH``, or else the one ``ingest_memory.py`` keeps for
``--events N`` (synth data: RAG turns carry 3-5 retrieved doc ids, about half cited), ingested
now through the CLI if missing.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/rag_signals.py --events 10000000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb
from deltalake import DeltaTable

import _bench
from _bench import ratio, secs

GOAL = 2.0
COUNTS = ("answers", "cited_answers", "citations", "retrieved", "uncited_retrieved")

SQL = """
WITH a AS (
  SELECT tenant_id, event_date AS day,
         list_distinct(list_filter(retrieved_doc_ids, lambda x: x IS NOT NULL)) AS r,
         list_distinct(list_filter(coalesce(cited_doc_ids, []), lambda x: x IS NOT NULL)) AS c
  FROM read_parquet(?, hive_partitioning = true)
  WHERE event_type = 'turn' AND len(retrieved_doc_ids) > 0
)
SELECT tenant_id, day, count(*) AS answers,
       count(*) FILTER (WHERE len(c) > 0) AS cited_answers,
       sum(len(c)) AS citations, sum(len(r)) AS retrieved,
       sum(len(list_filter(r, lambda x: NOT list_contains(c, x)))) AS uncited_retrieved
FROM a WHERE len(r) > 0
GROUP BY ALL ORDER BY ALL
"""


def _files(ws: Path) -> list[str]:
    return [unquote(urlparse(u).path) for u in DeltaTable(str(ws / "events")).file_uris()]


def run_assay(ws: Path) -> list[tuple[Any, ...]]:
    import assay
    from assay.rag import rag_signals

    with assay.Workspace.open(ws) as w:
        table = rag_signals(w)
    cols = [table.column(n).to_pylist() for n in ("tenant_id", "day", *COUNTS)]
    return list(zip(*cols, strict=True))


def run_sql(ws: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        rows = con.execute(SQL, [_files(ws)]).fetchall()
    finally:
        con.close()
    return [(t, d, *(int(v) for v in rest)) for t, d, *rest in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--workspace", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ws = args.workspace or _bench.ingested_workspace(_bench.dataset(args.events))
    _bench.print_machine()
    n_events = sum(
        DeltaTable(str(ws / "events"))
        .get_add_actions(flatten=True)
        .column("num_records")
        .to_pylist()
    )
    print(f"workspace {ws}: {n_events:,} events")
    sides = {"assay": run_assay, "sql": run_sql}
    warm = {name: fn(ws) for name, fn in sides.items()}
    assert warm["assay"] == warm["sql"], "assay and SQL disagree"
    answers = sum(r[2] for r in warm["sql"])
    print(f"checked: {len(warm['sql']):,} (tenant, day) rows, {answers:,} answers, equal")
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, fn in sides.items():
            start = time.perf_counter()
            fn(ws)
            took = time.perf_counter() - start
            best[name] = min(best.get(name, took), took)
    print()
    print(f"| side | best of {args.repeat} |")
    print("|---|---|")
    for name, took in best.items():
        print(f"| {name} | {secs(took)} |")
    verdict = "met" if best["assay"] <= GOAL * best["sql"] else "NOT met"
    print(f"\nassay / sql = {ratio(best['assay'], best['sql'])} (goal <= {GOAL}x: {verdict})")


if __name__ == "__main__":
    main()
