"""The CLI through typer's runner, and once as a real subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assay.cli import app

runner = CliRunner()


def _ev(eid: str, day: str, user: str, **kw: Any) -> dict[str, Any]:
    return {
        "event_id": eid,
        "event_time": f"{day}T12:00:00Z",
        "tenant_id": kw.pop("tenant", "acme"),
        "user_id": user,
        "session_id": kw.pop("session", f"s-{user}-{day}"),
        "event_type": kw.pop("event_type", "turn"),
        **kw,
    }


# acme: 2026-03-02 alice+bob, 2026-03-03 nobody, 2026-03-04 alice; beta: 2026-03-04 carol.
EVENTS = [
    _ev("1", "2026-03-02", "alice", locale="en-US", latency_ms=100.0),
    _ev("2", "2026-03-02", "bob", locale="de-DE", latency_ms=300.0),
    _ev("3", "2026-03-02", "bob", event_type="feedback", feedback=-1),
    _ev("4", "2026-03-04", "alice", locale="en-US", latency_ms=200.0),
    _ev("5", "2026-03-04", "carol", tenant="beta"),
]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    src = tmp_path / "events.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    root = tmp_path / "ws"
    result = runner.invoke(app, ["ingest", str(src), "--workspace", str(root)])
    assert result.exit_code == 0, result.output
    return root


def _json(args: list[str]) -> list[dict[str, Any]]:
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def test_init_reports_where_the_workspace_is(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", "--workspace", str(tmp_path / "w")])
    assert result.exit_code == 0
    assert f"workspace created {tmp_path / 'w'}" in result.stderr
    assert (tmp_path / "w" / "assay.toml").exists()


def test_ingest_creates_a_missing_workspace_and_summarises(tmp_path: Path) -> None:
    src = tmp_path / "e.jsonl"
    src.write_text(json.dumps(_ev("1", "2026-03-02", "u")) + "\n")
    result = runner.invoke(
        app, ["ingest", str(src), "--workspace", str(tmp_path / "new"), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert "created a new workspace" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["totals"] == {
        "read": 1,
        "accepted": 1,
        "duplicate": 0,
        "conflicting": 0,
        "rejected": 0,
        "failed_files": 0,
    }
    assert summary["files"][0]["source"] == str(src)


def test_ingest_exit_codes(tmp_path: Path, ws: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_ev("9", "2026-03-02", "u", event_type="oops")) + "\n")
    result = runner.invoke(app, ["ingest", str(bad), "--workspace", str(ws)])
    assert result.exit_code == 1
    assert "event_type broke choice" in result.stderr
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope"), "--workspace", str(ws)])
    assert missing.exit_code == 2
    assert "no such file or folder" in missing.stderr
    assert "Traceback" not in missing.output
    usage = runner.invoke(app, ["ingest", str(bad), "--format", "xml", "--workspace", str(ws)])
    assert usage.exit_code == 2
    lateness = runner.invoke(
        app, ["ingest", str(bad), "--max-lateness", "soon", "--workspace", str(ws)]
    )
    assert lateness.exit_code == 2
    assert "duration like 90s" in lateness.stderr


def test_metrics_dau_json_has_contract_columns_and_zero_days(ws: Path) -> None:
    rows = _json(["metrics", "dau", "--workspace", str(ws)])
    assert rows == [
        {"tenant_id": "acme", "day": "2026-03-02", "dau": 2},
        {"tenant_id": "acme", "day": "2026-03-03", "dau": 0},
        {"tenant_id": "acme", "day": "2026-03-04", "dau": 1},
        {"tenant_id": "beta", "day": "2026-03-04", "dau": 1},
    ]


@pytest.mark.parametrize(
    ("metric", "extra", "columns"),
    [
        ("active", ["--window", "2"], ["tenant_id", "day", "window", "active_users"]),
        (
            "rolling",
            ["--window", "1", "--threshold", "0.5"],
            ["tenant_id", "day", "dau", "dau_avg", "dau_prev_avg", "drop"],
        ),
        ("max-active", ["--window", "2"], ["tenant_id", "window", "max_active", "window_start"]),
        ("retention", [], ["tenant_id", "cohort_week", "week", "users", "retained", "rate"]),
        (
            "sessions",
            [],
            [
                "tenant_id",
                "day",
                "sessions",
                "turns",
                "turns_per_session",
                "handoff_rate",
                "thumbs_down_rate",
                "error_rate",
                "latency_p50",
                "latency_p95",
                "latency_p99",
                "tokens_in",
                "tokens_out",
                "cost_usd",
            ],
        ),
    ],
)
def test_every_metric_prints_its_contract_columns(
    ws: Path, metric: str, extra: list[str], columns: list[str]
) -> None:
    rows = _json(["metrics", metric, *extra, "--workspace", str(ws), "--tenant", "acme"])
    assert rows
    assert all(list(r) == columns for r in rows)
    assert all(r["tenant_id"] == "acme" for r in rows)


def test_hand_worked_values_through_the_cli(ws: Path) -> None:
    active = _json(
        ["metrics", "active", "--window", "2", "--workspace", str(ws), "--tenant", "acme"]
    )
    assert [r["active_users"] for r in active] == [2, 2, 1]
    rolling = _json(
        [
            "metrics",
            "rolling",
            "--window",
            "1",
            "--threshold",
            "0.5",
            "--workspace",
            str(ws),
            "--tenant",
            "acme",
        ]
    )
    assert [(r["dau_prev_avg"], r["drop"]) for r in rolling] == [
        (None, False),
        (2.0, True),
        (0.0, False),
    ]
    best = _json(["metrics", "max-active", "--window", "2", "--workspace", str(ws)])
    assert best[0] == {
        "tenant_id": "acme",
        "window": 2,
        "max_active": 2,
        "window_start": "2026-03-02",
    }
    sessions = _json(["metrics", "sessions", "--workspace", str(ws), "--tenant", "acme"])
    first = sessions[0]
    assert (first["sessions"], first["turns"], first["thumbs_down_rate"]) == (2, 2, 1.0)
    assert first["latency_p50"] == pytest.approx(200.0)
    assert first["latency_p95"] == pytest.approx(290.0)


def test_by_slice_column_follows_tenant_id(ws: Path) -> None:
    rows = _json(["metrics", "dau", "--by", "locale", "--workspace", str(ws), "--tenant", "acme"])
    assert list(rows[0]) == ["tenant_id", "locale", "day", "dau"]
    de = [r for r in rows if r["locale"] == "de-DE"]
    # The slice's grid runs from its first active day to the last event day, zeros included.
    assert [(r["day"], r["dau"]) for r in de] == [
        ("2026-03-02", 1),
        ("2026-03-03", 0),
        ("2026-03-04", 0),
    ]


def test_csv_output_has_a_header(ws: Path) -> None:
    result = runner.invoke(app, ["metrics", "dau", "--workspace", str(ws), "--format", "csv"])
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["tenant_id", "day", "dau"]
    assert rows[1] == ["acme", "2026-03-02", "2"]


def test_bad_dates_and_missing_workspaces_are_usage_errors(tmp_path: Path, ws: Path) -> None:
    bad = runner.invoke(app, ["metrics", "dau", "--since", "03/02/2026", "--workspace", str(ws)])
    assert bad.exit_code == 2
    assert "--since must be a date YYYY-MM-DD" in bad.stderr
    missing = runner.invoke(app, ["metrics", "dau", "--workspace", str(tmp_path / "none")])
    assert missing.exit_code == 2
    assert "assay init" in missing.stderr


def test_forget_reports_counts(ws: Path) -> None:
    result = runner.invoke(
        app, ["forget", "--tenant", "acme", "--user", "bob", "--workspace", str(ws), "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"events": 2, "content": 0, "quarantine": 0}
    rows = _json(["metrics", "dau", "--workspace", str(ws), "--tenant", "acme"])
    assert [r["dau"] for r in rows] == [1, 0, 1]


def test_synth_is_deterministic(tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        args = ["synth", "--tenants", "2", "--users", "10", "--days", "3", "--seed", "5"]
        result = runner.invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 0, result.output
        outs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outs[0] == outs[1]
    assert "truth.json" in outs[0]


def test_the_installed_command_runs_as_a_subprocess(ws: Path) -> None:
    exe = Path(sys.executable).parent / "assay"
    cmd = (
        [str(exe)] if exe.exists() else [sys.executable, "-c", "from assay.cli import main; main()"]
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [*cmd, "metrics", "dau", "--workspace", str(ws), "--tenant", "beta", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"tenant_id": "beta", "day": "2026-03-04", "dau": 1}]
    piped = subprocess.run(
        [*cmd, "metrics", "dau", "--workspace", str(ws), "--tenant", "beta"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert piped.stdout.splitlines()[0].split() == ["tenant_id", "day", "dau"]
