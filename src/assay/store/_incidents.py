"""Incidents: one model shared by anomalies, drift and release regressions.

An incident is a span of UTC days on which one watched series (its ``key``, e.g.
``"dau|tenant=acme|locale=fr"``) misbehaved. Incidents live in the ``incidents`` table of
``assay.sqlite`` with a state::

    open ──ack──► acknowledged ──resolve──► resolved
      └───────────────resolve────────────────┘

The same incident is never raised twice. :meth:`IncidentStore.record` merges a new finding into
the incident of the same ``(kind, key)`` whose days it touches (overlapping, or at most
``gap_days`` apart), so re-running a scan over the same days changes nothing. Days near a
resolved incident (within ``gap_days`` of its span) stay silent; days beyond that are a new
incident. The rules, with examples, are in ``docs/incidents.md``.

Nothing here holds raw text or raw user ids; messages name incidents by their numeric id.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import json
import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from assay._errors import NotFoundError, UsageError
from assay._records import slice_text, value_text
from assay.store._meta import MetaStore

IncidentState = Literal["open", "acknowledged", "resolved"]
INCIDENT_STATES: tuple[IncidentState, ...] = ("open", "acknowledged", "resolved")
IncidentKind = Literal["anomaly", "drift", "regression", "model", "rollout"]
INCIDENT_KINDS: tuple[IncidentKind, ...] = ("anomaly", "drift", "regression", "model", "rollout")
Direction = Literal["up", "down"]
Severity = Literal["low", "medium", "high"]
RecordOutcome = Literal["opened", "extended", "unchanged", "suppressed"]

_SEVERITY_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2}
_OUTCOME_RANK: dict[str, int] = {"unchanged": 0, "extended": 1, "opened": 2}
_MAX_NAME = 512
#: The key of ``details`` listing where one incident is seen: one entry per watched series
#: (``key``, ``tenant_id``, ``slice``, ``metric``, ``start``, ``end``, ``direction``, ``expected``,
#: ``observed``, ...). Merging two findings takes the union of their entries (see ``record``).
SEEN_IN = "seen_in"

_COLUMNS = (
    "id, kind, key, tenant_id, metric, slice, start_day, end_day, direction, severity, "
    "expected, observed, score, details, state, created_at, updated_at, acknowledged_at, "
    "resolved_at, merged_into"
)
_LIST_HINT = "`assay incidents list --state all` shows every incident's id"


@dataclass(frozen=True)
class NewIncident:
    """A finding to record: what misbehaved, on which days, and how.

    Attributes
    ----------
    kind : {"anomaly", "drift", "regression", "model", "rollout"}
        What raised it.
    key : str
        Identity of the watched series, e.g. ``"dau|tenant=acme|locale=fr"``. Findings of the
        same ``(kind, key)`` on touching days are one incident.
    tenant_id : str or None
        The tenant, or None for a finding across tenants.
    metric : str
        The metric (or drifted feature) watched.
    slice : dict of str to str or None
        The slice of the tenant watched; ``{}`` for the whole tenant.
    start, end : datetime.date
        First and last UTC day of the finding, inclusive (``start <= end``).
    direction : {"up", "down"}
        Which way the series moved.
    severity : {"low", "medium", "high"}
    expected, observed : float or None
        The expected and the observed value (finite), when they exist.
    score : float or None
        The finding's strength, smaller is stronger (e.g. the smallest q-value of the run).
    details : dict
        JSON-able extra facts (an explanation, intervals, counts). Dates are stored as ISO
        text, numpy scalars as Python numbers, NaN and infinities as null.
    """

    kind: str
    key: str
    tenant_id: str | None
    metric: str
    slice: dict[str, str | None]
    start: dt.date
    end: dt.date
    direction: Direction
    severity: Severity
    expected: float | None
    observed: float | None
    score: float | None
    details: dict[str, Any]


@dataclass(frozen=True)
class Incident:
    """A stored incident: the fields of :class:`NewIncident`, its id, state and history.

    Attributes
    ----------
    id : int
        Its number in the workspace (``assay incidents show ID``).
    state : {"open", "acknowledged", "resolved"}
    created_at, updated_at : str
        ISO 8601 UTC times, to the second: when it was raised, and last changed.
    acknowledged_at, resolved_at : str or None
        When it was acknowledged and resolved.
    merged_into : int or None
        Set when a later finding bridged this incident and a newer one of the same series: this
        one was folded into incident ``merged_into`` and marked resolved.
    """

    id: int
    kind: str
    key: str
    tenant_id: str | None
    metric: str
    slice: dict[str, str | None]
    start: dt.date
    end: dt.date
    direction: Direction
    severity: Severity
    expected: float | None
    observed: float | None
    score: float | None
    details: dict[str, Any]
    state: IncidentState
    created_at: str
    updated_at: str
    acknowledged_at: str | None
    resolved_at: str | None
    merged_into: int | None = None

    @property
    def days(self) -> int:
        """Number of days from ``start`` to ``end``, both included."""
        return (self.end - self.start).days + 1

    @property
    def seen_in(self) -> builtins.list[dict[str, Any]]:
        """Where the incident is seen: ``details["seen_in"]``, or the incident's own series
        when it has no such list (one entry)."""
        members = self.details.get(SEEN_IN)
        if isinstance(members, list) and members:
            return [m for m in members if isinstance(m, dict)]
        return [
            {
                "key": self.key,
                "tenant_id": self.tenant_id,
                "slice": dict(self.slice),
                "metric": self.metric,
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "direction": self.direction,
                "expected": self.expected,
                "observed": self.observed,
            }
        ]

    @property
    def title(self) -> str:
        """One line for a person on call: the cause when one is known, what moved, and where.

        ``"prompt_template=rag-v3: latency_p95 up in 12 tenants (20 series)"``,
        ``"dau down, error_rate up in tenant-005 (4 series)"``,
        ``"handoff_rate up in acme (locale=fr)"``. The cause is ``details["cause"]``
        (``{"field": ..., "value": ...}``); metrics and tenants come from :attr:`seen_in`.

        Examples
        --------
        >>> import datetime
        >>> day = datetime.date(2026, 3, 2)
        >>> inc = Incident(
        ...     id=7, kind="anomaly", key="dau|tenant=acme|locale=fr", tenant_id="acme",
        ...     metric="dau", slice={"locale": "fr"}, start=day, end=day, direction="down",
        ...     severity="high", expected=120.0, observed=40.0, score=1e-4, details={},
        ...     state="open", created_at="", updated_at="", acknowledged_at=None,
        ...     resolved_at=None)
        >>> inc.title
        'dau down in acme (locale=fr)'
        """
        members = self.seen_in
        moves = list(dict.fromkeys(f"{m.get('metric')} {m.get('direction')}" for m in members))
        tenants = sorted({str(m.get("tenant_id")) for m in members if m.get("tenant_id")})
        where = tenants[0] if len(tenants) == 1 else f"{len(tenants)} tenants"
        text = f"{', '.join(moves)} in {where}"
        if len(members) > 1:
            text += f" ({len(members)} series)"
        cause = self.details.get("cause")
        if isinstance(cause, dict) and cause.get("field"):
            return f"{cause['field']}={value_text(cause.get('value'))}: {text}"
        if self.slice:
            text += f" ({slice_text(self.slice)})"
        return text

    def as_dict(self) -> dict[str, Any]:
        """Every field as JSON-able values (dates as ``YYYY-MM-DD``).

        Examples
        --------
        >>> import datetime
        >>> inc = Incident(
        ...     id=7, kind="anomaly", key="dau|tenant=acme", tenant_id="acme", metric="dau",
        ...     slice={}, start=datetime.date(2026, 3, 2), end=datetime.date(2026, 3, 4),
        ...     direction="down", severity="high", expected=120.0, observed=40.0, score=1e-4,
        ...     details={}, state="open", created_at="2026-03-05T06:00:00+00:00",
        ...     updated_at="2026-03-05T06:00:00+00:00", acknowledged_at=None, resolved_at=None)
        >>> d = inc.as_dict()
        >>> d["id"], d["start"], d["end"], d["state"]
        (7, '2026-03-02', '2026-03-04', 'open')
        """
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["start"] = self.start.isoformat()
        out["end"] = self.end.isoformat()
        out["slice"] = dict(self.slice)
        out["details"] = json.loads(json.dumps(self.details))
        out["title"] = self.title
        return out


# -- validation ---------------------------------------------------------------------------------


def _choice(name: str, value: object, choices: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise UsageError(
            f"an incident's {name} must be one of {', '.join(choices)} "
            f"(got {_show(value)}); pass one of those"
        )


def _show(value: object) -> str:
    """A short, safe rendering of a bad value for a message."""
    if isinstance(value, str):
        return repr(value[:40] + ("..." if len(value) > 40 else ""))
    if value is None or isinstance(value, int | float | bool | dt.date):
        return repr(value)
    return f"a {type(value).__name__}"


def _name(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not 1 <= len(value) <= _MAX_NAME:
        size = f"{len(value)} characters" if isinstance(value, str) else _show(value)
        raise UsageError(
            f"an incident's {name} must be text of 1 to {_MAX_NAME} characters (got {size})"
            + ("; pass None when there is none" if optional else "")
        )


def _finite(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise UsageError(
            f"an incident's {name} must be a finite number or None (got {_show(value)})"
        )
    out = float(value)
    if not math.isfinite(out):
        raise UsageError(
            f"an incident's {name} must be a finite number or None (got {out}); "
            "pass None when the value is undefined"
        )
    return out


def _day(name: str, value: object) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise UsageError(
            f"an incident's {name} must be a datetime.date, a UTC day (got {_show(value)}); "
            "for a datetime pass its .date() in UTC"
        )
    return value


def _json_ready(value: object, where: str) -> Any:
    """``value`` as plain JSON values: dates as ISO text, numpy scalars as Python numbers, NaN
    and infinities as None (as the CLI and the HTTP API print them)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date):  # a datetime is a date too
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise UsageError(
                    f"incident {where} must have text keys (got the key {_show(k)}); "
                    "convert keys with str()"
                )
            out[k] = _json_ready(v, f"{where}[{k[:40]!r}]")
        return out
    if isinstance(value, list | tuple):
        return [_json_ready(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise UsageError(
        f"incident {where} must hold JSON values (text, numbers, booleans, null, lists, "
        f"dicts, dates), got {_show(value)}; convert it to one of those"
    )


def _details(details: object, where: str = "details") -> dict[str, Any]:
    if not isinstance(details, Mapping):
        raise UsageError(f"incident {where} must be a dict (got {_show(details)}); pass {{}}")
    out: dict[str, Any] = _json_ready(details, where)
    return out


def _slice(value: object) -> dict[str, str | None]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items()
    ):
        raise UsageError(
            f"an incident's slice must be a dict of dimension name to text or None "
            f"(got {_show(value)}); pass {{}} for a whole tenant"
        )
    return dict(value)


def _validate(new: NewIncident) -> NewIncident:
    """``new`` checked, with floats as floats and details as plain JSON values."""
    _choice("kind", new.kind, INCIDENT_KINDS)
    _name("key", new.key)
    _name("tenant_id", new.tenant_id, optional=True)
    _name("metric", new.metric)
    start, end = _day("start", new.start), _day("end", new.end)
    if end < start:
        raise UsageError(
            f"an incident's end must be on or after its start (got start {start}, end {end}); "
            "the day range is inclusive: pass start <= end"
        )
    _choice("direction", new.direction, get_args(Direction))
    _choice("severity", new.severity, get_args(Severity))
    return dataclasses.replace(
        new,
        slice=_slice(new.slice),
        expected=_finite("expected", new.expected),
        observed=_finite("observed", new.observed),
        score=_finite("score", new.score),
        details=_details(new.details),
    )


# -- storage ------------------------------------------------------------------------------------


def _dump(value: object) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False, ensure_ascii=False)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _from_row(row: Sequence[Any]) -> Incident:
    r = dict(zip(_COLUMNS.split(", "), row, strict=True))
    return Incident(
        id=int(r["id"]),
        kind=str(r["kind"]),
        key=str(r["key"]),
        tenant_id=r["tenant_id"],
        metric=str(r["metric"]),
        slice=json.loads(r["slice"]),
        start=dt.date.fromisoformat(r["start_day"]),
        end=dt.date.fromisoformat(r["end_day"]),
        direction=r["direction"],
        severity=r["severity"],
        expected=r["expected"],
        observed=r["observed"],
        score=r["score"],
        details=json.loads(r["details"]),
        state=r["state"],
        created_at=str(r["created_at"]),
        updated_at=str(r["updated_at"]),
        acknowledged_at=r["acknowledged_at"],
        resolved_at=r["resolved_at"],
        merged_into=r["merged_into"],
    )


def _min_score(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return b if a is None else a
    return min(a, b)


def _fold(acc: Incident, nxt: Incident | NewIncident) -> Incident:
    """``acc`` with the finding ``nxt`` (the later one) merged in: the union of the days, the
    highest severity, the smallest score, the values of whichever ends last (``nxt`` on a tie)
    and the details of both (``nxt`` wins a conflict). Kind, key, series and direction are
    ``acc``'s."""
    newer = nxt.end >= acc.end
    details = {**acc.details, **nxt.details}
    tenant_id = acc.tenant_id
    if isinstance(acc.details.get(SEEN_IN), list) or isinstance(nxt.details.get(SEEN_IN), list):
        details[SEEN_IN] = _merge_seen_in(acc.details.get(SEEN_IN), nxt.details.get(SEEN_IN))
        tenants = {m.get("tenant_id") for m in details[SEEN_IN]}
        tenant_id = tenants.pop() if len(tenants) == 1 else None
    return dataclasses.replace(
        acc,
        tenant_id=tenant_id,
        start=min(acc.start, nxt.start),
        end=max(acc.end, nxt.end),
        severity=max(acc.severity, nxt.severity, key=_SEVERITY_RANK.__getitem__),
        score=_min_score(acc.score, nxt.score),
        expected=nxt.expected if newer else acc.expected,
        observed=nxt.observed if newer else acc.observed,
        details=details,
    )


def _merge_seen_in(old: object, new: object) -> list[dict[str, Any]]:
    """The union of two ``seen_in`` lists, one entry per series ``key``: an entry of ``new``
    replaces the one of ``old`` for its series, its days widened to cover both; sorted by
    (start, key), so recording the same members again changes nothing."""
    out: dict[str, dict[str, Any]] = {}
    for entries in (old, new):
        for m in entries if isinstance(entries, list) else []:
            if not isinstance(m, dict):
                continue
            key = str(m.get("key"))
            prev = out.get(key)
            if prev is not None:
                m = {
                    **m,
                    "start": min(str(prev.get("start")), str(m.get("start"))),
                    "end": max(str(prev.get("end")), str(m.get("end"))),
                }
            out[key] = m
    return sorted(out.values(), key=lambda m: (str(m.get("start")), str(m.get("key"))))


def _stored(inc: Incident) -> tuple[Any, ...]:
    """The fields a merge may change, as stored (to tell "extended" from "unchanged")."""
    return (
        inc.tenant_id,
        inc.start,
        inc.end,
        inc.severity,
        inc.score,
        inc.expected,
        inc.observed,
        _dump(inc.details),
    )


def _pieces(
    start: dt.date, end: dt.date, blocked: Sequence[Incident], gap: int
) -> list[tuple[dt.date, dt.date]]:
    """The parts of [start, end] outside every ``blocked`` incident's reach (its days widened
    by ``gap`` on each side), in day order."""
    step = dt.timedelta(days=1)
    spans = sorted(
        (b.start - dt.timedelta(days=gap), b.end + dt.timedelta(days=gap)) for b in blocked
    )
    out: list[tuple[dt.date, dt.date]] = []
    cursor = start
    for lo, hi in spans:
        if lo > cursor:
            out.append((cursor, min(end, lo - step)))
        cursor = max(cursor, hi + step)
        if cursor > end:
            break
    if cursor <= end:
        out.append((cursor, end))
    return out


class IncidentStore:
    """Record, list and change the state of a workspace's incidents (in ``assay.sqlite``).

    Usually reached as ``ws.incidents`` of an :class:`assay.store.Workspace`.

    Examples
    --------
    >>> import datetime, tempfile
    >>> from pathlib import Path
    >>> from assay.store._meta import MetaStore
    >>> d = tempfile.TemporaryDirectory()
    >>> meta = MetaStore(Path(d.name) / "assay.sqlite")
    >>> store = IncidentStore(meta)
    >>> def run(first, last):
    ...     return NewIncident(
    ...         kind="anomaly", key="dau|tenant=acme", tenant_id="acme", metric="dau",
    ...         slice={}, start=datetime.date(2026, 3, first), end=datetime.date(2026, 3, last),
    ...         direction="down", severity="high", expected=120.0, observed=40.0,
    ...         score=1e-4, details={})
    >>> inc, outcome = store.record(run(2, 4))
    >>> outcome, inc.id, inc.state
    ('opened', 1, 'open')
    >>> store.record(run(2, 4))[1]      # the same days again: nothing changes
    'unchanged'
    >>> inc, outcome = store.record(run(4, 6))
    >>> outcome, inc.id, str(inc.start), str(inc.end)
    ('extended', 1, '2026-03-02', '2026-03-06')
    >>> store.resolve(1).state
    'resolved'
    >>> store.record(run(5, 7))[1]      # touches the resolved incident: stays silent
    'suppressed'
    >>> inc, outcome = store.record(run(9, 10))  # more than gap_days later: a new incident
    >>> outcome, inc.id
    ('opened', 2)
    >>> meta.close(); d.cleanup()
    """

    def __init__(self, meta: MetaStore) -> None:
        self._meta = meta

    # -- recording --------------------------------------------------------------------------------
    def record(
        self, new: NewIncident, *, gap_days: int = 1
    ) -> tuple[Incident | None, RecordOutcome]:
        """Record a finding without raising the same incident twice; one SQLite transaction.

        An incident of the same ``(kind, key)`` *touches* the finding when
        ``new.start <= old.end + gap_days`` and ``new.end >= old.start - gap_days``: the day
        ranges overlap or lie at most ``gap_days`` apart (with 1, adjacent ranges touch).

        - A touching **resolved** incident silences its reach, its days widened by
          ``gap_days`` on each side: those days of the finding are dropped. If nothing is
          left, the result is ``(that resolved incident, "suppressed")``; it is not reopened.
        - The days left that touch no open or acknowledged incident are a new incident
          (``"opened"``).
        - Days that touch one merge into it: the union of the days, the highest severity, the
          smallest score (None ignored), ``expected``/``observed`` of the finding if it ends on
          or after the incident, the details of both (the finding wins a conflict). Its state
          stays as it was. ``"extended"`` if a stored field changed, else ``"unchanged"``:
          recording the same finding again is a no-op.
        - If the finding bridges several open or acknowledged incidents, they become one: the
          most recent (highest id) takes the others in, which are marked resolved with
          ``merged_into`` set. So the incidents of one series never touch each other.

        When a resolved incident splits the finding in two parts, each is recorded; the
        result is the most consequential (opened, then extended, then unchanged), the later
        part on a tie.

        Parameters
        ----------
        new : NewIncident
            The finding. Invalid fields raise :class:`~assay.UsageError`.
        gap_days : int, default 1
            Findings at most this many days apart are one incident; 0 merges only
            overlapping days.

        Returns
        -------
        (Incident or None, {"opened", "extended", "unchanged", "suppressed"})
            The incident the finding went into (the silencing one when suppressed).
        """
        new = _validate(new)
        if isinstance(gap_days, bool) or not isinstance(gap_days, int) or gap_days < 0:
            raise UsageError(
                f"gap_days must be an integer >= 0 (got {_show(gap_days)}); "
                "1 merges findings on adjacent days, 0 only overlapping ones"
            )
        gap = dt.timedelta(days=gap_days)
        with self._meta.transaction() as conn:
            touching = self._touching(conn, new, new.start, new.end, gap)
            resolved = [i for i in touching if i.state == "resolved"]
            pieces = _pieces(new.start, new.end, resolved, gap_days)
            if not pieces:
                return resolved[0], "suppressed"
            results = [self._record_piece(conn, new, lo, hi, gap) for lo, hi in pieces]
        best = max(range(len(results)), key=lambda i: (_OUTCOME_RANK[results[i][1]], i))
        return results[best]

    def _touching(
        self,
        conn: sqlite3.Connection,
        new: NewIncident,
        start: dt.date,
        end: dt.date,
        gap: dt.timedelta,
    ) -> builtins.list[Incident]:
        """Incidents of ``new``'s (kind, key) touching [start, end], most recent first.
        Incidents merged into another are left out: their days are in that one."""
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM incidents WHERE kind = ? AND key = ? "
            "AND merged_into IS NULL AND start_day <= ? AND end_day >= ? ORDER BY id DESC",
            (new.kind, new.key, (end + gap).isoformat(), (start - gap).isoformat()),
        ).fetchall()
        return [_from_row(r) for r in rows]

    def _record_piece(
        self,
        conn: sqlite3.Connection,
        new: NewIncident,
        start: dt.date,
        end: dt.date,
        gap: dt.timedelta,
    ) -> tuple[Incident, RecordOutcome]:
        piece = dataclasses.replace(new, start=start, end=end)
        # The piece lies outside every resolved incident's reach (see _pieces), so what
        # touches it is open or acknowledged.
        active = [i for i in self._touching(conn, new, start, end, gap) if i.state != "resolved"]
        now = _now()
        if not active:
            cur = conn.execute(
                "INSERT INTO incidents (kind, key, tenant_id, metric, slice, start_day, end_day, "
                "direction, severity, expected, observed, score, details, state, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                (
                    piece.kind,
                    piece.key,
                    piece.tenant_id,
                    piece.metric,
                    _dump(piece.slice),
                    start.isoformat(),
                    end.isoformat(),
                    piece.direction,
                    piece.severity,
                    piece.expected,
                    piece.observed,
                    piece.score,
                    _dump(piece.details),
                    now,
                    now,
                ),
            )
            return self._get(conn, int(cur.lastrowid or 0)), "opened"
        # Oldest first, so that later findings win conflicts; the newest one survives.
        ordered = sorted(active, key=lambda i: i.id)
        survivor, older = ordered[-1], ordered[:-1]
        merged = ordered[0]
        for inc in ordered[1:]:
            merged = _fold(merged, inc)
        merged = _fold(merged, piece)
        if not older and _stored(merged) == _stored(survivor):
            return survivor, "unchanged"
        conn.execute(
            "UPDATE incidents SET tenant_id = ?, start_day = ?, end_day = ?, severity = ?, "
            "score = ?, expected = ?, observed = ?, details = ?, updated_at = ? WHERE id = ?",
            (
                merged.tenant_id,
                merged.start.isoformat(),
                merged.end.isoformat(),
                merged.severity,
                merged.score,
                merged.expected,
                merged.observed,
                _dump(merged.details),
                now,
                survivor.id,
            ),
        )
        for inc in older:
            conn.execute(
                "UPDATE incidents SET state = 'resolved', merged_into = ?, updated_at = ?, "
                "resolved_at = ? WHERE id = ?",
                (survivor.id, now, now, inc.id),
            )
        return self._get(conn, survivor.id), "extended"

    # -- reading --------------------------------------------------------------------------------
    def list(
        self,
        *,
        state: str | None = None,
        tenant: str | None = None,
        kind: str | None = None,
        metric: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[Incident]:
        """Incidents, newest (highest id) first.

        Parameters
        ----------
        state : {"open", "acknowledged", "resolved", "all"} or None
            None: open and acknowledged ones (those that still need someone); ``"all"``: every
            state.
        tenant, kind, metric : str or None
            Keep only those of this tenant, kind, metric; an incident seen in several series
            (``details["seen_in"]``) is kept when any of them is of this tenant or metric.
        limit : int or None
            At most this many (>= 1).
        """
        where: builtins.list[str] = []
        params: builtins.list[str] = []
        if state is None:
            where.append("state IN ('open', 'acknowledged')")
        elif state != "all":
            _choice_state(state)
            where.append("state = ?")
            params.append(state)
        if kind is not None:
            _choice("kind", kind, INCIDENT_KINDS)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        for column, value in (("tenant_id", tenant), ("metric", metric)):
            if value is not None:
                # An incident seen in several series matches any of them.
                where.append(
                    f"({column} = ? OR EXISTS (SELECT 1 FROM json_each(details, '$.{SEEN_IN}') "
                    f"WHERE json_extract(value, '$.{column}') = ?))"
                )
                params += [value, value]
        sql = f"SELECT {_COLUMNS} FROM incidents"
        if where:
            sql += f" WHERE {' AND '.join(where)}"
        sql += " ORDER BY id DESC"
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise UsageError(f"limit must be an integer >= 1 (got {_show(limit)})")
            sql += f" LIMIT {int(limit)}"
        return [_from_row(r) for r in self._meta.execute(sql, tuple(params))]

    def get(self, incident_id: int) -> Incident:
        """The incident with this id; :class:`~assay.NotFoundError` if there is none."""
        rows = self._meta.execute(
            f"SELECT {_COLUMNS} FROM incidents WHERE id = ?", (int(incident_id),)
        )
        if not rows:
            raise _not_found(incident_id)
        return _from_row(rows[0])

    @staticmethod
    def _get(conn: sqlite3.Connection, incident_id: int) -> Incident:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM incidents WHERE id = ?", (incident_id,)
        ).fetchone()
        if row is None:
            raise _not_found(incident_id)
        return _from_row(row)

    # -- changing -------------------------------------------------------------------------------
    def acknowledge(self, incident_id: int) -> Incident:
        """Mark an open incident acknowledged (someone is on it).

        Acknowledging an acknowledged incident changes nothing. A resolved one cannot be
        acknowledged (:class:`~assay.UsageError`).
        """
        with self._meta.transaction() as conn:
            inc = self._get(conn, int(incident_id))
            if inc.state == "acknowledged":
                return inc
            if inc.state == "resolved":
                why = (
                    f"it was merged into incident {inc.merged_into}; acknowledge that one"
                    if inc.merged_into is not None
                    else "findings on its days stay silent, and later days raise a new incident"
                )
                raise UsageError(
                    f"incident {inc.id} is resolved; only an open incident can be acknowledged "
                    f"({why}). `assay incidents list` shows the open ones"
                )
            now = _now()
            conn.execute(
                "UPDATE incidents SET state = 'acknowledged', acknowledged_at = ?, "
                "updated_at = ? WHERE id = ?",
                (now, now, inc.id),
            )
            return self._get(conn, inc.id)

    def resolve(self, incident_id: int) -> Incident:
        """Mark an open or acknowledged incident resolved; resolving it again changes nothing.

        Later findings within ``gap_days`` of its days are suppressed, not reopened.
        """
        with self._meta.transaction() as conn:
            inc = self._get(conn, int(incident_id))
            if inc.state == "resolved":
                return inc
            now = _now()
            conn.execute(
                "UPDATE incidents SET state = 'resolved', resolved_at = ?, updated_at = ? "
                "WHERE id = ?",
                (now, now, inc.id),
            )
            return self._get(conn, inc.id)

    def update_details(self, incident_id: int, details: dict[str, Any]) -> Incident:
        """Add facts to an incident's details: its keys are kept, ``details`` wins a conflict.

        ``details`` must be JSON-able as for :class:`NewIncident`. ``updated_at`` changes only
        when the details do.
        """
        clean = _details(details)
        with self._meta.transaction() as conn:
            inc = self._get(conn, int(incident_id))
            merged = {**inc.details, **clean}
            if _dump(merged) == _dump(inc.details):
                return inc
            conn.execute(
                "UPDATE incidents SET details = ?, updated_at = ? WHERE id = ?",
                (_dump(merged), _now(), inc.id),
            )
            return self._get(conn, inc.id)


def _choice_state(state: str) -> None:
    if state not in (*INCIDENT_STATES, "all"):
        raise UsageError(
            f"state must be one of {', '.join(INCIDENT_STATES)} or all (got {_show(state)})"
        )


def _not_found(incident_id: object) -> NotFoundError:
    return NotFoundError(f"no incident with id {_show(incident_id)}; {_LIST_HINT}")
