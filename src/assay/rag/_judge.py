"""Groundedness judges: the :class:`Judge` protocol, judgements, the pipeline that runs a judge
over many answers (bounded concurrency, a content-hash cache) and the stored judgements.

A judge reads one answer and the contexts it was given and returns a :class:`Judgement`:

- the answer's **claims**, its sentences (:func:`split_claims`);
- per claim a **verdict** (``supported``, ``unsupported`` or ``unknown``) and a short reason;
- the answer's **score** = supported claims / claims, in [0, 1];
- or an **error** (a kind and a message) instead: a verdict that did not parse, a request that
  failed after its retries, an answer without a claim. An error has no score: it is never a 0
  or a NaN inside an average. Averages (:class:`JudgeRun`) skip errors and say how many.

Stored judgements (:func:`store_judgements`, :func:`judgements`) are one row per judged answer
in the Delta table ``rag_judgements`` of the workspace, without any text:
``tenant_id, event_id, judge, model, score, claims, supported, error_kind, judged_at``.

The cache (:class:`JudgeCache`, ``rag_judge_cache.sqlite`` in the workspace) maps a content hash
of (judge id, model, prompt version, answer, contexts) to a successful judgement, so a second
run over the same answers sends no request. It holds the judge's claims and reasons, i.e. text
derived from the (redacted) answers: delete the file to drop it. Errors are never cached.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from assay._errors import UsageError

if TYPE_CHECKING:
    from assay.store import Workspace

Verdict = Literal["supported", "unsupported", "unknown"]
VERDICTS: tuple[Verdict, ...] = ("supported", "unsupported", "unknown")

#: Error kinds a judgement may carry instead of a score.
ErrorKind = Literal[
    "unparsable", "timeout", "rate_limited", "http_status", "transport", "no_claims", "model"
]

JUDGEMENTS_TABLE = "rag_judgements"
CACHE_FILE = "rag_judge_cache.sqlite"

JUDGEMENTS_SCHEMA = pa.schema(
    [
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("judge", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("score", pa.float64()),
        pa.field("claims", pa.int32()),
        pa.field("supported", pa.int32()),
        pa.field("error_kind", pa.string()),
        pa.field("judged_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

# A sentence ends at ., ! or ? followed by white space, or at a line break. Decimal points
# ("3.5") and dots inside tokens ("e.g.x") have no space after them and do not split.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")
_HAS_WORD = re.compile(r"\w")


def split_claims(answer: str) -> list[str]:
    """The claims of an answer: its sentences, stripped, those without a letter or digit dropped.

    A sentence ends at ``.``, ``!`` or ``?`` followed by white space, or at a line break. It is a
    deliberately simple splitter (abbreviations such as "e.g. this" split after "e.g."), the
    same for every judge so that their verdicts are over the same claims.

    Examples
    --------
    >>> split_claims("Paris is in France. It has 2.1 million people!\\n- Rivers: the Seine")
    ['Paris is in France.', 'It has 2.1 million people!', '- Rivers: the Seine']
    >>> split_claims("  ...  ")
    []
    """
    parts = (p.strip() for p in _SENTENCE_END.split(answer))
    return [p for p in parts if p and _HAS_WORD.search(p)]


@dataclass(frozen=True)
class ClaimVerdict:
    """One claim of an answer, the judge's verdict on it and why."""

    claim: str
    verdict: Verdict
    reason: str = ""


@dataclass(frozen=True)
class JudgeError:
    """Why an answer has no judgement: ``kind`` (see :data:`ErrorKind`) and a message that
    holds no text of the answer."""

    kind: str
    message: str


@dataclass(frozen=True)
class Judgement:
    """A judge's reading of one answer: claims with verdicts, or an error.

    Attributes
    ----------
    claims : the claims and their verdicts (empty on an error).
    error : why there is no verdict, or None.
    tokens_in, tokens_out : tokens the judge's model used (0 for local judges and cache hits).
    cost_usd : what those tokens cost at the configured price.
    retries : requests sent again after a 429, a 5xx, a timeout or a transport error.
    cached : read from the cache (no request sent).
    """

    claims: tuple[ClaimVerdict, ...] = ()
    error: JudgeError | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    retries: int = 0
    cached: bool = False

    @property
    def supported(self) -> int:
        return sum(c.verdict == "supported" for c in self.claims)

    @property
    def score(self) -> float | None:
        """Supported claims / claims; None on an error (never 0, never NaN)."""
        if self.error is not None or not self.claims:
            return None
        return self.supported / len(self.claims)

    @classmethod
    def failed(cls, kind: str, message: str, **usage: Any) -> Judgement:
        return cls(error=JudgeError(kind, message), **usage)


def no_claims() -> Judgement:
    """The judgement of an answer without a claim (nothing to judge)."""
    return Judgement.failed("no_claims", "the answer has no sentence with a letter or digit")


@runtime_checkable
class Judge(Protocol):
    """A groundedness judge.

    ``judge_id`` names the method (``lexical``, ``openai``, ``nli``), ``model`` the model it uses
    (``""`` for none), ``prompt_version`` changes whenever a change would alter verdicts (it keys
    the cache). ``judge`` must be safe to call from several threads at once.
    """

    @property
    def judge_id(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def prompt_version(self) -> str: ...

    def judge(self, answer: str, contexts: Sequence[str]) -> Judgement: ...


@dataclass(frozen=True)
class JudgeInput:
    """One answer to judge, with its contexts and keys."""

    answer: str
    contexts: tuple[str, ...]
    tenant_id: str = ""
    event_id: str = ""


def cache_key(judge: Judge, answer: str, contexts: Sequence[str]) -> str:
    """SHA-256 over judge id, model, prompt version, answer and contexts (length-prefixed so
    that no two different inputs share a key)."""
    h = hashlib.sha256()
    for part in (judge.judge_id, judge.model, judge.prompt_version, answer, *contexts):
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    h.update(len(contexts).to_bytes(8, "big"))
    return h.hexdigest()


class JudgeCache:
    """Successful judgements by content hash, in a SQLite file (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        path.chmod(0o600)

    @classmethod
    def of(cls, ws: Workspace) -> JudgeCache:
        return cls(ws.path / CACHE_FILE)

    def get(self, key: str) -> Judgement | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT value FROM judgements WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        claims = tuple(
            ClaimVerdict(c["claim"], c["verdict"], c["reason"]) for c in json.loads(row[0])
        )
        return Judgement(claims=claims, cached=True)

    def put(self, key: str, judgement: Judgement) -> None:
        if judgement.error is not None:
            return
        value = json.dumps(
            [{"claim": c.claim, "verdict": c.verdict, "reason": c.reason} for c in judgement.claims]
        )
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO judgements VALUES (?, ?)", (key, value))

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM judgements").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


@dataclass(frozen=True)
class JudgeRun:
    """The judgements of one pipeline run, in input order, and their summary."""

    judge_id: str
    model: str
    inputs: tuple[JudgeInput, ...]
    judgements: tuple[Judgement, ...]
    judged_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def errors(self) -> dict[str, int]:
        """Judgements without a score, by error kind."""
        return dict(Counter(j.error.kind for j in self.judgements if j.error is not None))

    def summary(self) -> dict[str, Any]:
        """Counts, the mean score over the judged answers (errors skipped and counted), tokens,
        cost, retries and cache hits."""
        scores = [s for j in self.judgements if (s := j.score) is not None]
        return {
            "judge": self.judge_id,
            "model": self.model,
            "answers": len(self.judgements),
            "judged": len(scores),
            "errors": sum(self.errors.values()),
            "errors_by_kind": self.errors,
            "mean_score": sum(scores) / len(scores) if scores else None,
            "claims": sum(len(j.claims) for j in self.judgements),
            "supported": sum(j.supported for j in self.judgements),
            "tokens_in": sum(j.tokens_in for j in self.judgements),
            "tokens_out": sum(j.tokens_out for j in self.judgements),
            "cost_usd": sum(j.cost_usd for j in self.judgements),
            "retries": sum(j.retries for j in self.judgements),
            "cache_hits": sum(j.cached for j in self.judgements),
        }

    def to_arrow(self) -> pa.Table:
        """The stored rows of this run (:data:`JUDGEMENTS_SCHEMA`): no text."""
        rows = [
            {
                "tenant_id": i.tenant_id,
                "event_id": i.event_id,
                "judge": self.judge_id,
                "model": self.model,
                "score": j.score,
                "claims": None if j.error else len(j.claims),
                "supported": None if j.error else j.supported,
                "error_kind": j.error.kind if j.error else None,
                "judged_at": self.judged_at,
            }
            for i, j in zip(self.inputs, self.judgements, strict=True)
        ]
        return pa.Table.from_pylist(rows, schema=JUDGEMENTS_SCHEMA)


def _safe_judge(judge: Judge, item: JudgeInput) -> Judgement:
    if not split_claims(item.answer):
        return no_claims()
    try:
        out = judge.judge(item.answer, item.contexts)
    except Exception as exc:  # a judge's own failure is this answer's error, not the run's
        # The type only: an exception's message may quote the text it choked on.
        return Judgement.failed("model", f"the judge raised {type(exc).__name__}")
    if out.error is None and not out.claims:
        # No verdict is no score: an error, so that answers = judged + errors always.
        return replace(out, error=no_claims().error)
    return out


def run_judge(
    judge: Judge,
    items: Iterable[JudgeInput],
    *,
    concurrency: int = 1,
    cache: JudgeCache | None = None,
    progress: Callable[[int], None] | None = None,
) -> JudgeRun:
    """Judge every answer with at most ``concurrency`` calls in flight.

    Cache hits (same judge, model, prompt version, answer and contexts) are answered without
    calling the judge; successful judgements are added to the cache. A judge that raises
    records a ``model`` error for that answer and the run goes on. ``progress`` is called with
    the number of answers finished so far.

    Examples
    --------
    >>> from assay.rag import LexicalJudge
    >>> items = [JudgeInput("Paris is in France.", ("Paris lies in France.",)),
    ...          JudgeInput("...", ("Paris lies in France.",))]
    >>> s = run_judge(LexicalJudge(), items, concurrency=2).summary()
    >>> s["judged"], s["errors_by_kind"], s["mean_score"]
    (1, {'no_claims': 1}, 1.0)
    """
    if concurrency < 1:
        raise UsageError(f"concurrency must be at least 1 (got {concurrency}); pass 1 to 64")
    inputs = tuple(items)
    results: list[Judgement | None] = [None] * len(inputs)
    keys = [cache_key(judge, i.answer, i.contexts) for i in inputs]
    done = 0
    todo: list[int] = []
    for n, key in enumerate(keys):
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            results[n] = hit
            done += 1
        else:
            todo.append(n)
    if progress is not None and done:
        progress(done)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="judge") as pool:
        futures: dict[Future[Judgement], int] = {
            pool.submit(_safe_judge, judge, inputs[n]): n for n in todo
        }
        for future in as_completed(futures):
            n = futures[future]
            result = future.result()
            results[n] = result
            if cache is not None:
                cache.put(keys[n], result)
            done += 1
            if progress is not None:
                progress(done)
    return JudgeRun(
        judge_id=judge.judge_id,
        model=judge.model,
        inputs=inputs,
        judgements=tuple(r if r is not None else no_claims() for r in results),
    )


# -- storage ------------------------------------------------------------------------------------
def _table_path(ws: Workspace, name: str) -> Path:
    return ws.path / name


def append_rows(ws: Workspace, name: str, rows: pa.Table) -> None:
    """Append rows to a Delta table of the workspace (created on first use) under the workspace
    write lock. Statistics are kept only for time columns, as for every workspace table, so
    that no id lands in the transaction log."""
    if rows.num_rows == 0:
        return
    path = _table_path(ws, name)
    stats = ",".join(f.name for f in rows.schema if pa.types.is_timestamp(f.type))
    with ws.lock.hold(ws.settings.lock_timeout_seconds):
        write_deltalake(
            str(path),
            rows,
            mode="append",
            configuration={
                "delta.enableDeletionVectors": "false",
                "delta.dataSkippingStatsColumns": stats,
            },
        )


def read_rows(ws: Workspace, name: str, schema: pa.Schema) -> pa.Table:
    """All rows of a workspace Delta table written by :func:`append_rows` (empty if none)."""
    path = _table_path(ws, name)
    if not (path / "_delta_log").is_dir():
        return schema.empty_table()
    return DeltaTable(str(path)).to_pyarrow_table().select(schema.names).cast(schema)


def store_judgements(ws: Workspace, run: JudgeRun) -> int:
    """Store a run's judgements in ``rag_judgements``; return the number of rows written."""
    rows = run.to_arrow()
    append_rows(ws, JUDGEMENTS_TABLE, rows)
    return int(rows.num_rows)


def judgements(ws: Workspace, *, latest: bool = True) -> pa.Table:
    """The stored judgements (:data:`JUDGEMENTS_SCHEMA`), one row per judged answer.

    With ``latest`` (default) only the newest judgement of each (tenant, event, judge, model)
    is kept, so that re-judging an answer replaces its row rather than counting it twice.
    ``score`` is null on an error row (``error_kind`` says why): a groundedness rate is the mean
    of the non-null scores, with the error rows counted beside it.
    """
    if not latest:
        return read_rows(ws, JUDGEMENTS_TABLE, JUDGEMENTS_SCHEMA)
    keys = ("tenant_id", "event_id", "judge", "model")
    return newest_rows(ws, JUDGEMENTS_TABLE, JUDGEMENTS_SCHEMA, keys, "judged_at")


def newest_rows(
    ws: Workspace, name: str, schema: pa.Schema, keys: Sequence[str], time_column: str
) -> pa.Table:
    """The newest row (by ``time_column``) of each ``keys`` of a table written by
    :func:`append_rows`, ordered by the keys."""
    stored = read_rows(ws, name, schema)
    if stored.num_rows == 0:
        return stored
    by = ", ".join(keys)
    with ws.duckdb() as con:
        con.register("stored", stored)
        out = con.sql(
            f"SELECT * FROM stored QUALIFY row_number() OVER (PARTITION BY {by} "
            f"ORDER BY {time_column} DESC) = 1 ORDER BY {by}"
        ).to_arrow_table()
    return out.select(schema.names).cast(schema)


def with_usage(judgement: Judgement, **usage: Any) -> Judgement:
    """The same judgement with token, cost and retry counts set."""
    return replace(judgement, **usage)


# -- inputs and the workspace run ---------------------------------------------------------------
INPUT_FIELDS = ("answer", "contexts", "tenant_id", "event_id")


def read_judge_input(path: Path) -> list[JudgeInput]:
    """Answers to judge from a JSONL file, one object per line: ``answer`` (string),
    ``contexts`` (list of strings), optionally ``tenant_id`` and ``event_id`` (default ``""``
    and ``line-N``). Every text is redacted (:func:`assay.privacy.redact_array`) before any
    judge sees it, so a judge reads what the workspace would store."""
    from assay.privacy import redact_array

    if not path.is_file():
        raise UsageError(
            f"no such file: {path}; pass --input a JSONL file of answer, contexts[, tenant_id, "
            "event_id] objects"
        )
    rows: list[tuple[str, list[str], str, str]] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise UsageError(
                    f"line {n} of {path.name} is not JSON; expected one object per line with "
                    "answer and contexts"
                ) from None
            answer = obj.get("answer") if isinstance(obj, dict) else None
            contexts = obj.get("contexts") if isinstance(obj, dict) else None
            if (
                not isinstance(answer, str)
                or not isinstance(contexts, list)
                or not all(isinstance(c, str) for c in contexts)
            ):
                raise UsageError(
                    f"line {n} of {path.name}: expected answer (a string) and contexts (a list "
                    "of strings)"
                )
            unknown = sorted(set(obj) - set(INPUT_FIELDS))
            if unknown:
                raise UsageError(
                    f"line {n} of {path.name} has unknown field(s) {', '.join(unknown)[:80]}; "
                    f"the fields are {', '.join(INPUT_FIELDS)}"
                )
            rows.append(
                (
                    answer,
                    contexts,
                    str(obj.get("tenant_id", "")),
                    str(obj.get("event_id", f"line-{n}")),
                )
            )
    flat = [r[0] for r in rows] + [c for r in rows for c in r[1]]
    redacted, _ = redact_array(pa.array(flat, pa.string()))
    texts = redacted.to_pylist()
    out = []
    at = len(rows)
    for i, (_, contexts, tenant, event) in enumerate(rows):
        out.append(JudgeInput(texts[i], tuple(texts[at : at + len(contexts)]), tenant, event))
        at += len(contexts)
    return out


def select_inputs(
    ws: Workspace,
    items: Sequence[JudgeInput],
    *,
    tenant: str | None = None,
    since: date | None = None,
    until: date | None = None,
    limit: int | None = None,
) -> list[JudgeInput]:
    """The inputs of ``tenant`` whose event is stored with an ``event_date`` in
    [``since``, ``until``] (either bound: only answers whose event is in the workspace), first
    ``limit`` of them."""
    out = [i for i in items if tenant is None or i.tenant_id == tenant]
    if since is not None or until is not None:
        files = ws.files("events")
        keep: set[tuple[str, str]] = set()
        if files:
            with ws.duckdb() as con:
                rows = con.sql(
                    "SELECT DISTINCT tenant_id, event_id FROM read_parquet(?, hive_partitioning "
                    "= true) WHERE event_date >= ? AND event_date <= ?",
                    params=[files, since or date.min, until or date.max],
                ).fetchall()
            keep = {(str(t), str(e)) for t, e in rows}
        out = [i for i in out if (i.tenant_id, i.event_id) in keep]
    if limit is not None:
        if limit < 1:
            raise UsageError(f"--limit must be at least 1 (got {limit})")
        out = out[:limit]
    return out


def judge_answers(
    ws: Workspace,
    judge: Judge,
    items: Sequence[JudgeInput],
    *,
    concurrency: int = 1,
    use_cache: bool = True,
    progress: Callable[[int], None] | None = None,
) -> JudgeRun:
    """Judge answers with the workspace's cache and store the judgements; the run."""
    cache = JudgeCache.of(ws) if use_cache else None
    try:
        run = run_judge(judge, items, concurrency=concurrency, cache=cache, progress=progress)
    finally:
        if cache is not None:
            cache.close()
    store_judgements(ws, run)
    return run
