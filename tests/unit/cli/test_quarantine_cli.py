"""`assay quarantine list`: the quarantined rows, redacted, as stored (issue 18, item 11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from assay.cli import app

runner = CliRunner()


def _event(eid: str, tenant: str, **kw: Any) -> dict[str, Any]:
    return {
        "event_id": eid,
        "event_time": "2026-03-02T12:00:00Z",
        "tenant_id": tenant,
        "user_id": "alice",
        "session_id": "s1",
        "event_type": "turn",
        **kw,
    }


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("quarantine")
    lines = [
        _event("ok", "acme"),
        _event("bad-type", "acme", event_type="click", text="mail carol@example.com"),
        _event("bad-rating", "acme", rating=9),
        _event("bad-latency", "beta", latency_ms=-1),
    ]
    src = root / "events.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in lines))
    result = runner.invoke(app, ["ingest", str(src), "--workspace", str(root / "ws")])
    assert result.exit_code == 1, result.output  # rows rejected
    return root / "ws"


def _list(ws: Path, *args: str) -> list[dict[str, Any]]:
    result = runner.invoke(app, ["quarantine", "list", *args, "-w", str(ws), "-f", "json"])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_lists_the_stored_rows_newest_first_redacted(ws: Path) -> None:
    stored = DeltaTable(str(ws / "quarantine")).to_pyarrow_table().to_pylist()
    rows = _list(ws)
    assert sorted(r["event_id"] for r in rows) == ["bad-latency", "bad-rating", "bad-type"]
    assert sorted(r["event_id"] for r in rows) == sorted(r["event_id"] for r in stored)
    by_id = {r["event_id"]: r for r in stored}
    for row in rows:
        assert set(row) == set(by_id[row["event_id"]]) - {"quarantine_date"}
        assert row["rule"] == by_id[row["event_id"]]["rule"]
        assert row["user_id"] == by_id[row["event_id"]]["user_id"] != "alice"
    assert [r["quarantined_at"] for r in rows] == sorted(
        (r["quarantined_at"] for r in rows), reverse=True
    )
    assert "carol@example.com" not in json.dumps(rows)


def test_tenant_and_limit_filter(ws: Path) -> None:
    assert [r["event_id"] for r in _list(ws, "--tenant", "beta")] == ["bad-latency"]
    assert {r["tenant_id"] for r in _list(ws, "--tenant", "acme")} == {"acme"}
    assert len(_list(ws, "--limit", "1")) == 1


def test_an_unknown_tenant_is_exit_2(ws: Path) -> None:
    result = runner.invoke(app, ["quarantine", "list", "--tenant", "acm", "-w", str(ws)])
    assert result.exit_code == 2
    assert "did you mean acme?" in result.stderr
