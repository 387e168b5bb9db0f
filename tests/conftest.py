"""Test-wide settings.

Every test runs under a non-UTC process time zone so that any day computed from the process's
(or the JVM's) local zone instead of UTC shows up as a failure. Hypothesis runs without
per-example deadlines.
"""

from __future__ import annotations

import os
import time

os.environ["TZ"] = "Asia/Kolkata"
time.tzset()


from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# No per-example deadline: a test's speed is not its result (benchmarks measure speed), and on
# a loaded two-core machine a 200 ms deadline fails examples at random. Tests that set their
# own deadline keep it.
settings.register_profile("assay", deadline=None)
settings.load_profile("assay")

SynthWorkspace = Callable[..., Path]


@pytest.fixture(scope="session")
def synth_workspace(tmp_path_factory: pytest.TempPathFactory) -> SynthWorkspace:
    """Make a workspace of synthetic telemetry through the CLI (synth, init, ingest):
    ``synth_workspace(name, tenants=, users=, days=, seed=, end=)`` returns its path."""
    from typer.testing import CliRunner

    from assay.cli import app

    def make(name: str, *, tenants: int, users: int, days: int, seed: int, end: str) -> Path:
        root = tmp_path_factory.mktemp(name)
        data, ws = root / "synth", root / "ws"
        args = ["--tenants", str(tenants), "--users", str(users), "--days", str(days)]
        args += ["--seed", str(seed), "--end", end]
        runner = CliRunner()
        for command in (
            ["synth", "--out", str(data), *args],
            ["init", "-w", str(ws)],
            ["ingest", str(data), "-w", str(ws)],
        ):
            result = runner.invoke(app, command)
            assert result.exit_code == 0, result.output
        return ws

    return make


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: ignored where it is not installed
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``-n 2 --dist loadscope`` (scripts/test.sh where pytest-xdist is installed): each
    test module runs whole in one worker, so its module-scoped fixtures are made once, and the
    Spark modules (``*_spark.py``) all run in one worker, so one JVM starts. (xdist's own
    ``loadgroup`` marks do not reach its scheduler on pytest 9.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndSpark(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "spark" if module.endswith("_spark.py") else module

    return ModulesAndSpark(config, log)
