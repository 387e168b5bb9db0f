"""RAG signals from telemetry: citations, citation precision and recall, groundedness.

The counts are the Ibis expressions of :mod:`assay.metrics` (``answer_docs``,
``answer_sets``: the definitions of ``Metrics.health``'s RAG counts, written once), joined
with a labelled set (qrels) and with the stored judgements of :mod:`assay.rag._judge`, and
run on the workspace's engine. Every rate is a ratio of summed counts (successes / trials),
never a mean of per-answer ratios, and is null where it has no trials. Definitions:
``docs/metrics.md`` (RAG signals) and ``docs/rag.md``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

from assay._errors import UsageError
from assay.metrics import check_date, check_range, check_tenant, workspace_events
from assay.metrics._exprs import answer_docs, answer_sets, event_keys
from assay.rag._judge import judgements
from assay.rag._qrels import Qrels
from assay.schema import SLICE_FIELDS

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from assay.store import Workspace

#: The workspace table that ``assay rag qrels import`` writes (replaced on each import).
QRELS_TABLE = "rag_qrels"
#: The ``attributes`` key holding an answer's query id (joins it to the qrels).
QUERY_KEY = "query_id"

_QRELS_SCHEMA = pa.schema(
    [
        pa.field("query_id", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("relevance", pa.int64(), nullable=False),
    ]
)
_EPOCH = dt.date(1970, 1, 1)

#: The count columns of :func:`signal_counts`, in order.
COUNTS: tuple[str, ...] = (
    "answers",
    "cited_answers",
    "citations",
    "retrieved",
    "uncited_retrieved",
    "covered_answers",
    "covered_citations",
    "cited_relevant",
    "relevant",
    "judged_answers",
    "judge_errors",
    "grounded_answers",
    "claims",
    "supported_claims",
)
#: Each rate of :func:`rag_signals`: (numerator, denominator) of :data:`COUNTS`.
RATES: dict[str, tuple[str, str]] = {
    "cited_rate": ("cited_answers", "answers"),
    "citations_per_answer": ("citations", "answers"),
    "uncited_retrieved_share": ("uncited_retrieved", "retrieved"),
    "citation_precision": ("cited_relevant", "covered_citations"),
    "citation_recall": ("cited_relevant", "relevant"),
    "groundedness": ("supported_claims", "claims"),
    "grounded_rate": ("grounded_answers", "judged_answers"),
}


def qrels_table(qrels: Qrels) -> pa.Table:
    """``query_id, doc_id, relevance``: one row per judgement of ``qrels``."""
    rows = [
        {"query_id": q, "doc_id": d, "relevance": int(r)}
        for q, docs in qrels.judgements.items()
        for d, r in docs.items()
    ]
    return pa.Table.from_pylist(rows, schema=_QRELS_SCHEMA)


def store_qrels(ws: Workspace, qrels: Qrels) -> int:
    """Store ``qrels`` as the workspace's labelled set (``rag_qrels``, replacing the one
    stored before); return the number of judgements stored.

    Only query ids, doc ids and relevance grades are stored: no text.
    """
    table = qrels_table(qrels)
    if table.num_rows == 0:
        raise UsageError(
            "the qrels hold no judgement (got an empty set); pass a qrels file with at least "
            "one 'query_id doc_id relevance' line"
        )
    with ws.lock.hold(ws.settings.lock_timeout_seconds):
        write_deltalake(
            str(ws.path / QRELS_TABLE),
            table,
            mode="overwrite",
            configuration={
                "delta.enableDeletionVectors": "false",
                "delta.dataSkippingStatsColumns": "",
            },
        )
    return int(table.num_rows)


def stored_qrels(ws: Workspace) -> Qrels | None:
    """The labelled set stored by :func:`store_qrels`, or None when there is none."""
    path = ws.path / QRELS_TABLE
    if not (path / "_delta_log").is_dir():
        return None
    table = DeltaTable(str(path)).to_pyarrow_table()
    judged: dict[str, dict[str, int]] = {}
    for q, d, r in zip(
        table.column("query_id").to_pylist(),
        table.column("doc_id").to_pylist(),
        table.column("relevance").to_pylist(),
        strict=True,
    ):
        judged.setdefault(str(q), {})[str(d)] = int(r)
    return Qrels(judged)


def judged_table(ws: Workspace, judge: str | None) -> pa.Table | None:
    """``tenant_id, event_id, j_claims, j_supported, j_error`` of one judge, or None."""
    table = judgements(ws)
    if table.num_rows == 0:
        return None
    names = sorted(set(table.column("judge").to_pylist()))
    if judge is None:
        if len(names) > 1:
            raise UsageError(
                f"the workspace holds judgements of {len(names)} judges ({', '.join(names)}); "
                "pick one with judge= (--judge)"
            )
        judge = names[0]
    elif judge not in names:
        raise UsageError(
            f"no stored judgement of judge {judge[:40]!r} (judges: {', '.join(names)}); "
            "run `assay rag judge` with it first, or pick one of those"
        )
    mine = table.filter(pc.equal(table.column("judge"), judge))
    error = pc.invert(pc.is_null(mine.column("error_kind")))
    return pa.table(
        {
            "j_tenant": mine.column("tenant_id"),
            "j_event": mine.column("event_id"),
            "j_claims": pc.cast(mine.column("claims"), pa.int64()),
            "j_supported": pc.cast(mine.column("supported"), pa.int64()),
            "j_error": pc.cast(error, pa.int64()),
        }
    )


def narrow_events(
    events: ir.Table,
    *,
    tenant: str | None,
    since: dt.date | None,
    until: dt.date | None,
    extra: Sequence[str] = (),
) -> ir.Table:
    """The events the signals read: tenant, day (integer), event id, type, doc id lists, the
    query id (``attributes['query_id']``) and the ``extra`` slice fields (``flight``: each
    distinct flight of the event, an event in no flight in no flight slice)."""
    t = events
    if tenant is not None:
        t = t.filter(t.tenant_id == tenant)
    if since is not None:
        t = t.filter(t.event_date >= ibis.literal(since, type="date"))
    if until is not None:
        t = t.filter(t.event_date <= ibis.literal(until, type="date"))
    t = t.filter(t.event_type == "turn")
    cols: dict[str, Any] = {
        "tenant_id": t.tenant_id,
        "event_id": t.event_id,
        "event_type": t.event_type,
        "day": t.event_date.epoch_days().cast("int64"),
        "retrieved_doc_ids": t.retrieved_doc_ids,
        "cited_doc_ids": t.cited_doc_ids,
        "event_time": t.event_time,
        QUERY_KEY: t.attributes.get(QUERY_KEY),
    }
    for name in extra:
        if name != "flight":
            cols[name] = t[name]
    if "flight" not in extra:
        return t.select(**cols)
    out = t.select(**cols, flight=t.flights.unnest())
    return out.filter(out.flight.notnull()).distinct()


def answer_table(
    ev: ir.Table,
    keys: Sequence[str],
    *,
    qrels: pa.Table | None = None,
    judged: pa.Table | None = None,
) -> ir.Table:
    """One row per answer: ``keys..., query_id, event_id`` and its counts ``retrieved``,
    ``citations``, ``uncited``, ``cited_rel`` (cited docs relevant to its query), ``covered``
    (1 when its query has a judgement), ``n_rel`` (relevant docs of its query when covered),
    ``judged`` (judged without error), ``jerr`` (a failed judgement), ``claims``,
    ``supported`` (0 unless judged), ``cited`` (1 with a citation), ``grounded`` (1 when
    judged with every claim supported). See :func:`signal_counts`.
    """
    zero = ibis.literal(0, type="int64")
    ident = event_keys(keys)
    sets = answer_sets(ev)
    cols: dict[str, Any] = {k: sets[k] for k in dict.fromkeys([*keys, *ident])}
    # The query id is read (a map lookup per answer) only when a labelled set needs it.
    cols[QUERY_KEY] = sets[QUERY_KEY] if qrels is not None else ibis.null("string")
    answers = sets.select(
        **cols,
        retrieved=sets.n_retrieved,
        citations=sets.n_cited,
        uncited=sets.n_uncited,
    )
    if qrels is not None:
        # Citation precision needs each cited doc's relevance: the doc ids, one row each.
        covered = ibis.memtable(pa.table({"c_query": pc.unique(qrels.column("query_id"))}))
        relevant = qrels.filter(pc.greater(qrels.column("relevance"), 0))
        rel_pairs = ibis.memtable(
            pa.table(
                {
                    "r_query": relevant.column("query_id"),
                    "r_doc": relevant.column("doc_id"),
                    "r_one": pa.array([1] * relevant.num_rows, pa.int64()),
                }
            )
        )
        docs = answer_docs(ev, [*ident, QUERY_KEY])
        docs = docs.filter(docs.cited == 1)
        docs = docs.inner_join(
            rel_pairs, [docs[QUERY_KEY] == rel_pairs.r_query, docs.doc == rel_pairs.r_doc]
        )
        hits = docs.group_by(ident).agg(cited_rel=docs.count())
        hits = hits.rename({f"h_{k}": k for k in ident})
        answers = answers.left_join(hits, [answers[k] == hits[f"h_{k}"] for k in ident])
        answers = answers.left_join(covered, answers[QUERY_KEY] == covered.c_query)
        answers = answers.mutate(
            cited_rel=answers.cited_rel.fill_null(0).cast("int64"),
            covered=ibis.ifelse(answers.c_query.notnull(), 1, 0).cast("int64"),
        )
    else:
        answers = answers.mutate(cited_rel=zero, covered=zero)
    if qrels is not None:
        relevant = qrels.filter(pc.greater(qrels.column("relevance"), 0))
        per_query = relevant.group_by("query_id").aggregate([("doc_id", "count_distinct")])
        n_rel = ibis.memtable(
            pa.table(
                {
                    "n_query": per_query.column("query_id"),
                    "n_rel": pc.cast(per_query.column("doc_id_count_distinct"), pa.int64()),
                }
            )
        )
        answers = answers.left_join(n_rel, answers[QUERY_KEY] == n_rel.n_query)
        answers = answers.mutate(n_rel=answers.n_rel.fill_null(0) * answers.covered)
    else:
        answers = answers.mutate(n_rel=zero)
    if judged is not None and judged.num_rows:
        j = ibis.memtable(judged)
        answers = answers.left_join(
            j, [answers.tenant_id == j.j_tenant, answers.event_id == j.j_event]
        )
        ok = answers.j_tenant.notnull() & (answers.j_error == 0)
        answers = answers.mutate(
            judged=ibis.ifelse(ok, 1, 0).cast("int64"),
            jerr=ibis.ifelse(answers.j_error == 1, 1, 0).cast("int64").fill_null(0),
            claims=ibis.ifelse(ok, answers.j_claims, 0).cast("int64"),
            supported=ibis.ifelse(ok, answers.j_supported, 0).cast("int64"),
        )
    else:
        answers = answers.mutate(judged=zero, jerr=zero, claims=zero, supported=zero)
    grounded = (answers.judged == 1) & (answers.claims > 0) & (answers.supported == answers.claims)
    return answers.select(
        *keys,
        QUERY_KEY,
        "event_id",
        "retrieved",
        "citations",
        "uncited",
        "cited_rel",
        "covered",
        "n_rel",
        "judged",
        "jerr",
        "claims",
        "supported",
        cited=ibis.ifelse(answers.citations > 0, 1, 0).cast("int64"),
        grounded=ibis.ifelse(grounded, 1, 0).cast("int64"),
    )


def signal_counts(
    ev: ir.Table,
    keys: Sequence[str],
    *,
    qrels: pa.Table | None = None,
    judged: pa.Table | None = None,
) -> ir.Table:
    """``keys..., COUNTS...``: the RAG counts per group of ``keys`` (columns of ``ev``, as
    :func:`narrow_events` makes it); groups without an answer have no row.

    ``qrels`` (``query_id, doc_id, relevance``) adds citation precision and recall over the
    *covered* answers, those whose query id has a judgement; ``judged`` (from the stored
    judgements) adds groundedness over the judged answers.
    """
    answers = answer_table(ev, keys, qrels=qrels, judged=judged)
    return answers.group_by(list(keys)).agg(
        answers=answers.count(),
        cited_answers=answers.cited.sum(),
        citations=answers.citations.sum(),
        retrieved=answers.retrieved.sum(),
        uncited_retrieved=answers.uncited.sum(),
        covered_answers=answers.covered.sum(),
        covered_citations=(answers.citations * answers.covered).sum(),
        cited_relevant=(answers.cited_rel * answers.covered).sum(),
        relevant=answers.n_rel.sum(),
        judged_answers=answers.judged.sum(),
        judge_errors=answers.jerr.sum(),
        grounded_answers=answers.grounded.sum(),
        claims=answers.claims.sum(),
        supported_claims=answers.supported.sum(),
    )


def with_rates(table: pa.Table) -> pa.Table:
    """``table`` (with :data:`COUNTS`) plus each rate of :data:`RATES`; null where its
    denominator is 0."""
    out = table
    for name, (num, den) in RATES.items():
        n = pc.cast(table.column(num), pa.float64())
        d = pc.cast(table.column(den), pa.float64())
        valid = pc.greater(d, 0.0)
        rate = pc.if_else(valid, pc.divide(n, pc.if_else(valid, d, 1.0)), None)
        out = out.append_column(name, pc.cast(rate, pa.float64()))
    return out


def check_by(by: object) -> str | None:
    if by is None:
        return None
    if by not in SLICE_FIELDS:
        raise UsageError(
            f"by must be one of {', '.join(SLICE_FIELDS)} (got {str(by)[:40]!r}); "
            "use e.g. --by locale"
        )
    return str(by)


def rag_signals(
    ws: Workspace,
    *,
    tenant: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    by: str | None = None,
    qrels: Qrels | None = None,
    judge: str | None = None,
) -> pa.Table:
    """The RAG signals per tenant (and slice) and day, from the stored events.

    Answers are ``turn`` events with a non-empty ``retrieved_doc_ids``; doc ids count once per
    answer (``docs/metrics.md``, RAG signals). Per group and day with at least one answer:

    - ``answers``, ``cited_answers`` (>= 1 citation), ``citations`` (distinct cited doc ids),
      ``retrieved`` (distinct retrieved doc ids), ``uncited_retrieved`` (retrieved, not cited);
    - with a labelled set (``qrels``, default the one stored by ``assay rag qrels import``;
      the answer's query is ``attributes['query_id']``): ``covered_answers`` (its query has
      a judgement), ``covered_citations`` (their citations), ``cited_relevant`` (of those,
      relevance > 0 for the answer's query; an unjudged doc is not relevant, as in trec_eval)
      and ``relevant`` (relevant docs of their queries, summed per answer);
    - with stored judgements (``assay rag judge``; ``judge`` picks one when several judged):
      ``judged_answers`` (judged without error), ``judge_errors`` (a failed judgement: never a
      score), ``grounded_answers`` (every claim supported), ``claims``,
      ``supported_claims``;
    - the rates ``cited_rate``, ``citations_per_answer``, ``uncited_retrieved_share``,
      ``citation_precision = cited_relevant / covered_citations``, ``citation_recall =
      cited_relevant / relevant``, ``groundedness = supported_claims / claims`` and
      ``grounded_rate = grounded_answers / judged_answers``, each null without trials.

    Parameters
    ----------
    ws : assay.Workspace
    tenant, since, until : only this tenant and these days (inclusive); default all.
    by : a slice field (locale, platform, app_version, model_version, prompt_template, flight).
    qrels : the labelled set; default the stored one (none: the qrels counts are 0).
    judge : the judge whose judgements count (default: the only one stored).

    Returns
    -------
    pyarrow.Table
        ``tenant_id, [by], day, COUNTS..., RATES...`` sorted by tenant, slice and day.
    """
    tenant = check_tenant(tenant)
    since = check_date("since", since)
    until = check_date("until", until)
    check_range(since, until)
    by = check_by(by)
    keys = ["tenant_id", "day"] if by is None else ["tenant_id", by, "day"]
    ev = narrow_events(
        workspace_events(ws), tenant=tenant, since=since, until=until, extra=[by] if by else []
    )
    labelled = qrels if qrels is not None else stored_qrels(ws)
    counts = signal_counts(
        ev,
        keys,
        qrels=None if labelled is None else qrels_table(labelled),
        judged=judged_table(ws, judge),
    ).to_pyarrow()
    arrays = []
    for name in keys:
        column = counts.column(name)
        if name == "day":
            column = pc.cast(pc.cast(column, pa.int32()), pa.date32())
        else:
            column = pc.cast(column, pa.string())
        arrays.append(column)
    arrays += [pc.cast(pc.fill_null(counts.column(c), 0), pa.int64()) for c in COUNTS]
    table = pa.Table.from_arrays(arrays, names=[*keys, *COUNTS])
    table = table.sort_by([(k, "ascending") for k in keys])
    return with_rates(table)


__all__ = [
    "COUNTS",
    "QRELS_TABLE",
    "QUERY_KEY",
    "RATES",
    "answer_table",
    "check_by",
    "judged_table",
    "narrow_events",
    "qrels_table",
    "rag_signals",
    "signal_counts",
    "store_qrels",
    "stored_qrels",
    "with_rates",
]
