"""Build profiles from the committed events, incrementally, and read them back.

Storage (under the workspace folder)::

    profiles/
      days/YYYY-MM-DD.parquet   the profile rows of one day (PROFILE_SCHEMA), replaced whole
      state.json                what each stored day was built from, the options, the version
      .build.lock               one build at a time

Day files are written uncompressed (Parquet's dictionary encoding still stores each string
once), so that a privacy audit can search their bytes for a value with ``grep``. A day's file is
written to a temporary name and renamed over the old one (atomic on POSIX), so
a reader sees a day's old rows or its new rows, never a mix. ``state.json`` records, per day, a
digest of the events data files the day was built from; a day is rebuilt whenever its current
set of files differs (files added by an ingest commit, replaced by ``forget`` or a compaction,
or removed), so duplicates never count twice and each day's fold is exact. Days are rebuilt
whole from the events table's current files: only committed rows are ever read.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay._errors import LockTimeoutError, UsageError, WorkspaceError
from assay.profiles._columns import DEFAULT_MIN_USERS, DEFAULT_SLICES, PROFILE_SCHEMA
from assay.profiles._compute import check_options, compute_rows
from assay.profiles._profile import SliceProfile, slice_profiles
from assay.store import Workspace, WriteLock

log = logging.getLogger("assay.profiles")

PROFILES_DIR = "profiles"
STATE_FILE = "state.json"
#: 2: ``user_id`` rows hold HLL and AMS sketches of the users (format 1 days are rebuilt).
_STATE_FORMAT = 2
_DAY_IN_PATH = re.compile(r"(?:^|/)event_date=(\d{4}-\d{2}-\d{2})/")

#: Called after each day is built or removed, with (days done, days to do).
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class BuildSummary:
    """What :func:`build_profiles` did.

    Attributes
    ----------
    days_rebuilt : days whose profiles were (re)computed and stored.
    days_removed : days whose profiles were deleted because they have no events any more.
    rows_written : profile rows stored.
    seconds : wall time of the build.
    events_version : the events table version the build read.
    days : the days rebuilt or removed, in order.
    """

    days_rebuilt: int
    days_removed: int
    rows_written: int
    seconds: float
    events_version: int
    days: tuple[date, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["days"] = [x.isoformat() for x in self.days]
        return d


def profiles_path(ws: Workspace) -> Path:
    """The folder of the workspace's profiles."""
    return ws.path / PROFILES_DIR


def built_options(ws: Workspace) -> dict[str, Any]:
    """The ``slices`` and ``k`` the stored profiles were built with, as keyword arguments of
    :func:`build_profiles` (empty when nothing was built): a refresh keeps them, since other
    options would rebuild every day."""
    options = _read_state(profiles_path(ws)).get("options")
    out: dict[str, Any] = {}
    if isinstance(options, dict):
        slices = options.get("slices")
        if isinstance(slices, list) and all(isinstance(s, str) for s in slices):
            out["slices"] = tuple(slices)
        k = options.get("k")
        if isinstance(k, int) and not isinstance(k, bool):
            out["k"] = k
    return out


def profiles_built(ws: Workspace) -> bool:
    """Whether profiles were ever built in this workspace (``assay ingest`` then keeps them
    current)."""
    return (profiles_path(ws) / STATE_FILE).exists()


def _day_file(root: Path, day: date) -> Path:
    return root / "days" / f"{day.isoformat()}.parquet"


def _snapshot(ws: Workspace) -> tuple[int, dict[date, list[str]]]:
    """The events table's version and its current data files grouped by day, read from one
    table state (retried if a commit lands in between)."""
    for _ in range(5):
        dt = ws.table("events")
        before = int(dt.version())
        uris = [unquote(u) for u in dt.file_uris()]
        if int(dt.version()) == before:
            break
    by_day: dict[date, list[str]] = {}
    for path in uris:
        m = _DAY_IN_PATH.search(path.replace(os.sep, "/"))
        if m is None:
            raise WorkspaceError(
                f"an events data file is not under an event_date= partition folder "
                f"({Path(path).name}); the events table of {ws.path} is not one assay wrote"
            )
        by_day.setdefault(date.fromisoformat(m.group(1)), []).append(path)
    for files in by_day.values():
        files.sort()
    return before, by_day


def _digest(files: Sequence[str]) -> str:
    names = sorted(Path(f).name for f in files)
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def _read_state(root: Path) -> dict[str, Any]:
    path = root / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        log.warning("profile state unreadable; rebuilding every day")
        return {}
    return state if isinstance(state, dict) and state.get("format") == _STATE_FORMAT else {}


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _write_state(root: Path, state: dict[str, Any]) -> None:
    text = json.dumps(state, sort_keys=True, indent=1)
    _write_atomic(root / STATE_FILE, lambda p: p.write_text(text, encoding="utf-8"))


@contextlib.contextmanager
def _build_lock(ws: Workspace, root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    lock = WriteLock(root / ".build.lock")
    try:
        with lock.hold(ws.settings.lock_timeout_seconds):
            yield
    except LockTimeoutError:
        raise LockTimeoutError(
            f"another profile build of {ws.path} held its lock for more than "
            f"{ws.settings.lock_timeout_seconds} s; wait for it to finish and run again"
        ) from None


def build_profiles(
    ws: Workspace,
    *,
    since: date | None = None,
    until: date | None = None,
    slices: Sequence[str] = DEFAULT_SLICES,
    k: int = DEFAULT_MIN_USERS,
    progress: ProgressFn | None = None,
) -> BuildSummary:
    """Bring the workspace's stored profiles up to date with its committed events.

    Each day whose events changed since the last build (an ingest added files, ``forget``
    rewrote them, or they were removed) is rebuilt whole from the events table's current
    files and its stored rows replaced; a day without events any more loses its profiles.
    Changing ``slices`` or ``k`` rebuilds every day. Safe to call after every ingest commit
    (from another thread or process: builds take turns on a lock of their own).

    Parameters
    ----------
    ws : the workspace.
    since : also rebuild every day from this one on, changed or not.
    until : build no day after this one (later changes wait for a later build).
    slices : fields to slice by besides the whole tenant (see ``PROFILE_SLICE_FIELDS``).
    k : the least distinct users an item or slice value needs on a day and slice to be
        stored by name; rarer ones are folded into ``<OTHER>`` before anything is stored.
    progress : called with (days done, days to do) after each day.

    Returns
    -------
    BuildSummary

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d, Workspace.init(d + "/ws") as ws:
    ...     build_profiles(ws).days_rebuilt
    0
    """
    slices = check_options(slices, k)
    if since is not None and until is not None and since > until:
        raise UsageError(
            f"since must not be after until (got since {since}, until {until}); swap them"
        )
    started = time.perf_counter()
    root = profiles_path(ws)
    job = ws.meta.start_job("profile_build")
    status = "failed"
    summary_data: dict[str, Any] = {}
    try:
        with _build_lock(ws, root):
            summary = _build(ws, root, since, until, slices, k, progress, started)
        summary_data = {k2: v for k2, v in summary.as_dict().items() if k2 != "days"}
        status = "ok"
        log.info("built profiles", extra={"assay": summary_data})
        return summary
    finally:
        ws.meta.finish_job(job, status, summary_data)


def _build(
    ws: Workspace,
    root: Path,
    since: date | None,
    until: date | None,
    slices: tuple[str, ...],
    k: int,
    progress: ProgressFn | None,
    started: float,
) -> BuildSummary:
    version, by_day = _snapshot(ws)
    state = _read_state(root)
    options = {"slices": list(slices), "k": k}
    built: dict[str, str] = {}
    if state.get("options") == options:
        built = dict(state.get("days", {}))
    else:
        # Other options: every stored day is stale. Forget what was built (the files stay
        # until their day is rebuilt or removed below).
        stored = {p.stem for p in (root / "days").glob("*.parquet")}
        built = dict.fromkeys(stored, "")

    def wanted(day: date) -> bool:
        return until is None or day <= until

    todo: list[date] = []
    for day in sorted(set(by_day) | {date.fromisoformat(d) for d in built}):
        if not wanted(day):
            continue
        key = day.isoformat()
        forced = since is not None and day >= since
        if forced or key not in built or built[key] != _digest(by_day.get(day, [])):
            todo.append(day)

    state = {"format": _STATE_FORMAT, "options": options, "days": built, "events_version": None}
    rebuilt = removed = rows = 0
    with ws.duckdb() as con:
        for i, day in enumerate(todo):
            files = by_day.get(day, [])
            target = _day_file(root, day)
            if files:
                table = _profile_day(con, files, day, slices, k)
                _write_atomic(target, functools.partial(pq.write_table, table, compression="none"))
                built[day.isoformat()] = _digest(files)
                rebuilt += 1
                rows += table.num_rows
            else:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                built.pop(day.isoformat(), None)
                removed += 1
            # Recorded after each day: an interrupted build resumes where it stopped.
            _write_state(root, state)
            if progress is not None:
                progress(i + 1, len(todo))
    state["events_version"] = version
    _write_state(root, state)
    return BuildSummary(
        days_rebuilt=rebuilt,
        days_removed=removed,
        rows_written=rows,
        seconds=round(time.perf_counter() - started, 3),
        events_version=version,
        days=tuple(todo),
    )


def _profile_day(
    con: duckdb.DuckDBPyConnection,
    files: list[str],
    day: date,
    slices: tuple[str, ...],
    k: int,
) -> pa.Table:
    try:
        return compute_rows(
            con,
            "read_parquet(?, hive_partitioning = true) WHERE event_date = ?",
            [files, day],
            slices=slices,
            k=k,
        )
    except duckdb.IOException:
        raise WorkspaceError(
            f"events files of {day} changed while profiles were built (a forget or a "
            "vacuum ran at the same time); run `assay profile build` again"
        ) from None


def read_profiles(
    ws: Workspace, *, since: date | None = None, until: date | None = None
) -> pa.Table:
    """The stored profile rows of the days in [since, until] (both optional), sorted.

    Returns
    -------
    pyarrow.Table
        Rows of :data:`PROFILE_SCHEMA`: one per day, tenant, slice and column.
    """
    return _read_days(ws, since, until, None)


def _read_days(
    ws: Workspace, since: date | None, until: date | None, where: pc.Expression | None
) -> pa.Table:
    """The stored rows of the days in [since, until] that match ``where`` (None: all),
    filtered while each day file is read (filtering the whole table after would copy every
    sketch once more)."""
    folder = profiles_path(ws) / "days"
    tables = []
    for path in sorted(folder.glob("*.parquet")) if folder.exists() else []:
        try:
            day = date.fromisoformat(path.stem)
        except ValueError:
            continue
        if (since is None or day >= since) and (until is None or day <= until):
            tables.append(pq.read_table(path, schema=PROFILE_SCHEMA, filters=where))
    if not tables:
        return PROFILE_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def load_profiles(
    ws: Workspace,
    *,
    since: date | None = None,
    until: date | None = None,
    tenant: str | None = None,
    slice_field: str = "",
) -> list[SliceProfile]:
    """Column profiles merged over the days in [since, until], per tenant and slice value.

    Reads what :func:`build_profiles` stored (it does not build). The drift code compares the
    profiles of a reference range with those of a target range.

    Parameters
    ----------
    since, until : the first and last day (inclusive; None: open).
    tenant : one tenant, or None for every tenant (each its own profiles).
    slice_field : ``""`` for whole tenants, else one of the slice fields built.

    Returns
    -------
    list of SliceProfile
        One per tenant and slice value with events in the range, sorted.
    """
    if since is not None and until is not None and since > until:
        raise UsageError(
            f"since must not be after until (got since {since}, until {until}); swap them"
        )
    state = _read_state(profiles_path(ws))
    built = state.get("options", {}).get("slices", list(DEFAULT_SLICES))
    if slice_field and slice_field not in built:
        raise UsageError(
            f"profiles are not sliced by {slice_field!r}; built slices are "
            f"{', '.join(built) or 'none'}; rebuild with that slice or pick one of them"
        )
    where = pc.field("slice_field") == slice_field
    if tenant is not None:
        where = where & (pc.field("tenant_id") == tenant)
    return slice_profiles(_read_days(ws, since, until, where))
