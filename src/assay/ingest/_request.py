"""HTTP ingest requests through the shared pipeline, prepared in groups.

The service reads and decodes each body; everything from the bytes on is here, so that the HTTP
path and the file path share the same validation, redaction, pseudonymisation, deduplication
and quarantine (:class:`~assay.ingest.Ingestor`). Bodies are read raw, not as typed lists, so
that one bad event is rejected at its index and never fails its neighbours.

Each body becomes a :class:`Piece`: JSON Lines (a JSON array is rewritten as one element per
line). A :class:`RequestPipeline` worker takes every piece that is waiting, joins them into one
block, and parses, validates, redacts and pseudonymises the block at once: the fixed cost of
those steps (pattern compilation, kernel dispatch) is paid once per group instead of once per
request. The block goes to the :class:`~assay.ingest._group.GroupWriter`, and each request gets
its own events' results back.

Events are numbered from 0: by position in a JSON array, or by line in JSON Lines (a blank
line takes a number and yields no result). Error messages in the answers are redacted like
stored text: a message may quote the value that broke a rule.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _quote
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import SchemaError, WorkspaceError
from assay.ingest._group import STOP, GroupWriter, take_group
from assay.ingest._pipeline import BatchOutcome, Ingestor, _Prepared
from assay.ingest._readers import RawBatch
from assay.ingest.jsonl import KEY_END, count_keys, read_json_body
from assay.privacy import redact_array


class TooManyEventsError(SchemaError):
    """A request holds more events than the limit."""


@dataclass
class Piece:
    """One request's events, ready to be prepared with others.

    Attributes
    ----------
    data : JSON Lines ending in a newline (empty: no events), or None when ``batches`` holds
        the request already parsed (a JSON array that needs the exact, slower reader).
    lines : the number of lines in ``data``.
    key_tenant : the tenant of the request's key, None for an admin key.
    source : ``http:<key id>``, recorded in the quarantine.
    """

    data: bytes | None
    lines: int
    key_tenant: str | None
    source: str
    batches: list[RawBatch] = field(default_factory=list)
    context: Any = None  # the request's span context, linked from the group's span


@dataclass
class RequestResult:
    """The answer to one request: counts and one result per event, by index.

    The results are kept as JSON text, built row by row from a template: building a dict per
    event and encoding them was most of the event loop's time under load.
    """

    accepted: int
    duplicates: int
    rejected: int
    results_json: str
    #: (tenant label, outcome) → events, for the metrics (tenant ids only, never user ids).
    by_tenant: Counter[tuple[str, str]]

    @property
    def results(self) -> list[dict[str, Any]]:
        """``[{"index", "event_id", "status", "error"}]`` in index order."""
        return json.loads(self.results_json)  # type: ignore[no-any-return]

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "results": self.results,
        }

    def to_json(self) -> str:
        """The body of the HTTP answer."""
        return (
            f'{{"accepted": {self.accepted}, "duplicates": {self.duplicates}, '
            f'"rejected": {self.rejected}, "results": {self.results_json}}}'
        )


_ROW = '{"index": %d, "event_id": %s, "status": "%s", "error": null}'


def _error(
    code: str, message: str, field: str | None = None, rule: str | None = None
) -> dict[str, Any]:
    return {"code": code, "message": message, "field": field, "rule": rule}


def _too_many(n: int, limit: int) -> str:
    return (
        f"a request holds at most {limit:,} events (got {n:,}); split the batch, or raise "
        "the http_max_events setting"
    )


def _not_an_array(data: bytes) -> SchemaError | None:
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start == b"[":
        return None
    got = "an empty body" if not start else f"a body starting with {start!r}"
    return SchemaError(
        f"expected a JSON array of events (got {got}); send [event, ...] with "
        "Content-Type: application/json, or one event per line with "
        "Content-Type: application/x-ndjson"
    )


def _array_as_lines(data: bytes) -> list[bytes] | None:
    """A JSON array's elements as JSON lines, or None when the exact reader must decide (not
    UTF-8, not valid JSON, too deep, or a key that may occur twice in an object)."""
    try:
        text = data.decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(value, list) or len(KEY_END.findall(text)) != count_keys(value):
        return None
    try:
        return [json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass") for v in value]
    except (ValueError, RecursionError):
        return None


def read_piece(
    data: bytes, *, array: bool, max_events: int, key_tenant: str | None, source: str
) -> Piece:
    """Turn a decoded body into a :class:`Piece`, refusing it whole only when it cannot be read.

    Raises
    ------
    SchemaError
        The body is not a JSON array (``array``) or the array is broken: nothing can be
        attributed to an index (HTTP 422).
    TooManyEventsError
        More than ``max_events`` events (HTTP 413).
    """
    if array:
        problem = _not_an_array(data)
        if problem is not None:
            raise problem
        elements = _array_as_lines(data)
        if elements is None:
            return _exact_array(data, max_events, key_tenant, source)
        if len(elements) > max_events:
            raise TooManyEventsError(_too_many(len(elements), max_events))
        body = b"\n".join(elements) + b"\n" if elements else b""
        return Piece(body, len(elements), key_tenant, source)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data and not data.endswith(b"\n"):
        data += b"\n"
    lines = data.count(b"\n")
    if lines > max_events:
        events = sum(1 for line in data.split(b"\n") if line.strip())
        if events > max_events:
            raise TooManyEventsError(_too_many(events, max_events))
    return Piece(data, lines, key_tenant, source)


def _exact_array(data: bytes, max_events: int, key_tenant: str | None, source: str) -> Piece:
    batches = list(read_json_body(data, array=True, batch_rows=max_events + 1))
    for batch in batches:
        for failure in batch.failures:
            if failure.fatal:
                raise SchemaError(f"the body is not a readable JSON array: {failure.message}")
    total = sum(b.table.num_rows + len(b.failures) for b in batches)
    if total > max_events:
        raise TooManyEventsError(_too_many(total, max_events))
    return Piece(None, total, key_tenant, source, batches=batches)


# -- one group of pieces ---------------------------------------------------------------------


def _strings(col: pa.ChunkedArray | None, n: int) -> list[str | None]:
    """A column's values where they are strings, else None (any type may arrive)."""
    if col is None:
        return [None] * n
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col.to_pylist()  # type: ignore[no-any-return]
    return [v if isinstance(v, str) else None for v in col.to_pylist()]


def _column(table: pa.Table, name: str) -> pa.ChunkedArray | None:
    return table.column(name) if name in table.column_names else None


@dataclass
class _Part:
    """One prepared batch of a group, and the pieces its lines belong to."""

    pieces: list[int]  # index into the group's pieces
    starts: np.ndarray[Any, np.dtype[np.int64]]  # line offset of each piece in the batch
    prep: _Prepared
    #: batch line → event id, for the events refused because of their tenant.
    forbidden: dict[int, str | None]


class GroupOutcome:
    """What happened to a group of requests; each request's answer is cut out of it once."""

    def __init__(self, pieces: list[Piece], parts: list[_Part]) -> None:
        self.pieces = pieces
        self.parts = parts
        self.outcomes: list[BatchOutcome] = []
        self._answers: list[RequestResult] | None = None

    def answer(self, k: int) -> RequestResult:
        """The answer of the group's ``k``-th request (all are computed on the first call)."""
        if self._answers is None:
            self._answers = self._compute()
        return self._answers[k]

    def _compute(self) -> list[RequestResult]:
        # Per request: (index, JSON text) of the rows without an error, and the result dicts
        # of those with one (their messages are redacted together, then encoded).
        texts: list[list[tuple[int, str]]] = [[] for _ in self.pieces]
        failed: list[list[dict[str, Any]]] = [[] for _ in self.pieces]
        counts: list[dict[tuple[str, str], int]] = [defaultdict(int) for _ in self.pieces]
        labels = [p.key_tenant or "unknown" for p in self.pieces]

        def where(part: _Part, line: int) -> tuple[int, int]:
            j = int(np.searchsorted(part.starts, line - 1, side="right")) - 1
            return part.pieces[j], line - 1 - int(part.starts[j])

        def reject(k: int, index: int, event_id: str | None, error: dict[str, Any]) -> None:
            failed[k].append(
                {"index": index, "event_id": event_id, "status": "rejected", "error": error}
            )

        for part, outcome in zip(self.parts, self.outcomes, strict=True):
            prep = part.prep
            for line, event_id in part.forbidden.items():
                k, index = where(part, line)
                reject(
                    k,
                    index,
                    event_id,
                    _error(
                        "forbidden_tenant",
                        "this event's tenant_id is not the tenant of the key; send it with "
                        "a key of its own tenant",
                        "tenant_id",
                        "forbidden_tenant",
                    ),
                )
                counts[k][(labels[k], "rejected")] += 1
            table = prep.batch.table
            n = table.num_rows
            ids = _strings(_column(table, "event_id"), n)
            tenants = _strings(_column(table, "tenant_id"), n)
            # Where each row belongs, for all rows at once (one searchsorted, not one a row).
            lines = np.asarray(prep.lines, dtype=np.int64)
            slot = np.searchsorted(part.starts, lines - 1, side="right") - 1
            owners = np.asarray(part.pieces, dtype=np.int64)[slot].tolist()
            indexes = (lines - 1 - part.starts[slot]).tolist()
            errors = outcome.errors
            for row in range(n):
                k, index, status = owners[row], indexes[row], outcome.status[row]
                rej = errors.get(row)
                if rej is None:
                    eid = ids[row]
                    texts[k].append(
                        (index, _ROW % (index, "null" if eid is None else _quote(eid), status))
                    )
                else:
                    code = "redaction_failed" if rej.rule == "redaction" else "invalid_event"
                    reject(k, index, ids[row], _error(code, rej.message, rej.field, rej.rule))
                # Only validated tenant ids become labels: junk cannot blow up cardinality.
                label = (tenants[row] or labels[k]) if status != "rejected" else labels[k]
                counts[k][(label, status)] += 1
            for failure in prep.batch.failures:
                k, index = where(part, failure.line)
                reject(
                    k,
                    index,
                    None,
                    _error("unreadable_event", failure.message, failure.field, failure.rule),
                )
                counts[k][(labels[k], "rejected")] += 1
        _redact_messages([r for rs in failed for r in rs])
        answers = []
        for k in range(len(self.pieces)):
            rows = texts[k] + [(r["index"], json.dumps(r, ensure_ascii=False)) for r in failed[k]]
            rows.sort(key=itemgetter(0))
            by_tenant: Counter[tuple[str, str]] = Counter(counts[k])
            statuses: Counter[str] = Counter()
            for (_, outcome_name), count in by_tenant.items():
                statuses[outcome_name] += count
            answers.append(
                RequestResult(
                    accepted=statuses["accepted"],
                    duplicates=statuses["duplicate"],
                    rejected=statuses["rejected"],
                    results_json="[" + ", ".join(text for _, text in rows) + "]",
                    by_tenant=by_tenant,
                )
            )
        return answers


def _redact_messages(results: list[dict[str, Any]]) -> None:
    """Redact the messages of the answers in one call: a message may quote the value that broke
    a rule, and the answer may end up in a client's logs."""
    errors = [r["error"] for r in results if r["error"] is not None]
    if not errors:
        return
    redacted, _ = redact_array(pa.array([e["message"] for e in errors], pa.string()))
    for error, message in zip(errors, redacted.to_pylist(), strict=True):
        error["message"] = message


def prepare_group(ingestor: Ingestor, pieces: list[Piece], *, max_rows: int) -> list[_Part]:
    """Parse the pieces (those in JSON Lines as one block), refuse other tenants' events, and
    prepare the rest; no lock is taken."""
    work: list[tuple[list[int], np.ndarray[Any, np.dtype[np.int64]], RawBatch]] = []
    joined = [k for k, p in enumerate(pieces) if p.data]
    if joined:
        starts = np.cumsum([0] + [pieces[k].lines for k in joined[:-1]], dtype=np.int64)
        block = b"".join(pieces[k].data or b"" for k in joined)
        for batch in read_json_body(block, array=False, batch_rows=max(max_rows, 1) * 2):
            work.append((joined, starts, batch))
    for k, piece in enumerate(pieces):
        for batch in piece.batches:
            work.append(([k], np.zeros(1, dtype=np.int64), batch))

    parts = []
    for owners, starts, batch in work:
        tenants_of = np.array([pieces[k].key_tenant for k in owners], dtype=object)
        sources = [pieces[k].source for k in owners]

        def locate(
            line: int,
            owners: list[int] = owners,
            starts: np.ndarray[Any, np.dtype[np.int64]] = starts,
            sources: list[str] = sources,
        ) -> tuple[str, int, str | None]:
            j = int(np.searchsorted(starts, line - 1, side="right")) - 1
            return sources[j], line - int(starts[j]), pieces[owners[j]].key_tenant

        batch, forbidden = _refuse_other_tenants(batch, starts, tenants_of)
        prep = ingestor.prepare(batch, source=sources[0], locate=locate)
        parts.append(_Part(owners, starts, prep, forbidden))
    return parts


def _refuse_other_tenants(
    batch: RawBatch,
    starts: np.ndarray[Any, np.dtype[np.int64]],
    key_tenants: np.ndarray[Any, np.dtype[Any]],
) -> tuple[RawBatch, dict[int, str | None]]:
    """Take out the rows whose tenant_id is not their key's tenant (admin keys: any tenant).

    Refused events are answered with ``forbidden_tenant`` and not quarantined: the quarantine
    of a tenant holds only what that tenant's keys sent.
    """
    n = batch.table.num_rows
    if not n or "tenant_id" not in batch.table.column_names:
        return batch, {}
    if all(t is None for t in key_tenants):
        return batch, {}
    lines = batch.lines.to_numpy(zero_copy_only=False).astype(np.int64)
    owner = np.searchsorted(starts, lines - 1, side="right") - 1
    expected = key_tenants[owner]
    tenants = np.array(_strings(batch.table.column("tenant_id"), n), dtype=object)
    other = np.fromiter(
        (
            k is not None and t is not None and t != k
            for k, t in zip(expected, tenants, strict=True)
        ),
        dtype=np.bool_,
        count=n,
    )
    if not other.any():
        return batch, {}
    ids = _strings(_column(batch.table, "event_id"), n)
    forbidden = {int(lines[r]): ids[r] for r in np.flatnonzero(other).tolist()}
    keep = pa.array(~other)
    return RawBatch(batch.table.filter(keep), pc.filter(batch.lines, keep), batch.failures), (
        forbidden
    )


# -- the workers ------------------------------------------------------------------------------

GroupHook = Callable[[list[Piece]], Any]
"""span(pieces) -> a context manager around the preparation of a group (tracing)."""


class RequestPipeline:
    """Prepare waiting requests together on a few threads, store them through one writer.

    Parameters
    ----------
    ingestor, writer : the ingestor whose ``prepare`` the workers call, and the writer its
        prepared batches go to.
    workers : preparing threads (the work is mostly Arrow kernels, which release the GIL).
    max_rows : the most lines a worker takes into one group.
    span : optional, called with each group; returns a context manager (a tracing span).
    """

    def __init__(
        self,
        ingestor: Ingestor,
        writer: GroupWriter,
        *,
        workers: int = 2,
        max_rows: int = 20_000,
        span: GroupHook | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._writer = writer
        self._max_rows = max_rows
        self._span = span
        self._queue: queue.SimpleQueue[tuple[Piece, Future[tuple[GroupOutcome, int]]] | object]
        self._queue = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"assay-prepare-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def submit(self, piece: Piece) -> Future[tuple[GroupOutcome, int]]:
        """Queue a request; the future gives its group's outcome and its place in the group,
        once its events are committed (``outcome.answer(k)`` is its answer)."""
        future: Future[tuple[GroupOutcome, int]] = Future()
        with self._lock:
            if self._closed:
                raise WorkspaceError("the server is shutting down; retry on the next one")
        self._queue.put((piece, future))
        return future

    def close(self) -> None:
        """Prepare and hand over everything queued, then stop the workers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for _ in self._threads:
            self._queue.put(STOP)
        for t in self._threads:
            t.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is STOP:
                return
            group, stop = take_group(self._queue, first, lambda item: item[0].lines, self._max_rows)
            self._handle(group)
            if stop:
                return

    def _handle(self, group: list[tuple[Piece, Future[tuple[GroupOutcome, int]]]]) -> None:
        pieces = [p for p, _ in group]
        futures = [f for _, f in group]
        try:
            if self._span is not None:
                with self._span(pieces):
                    parts = prepare_group(self._ingestor, pieces, max_rows=self._max_rows)
            else:
                parts = prepare_group(self._ingestor, pieces, max_rows=self._max_rows)
            outcome = GroupOutcome(pieces, parts)
            stored = [self._writer.submit(part.prep) for part in parts]
        except BaseException as exc:  # every waiter must hear of the failure
            for f in futures:
                f.set_exception(exc)
            return
        if not stored:
            for k, f in enumerate(futures):
                f.set_result((outcome, k))
            return
        remaining = [len(stored)]
        lock = threading.Lock()

        def done(_: Future[BatchOutcome]) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            failed = next((s.exception() for s in stored if s.exception() is not None), None)
            if failed is not None:
                for f in futures:
                    f.set_exception(failed)
                return
            outcome.outcomes = [s.result() for s in stored]
            for k, f in enumerate(futures):
                f.set_result((outcome, k))

        for s in stored:
            s.add_done_callback(done)
