"""One HTTP ingest request through the shared pipeline: parse, check the tenant, prepare, answer.

The service reads and decodes the body; everything from the bytes on is here, so that the HTTP
path and the file path share the same validation, redaction, pseudonymisation, deduplication
and quarantine (:class:`~assay.ingest.Ingestor`). The body is read raw, not as a typed list,
so that one bad event is rejected at its index and never fails its neighbours.

Error messages in the answer are redacted like stored text: a message may quote the value that
broke a rule.

Events are numbered from 0: by position in a JSON array, or by line in JSON Lines (a blank
line takes a number and yields no result).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import SchemaError
from assay.ingest._pipeline import BatchOutcome, Ingestor, _Prepared
from assay.ingest._readers import RawBatch
from assay.ingest.jsonl import read_json_body
from assay.privacy import redact_array


class TooManyEventsError(SchemaError):
    """A request holds more events than the limit."""


@dataclass
class PreparedRequest:
    """A request's batches, prepared and ready for the writer, plus what was decided already."""

    preps: list[_Prepared]
    key_tenant: str | None
    #: index → (event_id, error) for events refused before the pipeline (another tenant's).
    forbidden: dict[int, str | None] = field(default_factory=dict)
    total: int = 0


@dataclass
class RequestResult:
    """The answer to one request: counts and one result per event, by index."""

    accepted: int
    duplicates: int
    rejected: int
    results: list[dict[str, Any]]
    #: (tenant label, outcome) → events, for the metrics (tenant ids only, never user ids).
    by_tenant: Counter[tuple[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "results": self.results,
        }


def _error(
    code: str, message: str, field: str | None = None, rule: str | None = None
) -> dict[str, Any]:
    return {"code": code, "message": message, "field": field, "rule": rule}


def parse_request(data: bytes, *, array: bool, max_events: int) -> list[RawBatch]:
    """Parse a decoded body into batches, refusing it whole only when it cannot be read.

    Raises
    ------
    SchemaError
        The body is not a JSON array (``array``) or the array is broken: nothing can be
        attributed to an index (HTTP 422).
    TooManyEventsError
        More than ``max_events`` events (HTTP 413).
    """
    if array:
        start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        if start != b"[":
            got = "an empty body" if not start else f"a body starting with {start!r}"
            raise SchemaError(
                f"expected a JSON array of events (got {got}); send [event, ...] with "
                "Content-Type: application/json, or one event per line with "
                "Content-Type: application/x-ndjson"
            )
    elif data.count(b"\n") > max_events + 1:
        raise TooManyEventsError(_too_many(data.count(b"\n"), max_events))
    batches = list(read_json_body(data, array=array, batch_rows=max_events + 1))
    for batch in batches:
        for failure in batch.failures:
            if failure.fatal:
                raise SchemaError(
                    f"the body is not a readable JSON array: {failure.message}"
                ) from None
    total = sum(b.table.num_rows + len(b.failures) for b in batches)
    if total > max_events:
        raise TooManyEventsError(_too_many(total, max_events))
    return batches


def _too_many(n: int, limit: int) -> str:
    return (
        f"a request holds at most {limit:,} events (got {n:,}); split the batch, or raise "
        "the http_max_events setting"
    )


def _strings(col: pa.ChunkedArray | None, n: int) -> list[str | None]:
    """A column's values where they are strings, else None (any type may arrive)."""
    if col is None:
        return [None] * n
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col.to_pylist()  # type: ignore[no-any-return]
    return [v if isinstance(v, str) else None for v in col.to_pylist()]


def prepare_request(
    ingestor: Ingestor, batches: list[RawBatch], *, key_tenant: str | None, source: str
) -> PreparedRequest:
    """Refuse events of another tenant than the key's, then prepare the rest (no lock taken).

    Refused events are answered with ``forbidden_tenant`` and not quarantined: the quarantine
    of a tenant holds only what that tenant's keys sent.
    """
    out = PreparedRequest(preps=[], key_tenant=key_tenant)
    for batch in batches:
        n = batch.table.num_rows
        out.total += n + len(batch.failures)
        if key_tenant is not None and n and "tenant_id" in batch.table.column_names:
            tenants = _strings(batch.table.column("tenant_id"), n)
            other = np.fromiter(
                (t is not None and t != key_tenant for t in tenants), dtype=np.bool_, count=n
            )
            if other.any():
                ids = _strings(_column(batch.table, "event_id"), n)
                lines = batch.lines.to_numpy(zero_copy_only=False)
                for row in np.flatnonzero(other).tolist():
                    out.forbidden[int(lines[row]) - 1] = ids[row]
                keep = pa.array(~other)
                batch = RawBatch(
                    batch.table.filter(keep), pc.filter(batch.lines, keep), batch.failures
                )
        out.preps.append(ingestor.prepare(batch, source=source, sender_tenant=key_tenant))
    return out


def _column(table: pa.Table, name: str) -> pa.ChunkedArray | None:
    return table.column(name) if name in table.column_names else None


def _redact_messages(results: list[dict[str, Any]]) -> None:
    """Redact the messages of the answer in one call: a message may quote the value that broke
    a rule, and the answer may end up in a client's logs."""
    errors = [r["error"] for r in results if r["error"] is not None]
    if not errors:
        return
    redacted, _ = redact_array(pa.array([e["message"] for e in errors], pa.string()))
    for error, message in zip(errors, redacted.to_pylist(), strict=True):
        error["message"] = message


def request_result(prepared: PreparedRequest, outcomes: list[BatchOutcome]) -> RequestResult:
    """Assemble the per-event answer from the stored outcomes, in index order."""
    results: list[dict[str, Any]] = []
    by_tenant: Counter[tuple[str, str]] = Counter()
    default_label = prepared.key_tenant or "unknown"
    for index, event_id in prepared.forbidden.items():
        results.append(
            {
                "index": index,
                "event_id": event_id,
                "status": "rejected",
                "error": _error(
                    "forbidden_tenant",
                    "this event's tenant_id is not the tenant of the key; send it with a key "
                    "of its own tenant",
                    "tenant_id",
                    "forbidden_tenant",
                ),
            }
        )
        by_tenant[(default_label, "rejected")] += 1
    for prep, outcome in zip(prepared.preps, outcomes, strict=True):
        table = prep.batch.table
        n = table.num_rows
        ids = _strings(_column(table, "event_id"), n)
        tenants = _strings(_column(table, "tenant_id"), n)
        for row in range(n):
            status = outcome.status[row]
            rej = outcome.errors.get(row)
            error = None
            if rej is not None:
                error = _error(
                    "redaction_failed" if rej.rule == "redaction" else "invalid_event",
                    rej.message,
                    rej.field,
                    rej.rule,
                )
            results.append(
                {
                    "index": prep.lines[row] - 1,
                    "event_id": ids[row],
                    "status": status,
                    "error": error,
                }
            )
            # Only validated tenant ids become labels: junk cannot blow up the cardinality.
            label = (tenants[row] or default_label) if status != "rejected" else default_label
            by_tenant[(label, status)] += 1
        for failure in prep.batch.failures:
            results.append(
                {
                    "index": failure.line - 1,
                    "event_id": None,
                    "status": "rejected",
                    "error": _error("unreadable_event", failure.message, None, failure.rule),
                }
            )
            by_tenant[(default_label, "rejected")] += 1
    _redact_messages(results)
    results.sort(key=lambda r: int(r["index"]))
    counts = Counter(r["status"] for r in results)
    return RequestResult(
        accepted=counts["accepted"],
        duplicates=counts["duplicate"],
        rejected=counts["rejected"],
        results=results,
        by_tenant=by_tenant,
    )
