"""The predict API on a real ``assay serve`` (127.0.0.1): an alias moves under load and no
request fails.

Two versions of an intent model (trained on the shipped 10-intent subset with different
``C``) are registered; ``champion`` points at version 1. Four client threads send one-text
requests to ``intent@champion`` back to back while the test promotes version 2 through the
workspace's own API (another process than the server, as an operator would). Every request
must answer 200, each thread must see version 1 then version 2 and never go back, and the
answers of each version must equal :meth:`IntentPredictor.predict` of that version's export.
The load is bounded in requests and in time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import running_server

import assay
from assay.models._intent import IntentPredictor, normalise, register_intent, train_intent
from assay.models._intent_data import load_intent_data
from assay.models._registry import Registry
from assay.store import Workspace

SMALL = files("assay") / "data" / "clinc150" / "data_small.json"
TENANT = "acme"
THREADS = 4
#: Requests in all before the alias moves, and the most in all (a bound, not a target).
BEFORE_MOVE = 40
MAX_REQUESTS = 1500
#: Requests each thread sends after it has seen the new version.
AFTER_SWITCH = 10
DEADLINE_SECONDS = 120
TEXTS = [
    "is it going to rain tomorrow",
    "how do i freeze my bank account",
    "what is the weather like",
    "i lost my card, i need a new one",
    "tell me something nice",
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[int, bytes]]:
    root = tmp_path_factory.mktemp("predict-live") / "ws"
    with Workspace.init(root) as ws:
        _, key = ws.keys.create(tenant_id=TENANT, scopes=("predict",))
    reg = Registry(root)
    ds = load_intent_data(str(SMALL))
    exports = {}
    for c in (10.0, 0.3):
        model = train_intent(ds, c_grid=(c,))
        out = register_intent(reg, model, "intent", parity_texts=normalise(ds.test.texts))
        exports[out.version.version] = reg.load_onnx(str(out.version))[1]
    reg.promote("intent", 1, "champion")
    return root, key, exports


def test_an_alias_moved_under_load_switches_versions_without_a_failed_request(
    workspace: tuple[Path, str, dict[int, bytes]], tmp_path: Path
) -> None:
    root, key, exports = workspace
    expected = {
        v: [p.to_dict() for p in IntentPredictor(raw).predict(TEXTS, top_k=3)]
        for v, raw in exports.items()
    }
    # The two versions must be told apart by their answers too, not only by the number.
    assert [p["probability"] for p in expected[1]] != pytest.approx(
        [p["probability"] for p in expected[2]], abs=1e-3
    )
    answers: list[list[tuple[int, int | None, int, dict[str, Any] | None]]] = [
        [] for _ in range(THREADS)
    ]
    sent = threading.Semaphore(MAX_REQUESTS)
    moved = threading.Event()
    started = threading.Event()
    total = [0]
    lock = threading.Lock()
    stop = time.monotonic() + DEADLINE_SECONDS
    failures: list[str] = []

    def client(n: int, url: str) -> None:
        mine = answers[n]
        after = 0
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop and sent.acquire(blocking=False):
                i = len(mine) % len(TEXTS)
                try:
                    r = http.post(
                        "/v1/models/intent@champion/predict",
                        json={"inputs": [TEXTS[i]]},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                except httpx.HTTPError as exc:  # a dropped request is a failure, not a crash
                    failures.append(f"thread {n}: {type(exc).__name__}")
                    return
                body = r.json() if r.status_code == 200 else None
                version = body["version"] if body else None
                mine.append((r.status_code, version, i, body["predictions"][0] if body else None))
                with lock:
                    total[0] += 1
                    if total[0] >= BEFORE_MOVE:
                        started.set()
                if moved.is_set() and version == 2:
                    after += 1
                    if after >= AFTER_SWITCH:
                        return

    with running_server(
        root,
        tmp_path / "server.err",
        "--predict-refresh-seconds",
        "0.2",
        "--no-access-log",
        timeout=60,
    ) as (_, port):
        url = f"http://127.0.0.1:{port}"
        threads = [threading.Thread(target=client, args=(n, url)) for n in range(THREADS)]
        for t in threads:
            t.start()
        assert started.wait(DEADLINE_SECONDS), "the load did not start"
        with assay.Workspace.open(root) as ws:
            ws.models.promote("intent", 2)
        moved.set()
        for t in threads:
            t.join(DEADLINE_SECONDS + 10)
        metrics = httpx.get(f"{url}/metrics").text

    assert failures == []
    statuses = [a[0] for mine in answers for a in mine]
    assert statuses, "no request was sent"
    assert set(statuses) == {200}, sorted(set(statuses))
    for n, mine in enumerate(answers):
        versions = [v for _, v, _, _ in mine]
        assert versions[0] == 1, f"thread {n} started on {versions[0]}"
        assert versions[-1] == 2, f"thread {n} never saw version 2 ({len(versions)} requests)"
        switch = versions.index(2)
        assert set(versions[:switch]) == {1}
        assert set(versions[switch:]) == {2}, f"thread {n} went back to version 1"
        for _, version, i, prediction in mine:
            assert version is not None
            assert prediction is not None
            want = expected[version][i]
            assert prediction["label"] == want["label"]
            assert prediction["probability"] == pytest.approx(want["probability"], abs=1e-6)
    # Every answer was counted under the version that gave it.
    counted = {}
    for line in metrics.splitlines():
        if line.startswith("assay_predict_requests_total{") and 'status="200"' in line:
            counted[int(line.split('version="')[1].split('"')[0])] = float(line.rsplit(" ", 1)[1])
    served = Counter(v for mine in answers for _, v, _, _ in mine)
    assert counted == {1: served[1], 2: served[2]}
