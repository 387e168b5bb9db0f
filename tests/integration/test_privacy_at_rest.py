"""Acceptance: PII sent in texts, attributes and bad rows is found nowhere under the workspace,
and after `forget` the forgotten user's pseudonym is found nowhere either."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from assay import Workspace
from assay.cli import app
from assay.ingest import ingest_paths

PII = [
    "jane.doe@example.com",
    "+44 20 7946 0958",
    "(415) 555-0132",
    "4111 1111 1111 1111",  # Luhn-valid test card
    "5500-0000-0000-0004",
    "DE89370400440532013000",
    "GB82 WEST 1234 5698 7654 32",
    "192.168.17.42",
    "2001:db8::8a2e:370:7334",
    "123-45-6789",
]
RAW_USER = "alice.smith.raw.user.id"


def _events() -> list[str]:
    lines = []
    for i, pii in enumerate(PII):
        good = {
            "event_id": f"p{i}",
            "event_time": "2026-02-01T12:00:00Z",
            "tenant_id": "acme",
            "user_id": RAW_USER if i % 2 else f"other-{i}",
            "session_id": f"s{i}",
            "event_type": "turn",
            "text": f"please contact me at {pii} thanks",
            "attributes": {"note": f"reach {pii}"},
            "error_code": f"E {pii}" if i == 0 else None,
        }
        lines.append(json.dumps({k: v for k, v in good.items() if v is not None}))
        bad = dict(good, event_id=f"b{i}", event_type="nope")  # rejected: choice
        lines.append(json.dumps(bad))
        lines.append(f'{{"event_id": "broken{i}", "text": "{pii}"')  # unparseable line
    return lines


def _all_text_under(root: Path) -> str:
    """Every table read back, plus every file as bytes (decoded leniently)."""
    chunks: list[str] = []
    with Workspace.open(root) as ws:
        for name in ("events", "content", "quarantine"):
            table: pa.Table = ws.read(name)  # type: ignore[arg-type]
            chunks.append(json.dumps(table.to_pylist(), default=str, ensure_ascii=False))
    for path in root.rglob("*"):
        if path.is_file():
            chunks.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(chunks)


def _variants(pii: str) -> list[str]:
    compact = pii.replace(" ", "").replace("-", "")
    return [pii, compact] if len(compact) >= 9 else [pii]


def test_no_pii_or_raw_user_id_anywhere_after_ingest_or_forget(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = tmp_path / "pii.jsonl"
    src.write_text("\n".join(_events()) + "\n")
    root = tmp_path / "ws"
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(src), "--workspace", str(root)])
    assert result.exit_code == 1, result.output  # rows were rejected
    with Workspace.open(root) as ws:
        assert ws.read("events").num_rows == len(PII)
        assert ws.read("quarantine").num_rows == 2 * len(PII)
        content = ws.read("content").column("text").to_pylist()
        assert all("please contact me at <" in t for t in content)
        pseudonym = ws.pseudonym("acme", RAW_USER)

    everything = _all_text_under(root) + caplog.text + result.output
    for pii in PII:
        for form in _variants(pii):
            assert form not in everything, f"PII {form!r} found at rest"
    assert RAW_USER not in everything
    assert pseudonym in everything  # stored as its pseudonym, so the next check means something

    forgot = runner.invoke(
        app, ["forget", "--tenant", "acme", "--user", RAW_USER, "--workspace", str(root)]
    )
    assert forgot.exit_code == 0, forgot.output
    after = _all_text_under(root)
    assert pseudonym not in after
    with Workspace.open(root) as ws:
        remaining = ws.read("events").column("user_id").to_pylist()
        assert len(remaining) == len(PII) - len(PII) // 2
        assert ws.read("quarantine").num_rows == 2 * len(PII) - len(PII) // 2
        assert ws.read("content").num_rows == len(remaining)


def test_forget_a_tenant_removes_all_of_it(tmp_path: Path) -> None:
    src = tmp_path / "e.jsonl"
    rows: list[dict[str, Any]] = [
        {
            "event_id": f"e{i}",
            "event_time": f"2026-02-0{1 + i % 3}T12:00:00Z",
            "tenant_id": "gone" if i % 2 else "stays",
            "user_id": f"u{i}",
            "session_id": "s",
            "event_type": "turn",
            "text": "hello",
        }
        for i in range(12)
    ]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with Workspace.open(tmp_path / "ws", create=True) as ws:
        ingest_paths(ws, [src])
        result = ws.forget("gone")
        assert (result.events, result.content) == (6, 6)
        assert set(ws.read("events").column("tenant_id").to_pylist()) == {"stays"}
        assert ws.tenants() == ["stays"]
        # The erased events can be sent again and are then new, not duplicates.
        again = ingest_paths(ws, [src])
        assert (again.total("accepted"), again.total("duplicate")) == (6, 6)
