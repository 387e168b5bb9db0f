"""`assay launch check|sign` through typer's runner (and once as a subprocess): the check exits
1 while blocked and 0 after an approving sign-off, a reject blocks it again, a failing blocking
criterion blocks an approved version, user errors exit 2 without a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "rollout"))

from launch_data import QUALITY_EVALUATION, new_workspace, register

import assay
from assay.cli import app
from assay.models import Registry
from assay.models._lifecycle import registry

runner = CliRunner()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace = new_workspace(tmp_path_factory.mktemp("launch-cli"))
    try:
        register(workspace, "quality", QUALITY_EVALUATION)
        register(workspace, "quality", QUALITY_EVALUATION)
        return Path(workspace.path)
    finally:
        workspace.close()


def _check(ws: Path, version: int, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["launch", "check", "quality", str(version), "-w", str(ws), *extra])
    return result.exit_code, result.stdout


def _sign(ws: Path, version: int, by: str, decision: str, *extra: str) -> int:
    args = ["launch", "sign", "quality", str(version), "--by", by, "--decision", decision]
    return runner.invoke(app, [*args, "-w", str(ws), *extra]).exit_code


def test_check_blocks_until_approved_and_a_reject_blocks_again(ws: Path) -> None:
    code, out = _check(ws, 1)
    assert code == 1
    assert "[PASS] thumbs_down_recall: operating_point_recall = 0.3 (30/100)" in out
    assert "blocked: no sign-off yet" in out
    assert _sign(ws, 1, "ana", "approve", "--notes", "looked at de-DE") == 0
    code, out = _check(ws, 1)
    assert code == 0
    assert out.splitlines()[-1] == "ready"
    assert "[PASS] sign-off: approve by ana at " in out
    assert _sign(ws, 1, "ben", "reject") == 0
    code, out = _check(ws, 1, "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert data["ready"] is False
    assert data["signoff"]["by"] == "ben"
    assert [s["decision"] for s in data["signoffs"]] == ["approve", "reject"]
    # The card and the check were written next to the model by the (recording) check.
    reg = registry_of(ws)
    run_id = reg.show("quality/1")["run_id"]
    names = {a.path for a in reg.client.list_artifacts(run_id, "model_card")}
    assert names == {"model_card/model_card.md", "model_card/model_card.html"}


def registry_of(ws: Path) -> Registry:
    with assay.Workspace.open(ws) as opened:
        return registry(opened)


def test_a_failing_blocking_criterion_blocks_an_approved_version(ws: Path, tmp_path: Path) -> None:
    assert _sign(ws, 2, "ana", "approve") == 0
    assert _check(ws, 2, "--dry-run")[0] == 0
    policy = tmp_path / "strict.toml"
    policy.write_text(
        "[[criteria]]\nname = 'recall'\nmetric = 'operating_point_recall'\nmin = 0.25\n"
    )
    code, out = _check(ws, 2, "--dry-run", "--policy", str(policy))
    assert code == 1
    assert "[FAIL] recall: operating_point_recall = 0.3 (30/100)" in out
    assert "blocked: criterion recall fails" in out


def test_user_errors_exit_2_with_a_message(ws: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["launch", "sign", "quality", "1", "--by", "a", "--decision", "maybe", "-w", str(ws)]
    )
    assert result.exit_code == 2
    result = runner.invoke(app, ["launch", "check", "nope", "1", "-w", str(ws)])
    assert result.exit_code == 2
    assert "no registered model 'nope'" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[[criteria]]\nname = 'x'\nmetric = 'auc'\nmin = 1\n")
    result = runner.invoke(
        app, ["launch", "check", "quality", "1", "--policy", str(bad), "-w", str(ws)]
    )
    assert result.exit_code == 2
    assert "metric must be one of" in result.stderr
    assert "Traceback" not in result.output


def test_check_as_a_subprocess_exits_1_when_blocked(tmp_path: Path) -> None:
    workspace = new_workspace(tmp_path)
    try:
        register(workspace, "solo", QUALITY_EVALUATION)
    finally:
        workspace.close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3] / "src")}
    command = [sys.executable, "-c", "from assay.cli import main; main()"]
    done = subprocess.run(
        [*command, "launch", "check", "solo", "1", "-w", str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "blocked: no sign-off yet"
