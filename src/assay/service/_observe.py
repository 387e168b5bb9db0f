"""Observability of the service: Prometheus metrics, OpenTelemetry spans, JSON access logs.

Metrics live in one registry per app (so that two apps in one process do not collide) and are
served at ``/metrics``. Spans go to an OTLP/HTTP exporter when ``otlp_endpoint`` is set (needs
the ``otlp`` extra); otherwise the tracer is a no-op. Access logs hold the method, the route
template, the status, the duration, the byte count and the key id: never a query string, a
body, a raw id or a key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.responses import Response

from assay._errors import UsageError
from assay.models._registry import VersionRef
from assay.models._serving import ServingHooks
from assay.profiles import REFRESH_OUTCOMES, ProfileRefresher, RefreshResult

access_log = logging.getLogger("assay.access")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Online inference answers in milliseconds: finer buckets at the low end.
_PREDICT_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Observability:
    """The metrics and the tracer of one app."""

    def __init__(
        self, otlp_endpoint: str = "", tracer_provider: trace.TracerProvider | None = None
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "assay_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "assay_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "assay_ingest_events",
            "Events received over HTTP by tenant and outcome (accepted, duplicate, rejected).",
            ["tenant", "outcome"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "assay_ingest_queue_depth",
            "Ingest requests in flight (being parsed, prepared or waiting for their commit).",
            registry=self.registry,
        )
        self.commit_latency = Histogram(
            "assay_ingest_commit_duration_seconds",
            "Duration of one group commit (events, content and quarantine).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.commit_batches = Histogram(
            "assay_ingest_commit_batches",
            "Requests stored by one group commit.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.rejected_requests = Counter(
            "assay_ingest_refused_requests",
            "Ingest requests refused whole, by reason (queue_full, too_large, body_timeout, ...).",
            ["reason"],
            registry=self.registry,
        )
        self.aborted_requests = Counter(
            "assay_http_aborted_requests",
            "Requests whose client closed the connection before its body had arrived, by route.",
            ["route"],
            registry=self.registry,
        )
        self.profile_builds = Counter(
            "assay_profile_builds",
            "Background profile refreshes by outcome (ok, failed, skipped, abandoned).",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in REFRESH_OUTCOMES:
            self.profile_builds.labels(outcome)
        self.profile_last_build = Gauge(
            "assay_profile_last_build_seconds",
            "Wall time of the last background profile refresh.",
            registry=self.registry,
        )
        self.profiles_age = Gauge(
            "assay_profiles_age_seconds",
            "Seconds since the oldest commit the stored profiles do not include yet was made "
            "(0 when they are current).",
            registry=self.registry,
        )
        self.predict_requests = Counter(
            "assay_predict_requests",
            "Predict requests by model, version and status (version empty when the model "
            "did not resolve).",
            ["model", "version", "status"],
            registry=self.registry,
        )
        self.predict_errors = Counter(
            "assay_predict_errors",
            "Predict requests answered with an error, by model, version and error code.",
            ["model", "version", "code"],
            registry=self.registry,
        )
        self.predict_latency = Histogram(
            "assay_predict_request_duration_seconds",
            "Predict request latency (body read to answer), by model and version.",
            ["model", "version"],
            buckets=_PREDICT_BUCKETS,
            registry=self.registry,
        )
        self.predict_batch_size = Histogram(
            "assay_predict_batch_size",
            "Inputs scored by one ONNX Runtime call (a micro-batch), by model and version.",
            ["model", "version"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.predict_inputs = Counter(
            "assay_predict_inputs",
            "Inputs scored, by model and version.",
            ["model", "version"],
            registry=self.registry,
        )
        self.predict_oos = Counter(
            "assay_predict_oos",
            "Inputs an intent model labelled out of scope, by model and version (OOS rate: "
            "this over assay_predict_inputs).",
            ["model", "version"],
            registry=self.registry,
        )
        self.predict_shadow = Counter(
            "assay_predict_shadow",
            "Inputs a rollout's candidate scored in shadow, by model, the stable version that "
            "answered, the candidate, and whether their labels agree (outcome agree or "
            "disagree; agreement rate: agree over the sum of the two), or were not shadowed "
            "(outcome skipped: the candidate was a full batch behind, or failed).",
            ["model", "stable", "candidate", "outcome"],
            registry=self.registry,
        )
        self._own_provider: Any = None
        if tracer_provider is not None:
            self.tracer = tracer_provider.get_tracer("assay.service")
        else:
            self._own_provider = _provider(otlp_endpoint)
            self.tracer = (
                self._own_provider.get_tracer("assay.service")
                if self._own_provider is not None
                else trace.NoOpTracer()
            )

    def close(self) -> None:
        """Export the spans still buffered (the OTLP exporter batches them)."""
        if self._own_provider is not None:
            self._own_provider.shutdown()

    def group_span(self, pieces: list[Any]) -> Any:
        """A span around the preparation of a group of requests, linked to each request's."""
        links = [trace.Link(p.context) for p in pieces if p.context is not None]
        span = self.tracer.start_as_current_span("prepare", links=links)
        return span

    def on_commit(self, batches: int, rows: int, seconds: float) -> None:
        self.commit_latency.observe(seconds)
        self.commit_batches.observe(batches)

    def predict_hooks(self) -> ServingHooks:
        """The model pool's callbacks: a span and the batch metrics per ONNX Runtime call."""

        def batch_span(ref: VersionRef, size: int) -> Any:
            return self.tracer.start_as_current_span(
                "predict.batch",
                attributes={
                    "assay.model": ref.name,
                    "assay.model_version": ref.version,
                    "assay.batch_size": size,
                },
            )

        def scored(ref: VersionRef, kind: str, size: int, oos: int, seconds: float) -> None:
            labels = (ref.name, str(ref.version))
            self.predict_batch_size.labels(*labels).observe(size)
            self.predict_inputs.labels(*labels).inc(size)
            if kind == "intent":
                self.predict_oos.labels(*labels).inc(oos)

        def shadowed(model: str, stable: int, candidate: int, agree: int, disagree: int) -> None:
            labels = (model, str(stable), str(candidate))
            self.predict_shadow.labels(*labels, "agree").inc(agree)
            self.predict_shadow.labels(*labels, "disagree").inc(disagree)

        def shadow_skipped(model: str, stable: int, candidate: int, inputs: int) -> None:
            self.predict_shadow.labels(model, str(stable), str(candidate), "skipped").inc(inputs)

        return ServingHooks(
            batch_span=batch_span,
            scored=scored,
            shadowed=shadowed,
            shadow_skipped=shadow_skipped,
        )

    def on_predict(
        self, model: str, version: str, status: int, code: str | None, seconds: float
    ) -> None:
        """One predict request answered (``model`` and ``version`` empty when unresolved)."""
        self.predict_requests.labels(model, version, str(status)).inc()
        self.predict_latency.labels(model, version).observe(seconds)
        if code is not None:
            self.predict_errors.labels(model, version, code).inc()

    def on_key_refused(self, work: str) -> None:
        """A request refused because its key had too many running (ingest ones are counted)."""
        if work == "ingest":
            self.rejected_requests.labels("key_busy").inc()

    def on_profile_refresh(self, result: RefreshResult) -> None:
        self.profile_builds.labels(result.outcome).inc()
        self.profile_last_build.set(result.seconds)

    def watch_profiles(self, refresher: ProfileRefresher) -> None:
        """Read the profiles' age from ``refresher`` at each scrape."""
        self.profiles_age.set_function(lambda: refresher.status().age_seconds)


def _provider(endpoint: str) -> Any:
    """A tracer provider exporting over OTLP/HTTP to ``endpoint``, or None when it is empty."""
    if not endpoint:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise UsageError(
            "otlp_endpoint is set but the OTLP exporter is not installed; "
            "pip install 'assay[otlp]', or unset ASSAY_OTLP_ENDPOINT"
        ) from None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "assay"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def route_of(request: Request) -> str:
    """The route template (``/v1/metrics/{name}``), never the raw path, for labels and logs."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


def relative(location: str) -> str:
    """A redirect's target as a path on this server: never the ``Host`` a client sent.

    Leading slashes are collapsed, so that a path such as ``//elsewhere.example/`` cannot turn
    into a protocol-relative URL that sends the client to another host.
    """
    parts = urlsplit(location)
    path = "/" + parts.path.lstrip("/")
    return f"{path}?{parts.query}" if parts.query else path


def middleware(obs: Observability) -> Callable[..., Awaitable[Response]]:
    """Time each request, count it, wrap it in a span and write one access log line; make
    redirects relative (Starlette builds them from the ``Host`` header)."""

    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        status = 500
        with obs.tracer.start_as_current_span(f"{request.method} request") as span:
            try:
                response = await call_next(request)
                status = response.status_code
                if "location" in response.headers:
                    response.headers["location"] = relative(response.headers["location"])
                return response
            finally:
                elapsed = time.perf_counter() - start
                route = route_of(request)
                span.set_attribute("http.route", route)
                span.set_attribute("http.status_code", status)
                obs.requests.labels(request.method, route, str(status)).inc()
                obs.latency.labels(request.method, route).observe(elapsed)
                fields: dict[str, Any] = {
                    "method": request.method,
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                    "key_id": getattr(request.state, "key_id", None),
                    "bytes_in": request.headers.get("content-length"),
                }
                events = getattr(request.state, "events", None)
                if events is not None:
                    fields["events"] = events
                access_log.info("request", extra={"assay": fields})

    return observe
