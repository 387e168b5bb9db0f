"""The Models pages: curves against hand-worked values and a rank statistic, the page of a
trained version against the registry's own numbers, the sentence without a registry, and
admin-only access.

The trained model is the quality model of a small synthetic workspace (``ws.models.train``,
about half a minute here); its ROC-AUC was computed at training by ``assay.evaluation`` on the
same held-out rows, which the page's ROC curve must reproduce (trapezoids under its points).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import assay
from assay.dashboard._models import curves
from assay.ingest import ingest_paths
from assay.service import create_app
from assay.synth import SynthConfig, write

ORIGIN = {"Origin": "http://testserver"}


def test_curves_of_a_hand_worked_example() -> None:
    # Scores 0.1 (neg), 0.35 (neg), 0.4 (pos), 0.8 (pos), 0.9 (neg).
    c = curves([False, False, True, True, False], [0.1, 0.35, 0.4, 0.8, 0.9])
    assert c is not None
    # Thresholds 0.9, 0.8, 0.4, 0.35, 0.1: (FP, TP) = (1,0), (1,1), (1,2), (2,2), (3,2).
    assert c.roc == [(0.0, 0.0), (1 / 3, 0.0), (1 / 3, 1.0), (1.0, 1.0)]
    # (recall, precision) at thresholds 0.9, 0.8, 0.4, 0.35, 0.1, and sklearn's (0, 1) end.
    got = {(round(r, 6), round(p, 6)) for r, p in c.pr}
    assert got == {(0.0, 1.0), (0.0, 0.0), (0.5, 0.5), (1.0, 0.666667), (1.0, 0.5), (1.0, 0.4)}
    assert [r for r, _ in c.pr] == sorted(r for r, _ in c.pr)  # drawn by increasing recall
    # Score deciles: bins 1 (0.1), 3 (0.35), 4 (0.4), 8 (0.8), 9 (0.9).
    assert c.reliability == [
        (0.1, 0.0, 1),
        (0.35, 0.0, 1),
        (0.4, 1.0, 1),
        (0.8, 1.0, 1),
        (0.9, 0.0, 1),
    ]
    assert (c.positives, c.rows) == (2, 5)
    assert curves([True, True], [0.2, 0.3]) is None


def _mann_whitney_auc(y: np.ndarray, s: np.ndarray) -> float:
    """AUC as P(score of a positive > score of a negative) + half the ties, pair by pair."""
    pos, neg = s[y], s[~y]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (pos.size * neg.size))


def test_roc_area_equals_the_rank_statistic_on_random_scores() -> None:
    rng = np.random.default_rng(7)
    y = rng.random(150) < 0.3
    s = np.round(rng.random(150) * 0.6 + 0.3 * y, 2)  # ties on purpose
    c = curves(y.tolist(), s.tolist())
    assert c is not None
    fpr, tpr = np.array(c.roc).T
    assert float(np.trapezoid(tpr, fpr)) == pytest.approx(_mann_whitney_auc(y, s), abs=1e-12)
    # Every reliability bin's observed share is the share of positives among its rows.
    for mean, share, n in c.reliability:
        members = np.clip((s * 10).astype(int), 0, 9) == int(min(mean * 10, 9.999))
        assert n == int(members.sum())
        assert share == pytest.approx(float(y[members].mean()))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write(
        root / "data", SynthConfig(tenants=3, users=60, days=42, seed=3, start=dt.date(2026, 1, 1))
    )
    with assay.Workspace.open(root / "ws", create=True) as ws:
        ingest_paths(ws, [root / "data"])
        ws.models.train()
    return root / "ws"


def _client_for(path: Path, tenant: str | None) -> tuple[TestClient, str]:
    with assay.Workspace.open(path) as ws:
        _, key = ws.keys.create(tenant_id=tenant, scopes=("read",))
    return TestClient(create_app(path), raise_server_exceptions=False), key


def _sign_in(client: TestClient, key: str) -> None:
    r = client.post(
        "/ui/login", data={"api_key": key, "next": "/ui/"}, headers=ORIGIN, follow_redirects=False
    )
    assert r.status_code == 303, r.text


@pytest.fixture(scope="module")
def admin(trained: Path) -> Iterator[TestClient]:
    client, key = _client_for(trained, None)
    with client:
        _sign_in(client, key)
        yield client


def test_version_page_reproduces_the_registry_numbers(admin: TestClient, trained: Path) -> None:
    with assay.Workspace.open(trained) as ws:
        [row] = ws.models.list().to_pylist()
    listing = admin.get("/ui/models")
    assert listing.status_code == 200
    assert f'href="/ui/models/{row["name"]}/{row["version"]}"' in listing.text
    page = admin.get(f"/ui/models/{row['name']}/{row['version']}")
    assert page.status_code == 200
    for figure in ("roc", "pr", "reliability"):
        assert f'id="{figure}"' in page.text
    # The ROC table's points (4 significant digits) enclose the registry's test ROC-AUC.
    table = page.text.split('id="roc"')[1].split("</table>")[0]
    cells = [float(v) for v in re.findall(r"<td>([0-9.e-]+)</td>", table)]
    fpr, tpr = np.array(cells[0::2]), np.array(cells[1::2])
    assert float(np.trapezoid(tpr, fpr)) == pytest.approx(row["test_roc_auc"], abs=2e-3)
    # The CSV beside the chart has every point at full precision: the same area, exactly.
    csv = admin.get(f"/ui/models/{row['name']}/{row['version']}/roc.csv")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0] == "false_positive_rate,true_positive_rate"
    points = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    area = float(np.trapezoid(points[:, 1], points[:, 0]))
    assert area == pytest.approx(row["test_roc_auc"], abs=1e-9)
    assert 'href="/ui/models/quality/1/reliability.csv"' in page.text
    assert admin.get(f"/ui/models/{row['name']}/{row['version']}/nope.csv").status_code == 400
    assert "Launch check" in page.text
    assert 'id="launch-criteria"' in page.text
    assert admin.get(f"/ui/models/{row['name']}/999").status_code == 404
    assert admin.get("/ui/models/no-such-model/1").status_code == 404


def test_tenant_keys_are_told_models_are_for_admins(trained: Path) -> None:
    client, key = _client_for(trained, "tenant-000")
    with client:
        _sign_in(client, key)
        for url in (
            "/ui/models",
            "/ui/models/quality/1",
            "/ui/models/quality/1/roc.csv",
            "/ui/rollouts/1",
        ):
            r = client.get(url)
            assert r.status_code == 403
            assert "admin key" in r.text


def test_without_a_registry_the_page_says_so(tmp_path: Path) -> None:
    with assay.Workspace.open(tmp_path / "ws", create=True):
        pass
    client, key = _client_for(tmp_path / "ws", None)
    with client:
        _sign_in(client, key)
        r = client.get("/ui/models")
        assert r.status_code == 200
        assert "No model is registered in this workspace yet" in r.text
        assert client.get("/ui/models/quality/1").status_code == 404


def test_rollout_page_shows_its_transitions_and_its_gates_now(
    admin: TestClient, trained: Path
) -> None:
    from assay.rollout import RolloutStore, evaluate

    with assay.Workspace.open(trained) as ws:
        store = RolloutStore(ws.meta, clock=lambda: dt.datetime(2026, 1, 20, tzinfo=dt.UTC))
        started = store.start(field="prompt_template", stable="rag-v2", candidate="rag-v3")
        store.pause(started.id, "checking by hand")
        judged = evaluate(ws, started.id)
    page = admin.get(f"/ui/rollouts/{started.id}")
    assert page.status_code == 200
    assert 'id="rollout-state">paused<' in page.text
    transitions = page.text.split('id="transitions"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>", transitions)
    assert rows == [("", "canary"), ("canary", "paused")]
    assert "checking by hand" in transitions
    gates = page.text.split('id="gates"')[1].split("</table>")[0]
    counts = re.findall(r'<td class="num">(\d+) / (\d+)</td>', gates)
    expected = [
        pair
        for g in judged.gates
        for pair in (
            (str(g.stable["events"]), str(g.stable["n"])),
            (str(g.candidate["events"]), str(g.candidate["n"])),
        )
    ]
    assert counts == expected
    assert f"<strong>{judged.verdict}</strong>" in page.text
    listing = admin.get("/ui/models")
    assert f'href="/ui/rollouts/{started.id}"' in listing.text
    assert admin.get("/ui/rollouts/987654").status_code == 404
