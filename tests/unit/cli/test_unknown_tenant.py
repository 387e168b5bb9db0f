"""An unknown --tenant is exit code 2 with the closest known tenants, in every command that
takes one (issue 18, item 9); a known tenant with nothing to show is not an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("unknown-tenant")
    events = [
        {
            "event_id": f"{tenant}-{day}-{user}",
            "event_time": f"2026-03-{day:02d}T12:00:00Z",
            "tenant_id": tenant,
            "user_id": f"u{user}",
            "session_id": f"s{day}-{user}",
            "event_type": "turn",
            "locale": "en-US",
        }
        for tenant in ("tenant-001", "tenant-002", "acme")
        for day in range(1, 11)
        for user in range(3)
    ]
    src = root / "events.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    result = runner.invoke(app, ["ingest", str(src), "--workspace", str(root / "ws")])
    assert result.exit_code == 0, result.output
    return root / "ws"


COMMANDS = [
    ["metrics", "dau"],
    ["metrics", "active"],
    ["metrics", "rolling"],
    ["metrics", "max-active"],
    ["metrics", "retention"],
    ["metrics", "sessions"],
    ["metrics", "health"],
    ["explain", "--metric", "dau", "--day", "2026-03-10"],
    ["drift", "--reference", "2026-03-01..2026-03-05", "--target", "2026-03-06..2026-03-10"],
    ["incidents", "list"],
    ["profile", "reference", "save", "ref1", "--since", "2026-03-01", "--until", "2026-03-05"],
    ["forget"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_unknown_tenant_is_exit_2_with_the_closest_known_ones(
    ws: Path, command: list[str]
) -> None:
    result = runner.invoke(app, [*command, "--tenant", "tenant-01", "--workspace", str(ws)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert "no tenant 'tenant-01'" in result.stderr
    assert "did you mean tenant-001 or tenant-002?" in result.stderr
    assert "`assay tenants`" in result.stderr


def test_tenants_lists_the_tenants_with_events(ws: Path) -> None:
    result = runner.invoke(app, ["tenants", "--workspace", str(ws), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"tenant_id": "acme"},
        {"tenant_id": "tenant-001"},
        {"tenant_id": "tenant-002"},
    ]


def test_a_known_tenant_without_incidents_lists_none(ws: Path) -> None:
    args = ["incidents", "list", "--tenant", "acme", "--workspace", str(ws), "-f", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


def test_forgetting_an_unknown_user_of_a_known_tenant_is_not_an_error(ws: Path) -> None:
    args = ["forget", "--tenant", "acme", "--user", "nobody", "--workspace", str(ws), "-f", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"events": 0, "content": 0, "quarantine": 0}
