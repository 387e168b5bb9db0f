"""`assay rollout ...` through typer's runner: start, status, pause, resume, abort, list,
evaluate, and the errors a user meets."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from regressed_data import regressed_events

from assay.cli import app
from assay.cli._common import EXIT_FINDINGS, EXIT_USAGE

runner = CliRunner()
RELEASE = ["--release", "model_version=v2", "--stable", "model_version=v1"]


def _run(ws: Path, *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, [*args, "--workspace", str(ws)])
    assert result.exit_code == code, result.output
    return result


def _status(ws: Path, rollout_id: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(_run(ws, "rollout", "status", rollout_id, "-f", "json").stdout)
    return out


def _events(tmp_path: Path) -> Path:
    """Three sessions on v1 (one handed off) and two on v2 (both handed off), one tenant,
    locale and platform, a minute ago (after the rollout starts on the same day)."""
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat(timespec="seconds")
    rows = []
    for i, (version, handed) in enumerate(
        [("v1", True), ("v1", False), ("v1", False), ("v2", True), ("v2", True)]
    ):
        base = {
            "event_time": when,
            "tenant_id": "acme",
            "user_id": f"u{i}",
            "session_id": f"s{i}",
            "model_version": version,
            "locale": "en",
            "platform": "web",
        }
        rows.append(base | {"event_id": f"t{i}", "event_type": "turn", "latency_ms": 100.0})
        if handed:
            rows.append(base | {"event_id": f"h{i}", "event_type": "handoff"})
    src = tmp_path / "events.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return src


def test_a_telemetry_rollout_through_its_states(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _run(ws, "init")
    rid = _run(ws, "rollout", "start", *RELEASE, "--steps", "10,100").stdout.strip()
    assert rid == "1"
    got = _status(ws, rid)
    assert (got["state"], got["weight"], got["field"], got["candidate"]) == (
        "canary",
        0.1,
        "model_version",
        "v2",
    )
    _run(ws, "rollout", "pause", rid, "--reason", "weekend")
    assert _status(ws, rid)["state"] == "paused"
    _run(ws, "rollout", "resume", rid)
    _run(ws, "rollout", "abort", rid)
    got = _status(ws, rid)
    assert (got["state"], got["weight"]) == ("aborted", 0.0)
    assert [(h["to_state"], h["reason"]) for h in got["history"]] == [
        ("canary", "start"),
        ("paused", "weekend"),
        ("canary", "resumed by hand"),
        ("aborted", "aborted by hand"),
    ]
    assert json.loads(_run(ws, "rollout", "list", "-f", "json").stdout) == []
    listed = json.loads(_run(ws, "rollout", "list", "--all", "-f", "json").stdout)
    assert [(r["id"], r["state"], r["step"]) for r in listed] == [(1, "aborted", "1/2")]
    again = _run(ws, "rollout", "resume", rid, code=EXIT_USAGE)
    assert "cannot resume rollout 1: it is aborted" in again.output


def test_evaluate_answers_the_verdict_and_gate_rows_as_json(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _run(ws, "ingest", str(_events(tmp_path)))
    rid = _run(ws, "rollout", "start", *RELEASE).stdout.strip()
    out = json.loads(_run(ws, "rollout", "evaluate", rid, "--format", "json").stdout)
    # Three and two sessions: below the default minimum sample (200) in every row.
    assert out["verdict"] == "hold"
    assert list(out) == ["verdict", "gates"]
    assert len(out["gates"]) == 5 * 4  # five default gates on all, tenant, locale, platform
    keys = ["gate", "metric", "slice", "stable", "candidate", "statistic", "decision"]
    assert all(list(g) == keys for g in out["gates"])
    handoff = {g["slice"]: g for g in out["gates"] if g["gate"] == "handoff"}
    assert set(handoff) == {"all", "tenant=acme", "locale=en", "platform=web"}
    assert handoff["all"]["stable"] == {"events": 1, "n": 3, "rate": pytest.approx(1 / 3)}
    assert handoff["all"]["candidate"] == {"events": 2, "n": 2, "rate": 1.0}
    assert {g["decision"] for g in out["gates"]} == {"hold"}
    # hold moves nothing, and exits 0 (the _run above checked the code)
    assert _status(ws, rid)["state"] == "canary"


def test_evaluate_exits_1_on_a_rollback_verdict(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _run(ws, "ingest", str(regressed_events(tmp_path)))
    rid = _run(ws, "rollout", "start", *RELEASE).stdout.strip()
    # --dry-run judges without moving: the same verdict, the same exit code, still live.
    dry = _run(ws, "rollout", "evaluate", rid, "--dry-run", "-f", "json", code=EXIT_FINDINGS)
    assert json.loads(dry.stdout)["verdict"] == "rollback"
    assert _status(ws, rid)["state"] == "canary"
    out = _run(ws, "rollout", "evaluate", rid, "-f", "json", code=EXIT_FINDINGS)
    got = json.loads(out.stdout)
    handoff = next(g for g in got["gates"] if (g["gate"], g["slice"]) == ("handoff", "all"))
    # 4 of 400 sessions handed off on v1, 200 of 400 on v2 (the data's construction).
    assert (handoff["stable"]["events"], handoff["stable"]["n"]) == (4, 400)
    assert (handoff["candidate"]["events"], handoff["candidate"]["n"]) == (200, 400)
    assert handoff["decision"] == "rollback"
    assert _status(ws, rid)["state"] == "rolled_back"
    # A final rollout is judged again by the same data: still rollback, still exit 1.
    _run(ws, "rollout", "evaluate", rid, code=EXIT_FINDINGS)


def test_incidents_and_explain_name_the_rollout_near_them(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _run(ws, "ingest", str(regressed_events(tmp_path)))
    rid = _run(ws, "rollout", "start", *RELEASE).stdout.strip()
    _run(ws, "rollout", "evaluate", rid, code=EXIT_FINDINGS)
    now = dt.datetime.now(dt.UTC)
    today = now.date().isoformat()
    # explain needs a baseline day: one v1 turn the day before.
    before = {"event_id": "y0", "event_type": "turn", "tenant_id": "acme", "user_id": "y",
              "session_id": "y", "model_version": "v1", "locale": "en", "platform": "web",
              "event_time": (now - dt.timedelta(days=1)).isoformat(timespec="seconds")}  # fmt: skip
    (tmp_path / "before.jsonl").write_text(json.dumps(before) + "\n")
    _run(ws, "ingest", str(tmp_path / "before.jsonl"))
    # The incident the rollback opened lists the rollout's start and rollback.
    shown = json.loads(_run(ws, "incidents", "show", "1", "-f", "json").stdout)
    moves = [(m["event"], m["field"], m["value"], m["first_seen"]) for m in shown["rollout_events"]]
    assert moves == [
        ("start", "model_version", "v2", today),
        ("rollback", "model_version", "v2", today),
    ]
    table = _run(ws, "incidents", "show", "1").stdout
    assert "rollouts" in table.splitlines()
    # explain lists them among the window's release events, after the day's first sightings.
    args = ["explain", "--metric", "handoff_rate", "--tenant", "acme", "--day", today]
    explained = json.loads(_run(ws, *args, "-f", "json").stdout)
    got = [(r["field"], r["value"], r.get("event")) for r in explained["releases"]]
    assert got == [
        ("model_version", "v1", None),
        ("model_version", "v2", None),
        ("model_version", "v2", "start"),
        ("model_version", "v2", "rollback"),
    ]
    lines = _run(ws, *args).stdout.splitlines()
    at = lines.index("release events")
    assert lines[at + 1].split() == [
        "field",
        "value",
        "first_seen",
        "days_before",
        "source",
        "event",
    ]
    yesterday = (now - dt.timedelta(days=1)).date().isoformat()
    first_v1 = ["model_version", "v1", yesterday, "1", "telemetry", "first", "seen"]
    assert lines[at + 2].split() == first_v1
    assert lines[at + 5].split() == ["model_version", "v2", today, "0", "rollout", "rollback"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rollout", "start"], "either NAME --candidate VERSION"),
        (["rollout", "start", "intent"], "--candidate VERSION is needed"),
        (["rollout", "start", "--release", "model_version=v2"], "needs --stable FIELD=VALUE"),
        (
            ["rollout", "start", "--release", "flight=a", "--stable", "model_version=v1"],
            "must name the same field",
        ),
        (["rollout", "start", *RELEASE, "--steps", "1,5"], "ending at 100"),
        (["rollout", "start", *RELEASE, "--step-duration", "soon"], "--step-duration must be"),
        (["rollout", "status", "4"], "no rollout 4"),
    ],
)
def test_user_errors_exit_with_a_message(tmp_path: Path, args: list[str], message: str) -> None:
    ws = tmp_path / "ws"
    _run(ws, "init")
    result = _run(ws, *args, code=EXIT_USAGE)
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_bad_gates_file_is_refused_before_anything_starts(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _run(ws, "init")
    gates = tmp_path / "gates.toml"
    gates.write_text('[[gate]]\nname = "x"\nmetric = "dau"\n')
    result = _run(ws, "rollout", "start", *RELEASE, "--gates", str(gates), code=EXIT_USAGE)
    assert "gate 1 (x): metric must be one of" in result.output
    assert json.loads(_run(ws, "rollout", "list", "--all", "-f", "json").stdout) == []


class FakeRegistry:
    """The registry's answers for two models: intent (champion 3, versions 3 and 4) and
    plain (versions 1 and 2, no champion)."""

    def __init__(self, path: Path, uri: str = "") -> None:
        pass

    def resolve(self, ref: str) -> Any:
        from assay.models import VersionRef

        known = {
            "intent": VersionRef("intent", 3, ("champion",)),
            "intent/3": VersionRef("intent", 3, ("champion",)),
            "intent/4": VersionRef("intent", 4, ()),
            "plain": VersionRef("plain", 2, ()),
            "plain/2": VersionRef("plain", 2, ()),
        }
        return known[ref]


def test_a_served_rollout_replaces_the_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import assay.models

    monkeypatch.setattr(assay.models, "Registry", FakeRegistry)
    ws = tmp_path / "ws"
    _run(ws, "init")
    rid = _run(ws, "rollout", "start", "intent", "--candidate", "4", "--shadow", "30m").stdout
    got = _status(ws, rid.strip())
    assert (got["kind"], got["model"], got["stable"], got["candidate"]) == (
        "served",
        "intent",
        "3",
        "4",
    )
    assert (got["state"], got["weight"], got["shadow_seconds"]) == ("shadow", 0.0, 1800.0)
    refused = _run(ws, "rollout", "start", "plain", "--candidate", "2", code=EXIT_USAGE)
    assert "model 'plain' has no champion" in refused.output


def test_start_and_status_as_a_subprocess(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "assay"
    cmd = (
        [str(exe)] if exe.exists() else [sys.executable, "-c", "from assay.cli import main; main()"]
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    ws = str(tmp_path / "ws")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cmd, *args, "--workspace", ws], capture_output=True, text=True, env=env,
            timeout=120, check=False,
        )  # fmt: skip

    assert run("init").returncode == 0
    started = run("rollout", "start", "--release", "flight=new", "--stable", "flight=old")
    assert (started.returncode, started.stdout) == (0, "1\n"), started.stderr
    status = run("rollout", "status", "1", "--format", "json")
    got = json.loads(status.stdout)
    assert (got["field"], got["stable"], got["candidate"], got["weight"]) == (
        "flight", "old", "new", 0.01,
    )  # fmt: skip
