"""Vectorised simulation of one day of events, and its two renderings: Arrow and JSON Lines.

A day is simulated once into :class:`DayData`: numpy arrays per session, per turn and per event
(values as indices into small pools where they repeat). :func:`to_table` decodes it into an
Arrow table in input form; :func:`to_jsonl` renders it straight to JSON lines, rendering each
pooled value, each session's and each turn's fields once, and joining per event only the
pieces (see :mod:`assay.synth._jsonl`).
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from assay.schema._fields import EVENT_TYPES, FIELDS
from assay.synth import _rag
from assay.synth import _world as w
from assay.synth._clinc import OOS_INTENT, load_clinc150
from assay.synth._format import mix64, prefixed_numbers, rfc3339_strings, uuid_strings
from assay.synth._jsonl import fragments, join, join_skipping_nulls
from assay.synth._pii import PII_KINDS, email, phone, with_pii
from assay.synth._predictions import predictions_truth
from assay.synth._world import SynthConfig, World, build_truth, build_world, rng_for

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

#: Most rows in one table yielded by :func:`generate`.
MAX_BATCH_ROWS = 250_000
#: Events rendered to JSON at a time (bounds the size of one Arrow string buffer).
RENDER_ROWS = 65_536

_ARROW_OF_KIND: dict[str, pa.DataType] = {
    "string": pa.string(),
    "time": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "string_list": pa.list_(pa.string()),
    "string_map": pa.map_(pa.string(), pa.string()),
}

#: Arrow schema of the tables :func:`generate` yields: every input field, in schema order.
INPUT_SCHEMA: pa.Schema = pa.schema([pa.field(f.name, _ARROW_OF_KIND[f.kind]) for f in FIELDS])

_START, _TURN, _FEEDBACK, _HANDOFF, _ERROR, _END = range(len(EVENT_TYPES))
_CHANNELS = ("widget", "portal", "app", "teams")
_REFERRERS = ("direct", "search", "notification", "email")
_DOCS_PER_TENANT = 2000
_POOLED = {
    "event_type": EVENT_TYPES,
    "locale": w.LOCALES,
    "platform": w.PLATFORMS,
    "app_version": w.APP_VERSIONS,
    "model_version": w.MODEL_VERSIONS,
    # The last template is the injected RAG release's, used only with SynthConfig(rag=True).
    "prompt_template": (*w.PROMPT_TEMPLATES, _rag.RAG_RELEASE_TEMPLATE),
    "error_code": w.ERROR_CODES,
}


@dataclass(frozen=True, eq=False)
class _Pools:
    """Values that rows take by index, as Arrow arrays and as rendered JSON fragments."""

    values: dict[str, pa.Array]
    frags: dict[str, pa.Array]
    texts_py: list[str]
    text_tokens: I64
    intent_start: I64
    intent_count: I64
    intent_cum: F64
    oos_intent: int


@functools.lru_cache(maxsize=4)
def _pools(world: World) -> _Pools:
    clinc = load_clinc150()
    intents_col = clinc.column("intent").to_pylist()
    texts_col = clinc.column("text").to_pylist()
    names = [*sorted(set(intents_col) - {OOS_INTENT}), OOS_INTENT]
    code = {name: i for i, name in enumerate(names)}
    codes = np.array([code[i] for i in intents_col], dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    texts_py = [texts_col[i] for i in order]
    counts = np.bincount(codes, minlength=len(names)).astype(np.int64)
    intent_p = np.append(world.intent_p, w.OOS_RATE)
    attrs: list[list[tuple[str, str]]] = []
    for channel in _CHANNELS:
        for ref in (*_REFERRERS, None):
            entry = [("channel", channel)]
            if ref is not None:
                entry.append(("referrer", ref))
            attrs.append(entry)
    values = {k: pa.array(v, pa.string()) for k, v in _POOLED.items()}
    values["tenant_id"] = pa.array(world.tenant_ids, pa.string())
    values["user_id"] = prefixed_numbers("user-", world.user_number, world.user_id_width)
    values["text"] = pa.array(texts_py, pa.string())
    values["intent"] = pa.array(names, pa.string())
    values["flights"] = pa.array([list(c) for c in world.flight_combos], pa.list_(pa.string()))
    values["attributes"] = pa.array(attrs, pa.map_(pa.string(), pa.string()))
    values["turn_index"] = pa.array(np.arange(w.MAX_TURNS), pa.int64())
    values["handoff"] = pa.array([True])
    return _Pools(
        values=values,
        frags={k: fragments(k, v) for k, v in values.items()},
        texts_py=texts_py,
        text_tokens=np.array([len(t) // 4 + 1 for t in texts_py], dtype=np.int64),
        intent_start=(np.cumsum(counts) - counts).astype(np.int64),
        intent_count=counts,
        intent_cum=np.cumsum(intent_p / intent_p.sum()),
        oos_intent=len(names) - 1,
    )


@dataclass(frozen=True, eq=False)
class DayData:
    """One simulated day: sessions starting that day, their turns, and all their events.

    ``s_*`` arrays have one entry per session, ``t_*`` per turn, ``ev_*`` per event (ordered
    by time). Pooled values are indices into the world's pools (``-1``: absent).
    """

    day: int
    s_ids: pa.Array
    s_tenant: I64
    s_user: I64
    s_locale: I64
    s_platform: I64
    s_app: I64
    s_model: I64
    s_flights: I64
    s_attr: I64
    attr_pool: pa.Array
    t_idx: I64
    t_template: I64
    t_latency: F64
    t_cost: F64
    t_tokens_in: I64
    t_tokens_out: I64
    t_intent: I64
    t_confidence: F64
    t_text: I64
    text_extra: pa.Array
    t_docs: pa.Array
    t_cited: pa.Array
    ev_ids: pa.Array
    ev_type: I64
    ev_sess: I64
    ev_turn: I64
    ev_time: I64
    ev_offset_min: I64
    ev_as_epoch: Bool
    ev_feedback: I64
    ev_rating: I64
    ev_error: I64
    s_p_thumbs_down: F64
    s_p_handoff: F64
    #: Per turn, its ``attributes`` (an index into ``attr_pool``), or None: turns carry none.
    t_attr: I64 | None = None

    @property
    def num_events(self) -> int:
        """Number of events of the day."""
        return len(self.ev_type)


def _choice(rng: np.random.Generator, p: tuple[float, ...], n: int) -> I64:
    cum = np.cumsum(p)
    return np.searchsorted(cum / cum[-1], rng.random(n), side="right").astype(np.int64)


def _take(pool: pa.Array, idx: I64) -> pa.Array:
    """``pool[idx]``, null where ``idx < 0``."""
    missing = idx < 0
    indices = pa.array(
        np.where(missing, 0, idx), pa.int64(), mask=missing if missing.any() else None
    )
    return pool.take(indices)


def _within_group_index(counts: I64) -> tuple[I64, I64]:
    """For groups of the given sizes laid end to end: each item's group and index inside it."""
    group = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    return group, np.arange(int(counts.sum()), dtype=np.int64) - first[group]


def _ids(config: SynthConfig, kind: int, day: int, n: int) -> pa.Array:
    """UUID-shaped ids, distinct across the whole data set for one ``kind`` and seed."""
    keys = np.random.SeedSequence([config.seed, w.STREAM_IDS, kind]).generate_state(2, np.uint64)
    counter = (np.uint64(day) << np.uint64(32)) + np.arange(n, dtype=np.uint64)
    return uuid_strings(mix64(counter ^ keys[0]), mix64(counter ^ keys[1]))


def _expand(values: npt.NDArray[Any], rows: I64, n: int, fill: int) -> npt.NDArray[Any]:
    """An array of length ``n`` holding ``values`` at ``rows`` and ``fill`` elsewhere."""
    out = np.full(n, fill, dtype=values.dtype if len(values) else np.int64)
    out[rows] = values
    return out


def simulate_day(world: World, day: int) -> DayData:
    """Simulate the sessions that start on ``day`` (index from ``config.start``)."""
    cfg = world.config
    pools = _pools(world)
    inc = world.incidents
    rng = rng_for(cfg, w.STREAM_DAY, day)
    day_ms = world.day0_ms + day * 86_400_000

    # Sessions: active users, 1 + Poisson sessions each, started near each user's usual hour.
    active = np.flatnonzero(rng.random(len(world.user_p)) < world.activity_prob(day))
    s_user = np.repeat(active, 1 + rng.poisson(w.EXTRA_SESSIONS_MEAN, len(active)))
    n_s = len(s_user)
    s_tenant = world.user_tenant[s_user]
    s_locale = world.user_locale[s_user]
    s_platform = world.user_platform[s_user]
    hour = np.mod(world.user_hour_utc[s_user] + rng.normal(0.0, 2.0, n_s), 24.0)
    s_start = day_ms + np.minimum(np.floor(hour * 3_600_000), 86_399_999).astype(np.int64)
    rolled_out = (
        (s_tenant == inc.handoff_tenant)
        & (s_locale == inc.handoff_locale)
        & (inc.handoff_start >= 0)
        & (day >= inc.handoff_start)
    )
    upgrade = world.user_upgrade[s_user]
    s_app = (day >= upgrade[:, 0]).astype(np.int64) + (day >= upgrade[:, 1])
    n_turns = np.minimum(rng.geometric(w.TURNS_GEOMETRIC_P, n_s), w.MAX_TURNS).astype(np.int64)
    handoff_p = np.where(rolled_out, w.HANDOFF_RATE * w.HANDOFF_FACTOR, w.HANDOFF_RATE)
    s_handoff = rng.random(n_s) < handoff_p
    s_ended = rng.random(n_s) >= w.ABANDON_RATE

    # Turns: think time, then the answer's latency, then the next turn.
    t_sess, t_idx = _within_group_index(n_turns)
    n_t = len(t_sess)
    first_turn = np.cumsum(n_turns) - n_turns
    last_turn = first_turn + n_turns - 1
    t_tenant = s_tenant[t_sess]
    t_template = _choice(rng, w.TEMPLATE_P, n_t)
    latency = np.array(w.TEMPLATE_MEDIAN_MS)[t_template] * np.exp(
        rng.normal(0.0, w.LATENCY_SIGMA, n_t)
    )
    if inc.latency_start >= 0 and day >= inc.latency_start:
        latency = np.where(t_template == w.REGRESSED_TEMPLATE, latency * w.LATENCY_FACTOR, latency)
    latency = np.round(latency, 1)
    gap = 3000.0 + rng.exponential(25_000.0, n_t)
    gap[1:] += np.where(t_idx[1:] > 0, latency[:-1], 0.0)
    cum = np.cumsum(gap)
    base = cum[first_turn] - gap[first_turn]
    t_time = s_start[t_sess] + np.round(cum - base[t_sess]).astype(np.int64)
    t_done = t_time + np.ceil(latency).astype(np.int64)

    intent = np.searchsorted(pools.intent_cum, rng.random(n_t), side="right")
    intent = np.minimum(intent, pools.oos_intent).astype(np.int64)
    is_oos = intent == pools.oos_intent
    utter = pools.intent_start[intent] + np.floor(
        rng.random(n_t) * pools.intent_count[intent]
    ).astype(np.int64)
    confidence = np.round(
        np.where(is_oos, rng.beta(2.0, 3.0, n_t), rng.beta(12.0, 1.5, n_t)), 4
    ).astype(np.float64)
    is_rag = np.isin(t_template, w.RAG_TEMPLATES)
    n_docs = np.where(is_rag, rng.integers(3, 6, n_t), 0).astype(np.int64)
    n_cited = rng.binomial(n_docs, 0.5).astype(np.int64)
    tokens_in = 60 + pools.text_tokens[utter] + 25 * t_idx + 350 * n_docs
    tokens_out = 1 + np.round(np.exp(rng.normal(np.log(160.0), 0.5, n_t))).astype(np.int64)
    cost = np.round((tokens_in * 0.4 + tokens_out * 1.6) / 1e6, 7)

    # Personal data planted in some utterances; values come from a seeded Python generator.
    text_idx = utter.copy()
    pii_rows = np.flatnonzero(rng.random(n_t) < cfg.pii_rate)
    pii_kind = _choice(rng, tuple(PII_KINDS.values()), len(pii_rows))
    prng = random.Random(int(rng.integers(0, 2**63)))
    kinds = tuple(PII_KINDS)
    pii_texts = [
        with_pii(pools.texts_py[utter[i]], kinds[k], prng)
        for i, k in zip(pii_rows.tolist(), pii_kind.tolist(), strict=True)
    ]
    text_idx[pii_rows] = len(pools.texts_py) + np.arange(len(pii_rows))

    # Retrieval: 3-5 distinct documents of the tenant's knowledge base, about half cited.
    doc_list, _ = _within_group_index(n_docs)
    step = rng.integers(1, 40, len(doc_list))
    walk = np.cumsum(step)
    doc_first = np.cumsum(n_docs) - n_docs
    head = doc_first[doc_list]
    start_doc = rng.integers(0, _DOCS_PER_TENANT, n_t)[doc_list]
    doc_no = (start_doc + walk - walk[head] + step[head]) % _DOCS_PER_TENANT
    doc_no = t_tenant[doc_list] * _DOCS_PER_TENANT + doc_no
    width = max(6, len(str(cfg.tenants * _DOCS_PER_TENANT)))
    docs = prefixed_numbers("doc-", doc_no.astype(np.int64), width)
    cited_list, cited_pos = _within_group_index(n_cited)
    cited = docs.take(pa.array(doc_first[cited_list] + cited_pos, pa.int64()))
    not_rag = pa.array(~is_rag)
    t_docs = pa.ListArray.from_arrays(_offsets(n_docs), docs, mask=not_rag)
    t_cited = pa.ListArray.from_arrays(_offsets(n_cited), cited, mask=not_rag)
    query = None
    if cfg.rag:
        t_template, query, t_docs, t_cited = _rag_turns(
            world, day, t_template, t_tenant, s_locale[t_sess], n_docs, not_rag
        )

    # Feedback, errors and handoffs.
    fb_rows = np.flatnonzero(rng.random(n_t) < w.FEEDBACK_RATE)
    n_fb = len(fb_rows)
    down_p = _down_probability(is_oos[fb_rows], latency[fb_rows])
    fb_value = np.where(rng.random(n_fb) < down_p, -1, 1).astype(np.int64)
    fb_rating = np.where(
        fb_value > 0, 4 + (rng.random(n_fb) < 0.6), 1 + (rng.random(n_fb) < 0.3)
    ).astype(np.int64)
    fb_rating = np.where(rng.random(n_fb) < w.RATING_GIVEN, fb_rating, 0)
    fb_time = t_done[fb_rows] + 2000 + np.round(rng.exponential(15_000.0, n_fb)).astype(np.int64)
    in_outage = inc.outage_start <= day <= inc.outage_end
    err_rate = np.where(
        in_outage & (t_tenant == inc.outage_tenant), w.OUTAGE_ERROR_RATE, w.ERROR_RATE
    )
    err_rows = np.flatnonzero(rng.random(n_t) < err_rate)
    err_code = _choice(rng, w.ERROR_CODE_P, len(err_rows))
    err_time = t_done[err_rows] + 1
    p_down = _thumbs_down_probability(t_sess, n_s, t_time[last_turn], t_done, is_oos, latency)
    ho_sess = np.flatnonzero(s_handoff)
    ho_time = (
        t_done[last_turn[ho_sess]]
        + 3000
        + np.round(rng.exponential(20_000.0, len(ho_sess))).astype(np.int64)
    )
    s_last = t_done[last_turn].copy()
    np.maximum.at(s_last, t_sess[fb_rows], fb_time)
    np.maximum.at(s_last, t_sess[err_rows], err_time)
    s_last[ho_sess] = np.maximum(s_last[ho_sess], ho_time)
    end_sess = np.flatnonzero(s_ended)
    end_time = (
        s_last[end_sess]
        + 30_000
        + np.round(rng.exponential(120_000.0, len(end_sess))).astype(np.int64)
    )

    # Events: one row each, ordered by time (ties keep the order built here).
    none = np.int64(-1)
    parts = (
        (_START, np.arange(n_s), np.full(n_s, none), s_start),
        (_TURN, t_sess, np.arange(n_t), t_time),
        (_FEEDBACK, t_sess[fb_rows], fb_rows, fb_time),
        (_HANDOFF, ho_sess, last_turn[ho_sess], ho_time),
        (_ERROR, t_sess[err_rows], err_rows, err_time),
        (_END, end_sess, np.full(len(end_sess), none), end_time),
    )
    ev_type = np.concatenate([np.full(len(p[1]), p[0], dtype=np.int64) for p in parts])
    ev_sess = np.concatenate([p[1] for p in parts]).astype(np.int64)
    ev_turn = np.concatenate([p[2] for p in parts]).astype(np.int64)
    ev_time = np.concatenate([p[3] for p in parts]).astype(np.int64)
    n = len(ev_type)
    fb_at = n_s + n_t + np.arange(n_fb)
    err_at = n_s + n_t + n_fb + len(ho_sess) + np.arange(len(err_rows))
    ev_feedback = _expand(fb_value, fb_at, n, 0)
    ev_rating = _expand(fb_rating, fb_at, n, 0)
    ev_error = _expand(err_code, err_at, n, -1)
    # Sessions may run past midnight into the next day, but not past the period: the data set
    # ends at its last day as an export would, rather than with a sliver of a day.
    within = np.flatnonzero(ev_time < world.day0_ms + cfg.days * 86_400_000)
    order = within[np.argsort(ev_time[within], kind="stable")]
    n = len(order)

    r = rng.random(n)
    as_epoch = r < w.EPOCH_MS_RATE
    shifted = (r >= w.EPOCH_MS_RATE) & (r < w.EPOCH_MS_RATE + w.OFFSET_TIME_RATE)
    offsets = np.array(w.TIME_OFFSETS_MIN, dtype=np.int64)[
        rng.integers(0, len(w.TIME_OFFSETS_MIN), n)
    ]

    # Attributes on session starts: a channel fitting the platform, sometimes a referrer, and
    # rarely a contact detail that redaction must catch.
    channel = np.select(
        [s_platform == 0, s_platform == 3], [rng.integers(0, 2, n_s), np.full(n_s, 3)], 2
    ).astype(np.int64)
    referrer = np.where(
        rng.random(n_s) < 0.6, rng.integers(0, len(_REFERRERS), n_s), len(_REFERRERS)
    ).astype(np.int64)
    s_attr = channel * (len(_REFERRERS) + 1) + referrer
    pii_attr = np.flatnonzero(rng.random(n_s) < w.ATTRIBUTE_PII_RATE)
    attr_pool = pools.values["attributes"]
    if len(pii_attr):
        extra = []
        for i in pii_attr.tolist():
            contact = email(prng) if prng.random() < 0.5 else phone(prng)
            extra.append([("channel", _CHANNELS[channel[i]]), ("contact", contact)])
        s_attr[pii_attr] = len(attr_pool) + np.arange(len(pii_attr))
        attr_pool = pa.concat_arrays([attr_pool, pa.array(extra, attr_pool.type)])
    t_attr = None
    if query is not None:
        t_attr = np.where(query >= 0, len(attr_pool) + query, -1).astype(np.int64)
        attr_pool = pa.concat_arrays([attr_pool, _rag.query_attributes(cfg.tenants)])

    return DayData(
        day=day,
        s_ids=_ids(cfg, 0, day, n_s),
        s_tenant=s_tenant,
        s_user=s_user,
        s_locale=s_locale,
        s_platform=s_platform,
        s_app=s_app,
        s_model=rolled_out.astype(np.int64),
        s_flights=np.where(world.user_flights[s_user] > 0, world.user_flights[s_user], -1),
        s_attr=s_attr,
        attr_pool=attr_pool,
        t_idx=t_idx,
        t_template=t_template,
        t_latency=latency,
        t_cost=cost,
        t_tokens_in=tokens_in,
        t_tokens_out=tokens_out,
        t_intent=intent,
        t_confidence=confidence,
        t_text=text_idx,
        text_extra=pa.array(pii_texts, pa.string()),
        t_docs=t_docs,
        t_cited=t_cited,
        ev_ids=_ids(cfg, 1, day, n),
        ev_type=ev_type[order],
        ev_sess=ev_sess[order],
        ev_turn=ev_turn[order],
        ev_time=ev_time[order],
        ev_offset_min=np.where(shifted, offsets, 0),
        ev_as_epoch=as_epoch,
        ev_feedback=ev_feedback[order],
        ev_rating=ev_rating[order],
        ev_error=ev_error[order],
        s_p_thumbs_down=p_down,
        s_p_handoff=handoff_p.astype(np.float64),
        t_attr=t_attr,
    )


def _rag_turns(
    world: World,
    day: int,
    template: I64,
    tenant: I64,
    locale: I64,
    n_docs: I64,
    not_rag: pa.Array,
) -> tuple[I64, I64, pa.Array, pa.Array]:
    """With ``SynthConfig(rag=True)``: the turns' templates after the RAG release, their
    queries, retrieved and cited doc ids (see :mod:`assay.synth._rag`), from a stream of
    their own so that no other draw moves."""
    cfg = world.config
    inc = world.incidents
    if inc.rag_start >= 0 and day >= inc.rag_start:
        released = len(w.PROMPT_TEMPLATES)
        template = np.where(template == _rag.REPLACED_TEMPLATE, released, template)
        bad = (template == released) & (locale == inc.rag_locale)
    else:
        bad = np.zeros(len(template), dtype=np.bool_)
    rng = rng_for(cfg, _rag.STREAM_RAG, day)
    query, doc_no, _, cited = _rag.retrieve(
        rng, tenant=tenant, n_docs=n_docs, bad=bad, docs_per_tenant=_DOCS_PER_TENANT
    )
    width = max(6, len(str(cfg.tenants * _DOCS_PER_TENANT)))
    docs = prefixed_numbers("doc-", doc_no, width)
    owner = np.repeat(np.arange(len(template), dtype=np.int64), n_docs)
    n_cited = np.bincount(owner[cited], minlength=len(template)).astype(np.int64)
    t_docs = pa.ListArray.from_arrays(_offsets(n_docs), docs, mask=not_rag)
    cited_docs = docs.filter(pa.array(cited))
    t_cited = pa.ListArray.from_arrays(_offsets(n_cited), cited_docs, mask=not_rag)
    return template.astype(np.int64), query, t_docs, t_cited


def rag_qrels(config: SynthConfig) -> pa.Table:
    """The labelled set of a ``SynthConfig(rag=True)`` data set: ``query_id, doc_id,
    relevance`` for every relevant doc of every query (see :mod:`assay.synth._rag`)."""
    width = max(6, len(str(config.tenants * _DOCS_PER_TENANT)))
    rows = _rag.qrels_rows(config.tenants, _DOCS_PER_TENANT, width)
    schema = pa.schema(
        [("query_id", pa.string()), ("doc_id", pa.string()), ("relevance", pa.int64())]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def _down_probability(is_oos: Bool, latency: F64) -> F64:
    """The probability that a turn's feedback is negative: higher out of scope and when slow."""
    return 0.15 + 0.3 * is_oos + 0.3 * (latency > 4000.0)


def session_labels(world: World, d: DayData) -> dict[str, list[Any]]:
    """The day's sessions and the true probability of each label (see ``truth.json``'s
    ``session_labels``), as JSON-ready columns."""
    tenant = _pools(world).values["tenant_id"].take(pa.array(d.s_tenant, pa.int64()))
    day = (world.config.start + dt.timedelta(days=d.day)).isoformat()
    return {
        "tenant_id": tenant.to_pylist(),
        "session_id": d.s_ids.to_pylist(),
        "day": [day] * len(d.s_tenant),
        "thumbs_down": [float(f"{v:.10g}") for v in d.s_p_thumbs_down.tolist()],
        "handoff": [float(f"{v:.10g}") for v in d.s_p_handoff.tolist()],
    }


def _thumbs_down_probability(
    t_sess: I64, n_s: int, prediction_ms: I64, t_done: I64, is_oos: Bool, latency: F64
) -> F64:
    """Per session, the probability of the ``thumbs_down`` label as the models define it (a
    feedback -1, or a rating <= 2, stamped at or after the session's last turn), given every
    draw of the day but the feedback draws: the exact law those draws follow below.

    Turn ``t`` gets feedback with probability ``FEEDBACK_RATE``, negative with probability
    ``down_p_t`` (every rating <= 2 comes with a -1), stamped ``t_done + 2000 + round(E)`` with
    ``E ~ Exponential(15 s)``: at or after the last turn's time ``T`` with probability
    ``q_t = 1`` when ``d = T - t_done - 2000 <= 0``, else ``exp(-(d - 0.5) / 15000)``. Turns are
    independent, so ``P = 1 - prod_t (1 - FEEDBACK_RATE * down_p_t * q_t)``.
    """
    down_p = _down_probability(is_oos, latency)
    gap = prediction_ms[t_sess] - t_done - 2000
    q = np.where(gap <= 0, 1.0, np.exp(-(np.maximum(gap, 0) - 0.5) / 15_000.0))
    log_keep = np.log1p(-w.FEEDBACK_RATE * down_p * q)
    total = np.zeros(n_s)
    np.add.at(total, t_sess, log_keep)
    return -np.expm1(total)


def _offsets(counts: I64) -> pa.Array:
    return pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32), pa.int32())


def _event_views(d: DayData) -> dict[str, I64]:
    """Per-event indices into the session, turn and pool arrays (``-1``: field absent)."""
    is_turn = d.ev_type == _TURN
    has_turn = d.ev_turn >= 0
    turn = np.where(has_turn, d.ev_turn, 0)
    turn_only = np.where(is_turn, d.ev_turn, -1)
    templated = np.isin(d.ev_type, (_TURN, _FEEDBACK, _ERROR))
    return {
        "turn_only": turn_only,
        "turn_index": np.where(has_turn, d.t_idx[turn] if len(d.t_idx) else 0, -1),
        "prompt_template": np.where(templated, d.t_template[turn] if len(d.t_idx) else 0, -1),
        "flights": d.s_flights[d.ev_sess],
        "attributes": np.where(
            d.ev_type == _START,
            d.s_attr[d.ev_sess],
            -1 if d.t_attr is None or not len(d.t_attr) else np.where(is_turn, d.t_attr[turn], -1),
        ),
        "error_code": d.ev_error,
        "handoff": np.where(d.ev_type == _HANDOFF, 0, -1),
    }


def to_table(world: World, d: DayData) -> pa.Table:
    """The day's events as an Arrow table in input form (schema :data:`INPUT_SCHEMA`)."""
    pools = _pools(world)
    v = pools.values
    view = _event_views(d)
    turn_only = view["turn_only"]
    sess = d.ev_sess
    texts = pa.concat_arrays([v["text"], d.text_extra])

    def turn_value(values: npt.NDArray[Any], type_: pa.DataType) -> pa.Array:
        return _take(pa.array(values, type_), turn_only)

    columns: dict[str, pa.Array] = {
        "event_id": d.ev_ids,
        "event_time": rfc3339_strings(d.ev_time, d.ev_offset_min),
        "tenant_id": _take(v["tenant_id"], d.s_tenant[sess]),
        "user_id": _take(v["user_id"], d.s_user[sess]),
        "session_id": d.s_ids.take(pa.array(sess, pa.int64())),
        "event_type": _take(v["event_type"], d.ev_type),
        "turn_index": _take(v["turn_index"], view["turn_index"]),
        "locale": _take(v["locale"], d.s_locale[sess]),
        "platform": _take(v["platform"], d.s_platform[sess]),
        "app_version": _take(v["app_version"], d.s_app[sess]),
        "model_version": _take(v["model_version"], d.s_model[sess]),
        "prompt_template": _take(v["prompt_template"], view["prompt_template"]),
        "flights": _take(v["flights"], view["flights"]),
        "latency_ms": turn_value(d.t_latency, pa.float64()),
        "cost_usd": turn_value(d.t_cost, pa.float64()),
        "tokens_in": turn_value(d.t_tokens_in, pa.int64()),
        "tokens_out": turn_value(d.t_tokens_out, pa.int64()),
        "intent": _take(v["intent"], np.where(turn_only >= 0, d.t_intent[turn_only], -1)),
        "intent_confidence": turn_value(d.t_confidence, pa.float64()),
        "feedback": pa.array(d.ev_feedback, pa.int64(), mask=d.ev_feedback == 0),
        "rating": pa.array(d.ev_rating, pa.int64(), mask=d.ev_rating == 0),
        "handoff": _take(v["handoff"], view["handoff"]),
        "error_code": _take(v["error_code"], view["error_code"]),
        "retrieved_doc_ids": _take(d.t_docs, turn_only),
        "cited_doc_ids": _take(d.t_cited, turn_only),
        "text": _take(texts, np.where(turn_only >= 0, d.t_text[turn_only], -1)),
        "attributes": _take(d.attr_pool, view["attributes"]),
    }
    return pa.Table.from_arrays(list(columns.values()), schema=INPUT_SCHEMA)


def to_jsonl(world: World, d: DayData) -> list[pa.Array]:
    """The day's events as JSON lines, in chunks of at most :data:`RENDER_ROWS` lines.

    Same content as :func:`to_table`, absent fields omitted, fields in schema order, and
    ``event_time`` as an integer of epoch milliseconds where ``ev_as_epoch`` says so.
    """
    pools = _pools(world)
    f = pools.frags
    view = _event_views(d)

    def numbers(name: str, values: npt.NDArray[Any], type_: pa.DataType) -> pa.Array:
        return fragments(name, pa.array(values, type_))

    # Each session's and each turn's fields are rendered once, then shared by their events.
    by_session = (
        pc.take(f["tenant_id"], pa.array(d.s_tenant)),
        pc.take(f["user_id"], pa.array(d.s_user)),
        fragments("session_id", d.s_ids),
    )
    session_a = join_skipping_nulls(*by_session)
    session_b = join_skipping_nulls(
        pc.take(f["locale"], pa.array(d.s_locale)),
        pc.take(f["platform"], pa.array(d.s_platform)),
        pc.take(f["app_version"], pa.array(d.s_app)),
        pc.take(f["model_version"], pa.array(d.s_model)),
    )
    texts = pa.concat_arrays([f["text"], fragments("text", d.text_extra)])
    turn_block = join_skipping_nulls(
        numbers("latency_ms", d.t_latency, pa.float64()),
        numbers("cost_usd", d.t_cost, pa.float64()),
        numbers("tokens_in", d.t_tokens_in, pa.int64()),
        numbers("tokens_out", d.t_tokens_out, pa.int64()),
        pc.take(f["intent"], pa.array(d.t_intent)),
        numbers("intent_confidence", d.t_confidence, pa.float64()),
        fragments("retrieved_doc_ids", d.t_docs),
        fragments("cited_doc_ids", d.t_cited),
        pc.take(texts, pa.array(d.t_text)),
    )
    times = rfc3339_strings(d.ev_time, d.ev_offset_min)
    epoch = pa.array(d.ev_as_epoch)
    feedback = pa.array(d.ev_feedback, pa.int64(), mask=d.ev_feedback == 0)
    rating = pa.array(d.ev_rating, pa.int64(), mask=d.ev_rating == 0)
    attributes = fragments("attributes", d.attr_pool)
    out = []
    for lo in range(0, d.num_events, RENDER_ROWS):
        hi = min(lo + RENDER_ROWS, d.num_events)
        sl = slice(lo, hi)
        sess = pa.array(d.ev_sess[sl])
        event_time = pc.if_else(
            epoch.slice(lo, hi - lo),
            join(',"event_time":', pa.array(d.ev_time[sl]).cast(pa.string())),
            join(',"event_time":"', times.slice(lo, hi - lo), '"'),
        )
        lines = join_skipping_nulls(
            join('{"event_id":"', d.ev_ids.slice(lo, hi - lo), '"'),
            event_time,
            pc.take(session_a, sess),
            pc.take(f["event_type"], pa.array(d.ev_type[sl])),
            _take(f["turn_index"], view["turn_index"][sl]),
            pc.take(session_b, sess),
            _take(f["prompt_template"], view["prompt_template"][sl]),
            _take(f["flights"], view["flights"][sl]),
            _take(turn_block, view["turn_only"][sl]),
            fragments("feedback", feedback.slice(lo, hi - lo)),
            fragments("rating", rating.slice(lo, hi - lo)),
            _take(f["handoff"], view["handoff"][sl]),
            _take(f["error_code"], view["error_code"][sl]),
            _take(attributes, view["attributes"][sl]),
            "}\n",
        )
        out.append(lines)
    return out


def generate(config: SynthConfig) -> Iterator[pa.Table]:
    """Generate synthetic events of schema v1 in input form, with known incidents.

    Parameters
    ----------
    config : SynthConfig
        What to generate; the same config always gives the same rows in the same order.

    Yields
    ------
    pyarrow.Table
        One table per day (split in tables of at most 250,000 rows if larger) holding the
        sessions that start that day, ordered by time, with schema :data:`INPUT_SCHEMA`: every
        field of schema v1 in schema order. ``event_time`` is an RFC 3339 string (``Z``, or a
        fixed offset for about 2% of rows); the rows that :func:`write` renders as integer epoch
        milliseconds in JSON Lines appear here as ``Z`` strings of the same instant, since an
        Arrow column holds one type. Fields an event does not carry are null. A day without
        sessions yields nothing.

    Examples
    --------
    >>> from assay.synth import SynthConfig, generate
    >>> first = next(generate(SynthConfig(tenants=2, users=20, days=3)))
    >>> first.column_names[:3]
    ['event_id', 'event_time', 'tenant_id']
    """
    world = build_world(config)
    for day in range(config.days):
        table = to_table(world, simulate_day(world, day))
        for offset in range(0, table.num_rows, MAX_BATCH_ROWS):
            yield table.slice(offset, MAX_BATCH_ROWS)


def truth(config: SynthConfig, *, sessions: bool = False) -> dict[str, Any]:
    """The ground truth of the data set :func:`generate` makes from ``config``.

    Cheap: it draws the tenants, users and incidents, but no events. With ``sessions=True``
    it also simulates every day for ``session_labels`` (each session's true label
    probabilities), as :func:`write` stores them. :func:`write` stores the
    same dictionary as ``truth.json``; its keys are described in :mod:`assay.synth`.

    Examples
    --------
    >>> from assay.synth import SynthConfig, truth
    >>> t = truth(SynthConfig(tenants=4, users=50, days=28))
    >>> [i["kind"] for i in t["incidents"]]
    ['outage', 'handoff_jump', 'latency_regression']
    """
    world = build_world(config)
    facts = {**build_truth(world), "predictions": predictions_truth()}
    if sessions:
        facts["session_labels"] = merge_session_labels(
            session_labels(world, simulate_day(world, day)) for day in range(config.days)
        )
    return facts


#: What ``truth.json``'s ``session_labels`` holds (stored with it).
SESSION_LABELS_DEFINITION = {
    "thumbs_down": "P(a feedback -1 or a rating <= 2 stamped at or after the session's last "
    "turn), given every draw but the feedback draws",
    "handoff": "P(a handoff event after the session's last turn): the session's handoff rate",
    "thumbs_down_next": "not recorded (it depends on the user's next session)",
}


def merge_session_labels(days: Iterable[dict[str, list[Any]]]) -> dict[str, Any]:
    """One ``session_labels`` object from the per-day columns of :func:`session_labels`."""
    out: dict[str, Any] = {"definition": SESSION_LABELS_DEFINITION}
    names = ("tenant_id", "session_id", "day", "thumbs_down", "handoff")
    cols: dict[str, list[Any]] = {n: [] for n in names}
    for part in days:
        for n in names:
            cols[n].extend(part[n])
    return {**out, **cols}
