"""Names of unknown fields over HTTP: the answer and the quarantine hold them redacted.

A key can be anything a client sends (``"carol@example.com": 1``, a card number); the answer
names the field that broke a rule and may end up in the client's logs, and the quarantine
stores it. Both must hold it redacted, like any other text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from assay.service import create_app
from assay.store import Settings, Workspace

TENANT = "acme"


@pytest.fixture
def client_and_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, str, Path]]:
    for name in [n for n in os.environ if n.startswith("ASSAY_")]:
        monkeypatch.delenv(name)
    root = tmp_path / "ws"
    with Workspace.init(root) as ws:
        _, key = ws.keys.create(tenant_id=TENANT, scopes=("ingest", "read"))
    settings = Settings.from_mapping({"http_fsync": False})
    (root / "assay.toml").write_text(settings.to_toml(), encoding="utf-8")
    with TestClient(create_app(root), raise_server_exceptions=False) as client:
        yield client, key, root


def _event(event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_time": (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tenant_id": TENANT,
        "user_id": "u-1",
        "session_id": "s-1",
        "event_type": "turn",
        **extra,
    }


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_an_unknown_field_named_like_pii_is_answered_and_stored_redacted(
    client_and_root: tuple[TestClient, str, Path], content_type: str
) -> None:
    client, key, root = client_and_root
    events = [
        _event("k1", **{"carol@example.com": "x"}),
        _event("k2", **{"4111 1111 1111 1111": "y"}),
        _event("k3"),
    ]
    if content_type == "application/json":
        body = json.dumps(events).encode()
    else:
        body = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    answer = client.post(
        "/v1/events",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
    )
    assert answer.status_code == 207, answer.text
    assert "carol@example.com" not in answer.text
    assert "4111" not in answer.text
    results = answer.json()["results"]
    assert [(r["status"], (r["error"] or {}).get("field")) for r in results] == [
        ("rejected", "<EMAIL>"),
        ("rejected", "<CARD>"),
        ("accepted", None),
    ]
    assert results[0]["error"]["rule"] == "unknown_field"
    assert "<EMAIL>" in results[0]["error"]["message"]

    files = sorted((root / "quarantine").rglob("*.parquet"))
    rows = [row for path in files for row in pq.ParquetFile(path).read().to_pylist()]
    assert sorted(r["field"] for r in rows) == ["<CARD>", "<EMAIL>"]
    text = json.dumps(rows, default=str)
    assert "carol@example.com" not in text
    assert "4111" not in text
