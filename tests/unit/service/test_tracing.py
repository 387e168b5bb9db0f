"""Spans: one per request, with the pipeline stages of an ingest as its children."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.service import create_app
from assay.store import Workspace


def test_an_ingest_request_has_a_span_with_its_stages_as_children_and_a_linked_group_span(
    tmp_path: Path,
) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        _, key = ws.keys.create(tenant_id="acme", scopes=("ingest",))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    when = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "event_id": "e1",
        "event_time": when,
        "tenant_id": "acme",
        "user_id": "someone@example.com",
        "session_id": "s1",
        "event_type": "turn",
        "text": "call me on +44 20 7946 0958",
    }
    app = create_app(tmp_path / "ws", tracer_provider=provider)
    with TestClient(app) as client:
        answer = client.post(
            "/v1/events",
            content=json.dumps([event]),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
    assert answer.status_code == 200
    spans = exporter.get_finished_spans()
    [request] = [s for s in spans if s.name == "POST request"]
    children = {s.name: s for s in spans if s.parent is not None}
    for stage in ("decode", "parse", "commit"):
        assert stage in children, f"no {stage} span among {sorted(children)}"
        assert children[stage].parent.span_id == request.context.span_id
        assert children[stage].context.trace_id == request.context.trace_id
    # Requests are prepared in groups: the group's span links to each request's.
    [prepare] = [s for s in spans if s.name == "prepare"]
    assert [link.context.span_id for link in prepare.links] == [request.context.span_id]
    assert request.attributes["http.route"] == "/v1/events"
    assert request.attributes["http.status_code"] == 200
    # No span carries raw text, a raw user id or the key.
    dumped = json.dumps([dict(s.attributes or {}) for s in spans]) + str([s.name for s in spans])
    for secret in ("someone@example.com", "7946", key):
        assert secret not in dumped


def test_spans_are_exported_over_otlp_http_when_an_endpoint_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[tuple[str, str, int]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # a stand-in OTLP/HTTP collector on 127.0.0.1
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], len(body)))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        monkeypatch.setenv("ASSAY_OTLP_ENDPOINT", endpoint)
        with Workspace.init(tmp_path / "ws") as ws:
            _, key = ws.keys.create(tenant_id="acme", scopes=("read",))
        with TestClient(create_app(tmp_path / "ws")) as client:
            answer = client.get("/v1/tenants", headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 200
        # Leaving the app flushes the batched spans to the collector.
    finally:
        server.shutdown()
        thread.join(10)
    assert received, "no OTLP export reached the collector"
    path, content_type, size = received[0]
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    assert size > 0
