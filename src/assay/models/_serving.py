"""Online inference: registered models loaded once, warmed, micro-batched and swapped live.

What :class:`ModelPool` does for ``assay serve`` (``POST /v1/models/{name}/predict``):

- **References** (``NAME``, ``NAME@ALIAS``, ``NAME/VERSION``) resolve through the registry
  (:meth:`~assay.models._registry.Registry.resolve`). A ``NAME/VERSION`` resolves once; a
  reference that can move (an alias, or a bare name: its champion) is resolved again at most
  every :attr:`ServingConfig.refresh_seconds`, in the background: requests keep being served
  by the version resolved last until the new one is loaded and warmed, then go to the new one
  (:meth:`ModelPool.refresh` re-resolves every reference at once). A request holds the
  version it started on until it is answered, so a swap drops nothing in flight.
- **Versions** are loaded once (:meth:`~assay.models._registry.Registry.load_onnx`) into
  ONNX Runtime and warmed with one dummy batch before the first request sees them. Intent
  models (the ``assay.intent.labels`` metadata) run in
  :class:`~assay.models._intent.IntentPredictor`; every other registered model is a tabular
  quality model (:mod:`assay.models._onnx`: one input per feature, output ``score``).
- **Micro-batching** (:class:`Batcher`, one per loaded version): requests that arrive while
  the version is busy, or within :attr:`ServingConfig.max_wait_ms` of each other, are scored
  in one ONNX Runtime call of at most :attr:`ServingConfig.max_batch` inputs (a larger request
  goes alone), in a worker thread, off the event loop; each request gets its own slice back.
  At most :attr:`ServingConfig.max_queue` inputs wait per version: beyond that
  :class:`OverloadedError`.
- **Inputs** are checked before they queue (:func:`check_inputs`): texts for intent models
  (at most :attr:`ServingConfig.max_text_chars` characters each), feature records for tabular
  models (exactly the model's features, numbers or strings as the model takes them, null for
  a missing value); :class:`InputError` names the input and the field.

- **Rollouts** (:class:`Routing`, from the ``router`` the service gives the pool): a movable
  reference of a model under a rollout is answered by the version :func:`assign` picks (sticky
  per pseudonymous user, below the candidate's weight); in shadow mode the candidate also
  scores stable-answered requests after the answer (:meth:`ModelPool.shadow`). This module
  does not know where rollouts are stored (``assay.rollout`` is above it).

Predictions (:meth:`PredictResult.to_dict`): for intent models ``{"label", "probability",
"top_k"}`` as :meth:`IntentPredictor.predict <assay.models._intent.IntentPredictor.predict>`
gives them (the label is ``oos`` below the model's threshold); for tabular models ``{"label",
"probability", "score", "top_k"}`` where ``score`` is the calibrated probability that the
model's label happens, ``label`` is ``true`` when ``score >= 0.5``, ``probability`` is that of
the predicted label and ``top_k`` ranks ``true`` and ``false``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import pyarrow as pa

from assay._errors import AssayError, NotFoundError, UsageError
from assay.models._intent import META_LABELS, IntentPredictor, Prediction
from assay.models._registry import Registry, VersionRef

if TYPE_CHECKING:
    import onnxruntime

Kind = Literal["intent", "tabular"]
#: Most references (as spelt by clients) a pool remembers; the oldest goes first.
MAX_REFERENCES = 1024
X = TypeVar("X")
log = logging.getLogger("assay.models")
Y = TypeVar("Y")


@dataclass(frozen=True)
class ServingConfig:
    """The limits and timings of online inference (``assay serve --predict-*`` options).

    Attributes
    ----------
    max_batch : most inputs scored in one ONNX Runtime call.
    max_wait_ms : how long a batch waits for more requests before it is scored, when it is
        not full and the version is idle (0: score at once).
    max_queue : most inputs waiting per model version (more: 429).
    max_inputs : most inputs in one request (more: 413).
    max_text_chars : longest text, in characters (longer: 413).
    max_body_bytes : largest request body (more: 413).
    max_top_k : largest ``top_k`` a request may ask for.
    refresh_seconds : least seconds between two resolutions of a movable reference
        (``NAME@ALIAS``, ``NAME``); 0 resolves it on every request.
    workers : threads that run ONNX Runtime calls.
    onnx_threads : intra-op threads of each version's ONNX Runtime session (0: ONNX Runtime's
        default, one per core; 1, the default here, spends far less CPU per small batch).
    key_requests : most predict requests of one API key in flight (the service answers 429
        beyond, so that one tenant cannot fill every version's queue).
    """

    max_batch: int = 64
    max_wait_ms: float = 1.0
    max_queue: int = 2048
    max_inputs: int = 256
    max_text_chars: int = 4096
    max_body_bytes: int = 1_048_576
    max_top_k: int = 20
    refresh_seconds: float = 5.0
    workers: int = 2
    onnx_threads: int = 1
    key_requests: int = 64

    def __post_init__(self) -> None:
        for name in (
            "max_batch",
            "max_queue",
            "max_inputs",
            "max_text_chars",
            "max_body_bytes",
            "key_requests",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a whole number >= 1 (got {value!r})")
        if not isinstance(self.max_top_k, int) or self.max_top_k < 1:
            raise UsageError(f"max_top_k must be a whole number >= 1 (got {self.max_top_k!r})")
        if not isinstance(self.onnx_threads, int) or self.onnx_threads < 0:
            raise UsageError(
                f"onnx_threads must be a whole number >= 0 (got {self.onnx_threads!r}); 0 is "
                "ONNX Runtime's default"
            )
        if not isinstance(self.workers, int) or self.workers < 1:
            raise UsageError(f"workers must be a whole number >= 1 (got {self.workers!r})")
        for name in ("max_wait_ms", "refresh_seconds"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < math.inf):
                raise UsageError(f"{name} must be a number >= 0 (got {value!r})")
        if self.max_queue < self.max_inputs:
            raise UsageError(
                f"max_queue ({self.max_queue}) must be at least max_inputs ({self.max_inputs}), "
                "or a request of max_inputs inputs could never be queued"
            )


class InputError(UsageError):
    """An input the model cannot take: ``field`` names it (``inputs[3].turns``), ``rule`` says
    which rule it broke (``type``, ``missing``, ``unknown``, ``size``); ``too_large`` marks
    size limits (413 over HTTP)."""

    def __init__(
        self, message: str, *, field: str | None = None, rule: str, too_large: bool = False
    ) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule
        self.too_large = too_large


class OverloadedError(AssayError):
    """Too many inputs already wait for this model version; retry shortly."""


class RegistryUnavailableError(AssayError):
    """The registry could not be read (its store busy or unreachable); retry shortly."""


@contextmanager
def _registry_call(what: str) -> Iterator[None]:
    """Registry errors that are not the caller's (a locked SQLite store, a tracking server
    down) as :class:`RegistryUnavailableError`; assay's own (unknown model, ...) unchanged."""
    try:
        yield
    except AssayError:
        raise
    except Exception as exc:
        # The type only: an MLflow message can quote a store URI with credentials.
        raise RegistryUnavailableError(
            f"the model registry could not be read to {what} ({type(exc).__name__}); retry "
            "shortly, and check the mlflow_uri setting if it persists"
        ) from None


# -- traffic split ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Routing:
    """How one model's traffic is split during a rollout (what a router returns for a name).

    Attributes
    ----------
    rollout_id : names the rollout; part of the hash that assigns users (:func:`assign`), so
        two rollouts split the same users independently.
    stable_version, candidate_version : the registry versions of the model traffic is split
        between.
    weight : the share of users, from 0 to 1, answered by the candidate (0: all stable, the
        roll-back; 1: all candidate).
    shadow : the candidate also scores every request answered by the stable version, off the
        answer's path; its predictions are counted and recorded as shadow, never returned.
    opt_out_tenants : tenants always answered by the stable version (and never shadowed).
    """

    rollout_id: str
    stable_version: int
    candidate_version: int
    weight: float
    shadow: bool = False
    opt_out_tenants: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.rollout_id, str) or not self.rollout_id:
            raise UsageError(f"rollout_id must be a non-empty string (got {self.rollout_id!r})")
        for name in ("stable_version", "candidate_version"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(
                    f"{name} must be a registry version, a whole number >= 1 (got {value!r})"
                )
        if self.stable_version == self.candidate_version:
            raise UsageError(
                f"candidate_version must differ from stable_version (both {self.stable_version})"
                "; a rollout moves traffic between two versions"
            )
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w <= 1:
            raise UsageError(
                f"weight must be a number from 0 to 1, the candidate's share (got {w!r}); "
                "e.g. 0.05 for 5%"
            )
        if not isinstance(self.opt_out_tenants, frozenset):
            raise UsageError(
                "opt_out_tenants must be a frozenset of tenant ids (got "
                f"{type(self.opt_out_tenants).__name__}); wrap it in frozenset(...)"
            )


#: A router: the routing of a model's traffic by model name, or None when no rollout runs.
Router = Callable[[str], Routing | None]


def bucket(rollout_id: str, unit: str) -> float:
    """Where ``unit`` (a pseudonymous user id, or a request id) falls in [0, 1) for a rollout.

    The first 64 bits of SHA-256 over the length-prefixed rollout id and the unit, divided by
    2**64: uniform, and fixed for the whole rollout, so a unit below a weight stays below any
    larger weight (raising the weight only moves units from stable to candidate).

    Examples
    --------
    >>> 0 <= bucket("r1", "u_0123") < 1
    True
    >>> bucket("r1", "u_0123") == bucket("r1", "u_0123")
    True
    """
    rid = rollout_id.encode()
    digest = hashlib.sha256(len(rid).to_bytes(4, "big") + rid + unit.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(
    routing: Routing, *, tenant_id: str | None, user: str | None, request_id: str | None
) -> int:
    """The version that answers a request under ``routing``.

    ``user`` is the request's pseudonymous user id (never the raw one: the service
    pseudonymises it with the workspace's key); without it the request id is the unit, and
    without either the stable version answers. An opted-out tenant always gets stable.

    Examples
    --------
    >>> r = Routing("r1", 1, 2, weight=1.0)
    >>> assign(r, tenant_id="t", user="u_1", request_id=None)
    2
    >>> assign(r, tenant_id="t", user=None, request_id=None)
    1
    """
    if tenant_id is not None and tenant_id in routing.opt_out_tenants:
        return routing.stable_version
    unit = user if user is not None else request_id
    if unit is None or routing.weight <= 0:
        return routing.stable_version
    if bucket(routing.rollout_id, unit) < routing.weight:
        return routing.candidate_version
    return routing.stable_version


# -- one loaded version -------------------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    """The inputs of a tabular model: numeric (float) and categorical (string) features."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_string(value: object) -> bool:
    return isinstance(value, str)


def check_inputs(
    kind: Kind, inputs: object, config: ServingConfig, features: Features | None = None
) -> list[Any]:
    """``inputs`` as the model takes them, or :class:`InputError` naming the first bad one.

    Intent models take a list of strings; tabular models a list of objects holding exactly
    ``features`` (numbers or null for numeric ones, strings or null for categorical ones).

    Examples
    --------
    >>> check_inputs("intent", ["hello"], ServingConfig())
    ['hello']
    >>> try:
    ...     check_inputs("intent", [3], ServingConfig())
    ... except InputError as exc:
    ...     print(exc.field, exc.rule)
    inputs[0] type
    """
    example = '["a text", ...]' if kind == "intent" else '[{"feature": value, ...}, ...]'
    if not isinstance(inputs, list):
        raise InputError(
            f"inputs must be a JSON array (got {type(inputs).__name__}); send "
            f'{{"inputs": {example}}}',
            field="inputs",
            rule="type",
        )
    if not inputs:
        raise InputError(
            f'inputs is empty; send at least one input: {{"inputs": {example}}}',
            field="inputs",
            rule="size",
        )
    if len(inputs) > config.max_inputs:
        raise InputError(
            f"inputs holds {len(inputs):,} items, more than the {config.max_inputs:,} one request "
            "may send; split it into several requests (or raise --predict-max-inputs)",
            field="inputs",
            rule="size",
            too_large=True,
        )
    if kind == "intent":
        for i, text in enumerate(inputs):
            if not isinstance(text, str):
                raise InputError(
                    f"inputs[{i}] must be a string, the text to classify (got "
                    f'{type(text).__name__}); send {{"inputs": {example}}}',
                    field=f"inputs[{i}]",
                    rule="type",
                )
            if len(text) > config.max_text_chars:
                raise InputError(
                    f"inputs[{i}] has {len(text):,} characters, more than the "
                    f"{config.max_text_chars:,} allowed; shorten it (or raise "
                    "--predict-max-text-chars)",
                    field=f"inputs[{i}]",
                    rule="size",
                    too_large=True,
                )
        return list(inputs)
    assert features is not None
    expected = set(features.names)
    listed = ", ".join(features.names)
    for i, record in enumerate(inputs):
        if not isinstance(record, dict):
            raise InputError(
                f"inputs[{i}] must be an object of feature values (got {type(record).__name__}); "
                f"this model takes the features {listed}",
                field=f"inputs[{i}]",
                rule="type",
            )
        unknown = sorted(str(k) for k in record if k not in expected)
        if unknown:
            shown = ", ".join(repr(k[:40]) for k in unknown[:5])
            raise InputError(
                f"inputs[{i}] has field(s) the model does not take: {shown}; it takes exactly "
                f"{listed} (null for a missing value)",
                field=f"inputs[{i}]",
                rule="unknown",
            )
        missing = [n for n in features.names if n not in record]
        if missing:
            raise InputError(
                f"inputs[{i}] lacks the feature(s) {', '.join(missing)}; send every feature of "
                f"the model ({listed}), null for a missing value",
                field=f"inputs[{i}].{missing[0]}",
                rule="missing",
            )
        for names, takes, what in (
            (features.numeric, _is_number, "a number"),
            (features.categorical, _is_string, "a string"),
        ):
            for name in names:
                value = record[name]
                if value is not None and not takes(value):
                    raise InputError(
                        f"inputs[{i}].{name} must be {what} or null (got "
                        f"{type(value).__name__}); send the feature's value as {what}",
                        field=f"inputs[{i}].{name}",
                        rule="type",
                    )
    return list(inputs)


@dataclass(frozen=True)
class TabularPrediction:
    """One record's prediction by a tabular (quality) model."""

    score: float

    def to_dict(self) -> dict[str, Any]:
        positive = self.score >= 0.5
        top = [(True, self.score), (False, 1.0 - self.score)]
        if not positive:
            top.reverse()
        return {
            "label": positive,
            "probability": top[0][1],
            "score": self.score,
            "top_k": [{"label": k, "probability": p} for k, p in top],
        }


class LoadedModel:
    """One model version in ONNX Runtime, warmed, with its own :class:`Batcher`."""

    def __init__(self, ref: VersionRef, raw: bytes, config: ServingConfig) -> None:
        from assay.models._onnx import input_names, session

        self.ref = ref
        self.config = config
        sess = session(raw, threads=config.onnx_threads)
        meta = dict(sess.get_modelmeta().custom_metadata_map)
        self.kind: Kind = "intent" if META_LABELS in meta else "tabular"
        self.intent: IntentPredictor | None = None
        #: Set by the pool that loads it.
        self.batcher: Batcher[Any, Any] | None = None
        self.session: onnxruntime.InferenceSession | None = None
        self.features: Features | None = None
        if self.kind == "intent":
            self.intent = IntentPredictor.from_session(sess)
            self.oos_label: str | None = self.intent.oos_label
        else:
            numeric, categorical = input_names(sess)
            self.session = sess
            self.features = Features(tuple(numeric), tuple(categorical))
            self.oos_label = None
        self.warm()

    def warm(self) -> None:
        """One dummy batch, so that the first request does not pay ONNX Runtime's first call."""
        if self.kind == "intent":
            self.score(["warm up"], 1)
        else:
            assert self.features is not None
            self.score([dict.fromkeys(self.features.names)], 1)

    def check(self, inputs: object) -> list[Any]:
        return check_inputs(self.kind, inputs, self.config, self.features)

    def score(self, inputs: Sequence[Any], top_k: int) -> list[Prediction | TabularPrediction]:
        """Predictions of checked ``inputs`` (one ONNX Runtime call), in order."""
        if self.intent is not None:
            return list(self.intent.predict(list(inputs), top_k=top_k))
        from assay.models._onnx import onnx_scores

        assert self.session is not None
        assert self.features is not None
        columns: dict[str, pa.Array] = {}
        for name in self.features.numeric:
            columns[name] = pa.array([r[name] for r in inputs], type=pa.float64())
        for name in self.features.categorical:
            columns[name] = pa.array([r[name] for r in inputs], type=pa.string())
        scores = onnx_scores(self.session, pa.table(columns))
        return [TabularPrediction(float(s)) for s in scores]


# -- micro-batching -----------------------------------------------------------------------------


@dataclass
class _Waiting(Generic[X, Y]):
    items: list[X]
    top_k: int
    future: asyncio.Future[list[Y]]


class Batcher(Generic[X, Y]):
    """Gathers concurrent requests to one model version into batches scored in a thread.

    ``score(items, top_k)`` runs in ``executor`` on the concatenated items of the requests
    of a batch (``top_k`` the largest asked for) and returns one result per item; each
    request gets its own slice. One batch runs at a time per batcher: requests arriving
    meanwhile form the next one. ``on_batch(size, results, seconds)`` is called after each
    scored batch (on the event loop); ``span(size)`` wraps each batch (a tracing span).
    """

    def __init__(
        self,
        score: Callable[[list[X], int], list[Y]],
        *,
        max_batch: int,
        max_wait: float,
        max_queue: int,
        executor: ThreadPoolExecutor,
        on_batch: Callable[[int, list[Y], float], None] = lambda size, results, seconds: None,
        span: Callable[[int], AbstractContextManager[Any]] = lambda size: nullcontext(),
    ) -> None:
        self._score = score
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self._executor = executor
        self._on_batch = on_batch
        self._span = span
        self._waiting: deque[_Waiting[X, Y]] = deque()
        self.queued = 0
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, items: list[X], top_k: int = 1) -> list[Y]:
        """The results of ``items``, scored with other requests' items; OverloadedError when
        ``max_queue`` items already wait."""
        if self.queued + len(items) > self.max_queue:
            raise OverloadedError(
                f"{self.queued:,} inputs already wait for this model version (at most "
                f"{self.max_queue:,}); retry shortly"
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Y]] = loop.create_future()
        self._waiting.append(_Waiting(items, top_k, future))
        self.queued += len(items)
        if self.queued >= self.max_batch:
            self._full.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        return await future

    def _take(self) -> list[_Waiting[X, Y]]:
        batch: list[_Waiting[X, Y]] = []
        size = 0
        while self._waiting:
            nxt = self._waiting[0]
            if batch and size + len(nxt.items) > self.max_batch:
                break
            self._waiting.popleft()
            if nxt.future.done():  # its client went away: nothing to score
                self.queued -= len(nxt.items)
                continue
            batch.append(nxt)
            size += len(nxt.items)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            if self.queued < self.max_batch and self.max_wait > 0:
                self._full.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.max_wait)
            batch = self._take()
            if not batch:
                continue
            items = [x for w in batch for x in w.items]
            top_k = max(w.top_k for w in batch)
            start = time.perf_counter()
            try:
                with self._span(len(items)):
                    results = await loop.run_in_executor(self._executor, self._score, items, top_k)
            except Exception as exc:
                for w in batch:
                    if not w.future.done():
                        w.future.set_exception(exc)
                continue
            finally:
                self.queued -= len(items)
            seconds = time.perf_counter() - start
            self._on_batch(len(items), results, seconds)
            lo = 0
            for w in batch:
                part = results[lo : lo + len(w.items)]
                lo += len(w.items)
                if not w.future.done():
                    w.future.set_result(part)


# -- the pool -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PredictResult:
    """One request's answer: the version that scored it and one prediction per input."""

    ref: VersionRef
    kind: Kind
    predictions: list[dict[str, Any]]
    oos: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.ref.name,
            "version": self.ref.version,
            "predictions": self.predictions,
        }


@dataclass
class ServingHooks:
    """What the pool reports, for metrics and traces (no-ops by default).

    ``batch_span(ref, size)`` wraps each ONNX Runtime batch; ``scored(ref, kind, size, oos,
    seconds)`` follows it (``oos``: inputs labelled out of scope, intent models only).
    """

    batch_span: Callable[[VersionRef, int], AbstractContextManager[Any]] = field(
        default=lambda ref, size: nullcontext()
    )
    scored: Callable[[VersionRef, Kind, int, int, float], None] = field(
        default=lambda ref, kind, size, oos, seconds: None
    )
    #: ``shadowed(model, stable, candidate, agree, disagree)``: labels compared in shadow.
    shadowed: Callable[[str, int, int, int, int], None] = field(
        default=lambda model, stable, candidate, agree, disagree: None
    )
    #: ``shadow_skipped(model, stable, candidate, inputs)``: not shadowed (candidate busy).
    shadow_skipped: Callable[[str, int, int, int], None] = field(
        default=lambda model, stable, candidate, inputs: None
    )


@dataclass(frozen=True)
class Choice:
    """The version that answers a request (``model``), and the candidate that scores it in
    shadow (``shadow``, when the rollout's routing asks for it), from :meth:`ModelPool.choose`."""

    model: LoadedModel
    shadow: LoadedModel | None = None
    routing: Routing | None = None


@dataclass
class _Entry:
    model: LoadedModel
    batcher: Batcher[Any, Any]


@dataclass
class _Resolved:
    ref: VersionRef
    at: float
    movable: bool
    refreshing: bool = False


def _settled(pending: dict[Any, asyncio.Task[Any]], key: Any, task: asyncio.Task[Any]) -> None:
    pending.pop(key, None)
    if not task.cancelled():
        task.exception()  # retrieved: no "never retrieved" warning when every caller left


class ModelPool:
    """Registered models for online inference: one warmed session and batcher per version.

    Parameters
    ----------
    registry : the workspace's registry (or a factory of it, called on first use, so that
        MLflow is imported only when a model is asked for).
    config : limits and timings.
    hooks : metrics and tracing callbacks.
    router : the routing of a model's traffic during a rollout, by model name (None: no
        rollout). Called in a worker thread at most every ``refresh_seconds`` per name; the
        service sets it (the ``router`` attribute may be set later too).

    Use it from one event loop; :meth:`predict` is a coroutine. :meth:`close` stops the
    worker threads.
    """

    def __init__(
        self,
        registry: Registry | Callable[[], Registry],
        config: ServingConfig | None = None,
        *,
        hooks: ServingHooks | None = None,
        clock: Callable[[], float] = time.monotonic,
        router: Router | None = None,
    ) -> None:
        self._registry_arg = registry
        self._registry: Registry | None = registry if isinstance(registry, Registry) else None
        self.config = config or ServingConfig()
        self.hooks = hooks or ServingHooks()
        self._clock = clock
        self._executor = ThreadPoolExecutor(self.config.workers, thread_name_prefix="assay-predict")
        # MLflow's client on SQLite: one registry call at a time.
        self._registry_lock = threading.Lock()
        self._refs: dict[str, _Resolved] = {}
        self._loaded: dict[tuple[str, int], _Entry] = {}
        self._loading: dict[Any, asyncio.Task[Any]] = {}
        self._resolving: dict[Any, asyncio.Task[Any]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.router = router
        self._routings: dict[str, tuple[Routing | None, float]] = {}
        self._routing_calls: dict[Any, asyncio.Task[Any]] = {}

    # -- registry (in a worker thread) ----------------------------------------------------------

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            made = self._registry_arg
            assert callable(made)
            self._registry = made()
        return self._registry

    def _resolve_sync(self, ref: str) -> VersionRef:
        with self._registry_lock, _registry_call("resolve a model reference"):
            return self.registry.resolve(ref)

    def _load_sync(self, ref: VersionRef) -> LoadedModel:
        with self._registry_lock, _registry_call(f"load {ref}"):
            _, raw = self.registry.load_onnx(f"{ref.name}/{ref.version}")
        return LoadedModel(ref, raw, self.config)

    # -- references -----------------------------------------------------------------------------

    @staticmethod
    def movable(ref: str) -> bool:
        """Whether ``ref`` can name another version later (an alias or a bare name)."""
        return "/" not in ref or "@" in ref

    async def _once(self, pending: dict[Any, asyncio.Task[Any]], key: Any, work: Any) -> Any:
        """Await the one task doing ``work()`` for ``key`` (started if none runs): concurrent
        callers share it, and a caller that goes away (its client disconnected) does not
        cancel it for the others."""
        task = pending.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(work())
            pending[key] = task
            task.add_done_callback(lambda t: _settled(pending, key, t))
        return await asyncio.shield(task)

    async def _resolve_now(self, ref: str) -> VersionRef:
        """Resolve ``ref`` (one registry call shared by concurrent callers), load and warm its
        version, then make ``ref`` point at it."""

        async def work() -> VersionRef:
            loop = asyncio.get_running_loop()
            found = await loop.run_in_executor(self._executor, self._resolve_sync, ref)
            await self._entry(found)  # loaded and warmed before any request is sent to it
            if ref not in self._refs and len(self._refs) >= MAX_REFERENCES:
                # Spellings of references are the client's ("intent/01", "intent/001", ...):
                # forget the oldest rather than hold every one ever sent.
                del self._refs[next(iter(self._refs))]
            self._refs[ref] = _Resolved(found, self._clock(), self.movable(ref))
            self._evict()
            return found

        found: VersionRef = await self._once(self._resolving, ref, work)
        return found

    def _refresh_later(self, ref: str, held: _Resolved) -> None:
        held.refreshing = True

        async def refresh() -> None:
            try:
                await self._resolve_now(ref)
            except NotFoundError:
                # The alias or the model went away: the next request resolves it itself and
                # answers the error; nothing is served from a name that no longer exists.
                self._refs.pop(ref, None)
            except Exception:
                # The registry is busy or down (or the new version failed to load): keep
                # serving the version resolved last, and try again after refresh_seconds.
                held.at = self._clock()
            finally:
                held.refreshing = False

        task = asyncio.get_running_loop().create_task(refresh())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def resolve(self, ref: str) -> VersionRef:
        """The version ``ref`` names now (re-resolved in the background when stale)."""
        held = self._refs.get(ref)
        if held is None:
            return await self._resolve_now(ref)
        if (
            held.movable
            and not held.refreshing
            and self._clock() - held.at >= self.config.refresh_seconds
        ):
            if self.config.refresh_seconds == 0:
                return await self._resolve_now(ref)
            self._refresh_later(ref, held)
        return held.ref

    async def refresh(self) -> dict[str, VersionRef]:
        """Resolve every movable reference again now; return where each points."""
        out = {}
        for ref in [r for r, held in self._refs.items() if held.movable]:
            try:
                out[ref] = await self._resolve_now(ref)
            except AssayError:
                self._refs.pop(ref, None)
        self._evict()
        return out

    # -- versions -------------------------------------------------------------------------------

    def _batcher(self, model: LoadedModel) -> Batcher[Any, Any]:
        ref, kind, oos_label = model.ref, model.kind, model.oos_label

        def on_batch(size: int, results: list[Any], seconds: float) -> None:
            oos = sum(1 for r in results if getattr(r, "label", None) == oos_label)
            self.hooks.scored(ref, kind, size, oos if kind == "intent" else 0, seconds)

        return Batcher(
            model.score,
            max_batch=self.config.max_batch,
            max_wait=self.config.max_wait_ms / 1000,
            max_queue=self.config.max_queue,
            executor=self._executor,
            on_batch=on_batch,
            span=lambda size: self.hooks.batch_span(ref, size),
        )

    async def _entry(self, ref: VersionRef) -> _Entry:
        key = (ref.name, ref.version)
        entry = self._loaded.get(key)
        if entry is not None:
            return entry

        async def work() -> _Entry:
            loop = asyncio.get_running_loop()
            model = await loop.run_in_executor(self._executor, self._load_sync, ref)
            model.batcher = self._batcher(model)
            made = _Entry(model, model.batcher)
            self._loaded[key] = made
            return made

        loaded: _Entry = await self._once(self._loading, key, work)
        return loaded

    def _evict(self) -> None:
        """Forget versions no reference points at any more and nothing waits for (a request
        still being scored by one keeps its own handle on it)."""
        wanted = {(r.ref.name, r.ref.version) for r in self._refs.values()}
        for name, (routing, _) in self._routings.items():
            if routing is not None:
                wanted |= {(name, routing.stable_version), (name, routing.candidate_version)}
        for key, entry in list(self._loaded.items()):
            if key not in wanted and entry.batcher.queued == 0:
                del self._loaded[key]

    def loaded(self) -> list[VersionRef]:
        """The versions held in memory."""
        return [e.model.ref for e in self._loaded.values()]

    async def model(self, ref: str) -> LoadedModel:
        """The loaded, warmed version ``ref`` names now.

        Raises
        ------
        NotFoundError
            Unknown model, alias or version.
        RegistryUnavailableError
            The registry could not be read (retry).
        """
        return (await self._entry(await self.resolve(ref))).model

    # -- rollouts -------------------------------------------------------------------------------

    def forget_routing(self, name: str) -> None:
        """Ask the router again on the next request for model ``name`` (after a rollout of it
        moved: a rollback takes effect at once, not ``refresh_seconds`` later). Callable from
        any thread."""
        self._routings.pop(name, None)

    async def routing(self, name: str) -> Routing | None:
        """The routing of model ``name``'s traffic now (the router's answer, at most
        ``refresh_seconds`` old). A router that fails keeps the answer it gave last (none
        before: no rollout) until the next try."""
        if self.router is None:
            return None
        held = self._routings.get(name)
        now = self._clock()
        if held is not None and now - held[1] < self.config.refresh_seconds:
            return held[0]
        router = self.router

        async def work() -> Routing | None:
            loop = asyncio.get_running_loop()
            try:
                routing = await loop.run_in_executor(self._executor, router, name)
            except Exception as exc:
                # The type only: a router's message may quote a store URI.
                log.warning("the rollout router failed for a model (%s)", type(exc).__name__)
                routing = held[0] if held is not None else None
            if routing is not None and not isinstance(routing, Routing):
                log.warning("the rollout router returned a %s, not a Routing", type(routing))
                routing = None
            if name not in self._routings and len(self._routings) >= MAX_REFERENCES:
                del self._routings[next(iter(self._routings))]
            self._routings[name] = (routing, now)
            return routing

        # Concurrent requests share one call of the router.
        got: Routing | None = await self._once(self._routing_calls, name, work)
        return got

    async def choose(
        self,
        ref: str,
        *,
        tenant_id: str | None = None,
        user: str | None = None,
        request_id: str | None = None,
    ) -> Choice:
        """The version that answers a request to ``ref``, under the model's rollout if one runs.

        A reference that pins a version (``NAME/VERSION``) is answered by it. A movable one
        (``NAME``, ``NAME@ALIAS``) is resolved (an unknown one raises as in :meth:`model`);
        when the router gives the model a :class:`Routing`, the version is :func:`assign`'s
        (``user``: the request's *pseudonymous* user id) and, in shadow mode, a request the
        stable version answers is also given to the candidate (:meth:`shadow`).
        """
        resolved = await self.resolve(ref)
        routing = await self.routing(resolved.name) if self.movable(ref) else None
        if routing is None:
            return Choice((await self._entry(resolved)).model)
        name = resolved.name
        version = assign(routing, tenant_id=tenant_id, user=user, request_id=request_id)
        try:
            model = (await self._entry(VersionRef(name, version, ()))).model
        except Exception as exc:
            if version == routing.stable_version:
                raise
            # A candidate that cannot be loaded must not fail its users: the stable answers.
            log.warning("a rollout candidate could not be loaded (%s)", type(exc).__name__)
            version = routing.stable_version
            model = (await self._entry(VersionRef(name, version, ()))).model
        shadow = None
        opted_out = tenant_id is not None and tenant_id in routing.opt_out_tenants
        if routing.shadow and version == routing.stable_version and not opted_out:
            shadow = self._loaded_or_later(VersionRef(name, routing.candidate_version, ()))
        return Choice(model, shadow, routing)

    def _loaded_or_later(self, ref: VersionRef) -> LoadedModel | None:
        """``ref``'s loaded version, or None while it loads in the background (so that the
        first shadowed request does not wait for the candidate's loading)."""
        entry = self._loaded.get((ref.name, ref.version))
        if entry is not None:
            return entry.model

        async def load() -> None:
            with suppress(Exception):  # the next request tries again
                await self._entry(ref)

        task = asyncio.get_running_loop().create_task(load())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return None

    def shadow(
        self,
        answer: PredictResult,
        candidate: LoadedModel,
        inputs: object,
        *,
        top_k: int = 3,
        on_result: Callable[[PredictResult], None] | None = None,
    ) -> asyncio.Task[PredictResult | None] | None:
        """Score ``inputs`` with ``candidate`` in the background (the answer does not wait),
        count the labels on which it agrees with ``answer`` (``hooks.shadowed``), then call
        ``on_result`` with its predictions (to record them as shadow).

        Shadow scoring yields to the answers: when a full batch (``max_batch`` inputs) already
        waits for the candidate, or the scoring fails, it is skipped (``hooks.shadow_skipped``,
        a failure logged as its type; None returned when skipped at once); it never reaches
        the answer."""
        where = (answer.ref.name, answer.ref.version, candidate.ref.version)
        size = len(answer.predictions)
        assert candidate.batcher is not None
        if candidate.batcher.queued >= self.config.max_batch:
            self.hooks.shadow_skipped(*where, size)
            return None

        async def run() -> PredictResult | None:
            try:
                got = await self.predict_with(candidate, inputs, top_k=top_k)
            except Exception as exc:
                log.warning("a shadow prediction was skipped (%s)", type(exc).__name__)
                self.hooks.shadow_skipped(*where, size)
                return None
            agree = sum(
                a["label"] == b["label"]
                for a, b in zip(answer.predictions, got.predictions, strict=True)
            )
            self.hooks.shadowed(*where, agree, len(got.predictions) - agree)
            if on_result is not None:
                try:
                    on_result(got)
                except Exception as exc:
                    log.warning("a shadow prediction was not recorded (%s)", type(exc).__name__)
            return got

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def predict_with(
        self, model: LoadedModel, inputs: object, *, top_k: int = 3
    ) -> PredictResult:
        """Predictions of ``model`` (from :meth:`model`) for ``inputs``, batched with
        concurrent requests to the same version.

        Raises
        ------
        InputError
            Inputs the model cannot take (too many, too long, wrong type or fields), or a
            ``top_k`` out of range.
        OverloadedError
            Too many inputs already wait for this version.
        """
        if (
            isinstance(top_k, bool)
            or not isinstance(top_k, int)
            or not 1 <= top_k <= self.config.max_top_k
        ):
            raise InputError(
                f"top_k must be a whole number from 1 to {self.config.max_top_k} (got {top_k!r}); "
                "e.g. 3",
                field="top_k",
                rule="range",
            )
        items = model.check(inputs)
        if model.batcher is None:
            raise RuntimeError("predict_with takes a model from ModelPool.model()")
        results = await model.batcher.submit(items, top_k)
        predictions = []
        oos = 0
        for r in results:
            d = r.to_dict()
            if isinstance(r, Prediction):
                d["top_k"] = d["top_k"][:top_k]
                oos += r.label == model.oos_label
            predictions.append(d)
        return PredictResult(model.ref, model.kind, predictions, oos)

    async def predict(self, ref: str, inputs: object, *, top_k: int = 3) -> PredictResult:
        """:meth:`predict_with` the version ``ref`` names now (``NAME``, ``NAME@ALIAS``,
        ``NAME/VERSION``)."""
        return await self.predict_with(await self.model(ref), inputs, top_k=top_k)

    async def aclose(self) -> None:
        """Cancel the background look-ups, then stop the worker threads."""
        for task in list(self._background):
            task.cancel()
        self.close()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
