"""``POST /v1/models/{name}/predict`` in process: an intent model trained on the shipped
10-intent subset and a tabular quality model trained on a hand-made dataset, both registered in
the workspace's MLflow registry.

Expected predictions come from elsewhere: the intent model's from
:meth:`IntentPredictor.predict` on the registered export (and its labels from scikit-learn's
own pipeline), the quality model's scores from the native scikit-learn model.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))

from quality_data import quality_table

from assay.models import ModelPool, ServingConfig
from assay.models._intent import IntentModel, IntentPredictor, normalise, prepare, register_intent
from assay.models._intent import train_intent as fit_intent
from assay.models._intent_data import load_intent_data
from assay.models._onnx import to_onnx
from assay.models._registry import Registry
from assay.models._train import QualityModel, train_quality
from assay.service import create_app
from assay.store import Settings, Workspace

SMALL = files("assay") / "data" / "clinc150" / "data_small.json"
TENANT_A = "tenant-alpha"
TENANT_B = "tenant-bravo-q7z"
TEXTS = [
    "is it going to rain tomorrow",
    "how do i freeze my bank account",
    "tell me a joke about cats",
    "what's the weather like in paris",
    "I need a new card, mine is broken",
]
#: The serving limits of these tests (small, so that oversize inputs are cheap to send).
CONFIG = ServingConfig(max_inputs=8, max_text_chars=200, max_body_bytes=16_384, refresh_seconds=0.0)


@dataclass
class Served:
    client: TestClient
    root: Path
    keys: dict[str, str]
    intent: IntentModel
    intent_raw: bytes
    quality: QualityModel
    records: list[dict[str, Any]]
    spans: InMemorySpanExporter

    def predict(self, ref: str, body: Any, key: str = "a", **headers: str) -> httpx.Response:
        auth = {"Authorization": f"Bearer {self.keys[key]}", **headers}
        if isinstance(body, bytes):
            auth.setdefault("Content-Type", "application/json")
            r: httpx.Response = self.client.post(
                f"/v1/models/{ref}/predict", content=body, headers=auth
            )
        else:
            r = self.client.post(f"/v1/models/{ref}/predict", json=body, headers=auth)
        return r


def _records(model: QualityModel, rows: int) -> tuple[list[dict[str, Any]], Any]:
    table = quality_table(days=2, rows_per_day=rows // 2, seed=11)
    names = [*model.numeric, *model.categorical]
    out = []
    for row in table.select(names).to_pylist():
        out.append(
            {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        )
    return out, table


def register_quality(reg: Registry, model: QualityModel) -> None:
    """A new version of ``quality``: the model's ONNX export, no evaluation."""
    reg.register(
        "quality",
        to_onnx(model),
        inputs=(model.numeric, model.categorical),
        params={"kind": "logistic"},
        metrics={},
        tags={"assay.kind": "quality"},
        texts={},
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("predict") / "ws"
    with Workspace.init(root) as ws:
        made = {
            "a": ws.keys.create(tenant_id=TENANT_A, scopes=("predict",)),
            "b": ws.keys.create(tenant_id=TENANT_B, scopes=("predict", "read")),
            "admin": ws.keys.create(tenant_id=None, scopes=("predict",)),
            "read_a": ws.keys.create(tenant_id=TENANT_A, scopes=("ingest", "read")),
        }
    (root / "assay.toml").write_text(
        Settings.from_mapping({"http_fsync": False}).to_toml(), encoding="utf-8"
    )
    reg = Registry(root)
    ds = load_intent_data(str(SMALL))
    intent = fit_intent(ds, c_grid=(10.0,))
    register_intent(reg, intent, "intent", parity_texts=normalise(ds.test.texts))
    reg.promote("intent", 1, "champion")
    _, raw = reg.load_onnx("intent/1")
    quality = train_quality(quality_table(days=30, rows_per_day=60, seed=3), model="logistic")
    qm = quality.model
    register_quality(reg, qm)
    records, _ = _records(qm, 6)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("ASSAY_")]:
            mp.delenv(name)
        app = create_app(root, serving=CONFIG, tracer_provider=provider)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Served(
                client=client,
                root=root,
                keys={name: plain for name, (_, plain) in made.items()},
                intent=intent,
                intent_raw=raw,
                quality=qm,
                records=records,
                spans=exporter,
            )


def assert_same_predictions(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Labels equal, probabilities equal to float32 precision (a batch of many texts and a
    batch of one may round differently in ONNX Runtime)."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g["label"] == e["label"]
        assert g["probability"] == pytest.approx(e["probability"], abs=1e-6)
        assert [k["label"] for k in g["top_k"]] == [k["label"] for k in e["top_k"]]
        assert [k["probability"] for k in g["top_k"]] == pytest.approx(
            [k["probability"] for k in e["top_k"]], abs=1e-6
        )


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "field", "rule"}, body
    error: dict[str, Any] = body["error"]
    return error


# -- answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["intent", "intent@champion", "intent/1"])
def test_intent_predictions_equal_the_predictor_on_the_same_texts(served: Served, ref: str) -> None:
    r = served.predict(ref, {"inputs": TEXTS, "top_k": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model"], body["version"]) == ("intent", 1)
    expected = [p.to_dict() for p in IntentPredictor(served.intent_raw).predict(TEXTS, top_k=2)]
    assert_same_predictions(body["predictions"], expected)
    # The labels also agree with scikit-learn's own pipeline (threshold applied).
    assert [p["label"] for p in body["predictions"]] == served.intent.predict(prepare(TEXTS))
    for p in body["predictions"]:
        assert set(p) == {"label", "probability", "top_k"}
        assert len(p["top_k"]) == 2
        assert p["top_k"][0]["probability"] >= p["top_k"][1]["probability"]


def test_tabular_scores_equal_the_native_model(served: Served) -> None:
    records, table = _records(served.quality, 6)
    r = served.predict("quality/1", {"inputs": records})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model"], body["version"]) == ("quality", 1)
    native = served.quality.predict_proba(table)
    scores = [p["score"] for p in body["predictions"]]
    assert scores == pytest.approx(list(native), abs=1e-5)
    for p, s in zip(body["predictions"], native, strict=True):
        assert p["label"] is bool(s >= 0.5)
        assert p["probability"] == pytest.approx(max(s, 1 - s), abs=1e-5)


def test_a_record_missing_a_feature_is_refused_naming_it(served: Served) -> None:
    record = dict(served.records[0])
    del record["locale"]
    r = served.predict("quality", {"inputs": [served.records[1], record]})
    assert r.status_code == 422
    error = error_of(r)
    assert (error["code"], error["field"], error["rule"]) == (
        "invalid_input",
        "inputs[1].locale",
        "missing",
    )
    assert "null for a missing value" in error["message"]


def test_texts_sent_to_a_tabular_model_are_refused(served: Served) -> None:
    r = served.predict("quality", {"inputs": ["a text"]})
    assert r.status_code == 422
    assert error_of(r)["field"] == "inputs[0]"
    assert "must be an object of feature values" in error_of(r)["message"]


# -- keys and tenants ---------------------------------------------------------------------------


def test_a_key_without_the_predict_scope_is_refused_with_403(served: Served) -> None:
    r = served.predict("intent", {"inputs": ["hi"]}, key="read_a")
    assert r.status_code == 403
    error = error_of(r)
    assert error["code"] == "forbidden_scope"
    assert "--scope predict" in error["message"]


def test_no_key_is_401(served: Served) -> None:
    r = served.client.post("/v1/models/intent/predict", json={"inputs": ["hi"]})
    assert r.status_code == 401
    assert error_of(r)["code"] == "unauthorized"


def test_a_tenant_key_predicts_for_its_own_tenant_only(served: Served) -> None:
    own = served.predict("intent", {"inputs": ["hi"], "tenant_id": TENANT_A})
    assert own.status_code == 200
    other = served.predict("intent", {"inputs": ["hi"], "tenant_id": TENANT_B})
    assert other.status_code == 403
    error = error_of(other)
    assert (error["code"], error["field"]) == ("forbidden_tenant", "tenant_id")
    assert TENANT_B not in other.text


def test_an_admin_key_must_name_the_tenant_to_record(served: Served) -> None:
    r = served.predict("intent", {"inputs": ["hi"], "record": True}, key="admin")
    assert r.status_code == 422
    assert error_of(r)["field"] == "tenant_id"
    plain = served.predict("intent", {"inputs": ["hi"]}, key="admin")
    assert plain.status_code == 200


def test_recorded_predictions_become_events_of_the_keys_tenant(served: Served) -> None:
    texts = ["will it rain in oslo", "block my card please"]
    r = served.predict(
        "intent",
        {"inputs": texts, "session_id": "sess-9", "request_id": "req-1", "record_wait": True},
        key="b",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["recorded"] == {"queued": 2, "accepted": 2, "duplicates": 0, "rejected": 0}
    with Workspace.open(served.root) as ws:
        events = ws.read("events").to_pylist()  # type: ignore[arg-type]
    mine = sorted((e for e in events if e["session_id"] == "sess-9"), key=lambda e: e["event_id"])
    assert [e["tenant_id"] for e in mine] == [TENANT_B, TENANT_B]
    assert [e["intent"] for e in mine] == [p["label"] for p in body["predictions"]]
    assert [e["model_version"] for e in mine] == ["intent/1", "intent/1"]
    again = served.predict(
        "intent",
        {"inputs": texts, "session_id": "sess-9", "request_id": "req-1", "record_wait": True},
        key="b",
    )
    assert again.json()["recorded"] == {
        "queued": 2,
        "accepted": 0,
        "duplicates": 2,
        "rejected": 0,
    }


def test_recording_without_waiting_answers_first_and_stores_the_events_after(
    served: Served,
) -> None:
    texts = ["set an alarm for six", "what song is this", "who built you"]
    r = served.predict(
        "intent", {"inputs": texts, "session_id": "sess-bg", "request_id": "req-bg"}, key="b"
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["recorded"] == {"queued": 3}
    deadline = time.monotonic() + 30
    while True:
        with Workspace.open(served.root) as ws:
            events = ws.read("events").to_pylist()  # type: ignore[arg-type]
        mine = [e for e in events if e["session_id"] == "sess-bg"]
        if len(mine) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    mine.sort(key=lambda e: e["event_id"])
    assert [e["intent"] for e in mine] == [p["label"] for p in body["predictions"]]


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("nosuch", "no registered model 'nosuch'"),
        ("intent@challenger", "has no alias 'challenger'"),
        ("intent/7", "has no version 7"),
    ],
)
def test_unknown_models_aliases_and_versions_are_404(served: Served, ref: str, says: str) -> None:
    r = served.predict(ref, {"inputs": ["hi"]})
    assert r.status_code == 404
    error = error_of(r)
    assert error["code"] == "not_found"
    assert says in error["message"]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b"{not json", 422, "unreadable_body", None),
        (b"[1, 2]", 422, "invalid_body", None),
        (json.dumps({"texts": ["hi"]}).encode(), 422, "invalid_body", "texts"),
        (json.dumps({}).encode(), 422, "invalid_body", "inputs"),
        (json.dumps({"inputs": "hi"}).encode(), 422, "invalid_body", "inputs"),
        (json.dumps({"inputs": ["hi"], "top_k": "2"}).encode(), 422, "invalid_body", "top_k"),
        (json.dumps({"inputs": ["hi"], "top_k": 0}).encode(), 422, "invalid_input", "top_k"),
        (json.dumps({"inputs": []}).encode(), 422, "invalid_input", "inputs"),
        (json.dumps({"inputs": ["hi"] * 9}).encode(), 413, "too_large", "inputs"),
        (json.dumps({"inputs": ["x" * 201]}).encode(), 413, "too_large", "inputs[0]"),
        (json.dumps({"inputs": ["x" * 150] * 120}).encode(), 413, "too_large", None),
    ],
)
def test_bad_and_oversize_bodies_are_refused_with_the_one_error_shape(
    served: Served, body: bytes, status: int, code: str, field: str | None
) -> None:
    r = served.predict("intent", body)
    assert r.status_code == status, r.text
    error = error_of(r)
    assert (error["code"], error["field"]) == (code, field)


def test_two_hundred_characters_are_allowed(served: Served) -> None:
    assert served.predict("intent", {"inputs": ["x" * 200]}).status_code == 200


def test_a_body_that_is_not_json_by_content_type_is_415(served: Served) -> None:
    r = served.predict("intent", b'{"inputs": ["hi"]}', **{"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert error_of(r)["field"] == "Content-Type"


# -- observability ------------------------------------------------------------------------------


def _sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = ",".join(sorted(line[len(name) + 1 : line.index("}")].split(",")))
            if got == want:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_inputs_errors_and_oos_per_model_and_version(
    served: Served,
) -> None:
    before = served.client.get("/metrics").text
    texts = ["what is the weather today", "zxqv blorp unknown gibberish words"]
    r = served.predict("intent/1", {"inputs": texts})
    assert r.status_code == 200
    oos = sum(p["label"] == "oos" for p in r.json()["predictions"])
    assert served.predict("intent/1", {"inputs": [5]}).status_code == 422
    after = served.client.get("/metrics").text
    labels = {"model": "intent", "version": "1"}

    def grew(name: str, **extra: str) -> float:
        return _sample(after, name, **labels, **extra) - _sample(before, name, **labels, **extra)

    assert grew("assay_predict_requests_total", status="200") == 1
    assert grew("assay_predict_requests_total", status="422") == 1
    assert grew("assay_predict_errors_total", code="invalid_input") == 1
    assert grew("assay_predict_inputs_total") == 2
    assert grew("assay_predict_oos_total") == oos
    assert grew("assay_predict_request_duration_seconds_count") == 2
    assert grew("assay_predict_batch_size_count") == 1
    assert grew("assay_predict_batch_size_sum") == 2


def test_spans_carry_model_version_and_batch_size_and_never_the_texts(served: Served) -> None:
    served.spans.clear()
    secret = "my card 4111 1111 1111 1111 was stolen qz"
    assert served.predict("intent/1", {"inputs": [secret, "hello"]}).status_code == 200
    spans = {s.name: s for s in served.spans.get_finished_spans()}
    predict = spans["predict"]
    batch = spans["predict.batch"]
    assert predict.attributes is not None
    assert batch.attributes is not None
    assert (predict.attributes["assay.model"], predict.attributes["assay.model_version"]) == (
        "intent",
        1,
    )
    assert predict.attributes["assay.inputs"] == 2
    assert batch.attributes["assay.batch_size"] == 2
    for span in served.spans.get_finished_spans():
        for value in (span.attributes or {}).values():
            assert "4111" not in str(value)
            assert "stolen" not in str(value)


# -- the pool on the registered models ----------------------------------------------------------


def test_concurrent_predictions_are_scored_in_one_batch_equal_to_one_by_one(
    served: Served,
) -> None:
    """Sixteen one-text requests with max_batch 16 and a long wait: one ONNX call of 16."""
    sizes: list[int] = []
    config = ServingConfig(max_batch=16, max_wait_ms=30_000, max_queue=64, max_inputs=16)

    async def main() -> list[Any]:
        from assay.models._serving import ServingHooks

        pool = ModelPool(
            Registry(served.root),
            config,
            hooks=ServingHooks(scored=lambda ref, kind, n, oos, s: sizes.append(n)),
        )
        try:
            await pool.model("intent/1")  # loaded and warmed (the warm-up is not a batch)
            texts = [TEXTS[i % len(TEXTS)] + f" {i}" for i in range(16)]
            outs = await asyncio.gather(*(pool.predict("intent/1", [t]) for t in texts))
            return [texts, outs]
        finally:
            pool.close()

    texts, outs = asyncio.run(main())
    assert sizes == [16]
    alone = IntentPredictor(served.intent_raw)
    for text, out in zip(texts, outs, strict=True):
        assert_same_predictions(out.predictions, [alone.predict([text])[0].to_dict()])


def test_an_explicit_refresh_swaps_an_alias_to_its_new_version(served: Served) -> None:
    reg = Registry(served.root)
    counted = FlakyRegistry(reg)

    async def main() -> tuple[int, dict[str, Any]]:
        pool = ModelPool(lambda: counted, ServingConfig(refresh_seconds=3600))  # type: ignore[arg-type,return-value]
        try:
            before = (await pool.predict("quality@live", served.records[:1])).ref.version
            moved = await asyncio.to_thread(reg.promote, "quality", 2, "live")
            stale = (await pool.predict("quality@live", served.records[:1])).ref.version
            refs = await pool.refresh()
            after = (await pool.predict("quality@live", served.records[:1])).ref.version
            assert moved.version == 2
            # Each version loaded once; the old one let go once nothing points at it.
            assert counted.loads == ["quality/1", "quality/2"]
            assert [str(v) for v in pool.loaded()] == ["quality/2"]
            return before, {"versions": (stale, after), "refs": refs}
        finally:
            pool.close()

    register_quality(reg, served.quality)
    reg.promote("quality", 1, "live")
    before, seen = asyncio.run(main())
    assert before == 1
    assert seen["versions"] == (1, 2)  # within refresh_seconds: the old one, then swapped
    assert {r: v.version for r, v in seen["refs"].items()} == {"quality@live": 2}


def test_keys_create_takes_the_predict_scope(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from assay.cli import app

    root = tmp_path / "ws"
    Workspace.init(root).close()
    runner = CliRunner()
    made = runner.invoke(
        app, ["keys", "create", "-w", str(root), "--tenant", TENANT_A, "--scope", "predict"]
    )
    assert made.exit_code == 0, made.output
    with Workspace.open(root) as ws:
        (key,) = ws.keys.list()
    assert (key.tenant_id, key.scopes) == (TENANT_A, ("predict",))
    bad = runner.invoke(
        app, ["keys", "create", "-w", str(root), "--tenant", TENANT_A, "--scope", "predicts"]
    )
    assert bad.exit_code == 2
    assert "ingest, read, predict" in bad.output


class FlakyRegistry:
    """The real registry, whose look-ups fail like a locked SQLite store when ``fail`` is set."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.fail = False
        self.resolves = 0
        self.loads: list[str] = []

    def resolve(self, ref: str) -> Any:
        self.resolves += 1
        if self.fail:
            raise sqlite3.OperationalError("database is locked: /secret/path/mlflow.db")
        return self.reg.resolve(ref)

    def load_onnx(self, ref: str) -> Any:
        self.loads.append(ref)
        return self.reg.load_onnx(ref)


def test_a_registry_that_cannot_be_read_keeps_the_served_version_or_is_a_retryable_error(
    served: Served,
) -> None:
    from assay.models._serving import RegistryUnavailableError

    flaky = FlakyRegistry(Registry(served.root))
    now = [0.0]

    async def main() -> tuple[list[int], int, str]:
        config = ServingConfig(refresh_seconds=5.0)
        pool = ModelPool(lambda: flaky, config, clock=lambda: now[0])  # type: ignore[arg-type,return-value]
        try:
            versions = [(await pool.predict("intent@champion", ["hi"])).ref.version]
            flaky.fail = True
            now[0] = 6.0  # stale: a background look-up starts, the request is not held
            versions.append((await pool.predict("intent@champion", ["hi"])).ref.version)
            for _ in range(100):  # let the background look-up fail
                await asyncio.sleep(0.01)
                if flaky.resolves == 2 and not pool._refs["intent@champion"].refreshing:
                    break
            now[0] = 8.0  # within 5 s of the failed look-up: no new one
            versions.append((await pool.predict("intent@champion", ["hi"])).ref.version)
            resolves = flaky.resolves
        finally:
            pool.close()
        cold = ModelPool(lambda: flaky, config)  # type: ignore[arg-type,return-value]
        try:
            with pytest.raises(RegistryUnavailableError) as err:
                await cold.predict("intent@champion", ["hi"])
        finally:
            cold.close()
        return versions, resolves, str(err.value)

    versions, resolves, message = asyncio.run(main())
    assert versions == [1, 1, 1]
    assert resolves == 2
    assert "OperationalError" in message
    assert "/secret/path" not in message


def test_a_key_with_too_many_predict_requests_in_flight_gets_429_and_other_keys_do_not(
    served: Served,
) -> None:
    """One request of key A waits in a batch of two that only a second input fills (a long
    max wait); A's next request is refused, B's fills the batch and both are answered."""
    config = ServingConfig(key_requests=1, max_batch=2, max_wait_ms=120_000)
    app = create_app(served.root, serving=config)
    results: dict[str, httpx.Response] = {}
    with TestClient(app, raise_server_exceptions=False) as client:

        def post(name: str, key: str) -> None:
            results[name] = client.post(
                "/v1/models/intent/1/predict",
                json={"inputs": ["hi"]},
                headers={"Authorization": f"Bearer {served.keys[key]}"},
            )

        first = threading.Thread(target=post, args=("first", "a"))
        first.start()
        pool = app.state.assay.models
        for _ in range(3000):  # until the first request waits in its batch (bounded)
            held = [e for e in pool._loaded.values() if e.batcher.queued == 1]
            if held:
                break
            first.join(0.01)
        assert held, "the first request never reached its batch"
        post("second", "a")
        post("other", "b")
        first.join(60)
    assert results["second"].status_code == 429
    error = error_of(results["second"])
    assert error["code"] == "too_many_requests"
    assert "--predict-key-requests" in error["message"]
    assert results["second"].headers["Retry-After"] == "1"
    assert results["first"].status_code == 200
    assert results["other"].status_code == 200


def test_the_pool_remembers_a_bounded_number_of_reference_spellings(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    import assay.models._serving as serving

    monkeypatch.setattr(serving, "MAX_REFERENCES", 2)

    async def main() -> tuple[list[int], list[str], list[str]]:
        pool = ModelPool(Registry(served.root))
        try:
            spellings = ["intent/1", "intent/01", "intent/001"]
            versions = [(await pool.predict(r, ["hi"])).ref.version for r in spellings]
            return versions, list(pool._refs), [str(v) for v in pool.loaded()]
        finally:
            pool.close()

    versions, remembered, loaded = asyncio.run(main())
    assert versions == [1, 1, 1]
    assert remembered == ["intent/01", "intent/001"]
    assert loaded == ["intent/1"]


def test_a_registry_that_cannot_be_read_is_503_with_retry_after(served: Served) -> None:
    pool = served.client.app.state.assay.models  # type: ignore[attr-defined]
    real = pool.registry
    flaky = FlakyRegistry(real)
    flaky.fail = True
    pool._registry = flaky
    try:
        r = served.predict("intent/0001", {"inputs": ["hi"]})
    finally:
        pool._registry = real
    assert r.status_code == 503
    error = error_of(r)
    assert error["code"] == "unavailable"
    assert "retry shortly" in error["message"]
    assert "/secret/path" not in r.text
    assert r.headers["Retry-After"] == "1"
