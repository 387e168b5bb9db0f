"""The public metrics API: argument checks, execution on the events' engine, Arrow output."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa

from assay._errors import AssayError, EngineError, UsageError, unknown_tenant
from assay.metrics import _exprs
from assay.metrics._schemas import (
    SORT_COLUMNS,
    MetricName,
    key_columns,
    output_schema,
)
from assay.schema import EVENT_TYPES, SLICE_FIELDS

if TYPE_CHECKING:
    import ibis.expr.types as ir

_EPOCH = dt.date(1970, 1, 1)

#: Default trailing window of ``active_users`` and ``dau_rolling``, in days.
DEFAULT_WINDOW = 7
#: Default window of ``max_active``, in days.
DEFAULT_MAX_ACTIVE_WINDOW = 30
#: Default relative drop of ``dau_rolling``.
DEFAULT_THRESHOLD = 0.3


def _to_days(day: dt.date) -> int:
    return (day - _EPOCH).days


def check_date(name: str, value: object) -> dt.date | None:
    """``value`` as a date argument called ``name``: None, or a ``datetime.date`` that is not a
    ``datetime``; anything else raises :class:`~assay.UsageError` naming ``name``.

    Shared by every API that takes ``since``/``until`` days (metrics, models).

    Examples
    --------
    >>> import datetime as dt
    >>> check_date("since", dt.date(2026, 1, 31))
    datetime.date(2026, 1, 31)
    >>> check_date("since", None) is None
    True
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise UsageError(
            f"{name} must be a datetime.date (got {type(value).__name__}); "
            f"pass a date such as datetime.date(2026, 1, 31), or YYYY-MM-DD on the command line"
        )
    return value


def _check_window(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(
            f"window must be a whole number of days >= 1 (got {value!r}); "
            "use e.g. --window 7 for a weekly window"
        )
    return value


def _check_threshold(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0.0 <= float(value) < 1.0
    ):
        raise UsageError(
            f"threshold must be a fraction in [0, 1) (got {value!r}); "
            "use e.g. --threshold 0.3 to flag a 30% drop"
        )
    return float(value)


def _check_by(value: object) -> str | None:
    if value is None:
        return None
    if value not in SLICE_FIELDS:
        shown = repr(value) if isinstance(value, str) and len(value) <= 40 else "another value"
        raise UsageError(
            f"by must be one of {', '.join(SLICE_FIELDS)} (got {shown}); "
            "use e.g. --by locale, or --by flight to split by experiment"
        )
    return str(value)


def check_tenant(value: object) -> str | None:
    """``value`` as a ``tenant`` argument: None (every tenant) or a non-empty string; anything
    else raises :class:`~assay.UsageError` (the value itself is never shown)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise UsageError(
            f"tenant must be a non-empty tenant_id string (got {type(value).__name__}); "
            "pass --tenant TENANT_ID or leave it out for every tenant"
        )
    return value


#: The longest day grid a metric call may ask for: ten years of days per tenant and slice.
MAX_GRID_DAYS = 3660


def check_range(since: dt.date | None, until: dt.date | None) -> None:
    """Raise :class:`~assay.UsageError` when both days are given and ``since`` is after
    ``until``."""
    if since is not None and until is not None and since > until:
        raise UsageError(
            f"since must not be after until (got since {since.isoformat()}, until "
            f"{until.isoformat()}); swap them or widen the range"
        )


def _check_grid(first: dt.date | None, until: dt.date) -> None:
    """A grid from ``first`` (since, or the first event day) to ``until`` of at most
    ``MAX_GRID_DAYS``: an ``until`` centuries ahead would otherwise build millions of empty
    days per tenant."""
    if first is not None and (until - first).days + 1 > MAX_GRID_DAYS:
        raise UsageError(
            f"the day grid must span at most {MAX_GRID_DAYS:,} days (got "
            f"{(until - first).days + 1:,}, from {first.isoformat()} to {until.isoformat()}); "
            "narrow it with since/until (--since/--until)"
        )


class Metrics:
    """Product metrics per tenant, computed from the stored events on their engine.

    Every metric is one Ibis expression that runs unchanged on DuckDB and on Spark, and
    returns a :class:`pyarrow.Table` with exactly the documented columns, date columns as
    ``date32``, sorted by ``tenant_id``, the slice, then the day (or cohort week and week).

    Shared definitions (see ``docs/metrics.md``):

    - **Day**: the stored ``event_date``, the UTC day computed at ingest; never recomputed.
    - **User**: the pair (``tenant_id``, ``user_id``): one ``user_id`` in two tenants is two users.
    - **Active**: a user is active on a day with at least one event of an active type
      (``active_event_types``, default ``("turn",)``).
    - **Day grid**: per tenant (and slice value), one row per day from
      ``max(since, first active day)`` to ``until`` inclusive; a day without activity is a row
      of zeros, never absent. ``until`` defaults to the workspace's last event day (the
      largest ``event_date`` in the whole events table). A tenant with no active event up to
      ``until`` has no rows. Events after ``until`` are never read; windows may read days
      before ``since``.
    - **Unknown tenant**: a ``tenant`` without any stored event raises
      :class:`~assay.NotFoundError` naming the closest known tenants (a typo is not a silent
      tenant).
    - **Slices** (``by``): the metric computed over only the events carrying that value of the
      field, with its own grid from its own first active day. ``flight`` takes each element of
      ``flights``, so a session in two flights counts in both, and events in no flight are in
      no flight slice; for the other fields a null value is a slice of its own (null ``by``).

    Parameters
    ----------
    events : a callable returning the stored events as an Ibis table with
        ``assay.schema.EVENTS_SCHEMA``; called once per metric call, so each call sees the
        table's current files.
    active_event_types : the event types that make a user active; default ``("turn",)``.

    Examples
    --------
    >>> import datetime as dt
    >>> import ibis, pyarrow as pa
    >>> from assay.schema import EVENTS_SCHEMA
    >>> from assay.metrics import Metrics
    >>> row = {name: None for name in EVENTS_SCHEMA.names}
    >>> row |= dict(event_id="e1", tenant_id="acme", user_id="u1", session_id="s1",
    ...             event_type="turn", has_text=False, event_date=dt.date(2026, 1, 5),
    ...             event_time=dt.datetime(2026, 1, 5, 9, tzinfo=dt.timezone.utc),
    ...             ingested_at=dt.datetime(2026, 1, 5, 9, tzinfo=dt.timezone.utc))
    >>> table = pa.Table.from_pylist([row], schema=EVENTS_SCHEMA)
    >>> metrics = Metrics(lambda: ibis.memtable(table))
    >>> metrics.dau().to_pylist()
    [{'tenant_id': 'acme', 'day': datetime.date(2026, 1, 5), 'dau': 1}]
    """

    def __init__(
        self,
        events: Callable[[], ir.Table],
        *,
        active_event_types: Sequence[str] = ("turn",),
    ) -> None:
        if isinstance(active_event_types, str):
            active_event_types = (active_event_types,)
        types = tuple(active_event_types)
        unknown = [name for name in types if name not in EVENT_TYPES]
        if not types or unknown:
            raise UsageError(
                f"active_event_types must be a non-empty list of event types from "
                f"{', '.join(EVENT_TYPES)} (got {len(unknown)} unknown of {len(types)}); "
                "the default is ('turn',)"
            )
        self._events = events
        self.active_event_types: tuple[str, ...] = types

    def dau(
        self,
        *,
        tenant: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
        by: str | None = None,
    ) -> pa.Table:
        """Daily active users.

        ``dau`` on a day is the number of distinct users (``tenant_id``, ``user_id``) with at
        least one active event (``event_date`` = that day).

        Parameters
        ----------
        tenant : only this tenant; default every tenant. A tenant without any stored event
            raises :class:`~assay.NotFoundError`.
        since, until : the first and last day of the output, inclusive (see the day grid).
        by : a slice field: locale, platform, app_version, model_version, prompt_template or
            flight.

        Returns
        -------
        pyarrow.Table
            ``tenant_id, [by], day, dau``, one row per day of the grid; 0 on a day without
            activity.
        """
        return self._run("dau", tenant, since, until, by, _exprs.dau)

    def active_users(
        self,
        *,
        window: int = 7,
        tenant: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
        by: str | None = None,
    ) -> pa.Table:
        """Distinct active users over the trailing ``window`` days (7 = WAU, 28 or 30 = MAU).

        ``active_users`` on day *d* is the number of distinct users active on at least one
        day in [*d* - window + 1, *d*]. The window may reach before ``since`` (and before the
        tenant's first active day, where there is simply no activity).

        Parameters
        ----------
        window : the trailing window in days, including the day; >= 1, default 7.
        tenant, since, until, by : as in :meth:`dau`.

        Returns
        -------
        pyarrow.Table
            ``tenant_id, [by], day, window, active_users``, one row per day of the grid.
        """
        checked = _check_window(window)
        return self._run(
            "active_users",
            tenant,
            since,
            until,
            by,
            lambda ev, scope: _exprs.active_users(ev, scope, checked),
        )

    def dau_rolling(
        self,
        *,
        window: int = 7,
        threshold: float = 0.3,
        tenant: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
        by: str | None = None,
    ) -> pa.Table:
        """Rolling mean DAU against the window before it, with a drop flag.

        For day *d* and window *N*: ``dau_avg`` is the mean DAU over the *N* calendar days
        [*d* - N + 1, *d*]; ``dau_prev_avg`` the mean over the *N* days before those,
        [*d* - 2N + 1, *d* - N]. Days without activity count as 0. ``dau_prev_avg`` is null
        unless that prior window lies entirely on or after the tenant's (slice's) first
        active day — ``since`` only trims rows and never changes a value. ``drop`` is
        ``dau_avg <= (1 - threshold) * dau_prev_avg`` in double precision, and false when
        ``dau_prev_avg`` is null or 0.

        Parameters
        ----------
        window : N, in days; >= 1, default 7.
        threshold : the relative fall that counts as a drop, in [0, 1); default 0.3.
        tenant, since, until, by : as in :meth:`dau`.

        Returns
        -------
        pyarrow.Table
            ``tenant_id, [by], day, dau, dau_avg, dau_prev_avg, drop``, one row per day of the
            grid.
        """
        checked_window = _check_window(window)
        checked_threshold = _check_threshold(threshold)
        return self._run(
            "dau_rolling",
            tenant,
            since,
            until,
            by,
            lambda ev, scope: _exprs.dau_rolling(ev, scope, checked_window, checked_threshold),
        )

    def max_active(
        self,
        *,
        window: int = 30,
        tenant: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
        by: str | None = None,
    ) -> pa.Table:
        """The busiest run of ``window`` consecutive days inside the grid.

        Over every run of *N* consecutive days [*s*, *s* + N - 1] lying inside the tenant's
        grid (``max(since, first active day)`` <= *s* and *s* + N - 1 <= ``until``), count
        the distinct users active in it; ``max_active`` is the largest count and
        ``window_start`` the earliest *s* reaching it. Only days inside the grid are read.

        Parameters
        ----------
        window : N, in days; >= 1, default 30.
        tenant, since, until, by : as in :meth:`dau`.

        Returns
        -------
        pyarrow.Table
            ``tenant_id, [by], window, max_active, window_start``: one row per tenant (and
            slice value) with a non-empty grid; ``max_active`` and ``window_start`` are null
            when the grid is shorter than ``window`` days.
        """
        checked = _check_window(window)
        return self._run(
            "max_active",
            tenant,
            since,
            until,
            by,
            lambda ev, scope: _exprs.max_active(ev, scope, checked),
        )

    def retention(
        self,
        *,
        tenant: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
        by: str | None = None,
    ) -> pa.Table:
        """Weekly cohort retention.

        A user's cohort is the ISO week (Monday to Sunday, UTC days) of their first active
        day; ``cohort_week`` is that Monday. Week *k* of a cohort is the calendar week
        starting ``cohort_week + 7k``; ``users`` is the cohort's size, ``retained`` how many of
        them were active in week *k*, ``rate = retained / users`` (so week 0 is 1.0).

        ``since`` and ``until`` select cohorts: those whose week holds a day in [since, until]
        (``cohort_week`` from the Monday of ``since``'s week to the Monday of ``until``'s).
        The first active day is always taken over the whole history, never cut at ``since``.
        Weeks run from 0 to the week holding ``until``, that last one possibly partial; events
        after ``until`` are not read.

        Parameters
        ----------
        tenant, since, until, by : as in :meth:`dau`.

        Returns
        -------
        pyarrow.Table
            ``tenant_id, [by], cohort_week, week, users, retained, rate``; every week of every
            cohort is a row, with ``retained`` 0 when nobody came back.
        """
        return self._run("retention", tenant, since, until, by, _exprs.retention)

    def sessions(
        self,
        *,
        tenant: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
        by: str | None = None,
    ) -> pa.Table:
        """Per-day session volume, quality, latency and cost.

        A session is (``tenant_id``, ``session_id``). It is counted, with its handoff, on the
        day of its first event (its first event within the slice, when sliced), even when it
        runs past midnight. Every other column counts each event on its own ``event_date``.
        For day *d*:

        - ``sessions``: sessions whose first event is on *d*;
        - ``turns``: ``turn`` events on *d*; ``turns_per_session = turns / sessions``;
        - ``handoff_rate``: of the sessions counted on *d*, the share with a ``handoff`` event
          or an event with ``handoff = true`` (at any time in the session);
        - ``thumbs_down_rate``: events on *d* with ``feedback = -1`` / events on *d* with a
          non-null ``feedback``;
        - ``error_rate``: ``error`` events on *d* / ``turn`` events on *d*;
        - ``latency_p50``, ``latency_p95``, ``latency_p99``: exact percentiles of
          ``latency_ms`` over the ``turn`` events on *d* with a latency, by linear
          interpolation between closest ranks (numpy's default ``percentile``);
        - ``tokens_in``, ``tokens_out``, ``cost_usd``: sums over every event on *d* (nulls
          ignored; 0 when none).

        A ratio whose denominator is 0 is null, and so is a percentile with no latency. Rows
        follow the day grid, which starts at the first *active* day: a session that begins
        before it is counted nowhere, though its later turns are.

        Parameters
        ----------
        tenant, since, until, by : as in :meth:`dau`.

        Returns
        -------
        pyarrow.Table
            ``tenant_id, [by], day, sessions, turns, turns_per_session, handoff_rate,
            thumbs_down_rate, error_rate, latency_p50, latency_p95, latency_p99, tokens_in,
            tokens_out, cost_usd``, one row per day of the grid.
        """
        return self._run("sessions", tenant, since, until, by, _exprs.sessions)

    def health(
        self,
        *,
        tenant: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
        by: str | None = None,
        window: int = DEFAULT_WINDOW,
    ) -> pa.Table:
        """Per-day counts behind the metrics that ``assay anomalies scan`` watches.

        The same definitions as :meth:`dau`, :meth:`active_users` and :meth:`sessions`, with
        the counts of each rate instead of the rate, so that a rate can be judged by how many
        events it rests on. For day *d* on the day grid:

        - ``dau``; ``active_users``: distinct users active in the ``window`` days ending on *d*;
        - ``sessions`` and ``handoff_sessions`` (``handoff_rate = handoff_sessions / sessions``);
        - ``turns`` and ``errors`` (``error_rate = errors / turns``);
        - ``feedback`` (events with a ``feedback``) and ``thumbs_down`` (``feedback = -1``);
          ``thumbs_down_rate = thumbs_down / feedback``;
        - ``latency_p95`` (null without a latency) and ``cost_usd``, as in :meth:`sessions`;
        - the RAG counts, over the *answers* of *d*: ``turn`` events with a non-empty
          ``retrieved_doc_ids``. Doc ids are taken as a set per answer (a doc id listed
          twice counts once; ingest never stores a null entry). ``answers``;
          ``cited_answers`` (answers citing at least one doc id;
          ``cited_rate = cited_answers / answers``); ``citations``
          (distinct cited doc ids, a cited doc that was not retrieved included;
          ``citations_per_answer = citations / answers``); ``retrieved`` (distinct retrieved
          doc ids) and ``uncited_retrieved`` (those not cited;
          ``uncited_retrieved_share = uncited_retrieved / retrieved``). All 0 on a day without
          an answer, so each rate is null there, never 0.

        Parameters
        ----------
        tenant, since, until, by : as in :meth:`dau`.
        window : int, default 7
            Days of the trailing ``active_users`` window.

        Returns
        -------
        pyarrow.Table
            ``tenant_id, [by], day, dau, active_users, sessions, handoff_sessions, turns,
            errors, feedback, thumbs_down, latency_p95, cost_usd, answers, cited_answers,
            citations, retrieved, uncited_retrieved``, one row per day of the grid.
        """
        w = _check_window(window)
        return self._run(
            "health", tenant, since, until, by, lambda ev, scope: _exprs.health(ev, scope, w)
        )

    def _run(
        self,
        metric: MetricName,
        tenant: object,
        since: object,
        until: object,
        by: object,
        build: Callable[[ir.Table, _exprs.Scope], ir.Table],
    ) -> pa.Table:
        checked_tenant = check_tenant(tenant)
        checked_since = check_date("since", since)
        checked_until = check_date("until", until)
        checked_by = _check_by(by)
        check_range(checked_since, checked_until)
        schema = output_schema(metric, checked_by)

        events = self._events()
        try:
            if checked_until is None:
                checked_until = _last_event_day(events)
                if checked_until is None:
                    _check_known(events, checked_tenant)
                    return schema.empty_table()
            else:
                _check_grid(checked_since or _first_event_day(events), checked_until)
            scope = _exprs.Scope(
                by=checked_by,
                since=None if checked_since is None else _to_days(checked_since),
                until=_to_days(checked_until),
                active_event_types=self.active_event_types,
            )
            narrowed = _exprs.prepare(
                events, tenant=checked_tenant, by=checked_by, until_date=checked_until
            )
            result = build(narrowed, scope).to_pyarrow()
            if result.num_rows == 0:
                # Only an empty answer can hide an unknown tenant: no cost on the usual path.
                _check_known(events, checked_tenant)
        except AssayError:
            raise
        except Exception as exc:
            raise EngineError(
                f"the {metric} query failed on the {_backend_name(events)} engine "
                f"({type(exc).__name__}); check that the engine is running and the workspace "
                "is intact (the chained exception has the engine's own message)"
            ) from exc
        return _finish(result, schema, metric, checked_by)


def _check_known(events: ir.Table, tenant: str | None) -> None:
    """Raise :class:`NotFoundError` when ``tenant`` has no stored event (a typo would
    otherwise answer an empty table, as if the tenant had been silent)."""
    if tenant is None:
        return
    known = events.select("tenant_id").distinct().order_by("tenant_id").to_pyarrow()
    names = [str(t) for t in known.column("tenant_id").to_pylist()]
    if tenant not in names:
        raise unknown_tenant(tenant, names)


def _first_event_day(events: ir.Table) -> dt.date | None:
    """The smallest ``event_date`` in the whole events table, or None when it is empty."""
    value = events.event_date.epoch_days().min().to_pyarrow().as_py()
    return None if value is None else _EPOCH + dt.timedelta(days=int(value))


def _last_event_day(events: ir.Table) -> dt.date | None:
    """The largest ``event_date`` in the whole events table, or None when it is empty."""
    value = events.event_date.epoch_days().max().to_pyarrow().as_py()
    return None if value is None else _EPOCH + dt.timedelta(days=int(value))


def _backend_name(events: ir.Table) -> str:
    try:
        return str(ibis.get_backend(events).name)
    except Exception:
        return "unknown"


def _finish(result: pa.Table, schema: pa.Schema, metric: MetricName, by: str | None) -> pa.Table:
    """Cast the engine's result to the metric's exact schema and sort its rows."""
    arrays = []
    for field in schema:
        column = result.column(field.name)
        if pa.types.is_date32(field.type) and not pa.types.is_date32(column.type):
            # Days travel as integers through the engine; the cast is exact.
            column = column.cast(pa.int32()).cast(pa.date32())
        arrays.append(column.cast(field.type))
    table = pa.Table.from_arrays(arrays, schema=schema)
    order = [*key_columns(by), *SORT_COLUMNS[metric]]
    return table.sort_by([(name, "ascending") for name in order])


__all__ = [
    "DEFAULT_MAX_ACTIVE_WINDOW",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WINDOW",
    "Metrics",
]
