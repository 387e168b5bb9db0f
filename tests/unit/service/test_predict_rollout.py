"""Rollouts in ``POST /v1/models/{name}/predict``: the sticky split, opt-out tenants, shadow.

Two intent versions trained on the shipped 10-intent subset with different regularisation, so
that they disagree on some texts. Expected versions come from the documented pseudonym
(HMAC-SHA256, computed here) and the documented bucket (SHA-256, computed here); expected
labels from :class:`IntentPredictor` on each registered export, not from the service.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from assay.models import Routing, ServingConfig
from assay.models._intent import IntentPredictor, normalise, register_intent
from assay.models._intent import train_intent as fit_intent
from assay.models._intent_data import load_intent_data
from assay.models._registry import Registry
from assay.service import create_app
from assay.store import Settings, Workspace

SMALL = files("assay") / "data" / "clinc150" / "data_small.json"
TENANT_A = "tenant-alpha"
TENANT_B = "tenant-bravo"
CONFIG = ServingConfig(refresh_seconds=0.0)
TEXTS = [
    "will it snow in berlin this weekend",
    "please lock my debit card",
    "say something funny",
    "how hot is it outside",
    "my card got stolen yesterday",
    "set a timer",
    "play something",
    "what can you do",
]


class Holder:
    """The router the service is given: whatever routing the test sets, for model intent."""

    def __init__(self) -> None:
        self.routing: Routing | None = None

    def __call__(self, name: str) -> Routing | None:
        return self.routing if name == "intent" else None


@dataclass
class Served:
    client: TestClient
    root: Path
    keys: dict[str, str]
    holder: Holder
    secret: bytes
    v1: IntentPredictor
    v2: IntentPredictor

    def predict(self, ref: str, body: Any, key: str = "a") -> Any:
        return self.client.post(
            f"/v1/models/{ref}/predict",
            json=body,
            headers={"Authorization": f"Bearer {self.keys[key]}"},
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("rollout") / "ws"
    with Workspace.init(root) as ws:
        tenants = {"a": TENANT_A, "b": TENANT_B}
        keys = {k: ws.keys.create(tenant_id=t, scopes=("predict",))[1] for k, t in tenants.items()}
        secret = ws.secret
    (root / "assay.toml").write_text(
        Settings.from_mapping({"http_fsync": False}).to_toml(), encoding="utf-8"
    )
    reg = Registry(root)
    ds = load_intent_data(str(SMALL))
    parity = normalise(ds.test.texts)
    register_intent(reg, fit_intent(ds, c_grid=(10.0,)), "intent", parity_texts=parity)
    register_intent(reg, fit_intent(ds, c_grid=(0.05,)), "intent", parity_texts=parity)
    reg.promote("intent", 1, "champion")
    v1 = IntentPredictor(reg.load_onnx("intent/1")[1])
    v2 = IntentPredictor(reg.load_onnx("intent/2")[1])
    holder = Holder()
    kept = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    with mock.patch.dict(os.environ, kept, clear=True):
        app = create_app(root, serving=CONFIG, router=holder)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Served(client, root, keys, holder, secret, v1, v2)


def expected_version(secret: bytes, tenant: str, user: str, rollout: str, weight: float) -> int:
    """The documented assignment, computed here: the pseudonym, then its bucket."""
    t = tenant.encode()
    digest = hmac.new(secret, struct.pack(">I", len(t)) + t + user.encode(), hashlib.sha256)
    unit = "u_" + digest.hexdigest()[:32]
    rid = rollout.encode()
    head = hashlib.sha256(struct.pack(">I", len(rid)) + rid + unit.encode()).digest()[:8]
    return 2 if struct.unpack(">Q", head)[0] / 2.0**64 < weight else 1


def _sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def test_versions_disagree_somewhere(served: Served) -> None:
    # The shadow tests below need two versions that differ on some of TEXTS.
    a = [p.label for p in served.v1.predict(TEXTS)]
    b = [p.label for p in served.v2.predict(TEXTS)]
    assert a != b


def test_each_user_keeps_one_version_as_the_weight_grows_and_weight_zero_rolls_back(
    served: Served,
) -> None:
    users = [f"person-{i}" for i in range(60)]
    before: dict[str, int] = {}
    for weight in [0.2, 0.6, 1.0]:
        served.holder.routing = Routing("roll-1", 1, 2, weight)
        for user in users:
            got = {
                served.predict("intent", {"inputs": ["set a timer"], "user_id": user}).json()[
                    "version"
                ]
                for _ in range(2)
            }
            want = expected_version(served.secret, TENANT_A, user, "roll-1", weight)
            assert got == {want}, (user, weight)
            if before.get(user) == 2:
                assert want == 2
            before[user] = want
    assert set(before.values()) == {2}
    served.holder.routing = Routing("roll-1", 1, 2, 0.0)
    versions = {
        served.predict("intent", {"inputs": ["hi"], "user_id": u}).json()["version"] for u in users
    }
    assert versions == {1}


def test_an_opted_out_tenant_gets_stable_and_the_other_the_candidate(served: Served) -> None:
    served.holder.routing = Routing("roll-2", 1, 2, 1.0, opt_out_tenants=frozenset({TENANT_A}))
    a = served.predict("intent", {"inputs": ["hi"], "user_id": "same-person"}, key="a")
    b = served.predict("intent", {"inputs": ["hi"], "user_id": "same-person"}, key="b")
    assert (a.json()["version"], b.json()["version"]) == (1, 2)


def test_shadow_answers_byte_for_byte_as_stable_and_counts_agreement(served: Served) -> None:
    served.holder.routing = None
    pinned = served.predict("intent/1", {"inputs": TEXTS})
    served.holder.routing = Routing("roll-3", 1, 2, 0.0, shadow=True)
    labels1 = [p.label for p in served.v1.predict(TEXTS)]
    labels2 = [p.label for p in served.v2.predict(TEXTS)]
    agree = sum(x == y for x, y in zip(labels1, labels2, strict=True))
    before = served.client.get("/metrics").text
    answers = [served.predict("intent", {"inputs": TEXTS}) for _ in range(3)]
    for r in answers:
        assert r.status_code == 200
        assert r.content == pinned.content
    assert [p["label"] for p in pinned.json()["predictions"]] == labels1
    labels = {"model": "intent", "stable": "1", "candidate": "2"}
    deadline = time.monotonic() + 30
    while True:
        after = served.client.get("/metrics").text
        n_agree = _sample(after, "assay_predict_shadow_total", **labels, outcome="agree")
        n_agree -= _sample(before, "assay_predict_shadow_total", **labels, outcome="agree")
        n_dis = _sample(after, "assay_predict_shadow_total", **labels, outcome="disagree")
        n_dis -= _sample(before, "assay_predict_shadow_total", **labels, outcome="disagree")
        # The first request may go unshadowed while the candidate loads in the background.
        if n_agree + n_dis >= 2 * len(TEXTS) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    runs = (n_agree + n_dis) / len(TEXTS)
    assert runs in (2, 3)
    assert (n_agree, n_dis) == (runs * agree, runs * (len(TEXTS) - agree))


def test_shadow_predictions_are_recorded_as_the_candidates_marked_shadow(served: Served) -> None:
    served.holder.routing = Routing("roll-4", 1, 2, 0.0, shadow=True)
    served.predict("intent", {"inputs": ["warm the candidate"]})
    time.sleep(0.5)
    texts = TEXTS[:4]
    r = served.predict(
        "intent",
        {"inputs": texts, "session_id": "sess-shadow", "request_id": "req-s", "record_wait": True},
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    deadline = time.monotonic() + 30
    while True:
        with Workspace.open(served.root) as ws:
            events = ws.read("events").to_pylist()
        mine = [e for e in events if e["session_id"] == "sess-shadow"]
        if len(mine) == 8 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    answered = sorted((e for e in mine if e["event_id"].startswith("pred:")), key=_index)
    shadow = sorted((e for e in mine if e["event_id"].startswith("shadow:")), key=_index)
    assert [e["model_version"] for e in answered] == ["intent/1"] * 4
    assert [e["model_version"] for e in shadow] == ["intent/2"] * 4
    assert [e["intent"] for e in answered] == [p.label for p in served.v1.predict(texts)]
    assert [e["intent"] for e in shadow] == [p.label for p in served.v2.predict(texts)]
    assert all(_attributes(e).get("shadow") == "true" for e in shadow)
    assert not any("shadow" in _attributes(e) for e in answered)


def _index(event: dict[str, Any]) -> int:
    return int(event["event_id"].rsplit(":", 1)[1])


def _attributes(event: dict[str, Any]) -> dict[str, str]:
    """A stored map column comes back as a list of (key, value) pairs."""
    value = event["attributes"] or {}
    return dict(value)


def test_the_default_router_reads_the_workspaces_live_rollout(served: Served) -> None:
    from assay.rollout import rollouts
    from assay.service._state import rollout_router

    with Workspace.open(served.root) as ws:
        route = rollout_router(ws)
        assert route("intent") is None
        plan = rollouts(ws).start(
            field="model_version",
            stable="1",
            candidate="2",
            model="intent",
            shadow_seconds=600.0,
            opt_out_tenants=[TENANT_B],
        )
        try:
            got = route("intent")
            assert got is not None
            assert (got.stable_version, got.candidate_version) == (1, 2)
            assert (got.weight, got.shadow) == (0.0, True)
            assert got.opt_out_tenants == frozenset({TENANT_B})
            assert route("other-model") is None
        finally:
            rollouts(ws).abort(plan.id)
        assert route("intent") is None
