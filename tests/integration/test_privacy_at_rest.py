"""Acceptance: PII sent in texts, attributes and bad rows is found nowhere under the workspace,
and after `forget` the forgotten user's pseudonym is found nowhere either."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
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


# -- every quarantine path, read back with pyarrow ------------------------------------------

RAW_ID = "rawuser-priv-4242"
RAW_SESSION = "rawsess-priv-77"
BIG = 17 * 1024 * 1024  # over the 16 MiB line limit


def _event(event_id: str, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id,
        "event_time": "2026-02-01T12:00:00Z",
        "tenant_id": "acme",
        "user_id": RAW_ID,
        "session_id": RAW_SESSION,
        "event_type": "turn",
    }
    event.update(fields)
    return event


def _raw_line(event_id: str, tail: str = "") -> str:
    """An event's JSON text without its closing brace, ``tail`` appended inside the object."""
    return json.dumps(_event(event_id))[:-1] + tail


#: One JSON Lines record per quarantine path of a file, each holding the raw ids.
JSONL_PATHS: dict[str, bytes] = {
    "repeated_key": (_raw_line("q-dup", f', "user_id": "{RAW_ID}"') + "}").encode(),
    "invalid_utf8": (_raw_line("q-utf8", ', "text": "caf') + '\xff"}').encode("latin-1"),
    "not_object": ("[" + json.dumps(_event("q-array")) + "]").encode(),
    "not_json": _raw_line("q-broken", ', "text": "unterminated').encode(),
    "over_long": (_raw_line("q-long", ', "text": "') + "x" * BIG + '"}').encode(),
    "depth_bomb": (
        _raw_line("q-deep", ', "attributes": ') + "[" * 10**5 + "]" * 10**5 + "}"
    ).encode(),
    "invalid_event": json.dumps(_event("q-type", event_type="nope")).encode(),
    "unknown_field_holding_the_id": json.dumps(_event("q-unknown", userid=RAW_ID)).encode(),
}
CSV_HEADER = b"event_id,event_time,tenant_id,user_id,session_id,event_type,text"
_CSV_IDS = f"2026-02-01T12:00:00Z,acme,{RAW_ID},{RAW_SESSION}"
CSV_PATHS: dict[str, bytes] = {
    "csv_not_utf8": f"c-utf8,{_CSV_IDS},turn,caf".encode() + b"\xe9",
    "csv_cells": f"c-cells,{_CSV_IDS}".encode(),
    "csv_invalid_event": f"c-type,{_CSV_IDS},nope,hi".encode(),
}


def _parquet_text(root: Path) -> str:
    """Every Parquet file under the workspace (all tables, any version), read with pyarrow."""
    chunks = []
    files = sorted(root.rglob("*.parquet"))
    assert files
    for path in files:
        table = pq.ParquetFile(path).read()
        chunks.append(json.dumps(table.to_pylist(), default=str, ensure_ascii=False))
    return "\n".join(chunks)


def test_no_quarantine_path_keeps_a_raw_id_and_forget_leaves_none(tmp_path: Path) -> None:
    good = [json.dumps(_event(f"g{i}", text="hello")).encode() for i in range(3)]
    other = json.dumps(_event("o1", user_id="someone-else", session_id="s-other")).encode()
    lines = [good[0], *JSONL_PATHS.values(), good[1], good[2], other]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    csv_rows = [CSV_HEADER, *CSV_PATHS.values(), b"c-good,2026-02-01T12:00:00Z,acme,x,s,turn,hi"]
    (tmp_path / "in" / "b.csv").write_bytes(b"\n".join(csv_rows) + b"\n")
    root = tmp_path / "ws"
    # A child process: the depth bomb used to kill the reader with SIGSEGV.
    cli = [sys.executable, "-c", "from assay.cli import main; main()"]
    done = subprocess.run(
        [*cli, "ingest", str(tmp_path / "in"), "--workspace", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])  # 1: rows rejected
    assert RAW_ID not in done.stdout + done.stderr
    with Workspace.open(root) as ws:
        assert ws.read("events").num_rows == 5  # g0-g2, o1, c-good
        quarantine = ws.read("quarantine")
        rules = ["json", "utf8", "not_object", "json", "size", "depth", "choice"]
        rules += ["unknown_field", "utf8", "csv", "choice"]
        assert sorted(quarantine.column("rule").to_pylist()) == sorted(rules)
        pseudonym = ws.pseudonym("acme", RAW_ID)
        linked = quarantine.filter(pa.compute.equal(quarantine["user_id"], pseudonym)).num_rows

    stored = _parquet_text(root)
    assert RAW_ID not in stored
    assert pseudonym in stored  # the ids are there as pseudonyms: the check above can fail
    # Unparsed records keep no text at all: not the raw session id either.
    unparsed = [r for r in quarantine.to_pylist() if r["user_id"] is None]
    assert len(unparsed) == 8
    assert all(json.loads(r["row"]).keys() == {"unparsed", "bytes"} for r in unparsed)
    assert not any(RAW_SESSION in json.dumps(r, default=str) for r in unparsed)

    with Workspace.open(root) as ws:
        forgot = ws.forget("acme", RAW_ID)
        assert (forgot.events, forgot.content, forgot.quarantine) == (3, 3, linked)
        assert linked == 3  # the three parsed rows: invalid event, unknown field, CSV invalid
    after = _parquet_text(root)
    assert RAW_ID not in after
    assert pseudonym not in after
    assert RAW_SESSION not in after
    with Workspace.open(root) as ws:  # the other user's event and the CSV one stay
        assert sorted(ws.read("events").column("event_id").to_pylist()) == ["c-good", "o1"]


# -- names of unknown fields ----------------------------------------------------------------

EMAIL_KEY = "carol@example.com"
CARD_KEY = "4111 1111 1111 1111"


def test_unknown_field_names_are_redacted_in_the_cli_summary_and_the_quarantine(
    tmp_path: Path,
) -> None:
    rows = [
        _event("n1", **{EMAIL_KEY: "value-n1"}),
        _event("n2", **{CARD_KEY: "value-n2"}),
        _event("n3", **{"userId": "value-n3"}),
    ]
    src = tmp_path / "names.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    root = tmp_path / "ws"
    result = CliRunner().invoke(app, ["ingest", str(src), "--workspace", str(root)])
    assert result.exit_code == 1, result.output
    assert EMAIL_KEY not in result.output
    assert "4111" not in result.output
    with Workspace.open(root) as ws:
        q = ws.read("quarantine").to_pylist()
        # What the CLI prints per rule: the counts keyed by field, names redacted.
        again = ingest_paths(ws, [src])
    assert again.files[0].as_dict()["rules"] == {
        "<EMAIL>:unknown_field": 1,
        "<CARD>:unknown_field": 1,
        "userId:unknown_field": 1,
    }
    by_event = {r["event_id"]: r for r in q}
    assert {k: (r["field"], r["rule"]) for k, r in by_event.items()} == {
        "n1": ("<EMAIL>", "unknown_field"),
        "n2": ("<CARD>", "unknown_field"),
        "n3": ("userId", "unknown_field"),
    }
    assert "<EMAIL>" in by_event["n1"]["message"]
    # The row keeps the (redacted) name; the unknown field's value is never stored.
    assert json.loads(by_event["n1"]["row"])["<EMAIL>"] == "<WITHHELD>"
    assert json.loads(by_event["n3"]["row"])["userId"] == "<WITHHELD>"
    stored = _parquet_text(root)
    for secret in (EMAIL_KEY, CARD_KEY, "value-n1", "value-n2", "value-n3"):
        assert secret not in stored
