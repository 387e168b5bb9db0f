"""`assay serve` refuses clearly, before starting, what it cannot serve."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from assay.cli import app
from assay.store import Workspace

runner = CliRunner()


def test_serve_without_a_workspace_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "-w", str(tmp_path / "none"), "--port", "0"])
    assert result.exit_code == 2
    assert "no assay workspace" in result.output
    assert "assay init" in result.output


def test_serve_on_a_port_in_use_is_a_usage_error_naming_the_port(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "ws").close()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "-w", str(tmp_path / "ws"), "--port", str(port)])
    assert result.exit_code == 2
    assert f"127.0.0.1:{port}" in result.output
    assert "--port" in result.output


def test_serve_on_a_host_that_is_not_an_address_is_a_usage_error(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "ws").close()
    result = runner.invoke(app, ["serve", "-w", str(tmp_path / "ws"), "--host", "no such host"])
    assert result.exit_code == 2
    assert "--host" in result.output
