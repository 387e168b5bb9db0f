"""The counts behind ``assay explain`` and ``assay regressions``, on the workspace's engine.

The root cause of a tenant's metric (:func:`assay.anomaly.explain_metric`) and release
regressions (:func:`assay.drift.find_regressions`) read the metrics of ``docs/metrics.md``
broken down further than :class:`~assay.metrics.Metrics` returns them: per day and leaf (one
combination of slice values) of a tenant, or per tenant, release value and day. These
functions run those breakdowns as the Ibis expressions of ``assay.metrics`` (the same
definitions as the metrics, written once) on whatever engine the events table lives on
(DuckDB or Spark), and return Arrow tables or plain values. Nothing returned holds a user id.

Every function takes ``events``: the stored events as an Ibis table (``ws.events()`` of an
``assay.Workspace``, or :func:`workspace_events`).

Whole-history answers are kept per events table: :func:`first_event_day` (every tenant's first
day per event type, one query), :func:`first_seen` (per tenant, for any ``until`` up to the
one computed) and :func:`leaf_counts` (per arguments; ``sessions`` is read from the
``handoff_rate`` leaves, whose total it is). A fleet scan asks them once per tenant and metric,
always of the same history, and explains ``dau`` and ``active_users`` from the same leaves.
The key is the events table's Ibis node: an engine registers each Delta version under a new
name, so a new version is a new key and nothing stale is answered.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import AssayError, EngineError, UsageError
from assay.metrics import _exprs
from assay.metrics._metrics import _backend_name
from assay.schema import SLICE_FIELDS

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from assay.store import Workspace

_EPOCH = dt.date(1970, 1, 1)

LeafMeasure = _exprs.LeafMeasure
#: The measures :func:`leaf_counts` takes.
LEAF_MEASURES: tuple[str, ...] = _exprs.LEAF_MEASURES


def workspace_events(ws: Workspace) -> ir.Table:
    """The workspace's stored events as an Ibis table on its engine.

    An ``assay.Workspace`` answers with its own engine (``--engine``, or the ``engine``
    setting). A bare ``assay.store.Workspace`` has no engine: a DuckDB engine is opened for it
    once and closed with it.
    """
    own = getattr(ws, "events", None)
    if callable(own):
        table: ir.Table = own()
        return table
    engine = getattr(ws, "_breakdown_engine", None)
    if engine is None:
        from assay.store import connect

        engine = connect("duckdb")
        ws._breakdown_engine = engine  # type: ignore[attr-defined]
        ws.on_close(engine.close)
    result: ir.Table = engine.events(str(ws.table_path("events")), ws.files("events"))
    return result


class _Memo:
    """A small least-recently-used map of query results, safe across threads.

    Keys hold the events table's Ibis node (and so its backend) until evicted: the size
    bounds what a long-running process keeps.
    """

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_MEMO_SIZE = 256
_MEMO_LOCK = threading.Lock()


def _memo_of(events: ir.Table) -> _Memo:
    """The memo of the engine (Ibis backend) that ``events`` lives on, made on first use.

    It is an attribute of the backend, so it lives and dies with the engine: a closed
    workspace's answers are not kept by the process (a module-wide memo held them, and their
    backends, until 256 newer answers pushed them out).
    """
    backend = events._find_backend(use_default=True)
    memo: _Memo | None = getattr(backend, "_assay_memo", None)
    if memo is None:
        with _MEMO_LOCK:
            memo = getattr(backend, "_assay_memo", None)
            if memo is None:
                memo = _Memo(_MEMO_SIZE)
                backend._assay_memo = memo
    return memo


def _memo(events: ir.Table, key: Any, compute: Callable[[], Any]) -> Any:
    memo = _memo_of(events)
    value = memo.get(key)
    if value is None:
        value = compute()
        memo.put(key, value)
    return value


def _run(expr: Any, what: str) -> Any:
    """Execute ``expr`` to Arrow, an engine failure as :class:`EngineError`."""
    try:
        return expr.to_pyarrow()
    except AssayError:
        raise
    except Exception as exc:
        raise EngineError(
            f"the {what} query failed on the {_backend_name(expr)} engine "
            f"({type(exc).__name__}); check that the engine is running and the workspace is "
            "intact (the chained exception has the engine's own message)"
        ) from exc


def _check_dims(dims: Sequence[str]) -> list[str]:
    chosen = [dims] if isinstance(dims, str) else list(dims)
    if not chosen or len(set(chosen)) != len(chosen) or set(chosen) - set(SLICE_FIELDS):
        shown = [str(d)[:40] for d in chosen][:8]
        raise UsageError(
            f"dims must be distinct slice fields among {', '.join(SLICE_FIELDS)} (got {shown}); "
            "pass e.g. ['locale', 'platform']"
        )
    return chosen


def _check_field(field: str) -> str:
    """A field with one value per event: a slice field other than ``flight``."""
    if field not in SLICE_FIELDS or field == "flight":
        fields = ", ".join(f for f in SLICE_FIELDS if f != "flight")
        raise UsageError(
            f"field must be one of {fields} (got {str(field)[:40]!r}); e.g. 'model_version'"
        )
    return field


def _day_column(table: pa.Table, name: str = "day") -> pa.Table:
    """Integer days (since 1970-01-01) as ``date32``; the cast is exact."""
    i = table.schema.get_field_index(name)
    days = table.column(i).cast(pa.int32()).cast(pa.date32())
    return table.set_column(i, pa.field(name, pa.date32()), days)


def first_event_day(
    events: ir.Table, *, tenant: str | None = None, event_types: Sequence[str] | None = None
) -> dt.date | None:
    """The first ``event_date`` of ``tenant``'s events (every tenant's if None), counting
    only ``event_types`` when given; None when there is none.

    One query per events table answers every tenant and set of types: the first day of each
    (tenant, event type), kept for later calls on the same table.
    """
    firsts: dict[str, dict[str, int]] = _memo(
        events, ("first days", events.op()), lambda: _firsts(events)
    )
    per_tenant = firsts.values() if tenant is None else [firsts.get(tenant, {})]
    types = None if event_types is None else set(event_types)
    days = [
        day
        for by_type in per_tenant
        for event_type, day in by_type.items()
        if types is None or event_type in types
    ]
    return _EPOCH + dt.timedelta(days=min(days)) if days else None


def _firsts(events: ir.Table) -> dict[str, dict[str, int]]:
    """tenant -> event type -> first day (days since 1970-01-01)."""
    table = _run(_exprs.first_days(events), "first day")
    out: dict[str, dict[str, int]] = {}
    for tenant, event_type, day in zip(
        table.column("tenant_id").to_pylist(),
        table.column("event_type").to_pylist(),
        table.column("first_day").to_pylist(),
        strict=True,
    ):
        if day is not None:
            out.setdefault(tenant, {})[event_type] = int(day)
    return out


def leaf_counts(
    events: ir.Table,
    measure: LeafMeasure,
    *,
    tenant: str,
    start: dt.date,
    end: dt.date,
    dims: Sequence[str],
    active_event_types: Sequence[str] = ("turn",),
    slow_ms: float | None = None,
) -> pa.Table:
    """A tenant's metric per day and leaf over the days [start, end], as ``value`` (and
    ``total`` for a rate).

    A leaf is one combination of values of ``dims`` (slice fields; a null value is a value).
    ``flight`` is the event's set of flights, distinct, sorted and joined with ``+``
    (``exp-a+exp-b``; null for an event without flights), so each event is in exactly one
    leaf. Per (day, leaf), with the definitions of ``docs/metrics.md``:

    - ``dau``: distinct users with an event of ``active_event_types``;
    - ``sessions``: sessions whose first event (by ``event_time``, then ``event_id``) is on
      the day, in the leaf of that first event; a session with an event before ``start`` is
      not counted (it started earlier);
    - ``handoff_rate``: of those sessions (``total``), the ones (``value``) with a
      ``handoff`` event or ``handoff = true`` on any day from ``start`` on (also after
      ``end``);
    - ``thumbs_down_rate``: events with ``feedback = -1`` over events with a ``feedback``;
    - ``error_rate``: ``error`` events over ``turn`` events;
    - ``slow_turns``: ``turn`` events with ``latency_ms > slow_ms`` over ``turn`` events with
      a latency;
    - ``cost_usd``: the sum of ``cost_usd`` (0 when every cost is null);
    - ``cited_rate``: answers (``turn`` events with a retrieved doc id) citing at least one
      doc id over answers; ``uncited_retrieved_share``: distinct retrieved doc ids of the
      answers that they do not cite over distinct retrieved doc ids (``Metrics.health``'s
      RAG counts).

    Returns
    -------
    pyarrow.Table
        ``day`` (date32), one string column per dimension, ``value`` (float64) and, for the
        rates, ``total`` (float64); rows only where the leaf has events that day, sorted by
        day then dimensions.

    Examples
    --------
    >>> import datetime as dt, ibis, pyarrow as pa
    >>> from assay.schema import EVENTS_SCHEMA
    >>> def ev(i, day, event_type, locale):
    ...     row = dict.fromkeys(EVENTS_SCHEMA.names)
    ...     return row | dict(event_id=f"e{i}", tenant_id="acme", user_id="u1",
    ...         session_id=f"s{i}", event_type=event_type, locale=locale, has_text=False,
    ...         event_date=day, event_time=dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc),
    ...         ingested_at=dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc))
    >>> day = dt.date(2026, 1, 5)
    >>> rows = [ev(1, day, "turn", "en"), ev(2, day, "error", "en"), ev(3, day, "turn", "fr")]
    >>> events = ibis.memtable(pa.Table.from_pylist(rows, schema=EVENTS_SCHEMA))
    >>> leaf_counts(events, "error_rate", tenant="acme", start=day, end=day,
    ...             dims=["locale"]).to_pylist()  # doctest: +NORMALIZE_WHITESPACE
    [{'day': datetime.date(2026, 1, 5), 'locale': 'en', 'value': 1.0, 'total': 1.0},
     {'day': datetime.date(2026, 1, 5), 'locale': 'fr', 'value': 0.0, 'total': 1.0}]
    """
    if measure not in LEAF_MEASURES:
        raise UsageError(
            f"measure must be one of {', '.join(LEAF_MEASURES)} (got {str(measure)[:40]!r})"
        )
    if measure == "slow_turns" and slow_ms is None:
        raise UsageError("the slow_turns measure needs slow_ms, the latency a slow turn exceeds")
    dims = _check_dims(dims)
    if measure == "sessions":
        # The sessions of a leaf are the handoff rate's total: one query answers both
        # (explain asks for both metrics of a tenant and day).
        rates = _leaf_table(events, "handoff_rate", tenant, start, end, dims, (), None)
        sessions = rates.select(["day", *dims, "total"])
        return sessions.rename_columns(["day", *dims, "value"])
    active = tuple(active_event_types) if measure == "dau" else ()
    slow = slow_ms if measure == "slow_turns" else None
    return _leaf_table(events, measure, tenant, start, end, dims, active, slow)


def _leaf_table(
    events: ir.Table,
    measure: str,
    tenant: str,
    start: dt.date,
    end: dt.date,
    dims: list[str],
    active: tuple[str, ...],
    slow_ms: float | None,
) -> pa.Table:
    """:func:`leaf_counts` once per events table and arguments (``dau`` and
    ``active_users`` are explained from the same leaves)."""
    key = ("leaves", events.op(), measure, tenant, start, end, tuple(dims), active, slow_ms)
    memo = _memo_of(events)
    kept: pa.Table | None = memo.get(key)
    if kept is not None:
        return kept
    expr = _exprs.leaf_counts(
        events,
        measure,
        tenant=tenant,
        start=start,
        end=end,
        dims=dims,
        active_event_types=active,
        slow_ms=slow_ms,
    )
    names = ["day", *dims, "value", *(["total"] if measure in _exprs.LEAF_RATES else [])]
    table = _run(expr.select(*names), f"{measure} breakdown")
    table = _day_column(table)
    schema = pa.schema(
        [pa.field("day", pa.date32())]
        + [pa.field(d, pa.string()) for d in dims]
        + [pa.field(n, pa.float64()) for n in names[len(dims) + 1 :]]
    )
    table = table.select(names).cast(schema)
    table = table.sort_by([(n, "ascending") for n in ["day", *dims]])
    memo.put(key, table)
    return table


def latency_quantile(
    events: ir.Table, q: float, *, tenant: str, start: dt.date, end: dt.date
) -> float | None:
    """The exact ``q`` quantile of the tenant's ``turn`` latencies on the days [start, end].

    Linear interpolation between closest ranks, as the ``latency_p95`` metric
    (``docs/metrics.md``; numpy's default ``percentile``): never approximate. Ibis compiles it
    to DuckDB's ``quantile_cont`` and to Spark SQL's exact ``percentile`` (not
    ``percentile_approx``), so both engines give the same value. None when the days hold no
    turn latency.
    """
    value = _run(
        _exprs.latency_quantile(events, q, tenant=tenant, start=start, end=end), "latency"
    ).as_py()
    return None if value is None else float(value)


def first_seen(events: ir.Table, fields: Sequence[str], *, tenant: str, until: dt.date) -> pa.Table:
    """The first day each value of ``fields`` appears in the tenant's events up to ``until``.

    ``flight`` is one element of the event's ``flights``; null values are left out. The
    answer for one ``until`` holds the answer for every earlier day (the values first seen by
    then), so it is kept per events table and tenant and later calls up to that day read no
    events.

    Returns
    -------
    pyarrow.Table
        ``field, value, first_seen`` (date32), sorted by ``first_seen``, ``field``, ``value``.
    """
    key = ("first seen", events.op(), tenant, tuple(fields))
    memo = _memo_of(events)
    kept: tuple[dt.date, pa.Table] | None = memo.get(key)
    if kept is not None and until <= kept[0]:
        table = kept[1]
        return table.filter(pc.less_equal(table.column("first_seen"), pa.scalar(until)))
    expr = _exprs.first_seen(events, list(fields), tenant=tenant, until=until)
    table = _day_column(_run(expr, "release events"), "first_day")
    table = table.rename_columns(["field", "value", "first_seen"])
    table = table.sort_by(
        [("first_seen", "ascending"), ("field", "ascending"), ("value", "ascending")]
    )
    memo.put(key, (until, table))
    return table


def release_counts(events: ir.Table, field: str, *, until: dt.date) -> pa.Table:
    """Daily counts per tenant and value of a release field, up to ``until``.

    Per (tenant, non-null value V of ``field``, day with an event carrying V):

    - ``sessions``: sessions whose first event carrying V is on the day (a session counts in
      every value it carries); ``handoffs``: those of them handed off (a ``handoff`` event or
      ``handoff = true`` on any event of the session up to ``until``, whatever its value);
    - ``turns``, ``errors``: ``turn`` and ``error`` events carrying V on the day;
    - ``feedback``, ``thumbs_down``: events carrying V with a ``feedback``, with
      ``feedback = -1``;
    - ``answers`` (``turn`` events carrying V with a non-empty ``retrieved_doc_ids``),
      ``uncited_answers`` (those citing no doc id), ``retrieved`` (their distinct retrieved
      doc ids, summed) and ``uncited_retrieved`` (those not cited): the RAG counts of
      ``Metrics.health``.

    Returns
    -------
    pyarrow.Table
        ``tenant_id, value, day`` (date32) and the ten int64 counts, sorted by tenant, value,
        day.
    """
    field = _check_field(field)
    table = _run(_exprs.release_counts(events, field, until=until), f"{field} counts")
    table = _day_column(table)
    return table.sort_by([(n, "ascending") for n in ("tenant_id", "value", "day")])


def release_latencies(
    events: ir.Table, field: str, *, since: dt.date | None, until: dt.date
) -> pa.Table:
    """Every ``turn`` latency of the days [since, until] per tenant and value of ``field``.

    The raw values, for statistics that need them (a Mann-Whitney test, a percentile of a
    union of days): one float per turn with a latency and a non-null value, so the result
    grows with the turns of those days. Bound it with ``since`` to the days the statistic
    reads.

    Returns
    -------
    pyarrow.Table
        ``tenant_id, value, day`` (date32), ``latency_ms`` (float64), sorted by tenant, value,
        day, latency.
    """
    field = _check_field(field)
    expr = _exprs.release_latencies(events, field, since=since, until=until)
    table = _day_column(_run(expr, f"{field} latencies"))
    order = ("tenant_id", "value", "day", "latency_ms")
    return table.sort_by([(n, "ascending") for n in order])


__all__ = [
    "LEAF_MEASURES",
    "LeafMeasure",
    "first_event_day",
    "first_seen",
    "latency_quantile",
    "leaf_counts",
    "release_counts",
    "release_latencies",
    "workspace_events",
]
