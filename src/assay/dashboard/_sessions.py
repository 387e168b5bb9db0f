"""The Sessions pages: the sessions behind a slice or an incident, and one session's timeline.

``/ui/sessions?tenant=T&since=D&until=D&<slice field>=<value>`` lists the sessions of a tenant
that have at least one event on the days ``since..until`` (UTC, inclusive) matching every slice
filter given, newest first, 50 a page (``&page=N``). A slice field is one of
:data:`assay.schema.SLICE_FIELDS`; ``flight=X`` matches an event whose ``flights`` holds X, and
the value ``(none)`` matches a missing value (``flight=(none)``: events without a flight), as
:func:`assay._records.slice_text` writes it. ``/ui/sessions/{tenant}/{session_id}`` shows every
event of one session in time order.

What is shown is what the workspace stores: user ids are the pseudonyms made at ingest (the raw
id never reaches the workspace), ``session_id`` as the producer sent it (``docs/privacy.md``:
it must not hold personal data), and a turn's text only when the workspace keeps text
(``store_text``), already redacted at ingest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from assay._errors import NotFoundError, UsageError
from assay._records import slice_text, value_text
from assay.dashboard._auth import UiError, UiUser, User, backend, not_found, require_tenant
from assay.dashboard._render import render
from assay.schema import SLICE_FIELDS

if TYPE_CHECKING:
    from assay.store import Workspace

#: Sessions per page of the list.
PAGE_SIZE = 50
#: Days listed when ``since`` is not given: the week up to ``until``.
DEFAULT_DAYS = 7
#: The text written for a missing slice value (``flight=(none)``), as ``slice_text`` writes it.
NONE_TEXT = value_text(None)

#: The columns of a session's timeline, in order (``text`` added where text is stored).
TIMELINE_COLUMNS: tuple[str, ...] = (
    "event_time",
    "event_type",
    "turn_index",
    "latency_ms",
    "model_version",
    "prompt_template",
    "intent",
    "feedback",
    "rating",
    "handoff",
    "error_code",
    "cost_usd",
)


@dataclass(frozen=True)
class SessionRow:
    """One session of the list: its counts over all of its events on the listed days."""

    session_id: str
    user: str
    first_event: dt.datetime
    last_event: dt.datetime
    events: int
    turns: int
    handoff: bool
    thumbs_down: int
    errors: int
    model_versions: tuple[str, ...]


@dataclass(frozen=True)
class SessionPage:
    """A page of :func:`list_sessions`: the filter as applied, the rows, and the total."""

    tenant: str
    since: dt.date
    until: dt.date
    slice: dict[str, str | None]
    page: int
    pages: int
    total: int
    rows: list[SessionRow] = field(default_factory=list)


@dataclass(frozen=True)
class Timeline:
    """One session's events in time order (:func:`session_timeline`)."""

    tenant: str
    session_id: str
    user: str
    events: list[dict[str, Any]]
    has_text: bool


def parse_slice(params: Mapping[str, str]) -> dict[str, str | None]:
    """The slice filters among query parameters: ``{field: value}`` for each slice field given
    (``(none)`` read as None: the missing value; an empty value is no filter), in
    :data:`SLICE_FIELDS` order.

    Examples
    --------
    >>> parse_slice({"tenant": "acme", "flight": "(none)", "locale": "fr-FR", "platform": ""})
    {'locale': 'fr-FR', 'flight': None}
    """
    out: dict[str, str | None] = {}
    for name in SLICE_FIELDS:
        # The page's own form sends every field; an empty one is no filter.
        value = params.get(name, "")
        if value:
            out[name] = None if value == NONE_TEXT else value
    return out


def _slice_sql(slice_: Mapping[str, str | None]) -> tuple[str, list[object]]:
    """SQL conditions (with ``?`` parameters) matching an event in the slice."""
    clauses: list[str] = []
    params: list[object] = []
    for name, value in slice_.items():
        if name not in SLICE_FIELDS:
            raise UsageError(f"slice field must be one of {', '.join(SLICE_FIELDS)} (got {name!r})")
        if name == "flight":
            if value is None:
                clauses.append("(flights IS NULL OR len(flights) = 0)")
            else:
                clauses.append("list_contains(flights, ?)")
                params.append(value)
        elif value is None:
            clauses.append(f"{name} IS NULL")
        else:
            clauses.append(f"{name} = ?")
            params.append(value)
    return "".join(f" AND {c}" for c in clauses), params


def list_sessions(
    ws: Workspace,
    *,
    tenant: str,
    since: dt.date | None = None,
    until: dt.date | None = None,
    slice_: Mapping[str, str | None] | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> SessionPage:
    """The sessions of ``tenant`` with an event on ``since..until`` in ``slice_``, newest first.

    A session is listed when at least one of its events on those days matches every filter of
    ``slice_``; its counts (events, turns, handoff, thumbs-down, errors, model versions) are over
    all of its events on those days. ``until`` defaults to the workspace's last event day,
    ``since`` to the :data:`DEFAULT_DAYS` days ending on ``until``. Ties of first event time are
    broken by ``session_id``, so pages never overlap.
    """
    if page < 1:
        raise UsageError(f"page must be 1 or more (got {page})")
    last = ws.last_event_day()
    until = until or last or dt.datetime.now(dt.UTC).date()
    since = since or until - dt.timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise UsageError(
            f"since ({since.isoformat()}) is after until ({until.isoformat()}); swap them"
        )
    chosen = dict(slice_ or {})
    files = ws.files("events")
    empty = SessionPage(tenant, since, until, chosen, 1, 1, 0, [])
    if not files:
        return empty
    where, params = _slice_sql(chosen)
    scope = "tenant_id = ? AND event_date BETWEEN ? AND ?"
    sql = f"""
        WITH days AS (
            SELECT * FROM read_parquet(?, hive_partitioning = true) WHERE {scope}
        ),
        chosen AS (SELECT DISTINCT session_id FROM days WHERE TRUE {where}),
        sessions AS (
            SELECT d.session_id,
                   min(d.user_id) AS user_id,
                   min(d.event_time) AS first_event,
                   max(d.event_time) AS last_event,
                   count(*) AS events,
                   count(*) FILTER (WHERE d.event_type = 'turn') AS turns,
                   bool_or(d.event_type = 'handoff' OR coalesce(d.handoff, FALSE)) AS handoff,
                   count(*) FILTER (WHERE d.feedback = -1) AS thumbs_down,
                   count(*) FILTER (WHERE d.event_type = 'error') AS errors,
                   list_sort(list_distinct(list(d.model_version))) AS model_versions
            FROM days d JOIN chosen c USING (session_id)
            GROUP BY d.session_id
        )
        SELECT *, count(*) OVER () AS total FROM sessions
        ORDER BY first_event DESC, session_id
        LIMIT ? OFFSET ?
    """
    args = [files, tenant, since, until, *params, page_size, (page - 1) * page_size]
    with ws.duckdb() as con:
        found = con.sql(sql, params=args).fetchall()
    if not found and page == 1:
        return empty
    total = int(found[0][-1]) if found else _count(ws, files, tenant, since, until, chosen)
    pages = max(1, -(-total // page_size))
    rows = [
        SessionRow(
            session_id=r[0],
            user=r[1],
            first_event=r[2],
            last_event=r[3],
            events=int(r[4]),
            turns=int(r[5]),
            handoff=bool(r[6]),
            thumbs_down=int(r[7]),
            errors=int(r[8]),
            model_versions=tuple(v for v in (r[9] or []) if v is not None),
        )
        for r in found
    ]
    return SessionPage(tenant, since, until, chosen, page, pages, total, rows)


def _count(
    ws: Workspace,
    files: list[str],
    tenant: str,
    since: dt.date,
    until: dt.date,
    slice_: Mapping[str, str | None],
) -> int:
    """The number of sessions listed (for a page past the last one)."""
    where, params = _slice_sql(slice_)
    sql = (
        "SELECT count(DISTINCT session_id) FROM read_parquet(?, hive_partitioning = true) "
        f"WHERE tenant_id = ? AND event_date BETWEEN ? AND ? {where}"
    )
    with ws.duckdb() as con:
        rows = con.sql(sql, params=[files, tenant, since, until, *params]).fetchall()
    return int(rows[0][0]) if rows else 0


def session_timeline(ws: Workspace, *, tenant: str, session_id: str) -> Timeline:
    """Every stored event of one session of ``tenant``, in time order (then turn index).

    Each event is a dict of :data:`TIMELINE_COLUMNS` (and ``text``, the redacted utterance,
    where the workspace stores text). Raises :class:`NotFoundError` when the tenant has no such
    session (the message names neither).
    """
    files = ws.files("events")
    rows: list[dict[str, Any]] = []
    if files:
        cols = ", ".join(("event_id", "user_id", *TIMELINE_COLUMNS))
        sql = (
            f"SELECT {cols} FROM read_parquet(?, hive_partitioning = true) "
            "WHERE tenant_id = ? AND session_id = ? "
            "ORDER BY event_time, turn_index NULLS FIRST, event_id"
        )
        with ws.duckdb() as con:
            rows = con.sql(sql, params=[files, tenant, session_id]).to_arrow_table().to_pylist()
    if not rows:
        raise NotFoundError(
            "no such session in this tenant; open the session from the sessions list"
        )
    texts = _texts(ws, tenant, [r["event_id"] for r in rows])
    user = str(rows[0]["user_id"])
    events = []
    for r in rows:
        event = {c: r[c] for c in TIMELINE_COLUMNS}
        if texts:
            event["text"] = texts.get(r["event_id"])
        events.append(event)
    return Timeline(tenant, session_id, user, events, has_text=bool(texts))


def _texts(ws: Workspace, tenant: str, event_ids: list[str]) -> dict[str, str]:
    """The stored (redacted) text of these events, by event id; {} when none is stored."""
    if not ws.settings.store_text or not ws.files("content"):
        return {}
    found = ws.read(
        "content",
        where="WHERE tenant_id = ? AND list_contains(?, event_id)",
        params=[tenant, event_ids],
    )
    return dict(
        zip(found.column("event_id").to_pylist(), found.column("text").to_pylist(), strict=True)
    )


# -- pages -------------------------------------------------------------------------------------
router = APIRouter()


def _day(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UiError(
            400, "Bad date", f"{name} must be a day YYYY-MM-DD (got {value[:20]!r}); fix the link."
        ) from None


def page_tenant(user: UiUser, tenant: str | None, ws: Workspace) -> str | None:
    """The tenant a page is about: the key's own for a tenant key (another one is the 404 of
    ``not_found``), the one asked for by an admin key (a 404 when it has no events; None when
    it asked for none)."""
    if user.tenant_id is not None:
        return require_tenant(user, tenant or user.tenant_id)
    if tenant is not None and tenant not in ws.tenants():
        raise not_found()
    return tenant


@router.get("/ui/sessions")
def sessions_page(
    request: Request,
    user: User,
    tenant: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    chosen = parse_slice(request.query_params)
    first, last = _day(since, "since"), _day(until, "until")
    with backend(request).reader(user.key) as ws:
        scope = page_tenant(user, tenant, ws)
        tenants = ws.tenants() if user.is_admin else []
        found = None
        if scope is not None:
            try:
                found = list_sessions(
                    ws, tenant=scope, since=first, until=last, slice_=chosen, page=page
                )
            except UsageError as exc:
                raise UiError(400, "Bad filter", str(exc)) from None
    base = {k: v for k, v in request.query_params.items() if k != "page"}
    return render(
        request,
        "sessions.html",
        nav="fleet",
        tenant=scope,
        tenants=tenants,
        found=found,
        slice_label=slice_text(chosen) if chosen else None,
        slice_fields=SLICE_FIELDS,
        chosen=chosen,
        none_text=NONE_TEXT,
        session_href=session_href,
        prev_href=_page_href(base, page - 1) if found and page > 1 else None,
        next_href=_page_href(base, page + 1) if found and page < found.pages else None,
    )


def _page_href(params: dict[str, str], page: int) -> str:
    return "/ui/sessions?" + urlencode({**params, "page": str(page)})


def session_href(tenant: str, session_id: str) -> str:
    """The URL of one session's timeline (both parts escaped)."""
    return f"/ui/sessions/{quote(tenant, safe='')}/{quote(session_id, safe='')}"


@router.get("/ui/sessions/{tenant}/{session_id}")
def session_page(
    request: Request,
    user: User,
    tenant: Annotated[str, Path(min_length=1, max_length=128)],
    session_id: Annotated[str, Path(min_length=1, max_length=256)],
) -> Response:
    require_tenant(user, tenant)
    with backend(request).reader(user.key) as ws:
        try:
            timeline = session_timeline(ws, tenant=tenant, session_id=session_id)
        except NotFoundError:
            raise not_found() from None
    return render(request, "session.html", nav="fleet", timeline=timeline)
