"""`assay serve` refuses clearly, before starting, what it cannot serve."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
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


def test_serve_passes_the_profile_interval_to_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    import assay.service
    from assay.cli import serve as serve_module
    from assay.profiles import DEFAULT_REFRESH_INTERVAL

    Workspace.init(tmp_path / "ws").close()
    made: list[float] = []
    real = assay.service.create_app

    def create_app(path: Any, **kwargs: Any) -> Any:
        made.append(kwargs["profile_interval"])
        return real(path, **kwargs)

    monkeypatch.setattr(assay.service, "create_app", create_app)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: None)  # no server
    monkeypatch.setattr(serve_module.signal, "signal", lambda *args: None)
    monkeypatch.delenv("ASSAY_PROFILE_INTERVAL", raising=False)
    base = ["serve", "-w", str(tmp_path / "ws"), "--port", "0", "--no-access-log"]
    assert runner.invoke(app, base).exit_code == 0
    assert runner.invoke(app, [*base, "--profile-interval", "2.5"]).exit_code == 0
    monkeypatch.setenv("ASSAY_PROFILE_INTERVAL", "0")
    assert runner.invoke(app, base).exit_code == 0
    # The CLI writes the default out (it imports profiles lazily): the same as the library's.
    assert made == [DEFAULT_REFRESH_INTERVAL, 2.5, 0.0]


def test_serve_refuses_a_negative_profile_interval(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "ws").close()
    result = runner.invoke(
        app, ["serve", "-w", str(tmp_path / "ws"), "--port", "0", "--profile-interval", "-1"]
    )
    assert result.exit_code == 2
    assert "--profile-interval" in result.output
