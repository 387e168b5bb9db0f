"""``assay serve`` evaluates the live rollouts every ``rollout_interval_seconds``: a rollout
whose telemetry says rollback is rolled back by the service alone, a failed evaluation is
logged without its text, and the schedule stops cleanly at shutdown."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from assay._errors import UsageError
from assay.cli import app as cli
from assay.rollout import RolloutStore
from assay.rollout._evaluate import RolloutSchedule
from assay.service import create_app
from assay.store import Settings, Workspace

sys.path.insert(0, str(Path(__file__).parent))

from regressed_data import regressed_events

RELEASE = ["--release", "model_version=v2", "--stable", "model_version=v1"]


def workspace_with_rollout(tmp_path: Path, interval: float) -> tuple[Path, int]:
    """A workspace holding the regressed telemetry and a live telemetry-only rollout of v2."""
    ws = tmp_path / "ws"
    runner = CliRunner()
    for args in (["ingest", str(regressed_events(tmp_path))], ["rollout", "start", *RELEASE]):
        result = runner.invoke(cli, [*args, "--workspace", str(ws)])
        assert result.exit_code == 0, result.output
    (ws / "assay.toml").write_text(
        Settings.from_mapping({"rollout_interval_seconds": interval}).to_toml(), encoding="utf-8"
    )
    return ws, 1


def _state(ws: Path, rollout_id: int) -> str:
    with Workspace.open(ws) as handle:
        return RolloutStore(handle.meta).get(rollout_id).state


def test_the_service_rolls_back_a_regressed_rollout_on_its_own(tmp_path: Path) -> None:
    ws, rid = workspace_with_rollout(tmp_path, interval=0.2)
    assert _state(ws, rid) == "canary"
    with TestClient(create_app(ws, profile_interval=0)) as client:
        schedule = client.app.state.assay.rollouts  # type: ignore[attr-defined]
        assert schedule is not None
        assert schedule.interval == 0.2
        # Bounded wait: the schedule's thread runs every 0.2 s; a minute is ample on a busy box.
        pause = threading.Event()
        for _ in range(600):
            if schedule.runs or schedule.failures:
                break
            pause.wait(0.1)
        assert schedule.failures == 0
        assert schedule.runs >= 1
    # Shutdown stopped the thread and closed its handle.
    assert schedule._thread is not None
    assert not schedule._thread.is_alive()
    assert schedule._ws is None
    with Workspace.open(ws) as handle:
        store = RolloutStore(handle.meta)
        r = store.get(rid)
        assert (r.state, r.weight) == ("rolled_back", 0.0)
        assert r.incident_id is not None
        last = store.history(rid)[-1]
        assert (last.from_state, last.to_state) == ("canary", "rolled_back")
        assert last.reason.startswith("gates: handoff on ")


def test_zero_turns_the_schedule_off(tmp_path: Path) -> None:
    ws, rid = workspace_with_rollout(tmp_path, interval=0)
    with TestClient(create_app(ws, profile_interval=0)) as client:
        schedule = client.app.state.assay.rollouts  # type: ignore[attr-defined]
        assert schedule is not None
        assert schedule._thread is None
    assert _state(ws, rid) == "canary"


class _Handle:
    closed = 0

    def close(self) -> None:
        _Handle.closed += 1


def test_a_failed_evaluation_is_logged_without_its_text_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[Any] = []

    def run(ws: Any) -> list[Any]:
        calls.append(ws)
        if len(calls) == 1:
            raise RuntimeError("user u-secret said 'my card number'")
        return []

    schedule = RolloutSchedule(_Handle, 1.0, run=run)
    schedule.start()
    schedule.stop()  # no evaluation yet: the first waits a whole interval
    assert (calls, _Handle.closed) == ([], 1)
    schedule = RolloutSchedule(_Handle, 1.0, run=run)
    schedule._ws = _Handle()
    with caplog.at_level(logging.WARNING, logger="assay.rollout"):
        assert schedule.run_once() == []
        assert schedule.run_once() == []
    assert (schedule.failures, schedule.runs) == (1, 1)
    assert [r.getMessage() for r in caplog.records] == [
        "scheduled rollout evaluation failed (RuntimeError)"
    ]


def test_rolled_back_rollouts_are_passed_on_and_others_are_not() -> None:
    class R:
        def __init__(self, state: str, model: str) -> None:
            self.state, self.model = state, model

    results: list[Any] = [(None, R("canary", "a")), (None, R("rolled_back", "b"))]
    seen: list[str] = []
    schedule = RolloutSchedule(
        _Handle, 5, run=lambda ws: results, on_rolled_back=lambda r: seen.append(r.model)
    )
    schedule.run_once()
    assert seen == ["b"]


@pytest.mark.parametrize("interval", [-1.0, float("nan")])
def test_a_negative_interval_is_refused(interval: float) -> None:
    with pytest.raises(UsageError, match="rollout_interval_seconds to 0"):
        RolloutSchedule(_Handle, interval)


def test_a_rollback_makes_the_pool_ask_the_router_again_at_once(tmp_path: Path) -> None:
    import asyncio

    from assay.models import Routing
    from assay.models._serving import ModelPool, ServingConfig
    from assay.service._state import rollout_schedule

    answers = [Routing("1", 3, 4, 0.25), None]
    asked: list[str] = []

    def router(name: str) -> Routing | None:
        asked.append(name)
        return answers[len(asked) - 1]

    # Routings are kept an hour: only forgetting one makes the pool ask again.
    pool = ModelPool(lambda: None, ServingConfig(refresh_seconds=3600), router=router)  # type: ignore[arg-type,return-value]

    async def twice() -> list[Routing | None]:
        return [await pool.routing("intent"), await pool.routing("intent")]

    assert asyncio.run(twice()) == [answers[0], answers[0]]
    ws = tmp_path / "ws"
    Workspace.open(ws, create=True).close()
    schedule = rollout_schedule(ws, Settings(), pool)
    assert schedule.interval == 300.0  # the setting's default

    class R:
        state, model = "rolled_back", "intent"

    schedule._run = lambda handle: [(None, R())]  # type: ignore[assignment,misc]
    schedule.run_once()
    assert asyncio.run(twice()) == [None, None]
    assert asked == ["intent", "intent"]
    pool.close()


def test_one_broken_rollout_does_not_keep_another_from_rolling_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from assay.rollout import _evaluate

    ws = tmp_path / "ws"
    runner = CliRunner()
    for args in (
        ["ingest", str(regressed_events(tmp_path))],
        ["rollout", "start", "--release", "flight=new", "--stable", "flight=old"],
        ["rollout", "start", *RELEASE],
    ):
        result = runner.invoke(cli, [*args, "--workspace", str(ws)])
        assert result.exit_code == 0, result.output
    real = _evaluate.evaluate

    def evaluate(handle: Any, rollout_id: int, **kw: Any) -> Any:
        if rollout_id == 1:
            raise RuntimeError("user u-secret")
        return real(handle, rollout_id, **kw)

    monkeypatch.setattr(_evaluate, "evaluate", evaluate)
    schedule = RolloutSchedule(lambda: Workspace.open(ws), 60)
    schedule._ws = Workspace.open(ws)
    with caplog.at_level(logging.WARNING, logger="assay.rollout"):
        done = schedule.run_once()
    schedule.stop()
    assert [(r.id, r.state) for _, r in done] == [(2, "rolled_back")]
    assert (schedule.failures, schedule.runs) == (1, 1)
    assert "scheduled evaluation of rollout 1 failed (RuntimeError)" in caplog.messages
    assert not any("secret" in m for m in caplog.messages)
    assert (_state(ws, 1), _state(ws, 2)) == ("canary", "rolled_back")
