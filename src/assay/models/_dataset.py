"""Point-in-time training sets: one row per session, its features as of its prediction time.

Written once as Ibis expressions over the stored events, so the same code runs on DuckDB and
on Spark (see DESIGN.md, "Engines"). The rules, which ``docs/models.md`` states for users:

- **Session**: (``tenant_id``, ``session_id``) with at least one ``turn`` event. Its
  **prediction time** ``pt`` is the ``event_time`` of its last ``turn``; among turns at the
  same time the highest ``turn_index``, then the highest ``event_id``, is the last one. Its
  ``user_id`` and its release fields are that last turn's. Its **previous turn** is the turn
  with the largest such key below the last turn's.
- **Session features** read only the session's events at or before ``pt`` whose type is not
  label-bearing (``feedback``, ``handoff``); the ``feedback``, ``rating`` and ``handoff``
  fields are never read for a session's own features. The session's **start** is the earliest
  of those events.
- **User history** (a user is (``tenant_id``, ``user_id``)) counts sessions that started, and
  feedback/handoff events whose ``event_time`` lies, strictly before the session's start.
- **Tenant history** covers the 28 UTC days before the day the session started.
- **Labels** read the session's events from ``pt`` (inclusive: feedback stamped with the
  answer's own time is about that answer) to ``pt`` + the label window.

Times inside the engine are whole epoch seconds (``floor``) and days are integer days since
1970-01-01 from the stored ``event_date``: integer arithmetic means the same on both engines
and involves no time zone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, get_args

import ibis
import pyarrow as pa

from assay._errors import AssayError, EngineError, UsageError, unknown_tenant
from assay.metrics import check_date, check_range, check_tenant

if TYPE_CHECKING:
    import ibis.expr.types as ir

Label = Literal["thumbs_down", "handoff", "thumbs_down_next"]

#: The labels a dataset can carry; the first is the default.
LABELS: tuple[str, ...] = get_args(Label)

#: Default label window per label, in days after the prediction time.
DEFAULT_LABEL_WINDOW_DAYS: dict[str, int] = {
    "thumbs_down": 1,
    "handoff": 1,
    "thumbs_down_next": 8,
}

#: The next session counts for ``thumbs_down_next`` when it starts within this many days.
NEXT_SESSION_DAYS = 7

#: Days of tenant history before the session's start day.
TENANT_HISTORY_DAYS = 28

#: Event types that carry labels: never read as features of their own session.
LABEL_EVENT_TYPES: tuple[str, ...] = ("feedback", "handoff")

#: The numeric features, in column order (float64, null where undefined).
NUMERIC_FEATURES: tuple[str, ...] = (
    "n_turns",
    "latency_mean_ms",
    "latency_max_ms",
    "tokens_in_mean",
    "tokens_out_mean",
    "n_errors",
    "any_error",
    "retrieved_docs",
    "cited_docs",
    "citation_share",
    "intent_confidence",
    "last_turn_latency_ms",
    "prev_turn_latency_ms",
    "prev_turn_gap_s",
    "prev_turn_intent_confidence",
    "session_duration_s",
    "hour_of_day",
    "weekday",
    "user_prev_sessions",
    "user_prev_thumbs_down_rate",
    "user_prev_handoff_rate",
    "user_tenure_days",
    "tenant_thumbs_down_rate_28d",
    "tenant_handoff_rate_28d",
)

#: The categorical features always present, in column order (string, null where missing);
#: opted-in attributes follow as ``attr_<key>``.
CATEGORICAL_FEATURES: tuple[str, ...] = (
    "intent",
    "locale",
    "platform",
    "model_version",
    "prompt_template",
    "app_version",
)

#: The key columns that open every dataset.
KEY_COLUMNS: tuple[str, ...] = ("tenant_id", "session_id", "user_id", "day", "prediction_time")

PREDICTION_TIME_RULE = (
    "the event_time of the session's last turn event (ties: highest turn_index, then event_id); "
    "features read only non-feedback, non-handoff events at or before it"
)

_EPOCH = dt.date(1970, 1, 1)
_SECONDS_PER_DAY = 86_400
_KEYS = ["tenant_id", "session_id"]
#: The order of a dataset's rows (one row per session, so the order is total).
_ROW_ORDER = ("day", "tenant_id", "session_id")
_USER = ["tenant_id", "user_id"]
_MAX_ATTRIBUTES = 64
_MAX_WINDOW_DAYS = 366


def dataset_schema(attributes: Sequence[str] = ()) -> pa.Schema:
    """The columns of a dataset with these opted-in attribute keys (without metadata)."""
    fields = [
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("day", pa.date32(), nullable=False),
        pa.field("prediction_time", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
    fields += [pa.field(name, pa.float64()) for name in NUMERIC_FEATURES]
    fields += [pa.field(name, pa.string()) for name in _categorical(attributes)]
    fields.append(pa.field("label", pa.bool_(), nullable=False))
    return pa.schema(fields)


def _categorical(attributes: Sequence[str]) -> list[str]:
    return [*CATEGORICAL_FEATURES, *(f"attr_{key}" for key in attributes)]


def feature_columns(table: pa.Table | pa.Schema) -> tuple[list[str], list[str]]:
    """The (numeric, categorical) feature columns of a dataset, read from its metadata.

    Raises
    ------
    UsageError
        When the table carries no ``assay.features.*`` metadata (it was not made by
        ``ws.models.dataset`` or lost its metadata on the way).

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"x": [1.0], "c": ["a"]}).replace_schema_metadata(
    ...     {b"assay.features.numeric": b'["x"]', b"assay.features.categorical": b'["c"]'})
    >>> feature_columns(t)
    (['x'], ['c'])
    """
    schema = table if isinstance(table, pa.Schema) else table.schema
    meta = schema.metadata or {}
    try:
        numeric = json.loads(meta[b"assay.features.numeric"])
        categorical = json.loads(meta[b"assay.features.categorical"])
    except (KeyError, ValueError) as exc:
        raise UsageError(
            "the table has no assay.features.numeric / assay.features.categorical metadata "
            "(expected a table from ws.models.dataset); keep the schema metadata when you "
            "filter or convert it (pyarrow filters keep it; a pandas round trip may not)"
        ) from exc
    return [str(n) for n in numeric], [str(c) for c in categorical]


# -- argument checks ---------------------------------------------------------------------------


def _check_label(value: object) -> Label:
    if value not in LABELS:
        shown = repr(value) if isinstance(value, str) and len(value) <= 40 else "another value"
        raise UsageError(
            f"label must be one of {', '.join(LABELS)} (got {shown}); the default is thumbs_down"
        )
    return value  # type: ignore[return-value]


def _check_attributes(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not all(
        isinstance(k, str) and k and len(k) <= 128 for k in value
    ):
        raise UsageError(
            "attributes must be a list of attribute keys (non-empty strings of at most 128 "
            f"characters; got {type(value).__name__}); e.g. attributes=['plan']"
        )
    keys = tuple(dict.fromkeys(value))
    if len(keys) > _MAX_ATTRIBUTES:
        raise UsageError(
            f"attributes may name at most {_MAX_ATTRIBUTES} keys (got {len(keys)}); "
            "opt in only the keys you mean to use as features"
        )
    return keys


def _check_window(value: object, label: Label) -> int:
    if value is None:
        return DEFAULT_LABEL_WINDOW_DAYS[label]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_WINDOW_DAYS:
        raise UsageError(
            f"label_window_days must be a whole number of days in [1, {_MAX_WINDOW_DAYS}] "
            f"(got {value!r}); the default for {label} is {DEFAULT_LABEL_WINDOW_DAYS[label]}"
        )
    return value


# -- the expression ------------------------------------------------------------------------------


def _seconds(ts: ir.TimestampValue) -> ir.FloatingValue:
    """Whole epoch seconds, floored: the same on DuckDB (fractional epoch) and Spark."""
    return ts.epoch_seconds().cast("float64").floor().cast("float64")


def _ratio(numerator: ir.NumericValue, denominator: ir.NumericValue) -> ir.FloatingValue:
    return ibis.ifelse(
        denominator > 0,
        numerator.cast("float64") / denominator.cast("float64"),
        ibis.null("float64"),
    )


def _join(left: ir.Table, right: ir.Table, on: Sequence[str], how: str = "inner") -> ir.Table:
    """Join on equal ``on`` columns, keeping the left copy of each."""
    renamed = right.rename({f"_r_{name}": name for name in on})
    joined = left.join(renamed, [left[n] == renamed[f"_r_{n}"] for n in on], how=how)
    return joined.drop(*[f"_r_{n}" for n in on])


def _flags(ev: ir.Table) -> tuple[ir.BooleanValue, ir.BooleanValue, ir.BooleanValue]:
    """(thumbs down, rated, handed off) for each event, never null."""
    down = ((ev.feedback == -1) | (ev.rating <= 2)).fill_null(False)
    rated = ev.feedback.notnull() | ev.rating.notnull()
    handed = (ev.event_type == "handoff") | ev.handoff.fill_null(False)
    return down, rated, handed


def _max_by(value: ir.Value, key: ir.Value, *, where: ir.BooleanValue) -> ir.Value:
    """``value`` at the largest ``key`` among the rows where ``where`` holds.

    ``max_by`` is native on DuckDB (an alias of ``arg_max``) and Spark and keeps one value per
    group; it is much cheaper than the max of a struct carrying every field (each compared
    row would build a sort key of all of them), and Ibis's own ``argmax`` becomes an ordered
    ``first`` on DuckDB, which sorts each group.
    """

    @ibis.udf.agg.builtin(  # type: ignore[untyped-decorator]
        name="max_by", signature=((value.type(), key.type()), value.type())
    )
    def max_by(arg: object, order: object) -> object:  # pragma: no cover - never called
        raise NotImplementedError

    return max_by(value, key, where=where)


def sessions_of(ev: ir.Table, attributes: Sequence[str]) -> ir.Table:
    """One row per session with a turn: its prediction time, start and session features."""
    # Every turn is at or before the prediction time (the last turn's time), and so is the
    # session's earliest feature event: one pass over the events gives the turn features and
    # the start without knowing the prediction time first. Only errors and attributes, which
    # other event types carry, need a join with it, and those events are few.
    seen = ev.filter(~ev.event_type.isin(LABEL_EVENT_TYPES))
    is_turn = seen.event_type == "turn"
    # The last turn is the one with the largest (event_time, turn_index, event_id); event_id
    # is unique in a tenant, so the order is total and the last turn's fields come along.
    last_turn = _max_by(
        ibis.struct(
            {
                "pt": seen.event_time,
                "user_id": seen.user_id,
                "day": seen.event_date.epoch_days().cast("int64"),
                "intent_confidence": seen.intent_confidence.cast("float64"),
                "latency_ms": seen.latency_ms.cast("float64"),
                "turn_index": seen.turn_index.fill_null(-1),
                "event_id": seen.event_id,
                **{name: seen[name] for name in CATEGORICAL_FEATURES},
            }
        ),
        ibis.struct(
            {
                "t": seen.event_time,
                "turn_index": seen.turn_index.fill_null(-1),
                "event_id": seen.event_id,
            }
        ),
        where=is_turn,
    )
    agg = seen.group_by(_KEYS).agg(
        last=last_turn,
        start=seen.event_time.min(),
        start_day=seen.event_date.epoch_days().min().cast("int64"),
        n_turns=seen.count(where=is_turn).cast("float64"),
        latency_mean_ms=seen.latency_ms.mean(where=is_turn).cast("float64"),
        latency_max_ms=seen.latency_ms.max(where=is_turn).cast("float64"),
        tokens_in_mean=seen.tokens_in.mean(where=is_turn).cast("float64"),
        tokens_out_mean=seen.tokens_out.mean(where=is_turn).cast("float64"),
        retrieved_docs=seen.retrieved_doc_ids.length().fill_null(0).sum(where=is_turn),
        cited_docs=seen.cited_doc_ids.length().fill_null(0).sum(where=is_turn),
    )
    agg = agg.filter(agg.n_turns > 0)
    last = agg.select(
        *_KEYS,
        "start",
        "start_day",
        "n_turns",
        "latency_mean_ms",
        "latency_max_ms",
        "tokens_in_mean",
        "tokens_out_mean",
        "retrieved_docs",
        "cited_docs",
        **{name: agg.last[name] for name in ("pt", "user_id", "day", "intent_confidence")},
        last_turn_latency_ms=agg.last["latency_ms"],
        last_index=agg.last["turn_index"],
        last_event_id=agg.last["event_id"],
        **{name: agg.last[name] for name in CATEGORICAL_FEATURES},
    )

    # The second pass, over the events that need the prediction time or the last turn:
    # errors and attributes at or before it, and the previous turn (the largest
    # (event_time, turn_index, event_id) below the last turn's).
    wanted = (seen.event_type == "error") | is_turn
    if attributes:
        wanted = wanted | seen.attributes.notnull()
    before = _join(
        seen.filter(wanted), last.select(*_KEYS, "pt", "last_index", "last_event_id"), _KEYS
    )
    before = before.filter(before.event_time <= before.pt)
    index = before.turn_index.fill_null(-1)
    below_last = (before.event_time < before.pt) | (
        (before.event_time == before.pt)
        & (
            (index < before.last_index)
            | ((index == before.last_index) & (before.event_id < before.last_event_id))
        )
    )
    previous = _max_by(
        ibis.struct(
            {
                "t": before.event_time,
                "latency_ms": before.latency_ms.cast("float64"),
                "intent_confidence": before.intent_confidence.cast("float64"),
            }
        ),
        ibis.struct({"t": before.event_time, "turn_index": index, "event_id": before.event_id}),
        where=(before.event_type == "turn") & below_last,
    )
    late = before.group_by(_KEYS).agg(
        n_errors=before.count(where=before.event_type == "error"),
        previous=previous,
        **{f"attr_{key}": before.attributes.get(key).max().cast("string") for key in attributes},
    )
    late = late.select(
        *_KEYS,
        "n_errors",
        *(f"attr_{key}" for key in attributes),
        prev_t=late.previous["t"],
        prev_turn_latency_ms=late.previous["latency_ms"],
        prev_turn_intent_confidence=late.previous["intent_confidence"],
    )
    s = _join(last.drop("last_index", "last_event_id"), late, _KEYS, how="left")
    s = s.mutate(n_errors=s.n_errors.fill_null(0).cast("float64"))
    pt_s = _seconds(s.pt)
    retrieved = s.retrieved_docs.fill_null(0).cast("float64")
    cited = s.cited_docs.fill_null(0).cast("float64")
    return s.mutate(
        pt_s=pt_s,
        start_s=_seconds(s.start),
        retrieved_docs=retrieved,
        cited_docs=cited,
        citation_share=_ratio(cited, retrieved),
        any_error=ibis.ifelse(s.n_errors > 0, 1.0, 0.0),
        session_duration_s=pt_s - _seconds(s.start),
        # From the previous turn's answer (its time plus its latency) to the last turn.
        prev_turn_gap_s=pt_s - _seconds(s.prev_t) - s.prev_turn_latency_ms / 1000.0,
        hour_of_day=((pt_s % _SECONDS_PER_DAY) / 3600).floor().cast("float64"),
        # 1970-01-01 was a Thursday: shifting by 3 makes Monday 0.
        weekday=((s.day + 3) % 7).cast("float64"),
    )


def _user_history(ev: ir.Table, s: ir.Table) -> ir.Table:
    """Per session: the user's sessions and feedback/handoff events before its start."""
    down, rated, handed = _flags(ev)
    signals = ev.filter(rated | handed)
    zero = ibis.literal(0, type="int64")
    events = signals.select(
        tenant_id=signals.tenant_id.cast("string"),
        user_id=signals.user_id.cast("string"),
        session_id=ibis.null("string"),
        t=signals.event_time.cast("timestamp('UTC')"),
        kind=ibis.literal(1, type="int64"),
        down=ibis.ifelse(down, 1, 0).cast("int64"),
        rated=ibis.ifelse(rated, 1, 0).cast("int64"),
        handed=ibis.ifelse(handed, 1, 0).cast("int64"),
        start_s=ibis.null("float64"),
    )
    markers = s.select(
        tenant_id=s.tenant_id.cast("string"),
        user_id=s.user_id.cast("string"),
        session_id=s.session_id.cast("string"),
        t=s.start.cast("timestamp('UTC')"),
        kind=ibis.literal(0, type="int64"),
        down=zero,
        rated=zero,
        handed=zero,
        start_s=s.start_s.cast("float64"),
    )
    stream = markers.union(events)
    # One sort of the user's stream gives every user feature (no window over the sessions
    # alone, no join back). A marker sorts before the events at its own time, so at a marker:
    # - a running sum counts exactly the events strictly before the session's start;
    # - rank() (0-based) counts the rows strictly before it, i.e. the sessions that started
    #   strictly earlier plus the events before its start (the running sum of ``kind``);
    # - the running minimum of the markers' starts is the user's first start (sorted by time).
    order = ["t", "kind"]
    running = ibis.window(group_by=_USER, order_by=order, rows=(None, 0))
    stream = stream.mutate(
        c_down=stream.down.sum().over(running),
        c_rated=stream.rated.sum().over(running),
        c_handed=stream.handed.sum().over(running),
        c_events=stream.kind.sum().over(running),
        user_first_s=stream.start_s.min().over(running),
        position=ibis.rank().over(ibis.window(group_by=_USER, order_by=order)),
    )
    stream = stream.filter(stream.kind == 0)
    return stream.select(
        "tenant_id",
        "session_id",
        "user_first_s",
        user_prev_sessions=(stream.position - stream.c_events).cast("float64"),
        u_down="c_down",
        u_rated="c_rated",
        u_handed="c_handed",
    )


def _own_signals(ev: ir.Table, s: ir.Table, label: Label, window: int) -> ir.Table:
    """Per session, from one join of its own feedback/handoff events with it:

    - those that fall inside its user and tenant history windows (stamped before its start,
      e.g. by a skewed client clock), to be taken back out of the history: a label-bearing
      event is never a feature of its own session;
    - ``hits``, the label events from its prediction time to the end of the label window
      (``thumbs_down``, ``handoff``), or ``first_down``, its first thumbs-down
      (``thumbs_down_next``, read by the previous session).
    """
    _, rated, handed = _flags(ev)
    signals = ev.filter(rated | handed)
    sessions = s.select(
        *_KEYS, s_user=s.user_id, s_start=s.start, s_start_day=s.start_day, s_pt=s.pt
    )
    own = _join(signals, sessions, _KEYS)
    down, rated, handed = _flags(own)
    day = own.event_date.epoch_days().cast("int64")
    mine = (own.user_id == own.s_user) & (own.event_time < own.s_start)
    in_tenant_window = (
        (own.event_time < own.s_start)
        & (day < own.s_start_day)
        & (day >= own.s_start_day - TENANT_HISTORY_DAYS)
    )
    if label == "thumbs_down_next":
        found = {"first_down": own.event_time.min(where=down)}
    else:
        hit = down if label == "thumbs_down" else handed
        in_window = (own.event_time >= own.s_pt) & (
            own.event_time <= own.s_pt + ibis.interval(days=window)
        )
        found = {"hits": own.count(where=hit & in_window)}
    return own.group_by(_KEYS).agg(
        o_u_down=own.count(where=mine & down),
        o_u_rated=own.count(where=mine & rated),
        o_u_handed=own.count(where=mine & handed),
        o_t_down=own.count(where=in_tenant_window & down),
        o_t_rated=own.count(where=in_tenant_window & rated),
        o_t_handed=own.count(where=in_tenant_window & handed),
        **found,
    )


def _tenant_days(t: ir.Table) -> ir.Table:
    # One nullability on both sides of the union (a set operation wants equal schemas).
    return t.select(tenant_id=t.tenant_id.cast("string"), day=t.day.cast("int64"))


def _tenant_history(ev: ir.Table, s: ir.Table) -> ir.Table:
    """Per tenant and day: thumbs-down and handoff rates over the 28 days before it."""
    _, rated, handed = _flags(ev)
    signals = ev.filter(rated | handed)
    down, rated, handed = _flags(signals)
    signal_day = signals.event_date.epoch_days().cast("int64").name("day")
    per_day = signals.group_by([signals.tenant_id, signal_day]).agg(
        down=signals.count(where=down),
        rated=signals.count(where=rated),
        handed=signals.count(where=handed),
    )
    started = s.group_by(["tenant_id", s.start_day.name("day")]).agg(sessions=s.count())
    days = _tenant_days(per_day).union(_tenant_days(started))
    bounds = days.group_by("tenant_id").agg(lo=days.day.min(), hi=days.day.max())
    grid = bounds.select("tenant_id", day=ibis.range(bounds.lo, bounds.hi + 1).unnest())
    grid = _join(grid, per_day, ["tenant_id", "day"], how="left")
    grid = _join(grid, started, ["tenant_id", "day"], how="left")
    # The grid is dense, so a row frame is a calendar window: the 28 days before the day.
    before = ibis.window(group_by="tenant_id", order_by="day", rows=(-TENANT_HISTORY_DAYS, -1))
    grid = grid.mutate(
        w_down=grid.down.fill_null(0).sum().over(before),
        w_rated=grid.rated.fill_null(0).sum().over(before),
        w_handed=grid.handed.fill_null(0).sum().over(before),
        w_sessions=grid.sessions.fill_null(0).sum().over(before),
    )
    return grid.select(
        "tenant_id",
        start_day="day",
        t_down=grid.w_down.fill_null(0),
        t_rated=grid.w_rated.fill_null(0),
        t_handed=grid.w_handed.fill_null(0),
        t_sessions=grid.w_sessions.fill_null(0),
    )


def _next_session_labels(s: ir.Table, window: int) -> ir.Table:
    """Per session: ``thumbs_down_next`` (bool), from ``s`` joined with its ``first_down``."""
    until = ibis.interval(days=window)
    by_start = ibis.window(group_by=_USER, order_by=["start", "session_id"])
    seq = s.select("tenant_id", "session_id", "user_id", "pt", "start", "first_down")
    seq = seq.mutate(
        next_start=seq.start.lead().over(by_start),
        next_down=seq.first_down.lead().over(by_start),
    )
    reach = ibis.interval(days=min(NEXT_SESSION_DAYS, window))
    label_value = (
        seq.next_start.notnull()
        & (seq.next_start > seq.pt)
        & (seq.next_start <= seq.pt + reach)
        & seq.next_down.notnull()
        & (seq.next_down <= seq.pt + until)
    )
    return seq.select("tenant_id", "session_id", label=label_value.fill_null(False))


def build(
    events: ir.Table,
    sessions: ir.Table,
    *,
    label: Label,
    window: int,
    horizon: dt.datetime | None,
    since_day: int | None,
    attributes: Sequence[str],
) -> ir.Table:
    """The dataset as one Ibis expression over already narrowed ``events`` and their
    ``sessions`` (from :func:`sessions_of`)."""
    ev, s = events, sessions
    users = _user_history(ev, s)
    tenants = _tenant_history(ev, s)
    own = _own_signals(ev, s, label, window)

    out = _join(s, users, _KEYS)
    out = _join(out, tenants, ["tenant_id", "start_day"], how="left")
    out = _join(out, own, _KEYS, how="left")
    if label == "thumbs_down_next":
        firsts = _join(s, own.select(*_KEYS, "first_down"), _KEYS, how="left")
        out = _join(out, _next_session_labels(firsts, window), _KEYS)
    else:
        out = out.mutate(label=out.hits.fill_null(0) > 0)

    def less_own(total: str, mine: str) -> ir.IntegerValue:
        return out[total].fill_null(0) - out[mine].fill_null(0)

    out = out.mutate(
        user_prev_thumbs_down_rate=_ratio(
            less_own("u_down", "o_u_down"), less_own("u_rated", "o_u_rated")
        ),
        user_prev_handoff_rate=_ratio(less_own("u_handed", "o_u_handed"), out.user_prev_sessions),
        tenant_thumbs_down_rate_28d=_ratio(
            less_own("t_down", "o_t_down"), less_own("t_rated", "o_t_rated")
        ),
        tenant_handoff_rate_28d=_ratio(less_own("t_handed", "o_t_handed"), out.t_sessions),
    )
    if horizon is not None:
        closed = out.pt + ibis.interval(days=window) <= ibis.literal(
            horizon, type="timestamp('UTC')"
        )
        out = out.filter(closed)
    if since_day is not None:
        out = out.filter(out.day >= since_day)
    numeric = {
        name: out[name].cast("float64")
        for name in NUMERIC_FEATURES
        if name not in ("user_tenure_days",)
    }
    numeric["user_tenure_days"] = ((out.start_s - out.user_first_s) / _SECONDS_PER_DAY).cast(
        "float64"
    )
    return out.select(
        "tenant_id",
        "session_id",
        "user_id",
        "day",
        prediction_time=out.pt,
        **{name: numeric[name] for name in NUMERIC_FEATURES},
        **{name: out[name].cast("string") for name in _categorical(attributes)},
        label=out.label,
    )


# -- running it ----------------------------------------------------------------------------------


def _scalar_time(expr: ir.Scalar) -> dt.datetime | None:
    value = expr.to_pyarrow().as_py()
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def make_dataset(
    events: ir.Table,
    label: object = "thumbs_down",
    *,
    since: object = None,
    until: object = None,
    tenant: object = None,
    attributes: object = (),
    label_window_days: object = None,
    labelled: bool = True,
) -> pa.Table:
    """Build the dataset; see :meth:`assay.models.Models.dataset` for the contract.

    With ``labelled=False``, the features of every session (see
    :meth:`assay.models.Models.features`): no label column, no closed-window rule.
    """
    checked_label = _check_label(label)
    checked_since = check_date("since", since)
    checked_until = check_date("until", until)
    checked_tenant = check_tenant(tenant)
    keys = _check_attributes(attributes)
    window = _check_window(label_window_days, checked_label)
    check_range(checked_since, checked_until)
    schema = dataset_schema(keys)
    if not labelled:
        schema = schema.remove(schema.get_field_index("label"))
    try:
        ev = events
        if checked_until is not None:
            ev = ev.filter(ev.event_date <= ibis.literal(checked_until, type="date"))
        # The data's clock is the last stored event over every tenant, so one tenant's rows
        # are the same whether or not the others are asked for.
        last = _scalar_time(ev.event_time.max())
        horizon = last
        if checked_until is not None and last is not None:
            end = dt.datetime.combine(checked_until + dt.timedelta(days=1), dt.time(), dt.UTC)
            horizon = min(last, end)
        if checked_tenant is not None:
            _check_known(events, checked_tenant)
            ev = ev.filter(ev.tenant_id == checked_tenant)
        if horizon is None:
            result = schema.empty_table()
        else:
            # The sessions feed five parts of the query; an engine left to itself may
            # compute them once per part. Cached, they are computed once (DuckDB: a temporary
            # table; Spark: a persisted DataFrame), and they hold one row per session.
            sessions = sessions_of(ev, keys).cache()
            try:
                expr = build(
                    ev,
                    sessions,
                    label=checked_label,
                    window=window,
                    horizon=horizon if labelled else None,
                    since_day=None if checked_since is None else (checked_since - _EPOCH).days,
                    attributes=keys,
                )
                if not labelled:
                    expr = expr.drop("label")
                # Sorted by the engine (in parallel, without a second copy of the rows in
                # Arrow); strings order byte-wise on DuckDB, Spark and Arrow alike.
                result = expr.order_by(list(_ROW_ORDER)).to_pyarrow()
            finally:
                sessions.release()
    except AssayError:
        raise
    except Exception as exc:
        raise EngineError(
            f"the models dataset query failed on the {_backend_name(events)} engine "
            f"({type(exc).__name__}); check that the engine is running and the workspace is "
            "intact (the chained exception has the engine's own message)"
        ) from exc
    table = _finish(result, schema)
    meta = {
        b"assay.features.numeric": json.dumps(list(NUMERIC_FEATURES)).encode(),
        b"assay.features.categorical": json.dumps(_categorical(keys)).encode(),
        b"assay.prediction_time": PREDICTION_TIME_RULE.encode(),
        b"assay.window": json.dumps(
            {
                "since": None if checked_since is None else checked_since.isoformat(),
                "until": None if checked_until is None else checked_until.isoformat(),
                "horizon": None if horizon is None or not labelled else horizon.isoformat(),
                "label_window_days": window if labelled else None,
            }
        ).encode(),
    }
    if labelled:
        meta[b"assay.label"] = checked_label.encode()
        meta[b"assay.label_window_days"] = str(window).encode()
    return table.replace_schema_metadata(meta)


def _finish(result: pa.Table, schema: pa.Schema) -> pa.Table:
    arrays = []
    for field in schema:
        column = result.column(field.name)
        if pa.types.is_date32(field.type) and not pa.types.is_date32(column.type):
            column = column.cast(pa.int32()).cast(pa.date32())
        arrays.append(column.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _check_known(events: ir.Table, tenant: str) -> None:
    known = events.select("tenant_id").distinct().order_by("tenant_id").to_pyarrow()
    names = [str(t) for t in known.column("tenant_id").to_pylist()]
    if tenant not in names:
        raise unknown_tenant(tenant, names)


def _backend_name(events: ir.Table) -> str:
    try:
        return str(ibis.get_backend(events).name)
    except Exception:
        return "unknown"


class Models:
    """Model capabilities over the stored events (see ``docs/models.md``).

    Parameters
    ----------
    events : a callable returning the stored events as an Ibis table with
        ``assay.schema.EVENTS_SCHEMA``; called once per call, so each call sees the table's
        current files.
    """

    def __init__(self, events: Callable[[], ir.Table]) -> None:
        self._events = events

    def dataset(
        self,
        label: Label = "thumbs_down",
        *,
        since: dt.date | None = None,
        until: dt.date | None = None,
        tenant: str | None = None,
        attributes: Sequence[str] = (),
        label_window_days: int | None = None,
    ) -> pa.Table:
        """A point-in-time training set: one row per session whose label window has closed.

        Parameters
        ----------
        label : ``thumbs_down`` (default), ``handoff`` or ``thumbs_down_next``.
        since, until : keep sessions whose ``day`` (the UTC day of the prediction time) is in
            [since, until]; events after ``until`` are never read, history before ``since`` is.
        tenant : only this tenant; a tenant without any stored event raises
            :class:`~assay.NotFoundError`.
        attributes : attribute keys to use as categorical features ``attr_<key>`` (opt-in:
            no attribute is ever a feature otherwise).
        label_window_days : days after the prediction time in which the label is looked for;
            default 1 for ``thumbs_down`` and ``handoff``, 8 for ``thumbs_down_next``. A session
            is a row only when its window has closed by the last stored event time (or the
            end of ``until``).

        Returns
        -------
        pyarrow.Table
            ``tenant_id, session_id, user_id, day, prediction_time``, the numeric features
            (float64), the categorical features (string), ``label`` (bool), sorted by day,
            tenant and session; schema metadata ``assay.label``, ``assay.features.numeric``,
            ``assay.features.categorical``, ``assay.prediction_time``, ``assay.window``.
        """
        return make_dataset(
            self._events(),
            label,
            since=since,
            until=until,
            tenant=tenant,
            attributes=attributes,
            label_window_days=label_window_days,
        )

    def features(
        self,
        *,
        since: dt.date | None = None,
        until: dt.date | None = None,
        tenant: str | None = None,
        attributes: Sequence[str] = (),
    ) -> pa.Table:
        """The features of every session, labelled or not: what a model scores.

        The same rows and columns as :meth:`dataset` without ``label``, and without the
        closed-window rule: the sessions of the last hours are rows too. Metadata as in
        :meth:`dataset`, without ``assay.label`` and ``assay.label_window_days``.
        """
        return make_dataset(
            self._events(),
            since=since,
            until=until,
            tenant=tenant,
            attributes=attributes,
            labelled=False,
        )
