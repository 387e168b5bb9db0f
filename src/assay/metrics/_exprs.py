"""The product metrics as Ibis expressions, written once for every engine.

Inside the engine a day is an integer: days since 1970-01-01, taken from the stored
``event_date`` (the UTC day computed at ingest). Integer arithmetic means the same thing on
DuckDB and on Spark, involves no time zone, and converts to Arrow ``date32`` without loss; the
caller does that conversion. Every expression here returns integer days.

Shapes that one engine accepts and another rejects are avoided on purpose: a trailing distinct
count is never a distinct count over a range window (Spark rejects it). It is a running sum of
per-user spans opening and closing (see ``_trailing_counts``), which reads each (user, active
day) once whatever the window. Rolling sums are row windows over a dense day grid, so a row
window is a calendar window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import ibis
import ibis.expr.datatypes as dt_
import ibis.expr.types as ir

#: Days from 1970-01-01 (a Thursday) back to the Monday that starts its ISO week.
_THURSDAY_TO_MONDAY = 3


@dataclass(frozen=True)
class Scope:
    """What one metric call covers.

    Attributes
    ----------
    by : the slice field, or None.
    since : first day of the output, in days since 1970-01-01, or None for no lower bound.
    until : last day of the output (and of the events read), in days since 1970-01-01.
    active_event_types : the event types that make a user active on a day.
    """

    by: str | None
    since: int | None
    until: int
    active_event_types: tuple[str, ...]

    @property
    def keys(self) -> list[str]:
        """The grouping keys: the tenant, then the slice if any."""
        return ["tenant_id"] if self.by is None else ["tenant_id", self.by]


def prepare(
    events: ir.Table, *, tenant: str | None, by: str | None, until_date: dt.date
) -> ir.Table:
    """Narrow the stored events to what the metrics read, one row per (event, slice value).

    Events after ``until_date`` are dropped: no metric row for a day reads a later day. For
    ``by="flight"`` each event appears once per distinct non-null flight it carries; an event
    in no flight is in no flight slice. For the other slices the field's value (null
    included, as its own slice) is carried along.
    """
    t = events
    if tenant is not None:
        t = t.filter(t.tenant_id == tenant)
    # Filtering on the partition column itself lets both engines prune partitions.
    t = t.filter(t.event_date <= ibis.literal(until_date, type="date"))
    columns: dict[str, ir.Value] = {
        "tenant_id": t.tenant_id,
        "user_id": t.user_id,
        "session_id": t.session_id,
        "event_type": t.event_type,
        "day": t.event_date.epoch_days().cast("int64"),
        "latency_ms": t.latency_ms,
        "tokens_in": t.tokens_in,
        "tokens_out": t.tokens_out,
        "cost_usd": t.cost_usd,
        "feedback": t.feedback,
        "handoff": t.handoff,
        "event_id": t.event_id,
        "retrieved_doc_ids": t.retrieved_doc_ids,
        "cited_doc_ids": t.cited_doc_ids,
    }
    if by is None:
        return t.select(**columns)
    if by == "flight":
        exploded = t.select(**columns, flight=t.flights.unnest())
        exploded = exploded.filter(exploded.flight.notnull())
        # A flight listed twice on one event still counts the event once in that flight.
        return exploded.distinct()
    return t.select(**columns, **{by: t[by]})


def _join(
    left: ir.Table,
    right: ir.Table,
    on: Sequence[str],
    *,
    null_safe: str | None,
    how: str = "left",
) -> ir.Table:
    """Join on the columns ``on``, keeping the left copy of each; the slice matches nulls."""
    renamed = right.rename({f"_r_{name}": name for name in on})
    predicates = [
        left[name].identical_to(renamed[f"_r_{name}"])
        if name == null_safe
        else left[name] == renamed[f"_r_{name}"]
        for name in on
    ]
    joined = left.join(renamed, predicates, how=how)
    return joined.drop(*[f"_r_{name}" for name in on])


def active_user_days(ev: ir.Table, scope: Scope) -> ir.Table:
    """Distinct (keys, user_id, day) where the user had an active event that day."""
    active = ev.filter(ev.event_type.isin(scope.active_event_types))
    return active.select(*scope.keys, "user_id", "day").distinct()


def _starts(user_days: ir.Table, scope: Scope) -> ir.Table:
    """Per group: its first active day and the first day of its output grid."""
    firsts = user_days.group_by(scope.keys).agg(first_day=user_days.day.min())
    start = firsts.first_day
    if scope.since is not None:
        start = ibis.greatest(firsts.first_day, ibis.literal(scope.since, type="int64"))
    firsts = firsts.mutate(start=start)
    return firsts.filter(firsts.start <= scope.until)


def _days_from(starts: ir.Table, scope: Scope, *, begin: str) -> ir.Table:
    """One row per group and day from its ``begin`` column to ``until``.

    A group whose first day falls after ``until`` gets no rows.
    """
    first = starts[begin]
    return starts.select(
        *scope.keys,
        "first_day",
        "start",
        day=ibis.range(first, scope.until + 1).unnest(),
    )


def _daily_counts(user_days: ir.Table, scope: Scope) -> ir.Table:
    return user_days.group_by([*scope.keys, "day"]).agg(dau=user_days.count())


def _trailing_counts(user_days: ir.Table, scope: Scope, window: int) -> ir.Table:
    """Distinct users active in the ``window`` days ending on each day of the full grid.

    Returns ``keys, first_day, start, day, active_users`` for every day from the group's
    first active day to ``until``.
    """
    # A user is counted on day e exactly when their latest active day a <= e has
    # e - a < window. So each active (user, a) covers the days [a, min(a + window, next a))
    # and a user's spans never overlap: the trailing distinct count is the number of spans
    # covering e, a running sum of (spans opening) - (spans closing) over the dense grid.
    # No distinct count over a window (which Spark rejects) and no per-offset expansion.
    by_user = ibis.window(group_by=[*scope.keys, "user_id"], order_by="day")
    spans = user_days.mutate(next_day=user_days.day.lead().over(by_user))
    reach = spans.day + window
    stop = ibis.ifelse(spans.next_day.notnull() & (spans.next_day < reach), spans.next_day, reach)
    closing = spans.select(*scope.keys, day=stop)
    closing = closing.group_by([*scope.keys, "day"]).agg(closed=closing.count())

    day_keys = [*scope.keys, "day"]
    grid = _days_from(_starts(user_days, scope), scope, begin="first_day")
    series = _join(grid, _daily_counts(user_days, scope), day_keys, null_safe=scope.by)
    series = _join(series, closing, day_keys, null_safe=scope.by)
    series = series.mutate(change=series.dau.fill_null(0) - series.closed.fill_null(0))
    running = ibis.window(group_by=scope.keys, order_by="day", rows=(None, 0))
    return series.select(
        *scope.keys,
        "first_day",
        "start",
        "day",
        active_users=series.change.sum().over(running).cast("int64"),
    )


def dau(ev: ir.Table, scope: Scope) -> ir.Table:
    """``keys, day, dau`` over the day grid."""
    user_days = active_user_days(ev, scope)
    grid = _days_from(_starts(user_days, scope), scope, begin="start")
    out = _join(grid, _daily_counts(user_days, scope), [*scope.keys, "day"], null_safe=scope.by)
    return out.select(*scope.keys, "day", dau=out.dau.fill_null(0))


def active_users(ev: ir.Table, scope: Scope, window: int) -> ir.Table:
    """``keys, day, window, active_users`` over the day grid."""
    counts = _trailing_counts(active_user_days(ev, scope), scope, window)
    counts = counts.filter(counts.day >= counts.start)
    return counts.select(
        *scope.keys,
        "day",
        window=ibis.literal(window, type="int64"),
        active_users="active_users",
    )


def dau_rolling(ev: ir.Table, scope: Scope, window: int, threshold: float) -> ir.Table:
    """``keys, day, dau, dau_avg, dau_prev_avg, drop`` over the day grid."""
    user_days = active_user_days(ev, scope)
    # The series runs from each group's first active day whatever `since` is, so that
    # `since` only trims rows and never changes a value.
    grid = _days_from(_starts(user_days, scope), scope, begin="first_day")
    series = _join(grid, _daily_counts(user_days, scope), [*scope.keys, "day"], null_safe=scope.by)
    series = series.mutate(dau=series.dau.fill_null(0))
    # The grid is dense (one row per calendar day), so row frames are calendar windows;
    # days before the first active day are absent and add 0 to the sums, as they should.
    current = ibis.window(group_by=scope.keys, order_by="day", rows=(-(window - 1), 0))
    prior = ibis.window(group_by=scope.keys, order_by="day", rows=(-(2 * window - 1), -window))
    series = series.mutate(
        current_sum=series.dau.sum().over(current),
        prior_sum=series.dau.sum().over(prior),
    )
    dau_avg = series.current_sum.cast("float64") / window
    full_prior = (series.day - series.first_day) >= (2 * window - 1)
    dau_prev_avg = ibis.ifelse(
        full_prior, series.prior_sum.cast("float64") / window, ibis.null("float64")
    )
    series = series.mutate(dau_avg=dau_avg, dau_prev_avg=dau_prev_avg)
    factor = ibis.literal(1.0 - threshold, type="float64")
    dropped = (
        series.dau_prev_avg.notnull()
        & (series.dau_prev_avg > 0)
        & (series.dau_avg <= factor * series.dau_prev_avg)
    )
    series = series.mutate(drop=dropped.fill_null(False))
    series = series.filter(series.day >= series.start)
    return series.select(*scope.keys, "day", "dau", "dau_avg", "dau_prev_avg", "drop")


def max_active(ev: ir.Table, scope: Scope, window: int) -> ir.Table:
    """``keys, window, max_active, window_start``: one row per group with a non-empty grid."""
    user_days = active_user_days(ev, scope)
    starts = _starts(user_days, scope)
    # A window lies inside the grid when it starts on or after the grid's first day, so its
    # last day runs from start + window - 1 to until; a shorter grid has no window at all.
    ends = _trailing_counts(user_days, scope, window)
    ends = ends.filter(ends.day >= ends.start + (window - 1))
    rank = ibis.row_number().over(
        group_by=scope.keys, order_by=[ibis.desc("active_users"), ibis.asc("day")]
    )
    best = ends.mutate(rank=rank)
    best = best.filter(best.rank == 0).select(
        *scope.keys, best_count="active_users", best_end="day"
    )
    out = _join(starts.select(*scope.keys), best, scope.keys, null_safe=scope.by)
    return out.select(
        *scope.keys,
        window=ibis.literal(window, type="int64"),
        max_active=out.best_count,
        window_start=out.best_end - (window - 1),
    )


def _monday(day: ir.IntegerValue) -> ir.IntegerValue:
    """The Monday (as days since 1970-01-01) of the ISO week holding ``day``."""
    # 1970-01-01 is a Thursday: shifting by 3 makes every Monday a multiple of 7. Floor
    # division keeps that true for days before 1970 too.
    week = (day + _THURSDAY_TO_MONDAY) // 7
    return (week * 7 - _THURSDAY_TO_MONDAY).cast("int64")


def retention(ev: ir.Table, scope: Scope) -> ir.Table:
    """``keys, cohort_week, week, users, retained, rate`` for cohorts in [since, until]."""
    user_days = active_user_days(ev, scope)
    user_weeks = user_days.select(*scope.keys, "user_id", monday=_monday(user_days.day))
    user_weeks = user_weeks.distinct()
    cohorts = user_weeks.group_by([*scope.keys, "user_id"]).agg(cohort_week=user_weeks.monday.min())
    last_monday = _monday(ibis.literal(scope.until, type="int64"))
    if scope.since is not None:
        first_monday = _monday(ibis.literal(scope.since, type="int64"))
        cohorts = cohorts.filter(cohorts.cohort_week >= first_monday)
    sizes = cohorts.group_by([*scope.keys, "cohort_week"]).agg(users=cohorts.count())
    grid = sizes.select(
        *scope.keys,
        "cohort_week",
        "users",
        week=ibis.range(0, (last_monday - sizes.cohort_week) // 7 + 1).unnest(),
    )
    seen = _join(user_weeks, cohorts, [*scope.keys, "user_id"], null_safe=scope.by, how="inner")
    seen = seen.select(
        *scope.keys,
        "cohort_week",
        week=((seen.monday - seen.cohort_week) // 7).cast("int64"),
    )
    retained = seen.group_by([*scope.keys, "cohort_week", "week"]).agg(retained=seen.count())
    out = _join(grid, retained, [*scope.keys, "cohort_week", "week"], null_safe=scope.by)
    out = out.mutate(retained=out.retained.fill_null(0))
    return out.select(
        *scope.keys,
        "cohort_week",
        "week",
        "users",
        "retained",
        rate=out.retained.cast("float64") / out.users.cast("float64"),
    )


def hands_off(ev: ir.Table) -> ir.BooleanValue:
    """An event that hands its session to a human: a ``handoff`` event or ``handoff = true``."""
    return (ev.event_type == "handoff") | ev.handoff.fill_null(False)


def thumbs_down(ev: ir.Table) -> ir.BooleanValue:
    """An event with ``feedback = -1``; false (never null) without a feedback.

    Never null on purpose: Ibis counts ``where=`` a condition on Spark as a sum of the
    condition cast to an integer, which is null when the condition is null on every row.
    """
    return (ev.feedback == -1).fill_null(False)


def _ratio(numerator: ir.NumericValue, denominator: ir.NumericValue) -> ir.FloatingValue:
    """numerator / denominator as a double; null when the denominator is 0."""
    return ibis.ifelse(
        denominator > 0,
        numerator.cast("float64") / denominator.cast("float64"),
        ibis.null("float64"),
    )


def _session_counts(ev: ir.Table, scope: Scope) -> ir.Table:
    """Per-day session and event counts over the day grid (nulls where nothing happened)."""
    user_days = active_user_days(ev, scope)
    grid = _days_from(_starts(user_days, scope), scope, begin="start")
    day_keys = [*scope.keys, "day"]

    per_session = ev.group_by([*scope.keys, "session_id"]).agg(
        day=ev.day.min(),
        handed_off=ibis.ifelse(hands_off(ev), 1, 0).max(),
    )
    per_start_day = per_session.group_by(day_keys).agg(
        sessions=per_session.count(),
        handed_off=per_session.handed_off.sum(),
    )

    in_range = ev if scope.since is None else ev.filter(ev.day >= scope.since)
    is_turn = in_range.event_type == "turn"
    per_event_day = in_range.group_by(day_keys).agg(
        turns=in_range.count(where=is_turn),
        errors=in_range.count(where=in_range.event_type == "error"),
        thumbs_down=in_range.count(where=thumbs_down(in_range)),
        feedback=in_range.feedback.count(),
        latency_p50=in_range.latency_ms.quantile(0.5, where=is_turn),
        latency_p95=in_range.latency_ms.quantile(0.95, where=is_turn),
        latency_p99=in_range.latency_ms.quantile(0.99, where=is_turn),
        tokens_in=in_range.tokens_in.sum(),
        tokens_out=in_range.tokens_out.sum(),
        cost_usd=in_range.cost_usd.sum(),
    )

    out = _join(grid, per_start_day, day_keys, null_safe=scope.by)
    return _join(out, per_event_day, day_keys, null_safe=scope.by)


def sessions(ev: ir.Table, scope: Scope) -> ir.Table:
    """Per-day session health over the day grid; see ``Metrics.sessions`` for definitions."""
    out = _session_counts(ev, scope)
    n_sessions = out.sessions.fill_null(0)
    turns = out.turns.fill_null(0)
    return out.select(
        *scope.keys,
        "day",
        sessions=n_sessions,
        turns=turns,
        turns_per_session=_ratio(turns, n_sessions),
        handoff_rate=_ratio(out.handed_off.fill_null(0), n_sessions),
        thumbs_down_rate=_ratio(out.thumbs_down.fill_null(0), out.feedback.fill_null(0)),
        error_rate=_ratio(out.errors.fill_null(0), turns),
        latency_p50=out.latency_p50.cast("float64"),
        latency_p95=out.latency_p95.cast("float64"),
        latency_p99=out.latency_p99.cast("float64"),
        tokens_in=out.tokens_in.fill_null(0),
        tokens_out=out.tokens_out.fill_null(0),
        cost_usd=out.cost_usd.fill_null(0.0),
    )


def event_keys(keys: Sequence[str]) -> list[str]:
    """The columns that tell one event's rows apart: the tenant, the event id and, when the
    rows are per flight (``by="flight"``), the flight. Every other key is the event's own."""
    return ["tenant_id", "event_id", *(["flight"] if "flight" in keys else [])]


def answer_docs(ev: ir.Table, keys: Sequence[str]) -> ir.Table:
    """``keys..., event_id, doc, retrieved, cited``: one row per answer (a ``turn`` event with
    a non-empty ``retrieved_doc_ids``) and distinct doc id, for the counts that need each doc
    (its relevance; :func:`answer_sets` counts the sets). ``retrieved`` and ``cited`` (0 or 1)
    say whether the doc id is among the event's retrieved and cited ids; a doc id listed twice
    counts once, a cited doc id that was not retrieved is a row with ``retrieved = 0``.
    Written with unnest and group by; no join, so a null slice value needs no null-safe
    match. Rows are grouped by the event (:func:`event_keys`) alone and the other keys, the
    event's own, carried along: narrower group keys, the same groups.
    """
    turns = ev.filter((ev.event_type == "turn") & (ev.retrieved_doc_ids.length() > 0))
    ident = event_keys(keys)
    carried = [k for k in keys if k not in ident]
    cols = [*ident, *carried]
    one = ibis.literal(1, type="int64")
    zero = ibis.literal(0, type="int64")
    got = turns.select(*cols, doc=turns.retrieved_doc_ids.unnest(), r=one, c=zero)
    cited = turns.select(*cols, doc=turns.cited_doc_ids.unnest(), r=zero, c=one)
    docs = ibis.union(got, cited, distinct=False)
    docs = docs.filter(docs.doc.notnull())
    return docs.group_by([*ident, "doc"]).agg(
        **{k: docs[k].max() for k in carried}, retrieved=docs.r.max(), cited=docs.c.max()
    )


# Both engines have these two functions under these names (DuckDB as aliases of
# list_distinct/list_intersect): each answer's doc id sets are counted per row, with no unnest.
# Ibis' own unique/intersect compile to list lambdas in a syntax DuckDB 2 rejects. Null entries
# (which the engines treat differently) never reach storage: ingest rejects them.
@ibis.udf.scalar.builtin(name="array_distinct")  # type: ignore[untyped-decorator]
def _array_distinct(values: dt_.Array[dt_.String]) -> dt_.Array[dt_.String]:
    """The distinct elements of a list."""


@ibis.udf.scalar.builtin(name="array_intersect")  # type: ignore[untyped-decorator]
def _array_intersect(
    left: dt_.Array[dt_.String], right: dt_.Array[dt_.String]
) -> dt_.Array[dt_.String]:
    """The distinct elements of a list that are in another."""


def answer_sets(ev: ir.Table) -> ir.Table:
    """``ev``'s answers (``turn`` events with a non-empty ``retrieved_doc_ids``) with
    ``n_retrieved``, ``n_cited`` (distinct doc ids) and ``n_uncited`` (retrieved, not cited)."""
    turns = ev.filter((ev.event_type == "turn") & (ev.retrieved_doc_ids.length() > 0))
    zero = ibis.literal(0, type="int64")
    # A null list is tested for first: Spark's size() of null may be -1, not null.
    no_cites = turns.cited_doc_ids.isnull()
    retrieved = _array_distinct(turns.retrieved_doc_ids).length().cast("int64")
    cited = _array_distinct(turns.cited_doc_ids).length().cast("int64")
    both = _array_intersect(turns.retrieved_doc_ids, turns.cited_doc_ids).length().cast("int64")
    return turns.mutate(
        n_retrieved=retrieved,
        n_cited=ibis.ifelse(no_cites, zero, cited),
        n_uncited=retrieved - ibis.ifelse(no_cites, zero, both),
    )


def rag_counts(ev: ir.Table, scope: Scope) -> ir.Table:
    """``keys, day, answers, cited_answers, citations, retrieved, uncited_retrieved`` per day
    with an answer; see ``Metrics.health`` for the definitions."""
    in_range = ev if scope.since is None else ev.filter(ev.day >= scope.since)
    day_keys = [*scope.keys, "day"]
    answers = answer_sets(in_range)
    return answers.group_by(day_keys).agg(
        answers=answers.count(),
        cited_answers=answers.count(where=answers.n_cited > 0),
        citations=answers.n_cited.sum(),
        retrieved=answers.n_retrieved.sum(),
        uncited_retrieved=answers.n_uncited.sum(),
    )


#: The RAG counts of ``Metrics.health``, in column order.
RAG_COUNTS: tuple[str, ...] = (
    "answers",
    "cited_answers",
    "citations",
    "retrieved",
    "uncited_retrieved",
)


def health(ev: ir.Table, scope: Scope, window: int) -> ir.Table:
    """Per-day counts behind the watched metrics; see ``Metrics.health`` for definitions."""
    counts = _session_counts(ev, scope)
    day_keys = [*scope.keys, "day"]
    active = active_users(ev, scope, window).drop("window")
    daily = dau(ev, scope)
    out = _join(counts, daily, day_keys, null_safe=scope.by)
    out = _join(out, active, day_keys, null_safe=scope.by)
    out = _join(out, rag_counts(ev, scope), day_keys, null_safe=scope.by)
    return out.select(
        *scope.keys,
        "day",
        dau=out.dau.fill_null(0),
        active_users=out.active_users.fill_null(0),
        sessions=out.sessions.fill_null(0),
        handoff_sessions=out.handed_off.fill_null(0),
        turns=out.turns.fill_null(0),
        errors=out.errors.fill_null(0),
        feedback=out.feedback.fill_null(0),
        thumbs_down=out.thumbs_down.fill_null(0),
        latency_p95=out.latency_p95.cast("float64"),
        cost_usd=out.cost_usd.fill_null(0.0),
        **{name: out[name].fill_null(0).cast("int64") for name in RAG_COUNTS},
    )


# -- breakdowns behind explain and regressions ------------------------------------------------
#
# The same definitions as above (a session on the day of its first event, a handoff anywhere
# in the session, turns, errors, feedback, exact latency percentiles), grouped the way
# `assay explain` (per day and leaf of a tenant) and `assay regressions` (per tenant, release
# value and day) read them. Days are integers here too.

#: What a leaf row of ``leaf_counts`` measures: ``value`` (and ``total`` for a rate).
LeafMeasure = Literal[
    "dau",
    "sessions",
    "handoff_rate",
    "thumbs_down_rate",
    "error_rate",
    "slow_turns",
    "cost_usd",
    "cited_rate",
    "uncited_retrieved_share",
]
LEAF_MEASURES: tuple[str, ...] = get_args(LeafMeasure)
#: Measures with a ``total`` column (a rate: value / total).
LEAF_RATES: frozenset[str] = frozenset(
    {
        "handoff_rate",
        "thumbs_down_rate",
        "error_rate",
        "slow_turns",
        "cited_rate",
        "uncited_retrieved_share",
    }
)


def _date(day: dt.date) -> ir.DateValue:
    return ibis.literal(day, type="date")


def events_between(
    events: ir.Table, *, tenant: str | None, start: dt.date | None, end: dt.date
) -> ir.Table:
    """The stored events of ``tenant`` (every tenant if None) with ``event_date`` in
    [``start``, ``end``] (no lower bound if ``start`` is None), plus ``day`` as an integer.

    The filters are on the partition column, so both engines skip other days' files.
    """
    t = events
    if tenant is not None:
        t = t.filter(t.tenant_id == tenant)
    if start is not None:
        t = t.filter(t.event_date >= _date(start))
    t = t.filter(t.event_date <= _date(end))
    return t.mutate(day=t.event_date.epoch_days().cast("int64"))


def flight_sets(ev: ir.Table) -> ir.Table:
    """``tenant_id, event_id, flight``: each event's distinct flights, sorted and joined with
    ``+`` (``exp-a+exp-b``); an event with no flight has no row.

    Written as unnest, distinct collect, sort and join rather than as array functions on the
    list, whose null handling differs between the engines.
    """
    one = ev.select("tenant_id", "event_id", flight=ev.flights.unnest())
    one = one.filter(one.flight.notnull())
    sets = one.group_by(["tenant_id", "event_id"]).agg(names=one.flight.collect(distinct=True))
    return sets.select("tenant_id", "event_id", flight=sets.names.sort().join("+"))


def with_dimensions(ev: ir.Table, dims: Sequence[str]) -> ir.Table:
    """``ev`` with one column per dimension; ``flight`` is the event's flight set
    (:func:`flight_sets`), null for an event without flights, so each event is in one leaf."""
    if "flight" not in dims:
        return ev
    sets = flight_sets(ev)
    return _join(ev, sets, ["tenant_id", "event_id"], null_safe=None)


def leaf_counts(
    events: ir.Table,
    measure: str,
    *,
    tenant: str,
    start: dt.date,
    end: dt.date,
    dims: Sequence[str],
    active_event_types: tuple[str, ...],
    slow_ms: float | None = None,
) -> ir.Table:
    """``day, dims..., value[, total]``: one row per day of [start, end] and leaf (a
    combination of dimension values) with events; see ``Breakdowns.leaf_counts``."""
    keys = ["day", *dims]
    ev = with_dimensions(events_between(events, tenant=tenant, start=start, end=end), dims)
    if measure == "dau":
        active = ev.filter(ev.event_type.isin(active_event_types))
        return active.group_by(keys).agg(value=active.user_id.nunique().cast("float64"))
    if measure in ("sessions", "handoff_rate"):
        return _leaf_sessions(events, ev, measure, tenant=tenant, start=start, keys=keys)
    if measure == "thumbs_down_rate":
        return ev.group_by(keys).agg(
            value=ev.count(where=thumbs_down(ev)).cast("float64"),
            total=ev.feedback.count().cast("float64"),
        )
    if measure == "error_rate":
        ev = ev.filter(ev.event_type.isin(("error", "turn")))
        return ev.group_by(keys).agg(
            value=ev.count(where=ev.event_type == "error").cast("float64"),
            total=ev.count(where=ev.event_type == "turn").cast("float64"),
        )
    if measure == "slow_turns":
        if slow_ms is None:
            raise ValueError("slow_turns needs slow_ms")
        ev = ev.filter((ev.event_type == "turn") & ev.latency_ms.notnull())
        slow = ev.latency_ms > ibis.literal(float(slow_ms), type="float64")
        return ev.group_by(keys).agg(
            value=ev.count(where=slow).cast("float64"), total=ev.count().cast("float64")
        )
    if measure == "cost_usd":
        return ev.group_by(keys).agg(value=ev.cost_usd.sum().cast("float64").fill_null(0.0))
    if measure in ("cited_rate", "uncited_retrieved_share"):
        answers = answer_sets(ev)
        if measure == "uncited_retrieved_share":
            return answers.group_by(keys).agg(
                value=answers.n_uncited.sum().cast("float64"),
                total=answers.n_retrieved.sum().cast("float64"),
            )
        return answers.group_by(keys).agg(
            value=answers.count(where=answers.n_cited > 0).cast("float64"),
            total=answers.count().cast("float64"),
        )
    raise ValueError(f"unknown leaf measure {measure!r}")


def _leaf_sessions(
    events: ir.Table,
    ev: ir.Table,
    measure: str,
    *,
    tenant: str,
    start: dt.date,
    keys: list[str],
) -> ir.Table:
    """Sessions on the day of their first event (by ``event_time``, then ``event_id``), in the
    leaf of that event; a session with an event before ``start`` is not counted. For
    ``handoff_rate``, ``value`` counts those with a handoff on or after ``start`` (any day)."""
    first = ibis.window(group_by="session_id", order_by=["event_time", "event_id"])
    ranked = ev.mutate(_rank=ibis.row_number().over(first))
    firsts = ranked.filter(ranked["_rank"] == 0)
    own = events.filter(events.tenant_id == tenant)
    earlier = own.filter(own.event_date < _date(start)).select("session_id").distinct()
    firsts = firsts.anti_join(earlier, "session_id")
    if measure == "sessions":
        return firsts.group_by(keys).agg(value=firsts.count().cast("float64"))
    later = own.filter(own.event_date >= _date(start))
    handed = later.filter(hands_off(later)).select("session_id").distinct()
    handed = handed.select(_handed=handed["session_id"])
    marked = firsts.left_join(handed, firsts.session_id == handed["_handed"])
    return marked.group_by(keys).agg(
        value=marked.count(where=marked["_handed"].notnull()).cast("float64"),
        total=marked.count().cast("float64"),
    )


def latency_quantile(
    events: ir.Table, q: float, *, tenant: str, start: dt.date, end: dt.date
) -> ir.FloatingScalar:
    """The exact ``q`` quantile (linear interpolation) of the tenant's ``turn`` latencies of
    the days [start, end]; null without one."""
    ev = events_between(events, tenant=tenant, start=start, end=end)
    return ev.latency_ms.quantile(q, where=ev.event_type == "turn").cast("float64")


def first_days(events: ir.Table) -> ir.Table:
    """``tenant_id, event_type, first_day``: the first ``event_date`` (as an integer day) of
    each tenant's events of each type. One small table answers the first day of any tenant
    for any set of event types (the minimum over the matching rows)."""
    grouped = events.group_by(["tenant_id", "event_type"])
    return grouped.agg(first_day=events.event_date.epoch_days().cast("int64").min())


def first_seen(events: ir.Table, fields: Sequence[str], *, tenant: str, until: dt.date) -> ir.Table:
    """``field, value, first_day``: the first day each non-null value of each field appears
    in the tenant's events up to ``until``; ``flight`` is one element of ``flights``.

    The events are first reduced to the first day of each combination of the fields' values
    (one scan; few combinations), and each field's values are read from that.
    """
    ev = events_between(events, tenant=tenant, start=None, end=until)
    columns = ["flights" if name == "flight" else name for name in fields]
    combos = ev.group_by(columns).agg(first_day=ev.day.min())
    parts = []
    for name in fields:
        if name == "flight":
            values = combos.select("first_day", value=combos.flights.unnest())
        else:
            values = combos.select("first_day", value=combos[name])
        values = values.filter(values.value.notnull())
        firsts = values.group_by("value").agg(first_day=values.first_day.min())
        parts.append(
            firsts.select(
                field=ibis.literal(name, type="string"), value=firsts.value, first_day="first_day"
            )
        )
    return ibis.union(*parts)


def release_counts(events: ir.Table, field: str, *, until: dt.date) -> ir.Table:
    """``tenant_id, value, day, sessions, handoffs, turns, errors, feedback, thumbs_down,
    answers, uncited_answers, retrieved, uncited_retrieved``: per tenant, non-null value of
    ``field`` and day up to ``until`` with an event carrying it.

    A session counts in every value it carries, on the day of its first event with that value
    (``sessions`` under a slice); it is handed off if any of its events up to ``until`` is a
    handoff, whatever value that event carries. The other columns count each event on its own
    day, as ``sessions`` does; the RAG counts are those of ``health`` (:func:`answer_sets`)
    over the answers carrying the value, ``uncited_answers`` the answers citing no doc id.
    """
    ev = events_between(events, tenant=None, start=None, end=until)
    ev = ev.select(
        "tenant_id",
        "session_id",
        "event_type",
        "handoff",
        "feedback",
        "day",
        value=ev[field],
    )
    handed = ev.filter(hands_off(ev)).select("tenant_id", "session_id").distinct()
    handed = handed.mutate(_handed=ibis.literal(1, type="int64"))
    valued = ev.filter(ev.value.notnull())
    starts = valued.group_by(["tenant_id", "session_id", "value"]).agg(day=valued.day.min())
    starts = _join(starts, handed, ["tenant_id", "session_id"], null_safe=None)
    per_start = starts.group_by(["tenant_id", "value", "day"]).agg(
        sessions=starts.count(), handoffs=starts["_handed"].count()
    )
    per_day = valued.group_by(["tenant_id", "value", "day"]).agg(
        turns=valued.count(where=valued.event_type == "turn"),
        errors=valued.count(where=valued.event_type == "error"),
        feedback=valued.feedback.count(),
        thumbs_down=valued.count(where=thumbs_down(valued)),
    )
    # Every session start is on a day with an event carrying the value: per_day has its row.
    out = _join(per_day, per_start, ["tenant_id", "value", "day"], null_safe=None)
    # The RAG counts of `health` (answer_sets), per value: an answer is a turn, so its day
    # has a per_day row too.
    answers = answer_sets(events_between(events, tenant=None, start=None, end=until))
    answers = answers.filter(answers[field].notnull()).mutate(value=answers[field])
    per_answer_day = answers.group_by(["tenant_id", "value", "day"]).agg(
        answers=answers.count(),
        uncited_answers=answers.count(where=answers.n_cited == 0),
        retrieved=answers.n_retrieved.sum(),
        uncited_retrieved=answers.n_uncited.sum(),
    )
    out = _join(out, per_answer_day, ["tenant_id", "value", "day"], null_safe=None)
    return out.select(
        "tenant_id",
        "value",
        "day",
        sessions=out.sessions.fill_null(0).cast("int64"),
        handoffs=out.handoffs.fill_null(0).cast("int64"),
        turns=out.turns.cast("int64"),
        errors=out.errors.cast("int64"),
        feedback=out.feedback.cast("int64"),
        thumbs_down=out.thumbs_down.cast("int64"),
        **{name: out[name].fill_null(0).cast("int64") for name in RELEASE_RAG_COUNTS},
    )


#: The RAG counts of ``release_counts``, in column order.
RELEASE_RAG_COUNTS: tuple[str, ...] = (
    "answers",
    "uncited_answers",
    "retrieved",
    "uncited_retrieved",
)


def release_latencies(
    events: ir.Table, field: str, *, since: dt.date | None, until: dt.date
) -> ir.Table:
    """``tenant_id, value, day, latency_ms``: every ``turn`` latency of the days [since,
    until] of an event with a non-null value of ``field``."""
    ev = events_between(events, tenant=None, start=since, end=until)
    ev = ev.filter((ev.event_type == "turn") & ev.latency_ms.notnull() & ev[field].notnull())
    return ev.select("tenant_id", value=ev[field], day="day", latency_ms="latency_ms")
