"""The ingest pipeline: one path from raw rows to stored events, shared by files and HTTP.

For each batch::

    parse ──► validate (structure) ──► redact + pseudonymise ──► [write lock]
        dedupe by (tenant_id, event_id) ──► time-window rules ──► content, events ──► [unlock]
    rejected rows at any step ──► quarantine (redacted, pseudonymised, with the reason)

The duplicate check runs before the time rules, so replaying an old file is all duplicates.
Content is committed before events and filtered against the content keys already stored, so a
crash between the two commits is repaired by a re-run without doubling anything.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import AssayError, NotFoundError, PrivacyError
from assay.ingest._batches import read_batches
from assay.ingest._readers import (
    ParseFailure,
    RawBatch,
    detect_format,
    rows_as_python,
)
from assay.privacy import pseudonymise, redact_array
from assay.schema import (
    EVENTS_SCHEMA,
    FIELDS_BY_NAME,
    QUARANTINE_SCHEMA,
    Rejection,
    check_time_window,
    validate,
)
from assay.store import KeyDigests, KeyIndex, Workspace, file_key_digests, key_digests

log = logging.getLogger("assay.ingest")

FormatOption = Literal["auto", "jsonl", "parquet", "csv"]
RowStatus = Literal["accepted", "duplicate", "rejected"]

#: Optional string fields redacted before storage, like text (ids are pseudonymised instead).
_REDACTED_STRINGS = (
    "locale",
    "platform",
    "app_version",
    "model_version",
    "prompt_template",
    "intent",
    "error_code",
)
_REDACTED_LISTS = ("flights", "retrieved_doc_ids", "cited_doc_ids")
_MAX_QUARANTINE_ROW = 64 * 1024
#: Stands for the value of an unknown field in a quarantine row: no rule says what such a value
#: holds (``userId`` is the likeliest one, holding a raw user id), so it is never stored.
WITHHELD = "<WITHHELD>"
#: Present in the workspace while one batch's content is committed and its events are not yet.
_PENDING_MARKER = ".ingest-pending"
# hash() is a UBIGINT; keep 63 bits so it fits a BIGINT without overflow.
_FINGERPRINT_SQL = "(hash({cols}) & 9223372036854775807::UBIGINT)::BIGINT"
_NOT_FINGERPRINTED = {"fingerprint", "ingested_at", "has_text"}


@dataclass
class BatchOutcome:
    """What happened to each row of one batch, in input order (used by the HTTP endpoint)."""

    status: list[RowStatus]
    errors: dict[int, Rejection]
    conflicting: int


@dataclass
class FileSummary:
    """Counts for one ingested source."""

    source: str
    format: str = ""
    read: int = 0
    accepted: int = 0
    duplicate: int = 0
    conflicting: int = 0
    rejected: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    error: str | None = None

    def add(self, outcome: BatchOutcome) -> None:
        self.read += len(outcome.status)
        counts = Counter(outcome.status)
        self.accepted += counts["accepted"]
        self.duplicate += counts["duplicate"]
        self.rejected += counts["rejected"]
        self.conflicting += outcome.conflicting
        for rej in outcome.errors.values():
            self.rules[f"{rej.field or '-'}:{rej.rule}"] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "read": self.read,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "conflicting": self.conflicting,
            "rejected": self.rejected,
            "rules": dict(self.rules.most_common()),
            "error": self.error,
        }


@dataclass
class IngestSummary:
    """Counts for one ingest run over one or more sources."""

    workspace: str
    quarantine: str
    files: list[FileSummary] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(int(getattr(f, name)) for f in self.files)

    @property
    def failed_files(self) -> int:
        return sum(1 for f in self.files if f.error is not None)

    def as_dict(self) -> dict[str, Any]:
        keys = ("read", "accepted", "duplicate", "conflicting", "rejected")
        return {
            "workspace": self.workspace,
            "quarantine": self.quarantine,
            "totals": {k: self.total(k) for k in keys} | {"failed_files": self.failed_files},
            "files": [f.as_dict() for f in self.files],
        }


@dataclass
class _Prepared:
    """A batch after validation and protection, before the locked store step."""

    batch: RawBatch
    source: str
    lines: list[int]
    errors: dict[int, Rejection]
    valid_index: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    stored: pa.Table | None = None
    content: pa.Table | None = None
    locate: Locate | None = None


Locate = Callable[[int], tuple[str, int, str | None]]
"""locate(line) -> (source, line in that source, tenant of the sender or None): where a record
of a batch merged from several sources (HTTP requests) came from, for its quarantine row."""

ProgressFn = Callable[[str, int, int], None]
"""progress(source, rows_done_in_this_batch, bytes_done_of_this_file)."""


class Ingestor:
    """Ingests batches into one workspace, keeping the key index in step with the table.

    One ingestor serves a whole run (a CLI call, or a server's lifetime). Not thread-safe by
    itself: callers serialise ``ingest_batch`` (the server does it with one writer thread).
    """

    def __init__(
        self,
        ws: Workspace,
        *,
        max_lateness: timedelta | None = None,
        max_future: timedelta | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.ws = ws
        self.max_lateness = max_lateness
        self.max_future = max_future or timedelta(seconds=ws.settings.max_future_seconds)
        self._now = now or (lambda: datetime.now(UTC))
        self._events = KeyIndex()
        # The events version the index reflects; None: unknown, list the files on next sync.
        self._events_version: int | None = None
        # Used by the store step only (one thread); prepare() needs no connection, so that
        # several threads may prepare at once (the HTTP service does).
        self._con_cm = ws.duckdb()
        self._con = self._con_cm.__enter__()

    def close(self) -> None:
        self._con_cm.__exit__(None, None, None)

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the key indexes ------------------------------------------------------------------------
    def warm(self) -> None:
        """Load the key index now rather than on the first batch (a server does this at start,
        so that its first request is not the one that waits)."""
        with self.ws.lock.hold(self.ws.settings.lock_timeout_seconds):
            self._sync()

    def _sync(self) -> None:
        """Bring the key index up to the table's current files (others may have written),
        and repair what an interrupted batch left (the write lock is held)."""
        marker = self.ws.path / _PENDING_MARKER
        if marker.exists():
            removed = self.ws.remove_orphan_content()
            log.warning(
                "repaired an interrupted ingest", extra={"assay": {"orphan_content": removed}}
            )
            marker.unlink()
        known = self._events_version
        if known is not None and not self.ws.has_commit_after("events", known):
            return  # nobody else wrote since our last commit: a stat, not a file listing
        files = set(self.ws.files("events"))
        self._events_version = self.ws.version("events")
        new = sorted(files - self._events.files)
        if new:
            self._events.add(file_key_digests(self._con, new, with_fingerprint=True))
        self._events.files = files

    # -- one batch ------------------------------------------------------------------------------
    def ingest_batch(
        self, batch: RawBatch, *, source: str, lenient_strings: bool = False
    ) -> BatchOutcome:
        """Validate, protect, dedupe and store one batch; quarantine what is rejected."""
        return self.store(self.prepare(batch, source=source, lenient_strings=lenient_strings))

    def prepare(
        self,
        batch: RawBatch,
        *,
        source: str,
        lenient_strings: bool = False,
        locate: Locate | None = None,
    ) -> _Prepared:
        """The part of a batch's work that needs no lock: validate, redact, pseudonymise.

        Thread-safe with respect to :meth:`store` and to itself, so a file's next batch is
        prepared while the previous one is stored, and HTTP requests are prepared in parallel.
        ``locate`` maps a line of the batch to its source, its line there and the tenant of
        its sender (an HTTP key's): quarantine rows name those, and a record that could not be
        parsed is filed under the sender's tenant, so that the tenant sees it.
        """
        n = batch.table.num_rows
        lines = batch.lines.to_pylist() if batch.lines is not None else list(range(1, n + 1))
        prep = _Prepared(batch=batch, source=source, lines=lines, errors={}, locate=locate)
        result = validate(batch.table, lenient_strings=lenient_strings) if n else None
        if result is None:
            return prep
        for rej in _redact_unknown_names(result.rejections):
            prep.errors[rej.index] = rej
        prep.valid_index = np.asarray(
            result.valid_index.to_numpy(zero_copy_only=False), dtype=np.int64
        )
        if result.valid.num_rows:
            try:
                prep.stored, prep.content = self._protect(result.valid)
            except PrivacyError as exc:
                # Fail closed: nothing of this batch is stored in the clear.
                for i in prep.valid_index.tolist():
                    prep.errors[i] = Rejection(i, None, "redaction", str(exc))
        return prep

    def store(self, prep: _Prepared) -> BatchOutcome:
        """Dedupe, apply the time rules and commit a prepared batch (under the write lock)."""
        return self.store_many([prep])[0]

    def store_many(self, preps: Sequence[_Prepared]) -> list[BatchOutcome]:
        """Store several prepared batches in one pair of commits (a group commit).

        The batches are deduplicated against the table and against each other in order, as if
        they were one batch; the outcomes come back per batch, rows in input order. The HTTP
        service groups the requests that arrived during the previous commit this way.
        """
        statuses: list[list[RowStatus]] = [["rejected"] * p.batch.table.num_rows for p in preps]
        conflicting = [0] * len(preps)
        ready = [k for k, p in enumerate(preps) if p.stored is not None and p.content is not None]
        if ready:
            stored = pa.concat_tables([preps[k].stored for k in ready])
            content = pa.concat_tables([preps[k].content for k in ready])
            owner = np.repeat(np.arange(len(ready)), [preps[k].valid_index.size for k in ready])
            row_of = np.concatenate([preps[k].valid_index for k in ready])
            with self.ws.lock.hold(self.ws.settings.lock_timeout_seconds):
                self._sync()
                stored, digests = self._digests(stored, content.column("text"))
                new, conflict = self._events.classify(digests)
                keep = new.copy()
                late = check_time_window(
                    stored.column("event_time").filter(pa.array(new)),
                    now=self._now(),
                    max_future=self.max_future,
                    max_lateness=self.max_lateness,
                )
                new_pos = np.flatnonzero(new)
                for pos, rej in late:
                    j = int(new_pos[pos])
                    keep[j] = False
                    prep, i = preps[ready[int(owner[j])]], int(row_of[j])
                    prep.errors[i] = Rejection(i, rej.field, rej.rule, rej.message)
                to_store = stored.filter(pa.array(keep))
                if to_store.num_rows:
                    # Content rows of the kept events only: a key repeated in the group would
                    # otherwise keep its text twice.
                    self._write(to_store, content.filter(pa.array(keep)), digests.take(keep))
            # Per batch, vectorised: a Python loop per row held the GIL for milliseconds.
            outcome = np.where(keep, "accepted", "duplicate").astype(object)
            for idx, k in enumerate(ready):
                mine = owner == idx
                status = np.array(statuses[k], dtype=object)
                status[row_of[mine]] = outcome[mine]
                statuses[k] = status.tolist()
                conflicting[k] += int(conflict[mine].sum())

        quarantine: list[dict[str, Any]] = []
        for k, prep in enumerate(preps):
            for i in prep.errors:
                statuses[k][i] = "rejected"
            locate = prep.locate or _here(prep.source)
            quarantine.extend(_failure_rows(prep.batch.failures, locate))
            quarantine.extend(
                _rejected_rows(
                    self.ws.secret,
                    prep.batch.table,
                    [prep.errors[i] for i in sorted(prep.errors)],
                    locate,
                    prep.lines,
                )
            )
        if quarantine:
            with self.ws.lock.hold(self.ws.settings.lock_timeout_seconds):
                self.ws.append("quarantine", _quarantine_table(quarantine))
        return [
            BatchOutcome(status=statuses[k], errors=p.errors, conflicting=conflicting[k])
            for k, p in enumerate(preps)
        ]

    def _protect(self, valid: pa.Table) -> tuple[pa.Table, pa.Table]:
        """Redact strings, pseudonymise users; split off the content rows.

        The fingerprint stays 0 here: the store step computes it with the key digests, in one
        pass over the whole group.
        """
        now = pa.scalar(datetime.now(UTC), type=pa.timestamp("us", tz="UTC"))
        cols = {name: valid.column(name) for name in valid.column_names}
        cols["user_id"] = pseudonymise(self.ws.secret, cols["tenant_id"], cols["user_id"])
        redacted_text, redactions = _protect_strings(cols)
        text = cols.pop("text")
        cols["has_text"] = pc.is_valid(text)
        cols["ingested_at"] = pa.array(np.full(valid.num_rows, now.value), pa.int64()).cast(
            pa.timestamp("us", tz="UTC")
        )
        cols["fingerprint"] = pa.array(np.zeros(valid.num_rows, dtype=np.int64))
        stored = pa.table({name: cols[name] for name in EVENTS_SCHEMA.names})
        content = pa.table(
            {
                "tenant_id": cols["tenant_id"],
                "event_id": cols["event_id"],
                "user_id": cols["user_id"],
                "event_date": cols["event_date"],
                "text": redacted_text,
                "redactions": redactions,
                "ingested_at": cols["ingested_at"],
            }
        )
        return stored, content

    def _digests(self, stored: pa.Table, text: pa.ChunkedArray) -> tuple[pa.Table, KeyDigests]:
        """Key digests and fingerprints of a group, in one DuckDB pass; the fingerprint
        (over every stored field and the redacted text) is set into ``stored``."""
        fields = [n for n in EVENTS_SCHEMA.names if n not in _NOT_FINGERPRINTED]
        cols = ", ".join(f'"{c}"' for c in [*fields, "text"])
        digests = key_digests(
            self._con,
            stored.select(fields).append_column("text", text),
            fingerprint_sql=_FINGERPRINT_SQL.format(cols=cols),
        )
        stored = stored.set_column(
            stored.schema.get_field_index("fingerprint"),
            "fingerprint",
            pa.array(digests.fingerprint, pa.int64()),
        )
        return stored, digests

    def _write(self, events: pa.Table, content: pa.Table, digests: KeyDigests) -> None:
        """Commit content, then events (the write lock is held).

        A marker file spans the two commits: if a crash falls between them, the next writer
        finds it and removes the content rows whose events never landed, so the re-run that
        stores those events does not double their content.
        """
        marker = self.ws.path / _PENDING_MARKER
        if self.ws.settings.store_text:
            has = pc.is_valid(content.column("text"))
            cand = content.filter(pc.and_(has, _is_in_keys(content, events)))
            if cand.num_rows:
                marker.write_text("content committed before its events; see assay.ingest\n")
                self.ws.append("content", cand)
        order = pc.sort_indices(
            events,
            sort_keys=[
                ("tenant_id", "ascending"),
                ("user_id", "ascending"),
                ("event_time", "ascending"),
            ],
        )
        before = self._events_version
        version = self.ws.append("events", events.take(order))
        marker.unlink(missing_ok=True)
        self._events.add(digests)
        self._events.files |= set(self.ws.added_files("events", version))
        # A commit retried past someone else's: list the files on the next sync.
        self._events_version = version if before is not None and version == before + 1 else None

    @staticmethod
    def _account(
        summary: FileSummary,
        future: Future[BatchOutcome],
        batch: RawBatch,
        progress: ProgressFn | None,
    ) -> None:
        summary.add(future.result())
        summary.read += len(batch.failures)
        summary.rejected += len(batch.failures)
        for f in batch.failures:
            summary.rules[f"{f.field or '-'}:{f.rule}"] += 1
        if progress is not None:
            progress(summary.source, batch.table.num_rows + len(batch.failures), 0)

    def ingest_file(
        self,
        path: Path,
        *,
        format: FormatOption = "auto",
        progress: ProgressFn | None = None,
    ) -> FileSummary:
        """Ingest one file; a file-level failure is recorded in the summary, not raised."""
        summary = FileSummary(source=str(path))
        try:
            fmt = detect_format(path) if format == "auto" else format
            summary.format = fmt
            batches = read_batches(path, format=fmt, batch_rows=self.ws.settings.batch_rows)
            # Three stages overlap: the reader thread parses batch k+2, this thread prepares
            # batch k+1, the writer thread stores batch k. Order and memory stay bounded.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="assay-writer") as writer:
                pending: tuple[Future[BatchOutcome], RawBatch] | None = None
                for batch in _prefetch(batches):
                    prep = self.prepare(batch, source=str(path), lenient_strings=fmt == "csv")
                    if pending is not None:
                        self._account(summary, *pending, progress)
                    pending = (writer.submit(self.store, prep), batch)
                if pending is not None:
                    self._account(summary, *pending, progress)
        except FileNotFoundError:
            summary.error = (
                f"{path} vanished while it was being read; ingest it again when it is back"
            )
        except (NotFoundError, AssayError) as exc:
            if isinstance(exc, PrivacyError):
                raise
            summary.error = str(exc)
        except OSError as exc:
            summary.error = (
                f"cannot read {path}: {exc.strerror or exc}; check the file and permissions"
            )
        return summary


_DONE = object()


def _prefetch(items: Iterator[RawBatch], depth: int = 1) -> Iterator[RawBatch]:
    """Read the next batch on a thread while this one is processed.

    Parsing (pyarrow.json) and storing (delta-rs, DuckDB) release the GIL, so the two overlap
    on two cores. Memory stays bounded: at most ``depth`` batches wait.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    thread = threading.Thread(target=produce, name="assay-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        close = getattr(items, "close", None)
        thread.join(timeout=5)
        if close is not None and not thread.is_alive():
            close()


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Expand paths: files as given, directories walked (sorted; hidden files skipped)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if not name.startswith(".") and name != "truth.json":
                        yield Path(root) / name
        else:
            yield path


def ingest_paths(
    ws: Workspace,
    paths: Sequence[str | os.PathLike[str]],
    *,
    format: FormatOption = "auto",
    max_lateness: timedelta | None = None,
    progress: ProgressFn | None = None,
    on_file: Callable[[FileSummary], None] | None = None,
) -> IngestSummary:
    """Ingest files and folders into the workspace.

    Returns an :class:`IngestSummary` with counts per file. Files that cannot be read are
    reported in their summary's ``error`` and the run goes on with the next one.
    """
    summary = IngestSummary(workspace=str(ws.path), quarantine=str(ws.table_path("quarantine")))
    job = ws.meta.start_job("ingest")
    status = "failed"
    try:
        with Ingestor(ws, max_lateness=max_lateness) as ing:
            for path in iter_files(paths):
                if not path.exists():
                    fs = FileSummary(
                        source=str(path),
                        error=f"{path} does not exist; check the path",
                    )
                else:
                    fs = ing.ingest_file(path, format=format, progress=progress)
                summary.files.append(fs)
                log.info(
                    "ingested file",
                    extra={"assay": {k: v for k, v in fs.as_dict().items() if k != "rules"}},
                )
                if on_file is not None:
                    on_file(fs)
        status = "ok"
    finally:
        ws.meta.finish_job(job, status, summary.as_dict()["totals"])
    return summary


# -- helpers ---------------------------------------------------------------------------------------
class _Redactions:
    """Redact the strings of many columns in one call.

    Each call of the redaction kernels has a fixed cost (its patterns are compiled per call),
    so a batch's low-cardinality columns (their distinct values only), list items, attribute
    keys and values, and texts are concatenated, redacted together, and split back.
    """

    def __init__(self) -> None:
        self._parts: list[pa.Array] = []
        self._done: list[tuple[pa.Array, pa.Array]] = []

    def add(self, values: pa.Array) -> int:
        self._parts.append(values.cast(pa.string()))
        return len(self._parts) - 1

    def run(self) -> None:
        if not self._parts:
            return
        red, counts = redact_array(pa.chunked_array(self._parts, pa.string()))
        start = 0
        for part in self._parts:
            self._done.append((red.slice(start, len(part)), counts.slice(start, len(part))))
            start += len(part)

    def __getitem__(self, i: int) -> tuple[pa.Array, pa.Array]:
        return self._done[i]


def _combined(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _protect_strings(cols: dict[str, Any]) -> tuple[pa.Array, pa.Array]:
    """Redact, in place in ``cols``, every free string; return the redacted text and counts."""
    plan = _Redactions()
    pending: list[Callable[[], None]] = []

    def distinct(arr: pa.Array, put: Callable[[pa.Array], None]) -> None:
        enc = pc.dictionary_encode(arr)
        i = plan.add(enc.dictionary)
        pending.append(lambda: put(pc.take(plan[i][0], enc.indices)))

    for name in _REDACTED_STRINGS:
        arr = _combined(cols[name])
        if arr.null_count < len(arr):

            def put(red: pa.Array, name: str = name) -> None:
                cols[name] = red

            distinct(arr, put)
    for name in _REDACTED_LISTS:
        arr = _combined(cols[name])
        if arr.null_count < len(arr) and len(arr.values):

            def put_list(red: pa.Array, name: str = name, arr: pa.Array = arr) -> None:
                cols[name] = pa.ListArray.from_arrays(arr.offsets, red, mask=arr.is_null())

            distinct(arr.values, put_list)
    attrs = _combined(cols["attributes"])
    if attrs.null_count < len(attrs) and len(attrs.keys):
        keys_enc = pc.dictionary_encode(attrs.keys)
        k = plan.add(keys_enc.dictionary)
        v = plan.add(attrs.items)

        def put_map() -> None:
            keys = pc.take(plan[k][0], keys_enc.indices)
            cols["attributes"] = pa.MapArray.from_arrays(
                attrs.offsets, keys, plan[v][0], mask=attrs.is_null()
            )

        pending.append(put_map)
    t = plan.add(_combined(cols["text"]))
    plan.run()
    for fn in pending:
        fn()
    return plan[t]


def _is_in_keys(content: pa.Table, keys: pa.Table) -> pa.Array:
    a = pc.binary_join_element_wise(content["tenant_id"], content["event_id"], "\x1f")
    b = pc.binary_join_element_wise(keys["tenant_id"], keys["event_id"], "\x1f")
    return pc.is_in(a, value_set=b.combine_chunks())


def _here(source: str) -> Locate:
    return lambda line: (source, line, None)


def _failure_rows(failures: Sequence[ParseFailure], locate: Locate) -> list[dict[str, Any]]:
    """Quarantine rows for unparseable records: their size, rule and message, no content.

    Redaction cannot make such text safe: it pseudonymises ``user_id`` only where it can find
    the field, and an unparsed record can hold ids in any shape (a repeated key, bytes that are
    not UTF-8, a CSV row whose ids are known only by position). So none of it is kept; the
    source and line say where the record is, and the message says what was wrong with it.
    """
    out = []
    for f in failures:
        source, line, tenant = locate(f.line)
        out.append(
            {
                "tenant_id": tenant,
                "event_id": None,
                "user_id": None,
                "source": source,
                "line": line,
                "field": f.field,
                "rule": f.rule,
                "message": f.message,
                "row": json.dumps({"unparsed": True, "bytes": f.size}),
            }
        )
    return out


def _rejected_rows(
    secret: bytes,
    table: pa.Table,
    rejections: Sequence[Rejection],
    locate: Locate,
    lines: Sequence[int],
) -> list[dict[str, Any]]:
    """Quarantine rows for rejected records: every string redacted, user ids pseudonymised.

    All strings of all rejected rows (keys, values and the messages, which may quote a value)
    are redacted in one vectorised call: a call per value would cost milliseconds each.
    """
    if not rejections:
        return []
    raws = rows_as_python(table, [r.index for r in rejections])
    tenants = [r.get("tenant_id") if isinstance(r.get("tenant_id"), str) else None for r in raws]
    users = [
        r.get("user_id") if t is not None and isinstance(r.get("user_id"), str) else None
        for r, t in zip(raws, tenants, strict=True)
    ]
    pseudo = pseudonymise(
        secret, pa.array(tenants, pa.string()), pa.array(users, pa.string())
    ).to_pylist()
    leaves: list[str] = []
    shapes = [
        _collect(
            {
                k: v if k in FIELDS_BY_NAME else WITHHELD
                for k, v in raw.items()
                if v is not None and k != "user_id"
            },
            leaves,
        )
        for raw in raws
    ]
    messages = [_collect(r.message, leaves) for r in rejections]
    redacted = iter(_redact_strings(leaves))
    rows = [_fill(shape, redacted) for shape in shapes]
    safe_messages = [_fill(m, redacted) for m in messages]
    out = []
    for raw, rej, row_obj, message, tenant, pu in zip(
        raws, rejections, rows, safe_messages, tenants, pseudo, strict=True
    ):
        if raw.get("user_id") is not None:
            row_obj["user_id"] = pu if pu is not None else "<REDACTED>"
        event_id = row_obj.get("event_id")
        source, line, _ = locate(lines[rej.index])
        out.append(
            {
                "tenant_id": tenant,
                "event_id": event_id if isinstance(event_id, str) else None,
                "user_id": pu,
                "source": source,
                "line": line,
                "field": rej.field,
                "rule": rej.rule,
                "message": message if message is not None else "(message withheld)",
                "row": json.dumps(row_obj, default=str, ensure_ascii=False)[:_MAX_QUARANTINE_ROW],
            }
        )
    return out


class _Leaf:
    """Where a string stood in a value taken apart by :func:`_collect`."""

    __slots__ = ()


_LEAF = _Leaf()


@dataclass
class _Object:
    """An object taken apart by :func:`_collect`: (key, value) shapes in order."""

    items: list[tuple[Any, Any]]


def _collect(value: Any, leaves: list[str]) -> Any:
    """Replace each string in a nested value (keys too) by a marker, appending it to
    ``leaves`` in the order :func:`_fill` reads them back."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        leaves.append(value)
        return _LEAF
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            key = _collect(str(k), leaves)
            items.append((key, _collect(v, leaves)))
        return _Object(items)
    if isinstance(value, list | tuple):
        return [_collect(v, leaves) for v in value]
    return value


def _fill(shape: Any, redacted: Iterator[str | None]) -> Any:
    if shape is _LEAF:
        return next(redacted)
    if isinstance(shape, _Object):
        out: dict[str, Any] = {}
        for k, v in shape.items:
            key = _fill(k, redacted)
            out[str(key)] = _fill(v, redacted)
        return out
    if isinstance(shape, list):
        return [_fill(v, redacted) for v in shape]
    return shape


def _redact_unknown_names(rejections: list[Rejection]) -> list[Rejection]:
    """Rejections with the names of unknown fields redacted, in their ``field`` and message.

    A key can be anything a producer sent (``"carol@example.com": 1``), and the field of a
    rejection is answered over HTTP, counted in the CLI summary and stored in the quarantine.
    If redaction fails, the name is withheld (fail closed).
    """
    unknown = [k for k, r in enumerate(rejections) if r.rule == "unknown_field" and r.field]
    if not unknown:
        return rejections
    texts = [rejections[k].field or "" for k in unknown] + [rejections[k].message for k in unknown]
    redacted = _redact_strings(texts)
    out = list(rejections)
    for j, k in enumerate(unknown):
        name, message = redacted[j], redacted[len(unknown) + j]
        out[k] = dataclasses.replace(
            rejections[k],
            field=WITHHELD if name is None else name,
            message=message or "unknown field: schema v1 has no such field (name withheld)",
        )
    return out


def _redact_strings(values: Sequence[str]) -> list[str | None]:
    """Redact many strings in one call; on failure, drop them (fail closed)."""
    if not values:
        return []
    try:
        red, _ = redact_array(pa.array(list(values), pa.string()))
    except PrivacyError:
        return [None] * len(values)
    return list(red.to_pylist())


def _quarantine_table(rows: list[dict[str, Any]]) -> pa.Table:
    now = datetime.now(UTC)
    for r in rows:
        r["quarantined_at"] = now
        r["quarantine_date"] = now.date()
    return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)
