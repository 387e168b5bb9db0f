"""Stored reference profiles: a named, frozen set of slice profiles (a model's training profile).

A reference is the profile rows of some events, copied once into its own file and never
touched again: later builds, ``assay forget`` and new events change the workspace's day
profiles, never a reference. ``assay drift --reference ref:NAME`` compares target days with it.

Storage (under the workspace folder)::

    profiles/
      references/NAME.parquet   the rows (PROFILE_SCHEMA), metadata in the file's key-value
                                metadata under ``assay.reference`` (JSON: ReferenceInfo)
      references/.lock          one save or delete at a time

The rows are day rows as :func:`build_profiles` and :func:`profile_events` compute them (the
k-user fold already applied); loading merges them over their days like :func:`load_profiles`.
A **pooled** reference merges every tenant's rows of a day, slice and column into one row
whose ``tenant_id`` is :data:`POOLED` (``"*"``); the drift report compares each target tenant
with it.

Two sources: the workspace's stored profiles over a range of days
(:func:`save_reference`), or an events file (or Arrow table) in the event schema, validated,
redacted and pseudonymised by the ingest path without being stored
(:func:`save_reference_events`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay._errors import LockTimeoutError, NotFoundError, UsageError
from assay.profiles._build import _write_atomic, built_options, profiles_path, read_profiles
from assay.profiles._columns import DEFAULT_MIN_USERS, DEFAULT_SLICES, PROFILE_SCHEMA
from assay.profiles._compute import check_options, profile_events
from assay.profiles._profile import SliceProfile, slice_profiles
from assay.store import Workspace, WriteLock

#: The folder of stored references, under the profiles folder.
REFERENCES_DIR = "references"

#: The ``tenant_id`` of every row of a pooled reference (all tenants merged into one).
POOLED = "*"

#: Reference names: 1-64 characters, lower-case letters, digits, ``.``, ``_``, ``-``.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

_META_KEY = b"assay.reference"
_KEYS = ("event_date", "tenant_id", "slice_field", "slice_value", "column", "kind")
_FORMAT = 1

ReferenceSource = Literal["profiles", "events"]


@dataclass(frozen=True)
class ReferenceInfo:
    """What a stored reference holds and where it came from.

    Attributes
    ----------
    name : the reference's name.
    created_at : when it was saved (UTC, ISO 8601).
    source : ``profiles`` (the workspace's stored profiles over ``since``..``until``) or
        ``events`` (an events file, or an Arrow table, named by ``file``).
    since, until : the days asked for (``profiles`` source), else None.
    file : the events file as given, ``<table>`` for an Arrow table (``events`` source).
    file_sha256 : the SHA-256 of the file's bytes (``events`` source from a file).
    first_day, last_day : the first and last day with events in the reference.
    days : the number of days with events.
    tenant : the one tenant it was restricted to, or None.
    tenants : the number of tenants whose events it holds (merged into one when pooled).
    pooled : whether every tenant was merged into one profile per slice (tenant ``"*"``).
    events : the events profiled (accepted events for an ``events`` source).
    rejected : the rows of an events source that validation, redaction or the time rules
        rejected, or that repeated an earlier (tenant_id, event_id); they are not profiled.
    rejected_rules : those rows per ``field:rule`` (``-:json`` for an unparseable record,
        ``event_id:duplicate`` for a repeat).
    k : the k of the k-user fold the rows were built with.
    slices : the slice fields the rows hold besides the whole tenant.
    rows : the profile rows stored.
    """

    name: str
    created_at: str
    source: ReferenceSource
    first_day: date
    last_day: date
    days: int
    tenants: int
    pooled: bool
    events: int
    k: int
    slices: tuple[str, ...]
    rows: int
    since: date | None = None
    until: date | None = None
    file: str | None = None
    file_sha256: str | None = None
    tenant: str | None = None
    rejected: int = 0
    rejected_rules: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (days as ISO strings, slices as a list)."""
        d = asdict(self)
        for key in ("first_day", "last_day", "since", "until"):
            d[key] = None if d[key] is None else d[key].isoformat()
        d["slices"] = list(self.slices)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReferenceInfo:
        """The inverse of :meth:`as_dict`."""

        def day(key: str) -> date | None:
            return None if d.get(key) is None else date.fromisoformat(d[key])

        return cls(
            name=d["name"],
            created_at=d["created_at"],
            source=d["source"],
            first_day=date.fromisoformat(d["first_day"]),
            last_day=date.fromisoformat(d["last_day"]),
            days=int(d["days"]),
            tenants=int(d["tenants"]),
            pooled=bool(d["pooled"]),
            events=int(d["events"]),
            k=int(d["k"]),
            slices=tuple(d["slices"]),
            rows=int(d["rows"]),
            since=day("since"),
            until=day("until"),
            file=d.get("file"),
            file_sha256=d.get("file_sha256"),
            tenant=d.get("tenant"),
            rejected=int(d.get("rejected", 0)),
            rejected_rules={str(k): int(v) for k, v in (d.get("rejected_rules") or {}).items()},
        )


def check_reference_name(name: str) -> str:
    """Return ``name`` if it is a valid reference name, else raise a :class:`UsageError`.

    A name is 1 to 64 characters: lower-case letters, digits, ``.``, ``_`` or ``-``, starting
    with a letter or a digit (it becomes a file name, the same on every file system).

    Examples
    --------
    >>> check_reference_name("intent-model-v3")
    'intent-model-v3'
    >>> check_reference_name("My Model")
    Traceback (most recent call last):
    ...
    assay._errors.UsageError: a reference name must be 1-64 characters: lower-case letters, \
digits, '.', '_' or '-', starting with a letter or a digit (got 'My Model'); e.g. intent-model-v3
    """
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        shown = name[:70] if isinstance(name, str) else type(name).__name__
        raise UsageError(
            "a reference name must be 1-64 characters: lower-case letters, digits, '.', '_' "
            f"or '-', starting with a letter or a digit (got {shown!r}); e.g. intent-model-v3"
        )
    return name


def references_path(ws: Workspace) -> Path:
    """The folder of the workspace's stored references."""
    return profiles_path(ws) / REFERENCES_DIR


def _file(ws: Workspace, name: str) -> Path:
    return references_path(ws) / f"{check_reference_name(name)}.parquet"


@contextlib.contextmanager
def _lock(ws: Workspace) -> Iterator[Path]:
    root = references_path(ws)
    root.mkdir(parents=True, exist_ok=True)
    try:
        with WriteLock(root / ".lock").hold(ws.settings.lock_timeout_seconds):
            yield root
    except LockTimeoutError:
        raise LockTimeoutError(
            f"another save or delete of a reference in {ws.path} held its lock for more than "
            f"{ws.settings.lock_timeout_seconds} s; wait for it to finish and run again"
        ) from None


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"no stored reference named {name!r}; `assay profile reference list` shows the stored "
        "ones, `assay profile reference save` makes one"
    )


def reference_info(ws: Workspace, name: str) -> ReferenceInfo:
    """The metadata of the stored reference ``name`` (read without its rows).

    Raises
    ------
    NotFoundError
        If there is no reference of that name.
    """
    path = _file(ws, name)
    try:
        meta = pq.read_schema(path).metadata or {}
    except FileNotFoundError:
        raise _not_found(name) from None
    return ReferenceInfo.from_dict(json.loads(meta[_META_KEY]))


def list_references(ws: Workspace) -> list[ReferenceInfo]:
    """Every stored reference of the workspace, sorted by name."""
    root = references_path(ws)
    if not root.exists():
        return []
    out = []
    for path in sorted(root.glob("*.parquet")):
        if NAME_PATTERN.fullmatch(path.stem) is None:
            continue  # a temporary file of a save in progress, or not ours
        with contextlib.suppress(NotFoundError):  # deleted meanwhile
            out.append(reference_info(ws, path.stem))
    return out


def references_holding(ws: Workspace, tenant: str) -> list[ReferenceInfo]:
    """The stored references that may hold profiles of ``tenant``: those with its rows, and
    every pooled one (its tenants are merged, so whether it holds the tenant is not stored).

    References are frozen: ``assay forget`` does not change them, and names them so that a
    forgotten tenant's references can be deleted or saved again."""
    out = []
    for info in list_references(ws):
        if info.pooled:
            out.append(info)
            continue
        with contextlib.suppress(FileNotFoundError):
            rows = pq.read_table(
                _file(ws, info.name), columns=["tenant_id"], filters=pc.field("tenant_id") == tenant
            )
            if rows.num_rows:
                out.append(info)
    return out


def read_reference(ws: Workspace, name: str) -> pa.Table:
    """The stored rows of reference ``name`` (:data:`PROFILE_SCHEMA`; ``tenant_id`` is
    ``"*"`` in every row of a pooled reference)."""
    path = _file(ws, name)
    try:
        return pq.read_table(path, schema=PROFILE_SCHEMA).replace_schema_metadata(None)
    except FileNotFoundError:
        raise _not_found(name) from None


def load_reference(
    ws: Workspace,
    name: str,
    *,
    tenant: str | None = None,
    slice_field: str = "",
) -> list[SliceProfile]:
    """The stored reference ``name`` merged over its days, per tenant and slice value.

    The same merge as :func:`load_profiles` on the reference's frozen rows.

    Parameters
    ----------
    ws : the workspace.
    name : the reference.
    tenant : one tenant, or None for every tenant (ignored for a pooled reference, whose only
        tenant is ``"*"``).
    slice_field : ``""`` for whole tenants, else one of the reference's slice fields.

    Returns
    -------
    list of SliceProfile
        One per tenant (``"*"`` when pooled) and slice value, sorted.

    Raises
    ------
    NotFoundError
        If there is no reference of that name.
    UsageError
        If the reference was not built with ``slice_field``.
    """
    info = reference_info(ws, name)
    if slice_field and slice_field not in info.slices:
        raise UsageError(
            f"reference {name!r} is not sliced by {slice_field!r}; its slices are "
            f"{', '.join(info.slices) or 'none'}; compare by one of them or save the reference "
            "again from profiles built with that slice"
        )
    where = pc.field("slice_field") == slice_field
    if tenant is not None and not info.pooled:
        where = where & (pc.field("tenant_id") == tenant)
    try:
        rows = pq.read_table(_file(ws, name), schema=PROFILE_SCHEMA, filters=where)
    except FileNotFoundError:
        raise _not_found(name) from None
    return slice_profiles(rows.replace_schema_metadata(None))


def delete_reference(ws: Workspace, name: str) -> ReferenceInfo:
    """Delete the stored reference ``name``; return what it was.

    Raises
    ------
    NotFoundError
        If there is no reference of that name.
    """
    with _lock(ws):
        info = reference_info(ws, name)
        _file(ws, name).unlink()
    return info


def save_reference(
    ws: Workspace,
    name: str,
    *,
    since: date,
    until: date,
    tenant: str | None = None,
    pooled: bool = False,
    replace: bool = False,
) -> ReferenceInfo:
    """Freeze the workspace's stored profiles of the days ``since``..``until`` as reference
    ``name`` (e.g. the window a model was trained on).

    Reads what :func:`build_profiles` stored (it does not build: build first). The rows are
    copied: a later build, ``assay forget`` or new events for those days leave the
    reference as it was saved.

    Parameters
    ----------
    ws : the workspace.
    name : the reference's name (:func:`check_reference_name`).
    since, until : the first and last day, inclusive.
    tenant : only this tenant's profiles, or None for every tenant.
    pooled : merge every tenant into one profile per slice (tenant ``"*"``).
    replace : overwrite a reference of the same name (else that is a usage error).

    Returns
    -------
    ReferenceInfo

    Raises
    ------
    UsageError
        For a bad name, ``since`` after ``until``, an existing name without ``replace``, or
        days without stored profiles.
    """
    check_reference_name(name)
    if since > until:
        raise UsageError(
            f"since must not be after until (got since {since}, until {until}); swap them"
        )
    rows = read_profiles(ws, since=since, until=until)
    if tenant is not None:
        rows = rows.filter(pc.field("tenant_id") == tenant)
    if rows.num_rows == 0:
        who = f" of tenant {tenant!r}" if tenant is not None else ""
        raise UsageError(
            f"no stored profiles{who} for {since}..{until}; build them with `assay profile "
            "build` (after ingesting those days) or pick days with events"
        )
    options = built_options(ws)
    return _save(
        ws,
        name,
        rows,
        replace=replace,
        pooled=pooled,
        source="profiles",
        k=int(options.get("k", DEFAULT_MIN_USERS)),
        slices=tuple(options.get("slices", DEFAULT_SLICES)),
        extra={"since": since, "until": until, "tenant": tenant},
    )


def save_reference_events(
    ws: Workspace,
    name: str,
    events: str | os.PathLike[str] | pa.Table,
    *,
    tenant: str | None = None,
    pooled: bool = False,
    replace: bool = False,
    slices: Sequence[str] = DEFAULT_SLICES,
    k: int = DEFAULT_MIN_USERS,
) -> ReferenceInfo:
    """Profile a set of events (a model's training set) and store it as reference ``name``.

    The events go through ingestion's checks without being stored: each row is validated
    against event schema v1, its strings redacted and its user id pseudonymised with the
    workspace's key (``assay.ingest.Ingestor.prepare``); a repeated (tenant_id, event_id)
    counts once (the first), and events too far in the future are rejected, as ``assay
    ingest`` does. Rejected rows are counted in the result, not profiled, and not kept. The
    accepted events are profiled by :func:`profile_events` (the k-user fold applied per day,
    tenant and slice) and only those rows are stored.

    Parameters
    ----------
    ws : the workspace (its key pseudonymises the user ids, as at ingest).
    name : the reference's name (:func:`check_reference_name`).
    events : a JSON Lines, Parquet or CSV file (``.gz`` too) in the event schema, or an Arrow
        table of events as producers send them.
    tenant : only this tenant's events, or None for every tenant.
    pooled : merge every tenant into one profile per slice (tenant ``"*"``), as a training
        set pooled over tenants is.
    replace : overwrite a reference of the same name (else that is a usage error).
    slices : slice fields besides the whole tenant (compare ``assay drift --by`` with these).
    k : the least distinct users an item or slice value needs on a day to be kept by name.

    Returns
    -------
    ReferenceInfo

    Raises
    ------
    NotFoundError
        If the file does not exist.
    UsageError
        For a bad name, an existing name without ``replace``, bad ``slices`` or ``k``, or
        events of which none is valid.
    """
    check_reference_name(name)
    slices = check_options(slices, k)
    table, rejected, label, digest = _accepted_events(ws, events)
    if tenant is not None:
        table = table.filter(pc.field("tenant_id") == tenant)
    total = sum(rejected.values())
    if table.num_rows == 0:
        who = f" of tenant {tenant!r}" if tenant is not None else ""
        why = f" ({total} rejected: {_rules_text(rejected)})" if total else ""
        raise UsageError(
            f"no valid events{who} in {label}{why}; check the file with `assay ingest` on a "
            "scratch workspace, whose quarantine says why each row was rejected"
        )
    rows = profile_events(table, slices=slices, k=k)
    return _save(
        ws,
        name,
        rows,
        replace=replace,
        pooled=pooled,
        source="events",
        k=k,
        slices=slices,
        extra={
            "file": label,
            "file_sha256": digest,
            "tenant": tenant,
            "rejected": total,
            "rejected_rules": dict(sorted(rejected.items())),
        },
    )


def _rules_text(rules: Counter[str]) -> str:
    return ", ".join(f"{rule} {n}" for rule, n in rules.most_common(5))


def _accepted_events(
    ws: Workspace, events: str | os.PathLike[str] | pa.Table
) -> tuple[pa.Table, Counter[str], str, str | None]:
    """The events of ``events`` that ingestion would accept, in stored form (redacted,
    pseudonymised), with the rejections per ``field:rule``, a label and the file's SHA-256."""
    from assay.ingest import Ingestor, RawBatch, detect_format, read_batches
    from assay.schema import EVENTS_SCHEMA, check_time_window

    rejected: Counter[str] = Counter()
    kept: list[pa.Table] = []
    if isinstance(events, pa.Table):
        label, digest, fmt = "<table>", None, "parquet"
        lines = pa.array(np.arange(1, events.num_rows + 1, dtype=np.int64))
        batches: Iterator[RawBatch] = iter([RawBatch(table=events, lines=lines)])
    else:
        path = Path(events)
        if not path.is_file():
            raise NotFoundError(f"no events file at {str(path)!r}; check the path")
        label, digest = str(path), _sha256(path)
        fmt = detect_format(path)
        batches = read_batches(path, format=fmt, batch_rows=ws.settings.batch_rows)
    with Ingestor(ws) as ingestor:
        for batch in batches:
            for failure in batch.failures:
                rejected[f"-:{failure.rule}"] += 1
            if batch.table.num_rows == 0:
                continue
            prep = ingestor.prepare(batch, source=label, lenient_strings=fmt == "csv")
            for rej in prep.errors.values():
                rejected[f"{rej.field or '-'}:{rej.rule}"] += 1
            if prep.stored is not None:
                kept.append(prep.stored)
    if not kept:
        return EVENTS_SCHEMA.empty_table(), rejected, label, digest
    table = pa.concat_tables(kept)
    # The first of a repeated (tenant_id, event_id) wins, as in the events table.
    order = pa.array(np.arange(table.num_rows, dtype=np.int64))
    first = (
        table.select(["tenant_id", "event_id"])
        .append_column("_i", order)
        .group_by(["tenant_id", "event_id"], use_threads=False)
        .aggregate([("_i", "min")])["_i_min"]
    )
    keep = np.zeros(table.num_rows, dtype=bool)
    keep[np.asarray(first.to_numpy(), dtype=np.int64)] = True
    if (repeats := int((~keep).sum())) > 0:
        rejected["event_id:duplicate"] += repeats
    table = table.filter(pa.array(keep))
    late = check_time_window(
        table.column("event_time"),
        now=datetime.now(UTC),
        max_future=timedelta(seconds=ws.settings.max_future_seconds),
        max_lateness=None,
    )
    if late:
        keep = np.ones(table.num_rows, dtype=bool)
        for pos, rej in late:
            keep[pos] = False
            rejected[f"{rej.field or '-'}:{rej.rule}"] += 1
        table = table.filter(pa.array(keep))
    return table, rejected, label, digest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _pool(rows: pa.Table) -> pa.Table:
    """The rows of every tenant merged per day, slice and column, under tenant ``"*"``:
    counts and item counts add up, sketches merge (as :func:`merge_profiles` does)."""
    relabelled = rows.set_column(
        rows.schema.get_field_index("tenant_id"),
        PROFILE_SCHEMA.field("tenant_id"),
        pa.array([POOLED] * rows.num_rows, pa.string()),
    )
    # Every stored field that is not a key is the ColumnProfile attribute of its name (count,
    # nulls, min, max, the sketches), so a field added to both is pooled without a change here.
    values = [n for n in PROFILE_SCHEMA.names if n not in _KEYS and n != "items"]
    out: list[dict[str, Any]] = []
    for day in sorted(pc.unique(rows["event_date"]).to_pylist()):
        for merged in slice_profiles(relabelled.filter(pc.field("event_date") == day)):
            for col in merged.columns.values():
                row: dict[str, Any] = {
                    "event_date": day,
                    "tenant_id": POOLED,
                    "slice_field": merged.slice_field,
                    "slice_value": merged.slice_value,
                    "column": col.column,
                    "kind": col.kind,
                    "items": [{"value": v, "count": n} for v, n in col.items.items()] or None,
                }
                row.update({name: getattr(col, name, None) for name in values})
                out.append(row)
    return pa.Table.from_pylist(out, schema=PROFILE_SCHEMA)


def _save(
    ws: Workspace,
    name: str,
    rows: pa.Table,
    *,
    replace: bool,
    pooled: bool,
    source: ReferenceSource,
    k: int,
    slices: tuple[str, ...],
    extra: dict[str, Any],
) -> ReferenceInfo:
    """Write ``rows`` as reference ``name`` (atomically: a reader sees the old file or the
    new one), with its metadata."""
    rows = rows.select(PROFILE_SCHEMA.names).cast(PROFILE_SCHEMA)
    whole = rows.filter((pc.field("slice_field") == "") & (pc.field("column") == "event_id"))
    days = pc.unique(rows["event_date"])
    tenants = len(pc.unique(rows["tenant_id"]))
    if pooled:
        rows = _pool(rows)
    bounds = pc.min_max(days)
    info = ReferenceInfo(
        name=name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        source=source,
        first_day=bounds["min"].as_py(),
        last_day=bounds["max"].as_py(),
        days=len(days),
        tenants=tenants,
        pooled=pooled,
        events=int(pc.sum(whole["count"]).as_py() or 0),
        k=k,
        slices=tuple(slices),
        rows=rows.num_rows,
        **extra,
    )
    meta = {_META_KEY: json.dumps(info.as_dict(), sort_keys=True).encode()}
    with _lock(ws) as root:
        target = root / f"{name}.parquet"
        if target.exists() and not replace:
            old = reference_info(ws, name)
            raise UsageError(
                f"a reference named {name!r} exists (saved {old.created_at} from {old.source}); "
                "pass replace=True (--replace) to overwrite it, or pick another name"
            )
        # Uncompressed, like the day files, so that an audit can grep the bytes.
        table = rows.replace_schema_metadata(meta)
        _write_atomic(target, functools.partial(pq.write_table, table, compression="none"))
    return info
