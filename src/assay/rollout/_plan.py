"""Rollout plans: a candidate release moved from shadow through canary steps to promotion.

A rollout compares a **candidate** with the **stable** release it would replace. It is either
*served* (a registered model whose traffic assay splits: ``model`` is its name, the versions
are registry versions) or *telemetry-only* (an assistant that routes itself and sends
telemetry carrying the release: ``field`` is ``model_version``, ``prompt_template`` or
``flight``). Its states::

    shadow ──advance──► canary (step 1) ──advance──► ... canary (last step) ──promote──► promoted
       │                    │                                   │
       └────────────────────┴──── rollback ─► rolled_back ◄─────┘
    any live state ──pause──► paused ──resume──► the state it was paused in
    any live state ──abort──► aborted

The live states are ``shadow``, ``canary`` and ``paused``; ``promoted``, ``rolled_back`` and
``aborted`` are final. The candidate's weight (its share of users, 0..1) is 0 in shadow, the
step's percentage / 100 in canary (and while paused at a step), 1 once promoted and 0 after a
roll-back or an abort.

Everything is kept in the workspace's ``assay.sqlite`` (tables ``rollouts`` and
``rollout_transitions``, and ``rollout_gate_results``: each gate row's last test result, which
the next evaluation carries on; created in place when first used). Each transition is one SQLite
write transaction that checks the stored state, updates it and appends the transition (time,
from, to, weight, reason): a process that dies mid-rollout leaves either the old state or the
new one, and a new process resumes from it.
"""

from __future__ import annotations

import builtins
import datetime as dt
import itertools
import json
import sqlite3
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from assay._errors import NotFoundError, UsageError
from assay.store._meta import MetaStore

if TYPE_CHECKING:
    from assay.models import Routing
    from assay.store import Workspace

RolloutState = Literal["shadow", "canary", "paused", "promoted", "rolled_back", "aborted"]
RolloutKind = Literal["served", "telemetry"]
ReleaseField = Literal["model_version", "prompt_template", "flight"]
RELEASE_FIELDS: tuple[str, ...] = get_args(ReleaseField)
LIVE_STATES: tuple[RolloutState, ...] = ("shadow", "canary", "paused")
FINAL_STATES: tuple[RolloutState, ...] = ("promoted", "rolled_back", "aborted")
#: Canary weights in percent, the issue's default.
DEFAULT_STEPS: tuple[float, ...] = (1.0, 5.0, 25.0, 50.0, 100.0)
DEFAULT_STEP_SECONDS = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rollouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    model TEXT,
    field TEXT NOT NULL,
    stable TEXT NOT NULL,
    candidate TEXT NOT NULL,
    steps TEXT NOT NULL,
    step_index INTEGER NOT NULL,
    step_seconds REAL NOT NULL,
    shadow_seconds REAL NOT NULL,
    state TEXT NOT NULL,
    paused_from TEXT,
    gates TEXT,
    opt_out TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    entered_at TEXT NOT NULL,
    incident_id INTEGER
);
CREATE TABLE IF NOT EXISTS rollout_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id INTEGER NOT NULL,
    at TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    step_index INTEGER NOT NULL,
    weight REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rollout_transitions_rollout ON rollout_transitions (rollout_id);
CREATE TABLE IF NOT EXISTS rollout_gate_results (
    rollout_id INTEGER NOT NULL,
    gate TEXT NOT NULL,
    slice TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (rollout_id, gate, slice)
);
"""
_COLUMNS = (
    "id, kind, model, field, stable, candidate, steps, step_index, step_seconds, "
    "shadow_seconds, state, paused_from, gates, opt_out, created_at, updated_at, entered_at, "
    "incident_id"
)
_LIST_HINT = "`assay rollout list --all` shows every rollout's id"
#: The metadata stores whose rollout tables exist (weakly held: a closed store goes away).
_READY: weakref.WeakSet[MetaStore] = weakref.WeakSet()


@dataclass(frozen=True)
class Rollout:
    """One stored rollout.

    Attributes
    ----------
    id : int
        Its number in the workspace (``assay rollout status ID``).
    kind : {"served", "telemetry"}
    model : str or None
        The registered model of a served rollout; None for a telemetry-only one.
    field : {"model_version", "prompt_template", "flight"}
        The telemetry field that carries the release.
    stable, candidate : str
        The two values of ``field`` compared (registry versions for a served rollout).
    steps : tuple of float
        The canary weights in percent, increasing, the last one 100.
    step_index : int
        The current canary step (0-based); -1 in shadow.
    step_seconds, shadow_seconds : float
        How long each canary step and the shadow phase last at least.
    state : {"shadow", "canary", "paused", "promoted", "rolled_back", "aborted"}
    paused_from : str or None
        While paused, the state to resume (``shadow`` or ``canary``).
    gates : str or None
        The gates file given at start (its text, so the rollout is judged by the same rules
        after the file changes), or None for the default gates.
    opt_out_tenants : tuple of str
        Tenants always answered by the stable release.
    created_at, updated_at, entered_at : str
        ISO 8601 UTC times: created, last changed, and when the current step or phase began.
    incident_id : int or None
        The incident opened by a roll-back.
    """

    id: int
    kind: RolloutKind
    model: str | None
    field: str
    stable: str
    candidate: str
    steps: tuple[float, ...]
    step_index: int
    step_seconds: float
    shadow_seconds: float
    state: RolloutState
    paused_from: str | None
    gates: str | None
    opt_out_tenants: tuple[str, ...]
    created_at: str
    updated_at: str
    entered_at: str
    incident_id: int | None

    @property
    def live(self) -> bool:
        """Whether the rollout still moves traffic (shadow, canary or paused)."""
        return self.state in LIVE_STATES

    @property
    def weight(self) -> float:
        """The candidate's share of users, 0..1."""
        return _weight(self.state, self.steps, self.step_index)

    @property
    def at_last_step(self) -> bool:
        return self.step_index == len(self.steps) - 1

    def as_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["steps"] = list(self.steps)
        out["opt_out_tenants"] = list(self.opt_out_tenants)
        out["weight"] = self.weight
        return out


@dataclass(frozen=True)
class Transition:
    """One recorded change of a rollout's state."""

    rollout_id: int
    at: str
    from_state: str | None
    to_state: str
    step_index: int
    weight: float
    reason: str


def _weight(state: str, steps: Sequence[float], step_index: int) -> float:
    if state == "promoted":
        return 1.0
    if state in ("canary", "paused") and step_index >= 0:
        return float(steps[step_index]) / 100.0
    return 0.0


def _now_text(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).isoformat(timespec="seconds")


def check_steps(steps: Sequence[float]) -> tuple[float, ...]:
    """Validate canary weights in percent: increasing, in (0, 100], ending at 100."""
    values = tuple(float(s) for s in steps)
    if (
        not values
        or any(not 0 < v <= 100 for v in values)
        or any(b <= a for a, b in itertools.pairwise(values))
        or values[-1] != 100
    ):
        shown = ",".join(f"{v:g}" for v in values)
        raise UsageError(
            f"steps must be increasing percentages in (0, 100] ending at 100 (got {shown!r}); "
            "e.g. --steps 1,5,25,50,100"
        )
    return values


def parse_steps(text: str) -> tuple[float, ...]:
    """``"1,5,25,50,100"`` as canary weights in percent (validated)."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(
            f"--steps must be comma-separated percentages (got {text[:60]!r}); "
            "e.g. --steps 1,5,25,50,100"
        ) from None
    return check_steps(values)


def parse_release(text: str, option: str) -> tuple[str, str]:
    """``"model_version=v2"`` as (field, value)."""
    field, sep, value = text.partition("=")
    field, value = field.strip(), value.strip()
    if not sep or field not in RELEASE_FIELDS or not value:
        raise UsageError(
            f"{option} must be FIELD=VALUE with FIELD one of {', '.join(RELEASE_FIELDS)} "
            f"(got {text[:60]!r}); e.g. {option} model_version=v2"
        )
    return field, value


class RolloutStore:
    """Start, move and read a workspace's rollouts (in ``assay.sqlite``).

    Parameters
    ----------
    meta : the workspace's metadata store (``ws.meta``).
    clock : returns the current time (UTC); tests pass a fixed one.

    Examples
    --------
    >>> import datetime as dt, tempfile
    >>> from pathlib import Path
    >>> d = tempfile.TemporaryDirectory()
    >>> meta = MetaStore(Path(d.name) / "assay.sqlite")
    >>> store = RolloutStore(meta)
    >>> r = store.start(field="model_version", stable="v1", candidate="v2", steps=(10, 100))
    >>> r.state, r.weight
    ('canary', 0.1)
    >>> store.advance(r.id, "step time passed").weight
    1.0
    >>> store.promote(r.id, "every gate says promote").state
    'promoted'
    >>> [t.to_state for t in store.history(r.id)]
    ['canary', 'canary', 'promoted']
    >>> meta.close(); d.cleanup()
    """

    def __init__(self, meta: MetaStore, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._meta = meta
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        # Once per open store: the service's router builds a store at every refresh, and the
        # schema's write transaction would take SQLite's write lock each time.
        if meta not in _READY:
            with meta.transaction() as conn:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            _READY.add(meta)

    # -- reading ----------------------------------------------------------------------------------
    def get(self, rollout_id: int) -> Rollout:
        rows = self._meta.execute(f"SELECT {_COLUMNS} FROM rollouts WHERE id = ?", (rollout_id,))
        if not rows:
            raise _not_found(rollout_id)
        return _from_row(rows[0])

    def list(self, *, live_only: bool = False) -> builtins.list[Rollout]:
        """Rollouts, newest first (only the live ones with ``live_only``)."""
        where = f"WHERE state IN ({', '.join('?' * len(LIVE_STATES))})" if live_only else ""
        params: tuple[Any, ...] = LIVE_STATES if live_only else ()
        rows = self._meta.execute(
            f"SELECT {_COLUMNS} FROM rollouts {where} ORDER BY id DESC", params
        )
        return [_from_row(r) for r in rows]

    def history(self, rollout_id: int) -> builtins.list[Transition]:
        """Every transition of the rollout, oldest first."""
        self.get(rollout_id)
        rows = self._meta.execute(
            "SELECT rollout_id, at, from_state, to_state, step_index, weight, reason "
            "FROM rollout_transitions WHERE rollout_id = ? ORDER BY id",
            (rollout_id,),
        )
        return [Transition(*r) for r in rows]

    def live_for_model(self, model: str) -> Rollout | None:
        """The live served rollout of a registered model, if any."""
        rows = self._meta.execute(
            f"SELECT {_COLUMNS} FROM rollouts WHERE kind = 'served' AND model = ? "
            f"AND state IN ({', '.join('?' * len(LIVE_STATES))}) ORDER BY id DESC LIMIT 1",
            (model, *LIVE_STATES),
        )
        return _from_row(rows[0]) if rows else None

    # -- starting ---------------------------------------------------------------------------------
    def start(
        self,
        *,
        field: str,
        stable: str,
        candidate: str,
        model: str | None = None,
        steps: Sequence[float] = DEFAULT_STEPS,
        step_seconds: float = DEFAULT_STEP_SECONDS,
        shadow_seconds: float = 0.0,
        gates: str | None = None,
        opt_out_tenants: Sequence[str] = (),
    ) -> Rollout:
        """Start a rollout: in shadow when ``shadow_seconds > 0``, else at the first canary step.

        A served rollout (``model`` given) has ``field="model_version"``; a model has at most one
        live rollout, and so does a (field, candidate) pair.
        """
        if field not in RELEASE_FIELDS:
            raise UsageError(
                f"field must be one of {', '.join(RELEASE_FIELDS)} (got {field[:40]!r})"
            )
        if model is not None and field != "model_version":
            raise UsageError(f"a served rollout splits model_version, not {field}")
        if not stable or not candidate or stable == candidate:
            raise UsageError(
                f"a rollout compares two different releases (got stable {stable[:40]!r} and "
                f"candidate {candidate[:40]!r}); name the version to replace and the new one"
            )
        for name, value in (("step duration", step_seconds), ("shadow duration", shadow_seconds)):
            if not value >= 0:
                raise UsageError(f"the {name} must be >= 0 seconds (got {value!r})")
        values = check_steps(steps)
        state: RolloutState = "shadow" if shadow_seconds > 0 else "canary"
        index = -1 if state == "shadow" else 0
        now = _now_text(self._clock())
        with self._meta.transaction() as conn:
            clash = conn.execute(
                "SELECT id FROM rollouts WHERE state IN (?, ?, ?) AND "
                "((? IS NOT NULL AND model = ?) OR (field = ? AND candidate = ?))",
                (*LIVE_STATES, model, model, field, candidate),
            ).fetchone()
            if clash:
                raise UsageError(
                    f"rollout {clash[0]} of this release is still live; finish it first "
                    f"(`assay rollout abort {clash[0]}`) or follow it (`assay rollout status "
                    f"{clash[0]}`)"
                )
            cur = conn.execute(
                f"INSERT INTO rollouts ({_COLUMNS}) VALUES "
                "(NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, NULL)",
                (
                    "served" if model is not None else "telemetry",
                    model,
                    field,
                    stable,
                    candidate,
                    json.dumps(values),
                    index,
                    float(step_seconds),
                    float(shadow_seconds),
                    state,
                    gates,
                    json.dumps(sorted(set(opt_out_tenants))),
                    now,
                    now,
                    now,
                ),
            )
            rollout_id = int(cur.lastrowid or 0)
            _log(conn, rollout_id, now, None, state, index, _weight(state, values, index), "start")
        return self.get(rollout_id)

    # -- transitions ------------------------------------------------------------------------------
    def advance(self, rollout_id: int, reason: str) -> Rollout:
        """Shadow to the first canary step, or a canary step to the next one."""

        def move(r: Rollout) -> tuple[RolloutState, int]:
            if r.state == "shadow":
                return "canary", 0
            if r.state == "canary" and not r.at_last_step:
                return "canary", r.step_index + 1
            if r.state == "canary":
                raise UsageError(
                    f"rollout {r.id} is at its last step ({r.steps[-1]:g}%); promote it "
                    "(every gate must say promote) or roll it back"
                )
            raise _bad(r, "advance", "shadow or canary")

        return self._move(rollout_id, move, reason)

    def promote(self, rollout_id: int, reason: str) -> Rollout:
        """The last canary step to promoted: the candidate answers everyone."""

        def move(r: Rollout) -> tuple[RolloutState, int]:
            if r.state == "canary" and r.at_last_step:
                return "promoted", r.step_index
            if r.state == "canary":
                raise UsageError(
                    f"rollout {r.id} is at step {r.step_index + 1} of {len(r.steps)} "
                    f"({r.steps[r.step_index]:g}%); a rollout is promoted from its last step"
                )
            raise _bad(r, "promote", "canary at its last step")

        return self._move(rollout_id, move, reason)

    def rollback(self, rollout_id: int, reason: str, *, incident_id: int | None = None) -> Rollout:
        """Any live state to rolled_back: the candidate's weight is 0 at once."""

        def move(r: Rollout) -> tuple[RolloutState, int]:
            if not r.live:
                raise _bad(r, "roll back", "shadow, canary or paused")
            return "rolled_back", r.step_index

        return self._move(rollout_id, move, reason, incident_id=incident_id)

    def pause(self, rollout_id: int, reason: str = "paused by hand") -> Rollout:
        """Hold the rollout where it is (its weight too) until resumed."""

        def move(r: Rollout) -> tuple[RolloutState, int]:
            if r.state not in ("shadow", "canary"):
                raise _bad(r, "pause", "shadow or canary")
            return "paused", r.step_index

        return self._move(rollout_id, move, reason)

    def resume(self, rollout_id: int, reason: str = "resumed by hand") -> Rollout:
        """Back to the state it was paused in; the step's time starts again."""

        def move(r: Rollout) -> tuple[RolloutState, int]:
            if r.state != "paused" or r.paused_from not in ("shadow", "canary"):
                raise _bad(r, "resume", "paused")
            return r.paused_from, r.step_index  # type: ignore[return-value]

        return self._move(rollout_id, move, reason)

    def abort(self, rollout_id: int, reason: str = "aborted by hand") -> Rollout:
        """Stop a live rollout: the candidate's weight is 0, the stable release serves."""

        def move(r: Rollout) -> tuple[RolloutState, int]:
            if not r.live:
                raise _bad(r, "abort", "shadow, canary or paused")
            return "aborted", r.step_index

        return self._move(rollout_id, move, reason)

    def due(self, rollout: Rollout) -> bool:
        """Whether the current phase (shadow, or the canary step) has lasted its duration."""
        began = dt.datetime.fromisoformat(rollout.entered_at)
        length = rollout.shadow_seconds if rollout.state == "shadow" else rollout.step_seconds
        return (self._clock() - began).total_seconds() >= length

    def _move(
        self,
        rollout_id: int,
        move: Callable[[Rollout], tuple[RolloutState, int]],
        reason: str,
        *,
        incident_id: int | None = None,
    ) -> Rollout:
        now = _now_text(self._clock())
        with self._meta.transaction() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM rollouts WHERE id = ?", (rollout_id,)
            ).fetchone()
            if row is None:
                raise _not_found(rollout_id)
            r = _from_row(row)
            state, index = move(r)
            paused_from = r.state if state == "paused" else None
            # Pausing keeps the phase's clock; every other move starts a new phase.
            entered = r.entered_at if state == "paused" else now
            conn.execute(
                "UPDATE rollouts SET state = ?, step_index = ?, paused_from = ?, updated_at = ?, "
                "entered_at = ?, incident_id = COALESCE(?, incident_id) WHERE id = ?",
                (state, index, paused_from, now, entered, incident_id, rollout_id),
            )
            _log(
                conn, rollout_id, now, r.state, state, index, _weight(state, r.steps, index), reason
            )
        return self.get(rollout_id)


def _log(
    conn: sqlite3.Connection,
    rollout_id: int,
    at: str,
    before: str | None,
    after: str,
    index: int,
    weight: float,
    reason: str,
) -> None:
    conn.execute(
        "INSERT INTO rollout_transitions (rollout_id, at, from_state, to_state, step_index, "
        "weight, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (rollout_id, at, before, after, index, weight, reason[:2000]),
    )


def _from_row(row: Sequence[Any]) -> Rollout:
    return Rollout(
        id=int(row[0]),
        kind=row[1],
        model=row[2],
        field=row[3],
        stable=row[4],
        candidate=row[5],
        steps=tuple(float(s) for s in json.loads(row[6])),
        step_index=int(row[7]),
        step_seconds=float(row[8]),
        shadow_seconds=float(row[9]),
        state=row[10],
        paused_from=row[11],
        gates=row[12],
        opt_out_tenants=tuple(json.loads(row[13])),
        created_at=row[14],
        updated_at=row[15],
        entered_at=row[16],
        incident_id=None if row[17] is None else int(row[17]),
    )


def _not_found(rollout_id: object) -> NotFoundError:
    return NotFoundError(f"no rollout {str(rollout_id)[:40]} in this workspace; {_LIST_HINT}")


def _bad(r: Rollout, action: str, expected: str) -> UsageError:
    return UsageError(
        f"cannot {action} rollout {r.id}: it is {r.state}, and only a rollout in {expected} "
        f"can be; `assay rollout status {r.id}` shows its history"
    )


def rollouts(ws: Workspace) -> RolloutStore:
    """The workspace's rollouts."""
    return RolloutStore(ws.meta)


def routing(ws: Workspace, model_name: str) -> Routing | None:
    """How the service should split ``model_name``'s traffic now, or None without a live
    served rollout.

    In shadow the candidate's weight is 0 and ``shadow`` is set; while paused the weight of
    the step is kept; a finished rollout routes nothing (the registry's aliases serve).
    """
    from assay.models import Routing

    r = rollouts(ws).live_for_model(model_name)
    if r is None:
        return None
    return Routing(
        rollout_id=str(r.id),
        stable_version=int(r.stable),
        candidate_version=int(r.candidate),
        weight=r.weight,
        shadow=r.state == "shadow" or (r.state == "paused" and r.paused_from == "shadow"),
        opt_out_tenants=frozenset(r.opt_out_tenants),
    )


def _event_name(before: str | None, after: str) -> str:
    if before is None:
        return "start"
    if after == "canary":
        return "resume" if before == "paused" else "step"
    return {
        "promoted": "promote",
        "rolled_back": "rollback",
        "aborted": "abort",
        "paused": "pause",
    }.get(after, after)


def release_events(
    ws: Workspace, since: dt.date, until: dt.date, *, tenant: str | None = None
) -> list[dict[str, Any]]:
    """Rollout transitions from ``since`` to ``until`` (UTC days, inclusive) as release-event
    rows, the shape :func:`assay.anomaly.release_events` answers, for the incidents and
    explanations that list releases near a change.

    Each row: ``field`` and ``value`` (the candidate release), ``first_seen`` (the day of the
    transition) and ``days_before`` (``until - first_seen`` in days), and ``source``
    (``"rollout"``), ``rollout_id``, ``event`` (``start``, ``step``, ``pause``, ``resume``,
    ``promote``, ``rollback`` or ``abort``), ``at`` (the UTC time) and ``weight`` (the
    candidate's share of users afterwards). Oldest first. With ``tenant``, a rollout the
    tenant opted out of is left out (it never answered the tenant).

    Examples
    --------
    >>> import datetime as dt, tempfile
    >>> from pathlib import Path
    >>> from assay.store import Workspace
    >>> ws = Workspace.open(Path(tempfile.mkdtemp()) / "ws", create=True)
    >>> days = iter([1, 2])
    >>> store = RolloutStore(ws.meta, clock=lambda: dt.datetime(2026, 5, next(days), tzinfo=dt.UTC))
    >>> r = store.start(field="model_version", stable="v1", candidate="v2", steps=(50, 100))
    >>> _ = store.rollback(r.id, "handoff up")
    >>> day = dt.date(2026, 5, 2)
    >>> [(e["event"], e["value"], e["days_before"]) for e in release_events(ws, day, day)]
    [('rollback', 'v2', 0)]
    >>> ws.close()
    """
    if since > until:
        raise UsageError(f"since ({since}) must not be after until ({until}); swap them")
    made = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rollout_transitions'"
    if not ws.meta.execute(made):
        return []  # no rollout ever started here (a read makes no tables)
    rows = ws.meta.execute(
        "SELECT t.rollout_id, t.at, t.from_state, t.to_state, t.weight, r.field, r.candidate, "
        "r.opt_out FROM rollout_transitions t JOIN rollouts r ON r.id = t.rollout_id "
        "WHERE substr(t.at, 1, 10) BETWEEN ? AND ? ORDER BY t.at, t.id",
        (since.isoformat(), until.isoformat()),
    )
    out = []
    for rollout_id, at, before, after, weight, field, candidate, opt_out in rows:
        if tenant is not None and tenant in json.loads(opt_out):
            continue
        day = dt.date.fromisoformat(at[:10])
        out.append(
            {
                "field": field,
                "value": candidate,
                "first_seen": day,
                "days_before": (until - day).days,
                "source": "rollout",
                "rollout_id": int(rollout_id),
                "event": _event_name(before, after),
                "at": at,
                "weight": float(weight),
            }
        )
    return out


__all__ = [
    "DEFAULT_STEPS",
    "DEFAULT_STEP_SECONDS",
    "FINAL_STATES",
    "LIVE_STATES",
    "RELEASE_FIELDS",
    "ReleaseField",
    "Rollout",
    "RolloutKind",
    "RolloutState",
    "RolloutStore",
    "Transition",
    "check_steps",
    "parse_release",
    "parse_steps",
    "release_events",
    "rollouts",
    "routing",
]
