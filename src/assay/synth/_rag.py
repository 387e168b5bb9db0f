"""Retrieval with known relevance, and a release that retrieves worse in one locale.

On with ``SynthConfig(rag=True)``; off by default, so that the data sets (and their bytes)
made without it do not change. With it on:

- Each tenant has a corpus of ``2000`` doc ids (``doc-...``, as without it) and
  :data:`QUERIES_PER_TENANT` queries; query *q* of tenant *t* has :data:`RELEVANT_PER_QUERY`
  relevant docs (relevance 2 for the first, 1 for the others; every other doc is not
  relevant). :func:`qrels` lists them (the labelled set, as ``assay rag qrels import`` reads
  it).
- Every RAG turn (templates ``rag-v3``, ``rag-v2``, ``rag-v4``) asks one query of its tenant,
  drawn uniformly, carried as ``attributes['query_id']``. Its 3 to 5 retrieved slots (the
  same counts as without it) hold ``min(Binomial(slots, hit_rate), 3)`` relevant docs first,
  then docs drawn from the rest of the corpus (two may repeat: a duplicate in the list).
  Each retrieved doc is cited with probability :data:`CITE_RELEVANT` when relevant and
  :data:`CITE_OTHER` otherwise.
- The injected release (a day of the middle of the period, from the incident stream, drawn
  after the other incidents so that they do not move): from its first day every ``rag-v2``
  turn of every tenant runs ``rag-v4`` instead (same latency), and in one locale ``rag-v4``
  retrieves and cites worse (:data:`BAD_HIT_RATE`, :data:`BAD_CITE_RELEVANT`,
  :data:`BAD_CITE_OTHER`). Other locales and templates do not change. ``truth.json`` lists
  it as the incident ``rag_release`` (metric ``cited_rate``, slice ``locale`` and
  ``prompt_template``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from assay.synth._format import prefixed_numbers

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

#: The random stream of retrieval (one per day), apart from the day's own stream.
STREAM_RAG = 5
RAG_RELEASE_TEMPLATE = "rag-v4"
#: The template the release replaces (index into ``PROMPT_TEMPLATES``).
REPLACED_TEMPLATE = 1
QUERIES_PER_TENANT = 300
RELEVANT_PER_QUERY = 3
HIT_RATE = 0.7
CITE_RELEVANT = 0.8
CITE_OTHER = 0.15
BAD_HIT_RATE = 0.2
BAD_CITE_RELEVANT = 0.3
BAD_CITE_OTHER = 0.05


def query_ids(tenants: int) -> pa.Array:
    """Every query id, tenant by tenant: query *q* of tenant *t* is number ``t * Q + q``."""
    return prefixed_numbers("q-", np.arange(tenants * QUERIES_PER_TENANT, dtype=np.int64), 6)


def relevant_docs(query: I64, docs_per_tenant: int) -> I64:
    """The relevant doc numbers of global query numbers ``query``, shape (n, 3)."""
    tenant = query // QUERIES_PER_TENANT
    q = query % QUERIES_PER_TENANT
    j = np.arange(RELEVANT_PER_QUERY, dtype=np.int64)
    local = (q[:, None] * 37 + j[None, :] * 11) % docs_per_tenant
    return (tenant[:, None] * docs_per_tenant + local).astype(np.int64)


@functools.lru_cache(maxsize=4)
def query_attributes(tenants: int) -> pa.Array:
    """One ``attributes`` map per query: ``{"query_id": ...}``."""
    ids = query_ids(tenants).to_pylist()
    return pa.array([[("query_id", q)] for q in ids], pa.map_(pa.string(), pa.string()))


def retrieve(
    rng: np.random.Generator,
    *,
    tenant: I64,
    n_docs: I64,
    bad: Bool,
    docs_per_tenant: int,
) -> tuple[I64, I64, I64, Bool]:
    """Draw each turn's query, retrieved docs and citations.

    ``bad`` marks the turns of the bad release in its locale. Returns the global query number
    per turn (-1 without retrieval), the retrieved doc numbers (flat, turn after turn,
    ``n_docs`` each), the relevant docs retrieved per turn, and the cited mask (flat, aligned
    with the docs).
    """
    n_t = len(tenant)
    rag = n_docs > 0
    query = np.where(
        rag, tenant * QUERIES_PER_TENANT + rng.integers(0, QUERIES_PER_TENANT, n_t), -1
    ).astype(np.int64)
    hit = np.where(bad, BAD_HIT_RATE, HIT_RATE)
    n_rel = np.minimum(rng.binomial(n_docs, hit), RELEVANT_PER_QUERY).astype(np.int64)
    owner = np.repeat(np.arange(n_t, dtype=np.int64), n_docs)
    first = np.cumsum(n_docs) - n_docs
    slot = np.arange(len(owner), dtype=np.int64) - first[owner]
    is_rel = slot < n_rel[owner]
    rel = relevant_docs(np.maximum(query, 0), docs_per_tenant)
    q_local = np.maximum(query, 0) % QUERIES_PER_TENANT
    base = (q_local * 37) % docs_per_tenant
    # Other docs: anywhere in the corpus; one that happens to be relevant is moved to base + 5,
    # never relevant (the relevant ones sit at base, base + 11 and base + 22).
    other = rng.integers(0, docs_per_tenant, len(owner)).astype(np.int64)
    other = tenant[owner] * docs_per_tenant + other
    relevant_here = (other[:, None] == rel[owner]).any(axis=1)
    other = np.where(relevant_here, tenant[owner] * docs_per_tenant + (base[owner] + 5), other)
    docs = np.where(is_rel, rel[owner, np.minimum(slot, RELEVANT_PER_QUERY - 1)], other)
    p_rel = np.where(bad, BAD_CITE_RELEVANT, CITE_RELEVANT)[owner]
    p_other = np.where(bad, BAD_CITE_OTHER, CITE_OTHER)[owner]
    cited = rng.random(len(owner)) < np.where(is_rel, p_rel, p_other)
    return query, docs.astype(np.int64), n_rel, cited


def qrels_rows(tenants: int, docs_per_tenant: int, width: int) -> list[dict[str, Any]]:
    """The labelled set: ``query_id, doc_id, relevance`` for every relevant doc."""
    ids = query_ids(tenants).to_pylist()
    rel = relevant_docs(np.arange(len(ids), dtype=np.int64), docs_per_tenant)
    names = prefixed_numbers("doc-", rel.reshape(-1), width).to_pylist()
    return [
        {
            "query_id": ids[i],
            "doc_id": names[i * RELEVANT_PER_QUERY + j],
            "relevance": 2 if j == 0 else 1,
        }
        for i in range(len(ids))
        for j in range(RELEVANT_PER_QUERY)
    ]
