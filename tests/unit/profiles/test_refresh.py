"""Keeping profiles current: ``refresh_profiles`` after ``assay ingest`` and ``assay forget``,
and the background ``ProfileRefresher`` (debounce, no overlapping builds, failures retried,
stopping between two days) driven by a fake build and a fake clock.

Expected profile counts are worked out from the input events in plain Python; the refresher's
tests wait on events and conditions (bounded), never on the time a build takes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from profiles_data import ingest, input_event, write_jsonl
from typer.testing import CliRunner

import assay
from assay._errors import UsageError, WorkspaceError
from assay.cli import app
from assay.profiles import (
    DEFAULT_REFRESH_INTERVAL,
    REFRESH_OUTCOMES,
    BuildSummary,
    ProfileRefresher,
    ProgressFn,
    RefreshResult,
    build_profiles,
    load_profiles,
    profiles_built,
    profiles_path,
    read_profiles,
    refresh_profiles,
)

D = [dt.date(2026, 1, 5) + dt.timedelta(days=i) for i in range(3)]
WAIT = 30.0  # bound of every wait; a correct refresher is done in well under a second


def _events() -> list[dict[str, Any]]:
    """acme: users u0..u5 on D0 and D1, u0 twice on D1; beta: users on D1 and alone on D2."""
    rows = []
    for d, day in enumerate(D[:2]):
        for u in range(6):
            rows.append(input_event(f"a-{d}-{u}", day, "acme", f"u{u}", latency_ms=float(u)))
    rows.append(input_event("a-extra", D[1], "acme", "u0", latency_ms=9.0))
    for u in range(3):
        rows.append(input_event(f"b-1-{u}", D[1], "beta", f"v{u}"))
    rows.append(input_event("b-2-0", D[2], "beta", "v0"))
    return rows


def _expected(rows: list[dict[str, Any]]) -> dict[tuple[dt.date, str], int]:
    """Events per (day, tenant), from the input: the day is the date part of event_time."""
    return dict(
        Counter((dt.date.fromisoformat(r["event_time"][:10]), r["tenant_id"]) for r in rows)
    )


def _stored_counts(ws: assay.Workspace) -> dict[tuple[dt.date, str], int]:
    """The stored profiles' event counts per (day, tenant): the whole-tenant event_id rows."""
    return {
        (r["event_date"], r["tenant_id"]): r["count"]
        for r in read_profiles(ws).to_pylist()
        if r["column"] == "event_id" and r["slice_field"] == ""
    }


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    ingest(path, [write_jsonl(_events(), tmp_path / "events.jsonl")])
    return path


# -- refresh_profiles --------------------------------------------------------------------------


def test_refresh_builds_nothing_where_profiles_were_never_built(root: Path) -> None:
    with assay.Workspace.open(root) as ws:
        assert refresh_profiles(ws) is None
        assert not profiles_built(ws)
        assert not profiles_path(ws).exists()
        first = refresh_profiles(ws, create=True)
        assert first is not None
        assert first.days == tuple(D)
        assert profiles_built(ws)
        assert _stored_counts(ws) == _expected(_events())


def test_refresh_rebuilds_only_changed_days_with_the_options_built_before(
    root: Path, tmp_path: Path
) -> None:
    with assay.Workspace.open(root) as ws:
        build_profiles(ws, slices=("locale",), k=2)
    late = [input_event("late-1", D[0], "acme", "u9"), input_event("late-2", D[0], "beta", "v9")]
    ingest(root, [write_jsonl(late, tmp_path / "late.jsonl")])
    with assay.Workspace.open(root) as ws:
        summary = refresh_profiles(ws)
        assert summary is not None
        assert summary.days == (D[0],)  # the options were kept: no other day rebuilt
        state = json.loads((profiles_path(ws) / "state.json").read_text())
        assert state["options"] == {"slices": ["locale"], "k": 2}
        assert _stored_counts(ws) == _expected(_events() + late)


def test_forget_of_a_user_stops_counting_their_events(root: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["profile", "build", "-w", str(root)]).exit_code == 0
    result = runner.invoke(app, ["forget", "-w", str(root), "--tenant", "acme", "--user", "u0"])
    assert result.exit_code == 0, result.output
    # u0 of acme had events on D0 and D1: those two days, and only those, are rebuilt.
    assert "profiles updated: 2 day(s) rebuilt" in result.stderr
    kept = [r for r in _events() if (r["tenant_id"], r["user_id"]) != ("acme", "u0")]
    with assay.Workspace.open(root) as ws:
        assert _stored_counts(ws) == _expected(kept)
        acme = load_profiles(ws, tenant="acme")
        assert [s.columns["event_id"].count for s in acme] == [5 + 5]
        latency = acme[0].columns["latency_ms"]
        assert latency.min == 1.0  # u0's latencies (0.0 and 9.0) are gone
        assert latency.max == 5.0


def test_forget_of_a_tenant_removes_it_from_the_profiles(root: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["profile", "build", "-w", str(root)]).exit_code == 0
    result = runner.invoke(app, ["forget", "-w", str(root), "--tenant", "beta", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["events"] == 4
    # beta was on D1 (rebuilt for acme) and alone on D2 (its profiles removed).
    assert "profiles updated: 1 day(s) rebuilt, 1 removed" in result.stderr
    with assay.Workspace.open(root) as ws:
        assert [s.tenant_id for s in load_profiles(ws)] == ["acme"]
        assert load_profiles(ws, tenant="beta") == []
        assert "beta" not in set(read_profiles(ws)["tenant_id"].to_pylist())
        assert not (profiles_path(ws) / "days" / f"{D[2]}.parquet").exists()
        kept = [r for r in _events() if r["tenant_id"] != "beta"]
        assert _stored_counts(ws) == _expected(kept)


def test_forget_leaves_a_workspace_without_profiles_without_them(root: Path) -> None:
    result = CliRunner().invoke(app, ["forget", "-w", str(root), "--tenant", "beta"])
    assert result.exit_code == 0, result.output
    assert "profiles updated" not in result.stderr
    assert not (root / "profiles").exists()


def test_forget_of_nothing_still_brings_stale_profiles_up_to_date(
    root: Path, tmp_path: Path
) -> None:
    # Profiles left stale (e.g. a forget whose rebuild could not take the lock): running
    # forget again, which erases nothing, catches up.
    with assay.Workspace.open(root) as ws:
        build_profiles(ws)
        ws.forget("beta")
    result = CliRunner().invoke(app, ["forget", "-w", str(root), "--tenant", "beta"])
    assert "nothing to erase" in result.stderr
    assert "profiles updated: 1 day(s) rebuilt, 1 removed" in result.stderr
    with assay.Workspace.open(root) as ws:
        assert _stored_counts(ws) == _expected([r for r in _events() if r["tenant_id"] != "beta"])


def test_ingest_refresh_keeps_the_options_the_profiles_were_built_with(
    root: Path, tmp_path: Path
) -> None:
    with assay.Workspace.open(root) as ws:
        build_profiles(ws, slices=(), k=3)
    more = write_jsonl([input_event("new", D[2], "acme", "u1")], tmp_path / "more.jsonl")
    result = CliRunner().invoke(app, ["ingest", "-w", str(root), str(more)])
    assert result.exit_code == 0, result.output
    assert "profiles updated: 1 day(s) rebuilt" in result.stderr
    with assay.Workspace.open(root) as ws:
        state = json.loads((profiles_path(ws) / "state.json").read_text())
        assert state["options"] == {"slices": [], "k": 3}
        assert _stored_counts(ws)[(D[2], "acme")] == 1


# -- ProfileRefresher with a fake build --------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeBuild:
    """Counts calls and the most that ran at once; may block on ``gate`` or raise."""

    def __init__(self, *, gate: threading.Event | None = None) -> None:
        self.calls = 0
        self.active = 0
        self.most_active = 0
        self.entered = threading.Event()
        self.gate = gate
        self.fail_with: Exception | None = None
        self.days_done: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, progress: ProgressFn) -> BuildSummary | None:
        with self._lock:
            self.calls += 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            self.entered.set()
            if self.gate is not None:
                assert self.gate.wait(WAIT), "the test never opened the gate"
            if self.fail_with is not None:
                raise self.fail_with
            for day in (1, 2):
                progress(day, 2)
                self.days_done.append(day)
            return BuildSummary(
                days_rebuilt=2,
                days_removed=0,
                rows_written=10,
                seconds=0.0,
                events_version=self.calls,
                days=(D[0], D[1]),
            )
        finally:
            with self._lock:
                self.active -= 1


def test_builds_at_most_once_per_interval_and_takes_in_every_mark() -> None:
    clock, build = FakeClock(), FakeBuild()
    seen: list[RefreshResult] = []
    r = ProfileRefresher(build, interval=60, on_result=seen.append, clock=clock)
    assert r.run_once() is None  # nothing marked
    r.mark_dirty()
    first = r.run_once()  # the first mark after a quiet spell builds at once
    assert first is not None
    assert first.outcome == "ok"
    assert first.summary is not None
    assert first.summary.days_rebuilt == 2
    clock.now += 10
    r.mark_dirty()
    r.mark_dirty()
    clock.now += 49.5  # 59.5 s after the first build started
    assert r.run_once() is None
    status = r.status()
    assert status.pending
    assert status.age_seconds == 49.5  # since the oldest pending mark
    clock.now += 0.5  # 60 s: due
    second = r.run_once()
    assert second is not None
    assert second.outcome == "ok"
    assert r.run_once() is None  # both marks taken in by that one build
    assert build.calls == 2
    assert [x.outcome for x in seen] == ["ok", "ok"]
    status = r.status()
    assert not status.pending
    assert status.age_seconds == 0.0
    assert dict(status.builds) == {"ok": 2, "failed": 0, "skipped": 0, "abandoned": 0}
    # force builds whatever the interval, but only when something is pending.
    assert r.run_once(force=True) is None
    r.mark_dirty()
    forced = r.run_once(force=True)
    assert forced is not None
    assert forced.outcome == "ok"


def test_the_worker_coalesces_marks_made_during_a_build() -> None:
    gate = threading.Event()
    build = FakeBuild(gate=gate)
    clock = FakeClock()
    r = ProfileRefresher(build, interval=0.001, clock=clock)
    r.start()  # marks the workspace dirty: the first build catches up at once
    try:
        assert build.entered.wait(WAIT)
        clock.now += 7
        status = r.status()
        assert status.building
        assert not status.pending
        assert status.age_seconds == 7  # the commits in the build are not in the profiles yet
        clock.now += 1  # so that the next build is due as soon as this one ends
        for _ in range(5):
            r.mark_dirty()  # never blocks on the build in progress
        assert r.status().pending
        assert r.status().age_seconds == 8  # still since the oldest mark
        gate.set()
        assert r.wait_idle(WAIT)
        assert build.calls == 2  # five marks, one build
        assert build.most_active == 1
        assert r.status().running
        assert r.status().age_seconds == 0
    finally:
        assert r.stop(WAIT)
    assert not r.status().running


def test_the_worker_waits_for_the_interval_then_builds() -> None:
    clock, build = FakeClock(), FakeBuild()
    r = ProfileRefresher(build, interval=60, clock=clock)
    r.start()
    try:
        assert r.wait_idle(WAIT)
        assert build.calls == 1
        clock.now += 30
        r.mark_dirty()
        assert r.status().pending
        assert build.calls == 1  # the clock says 30 s: not due, whatever the wall time
        clock.now += 30
        r.mark_dirty()  # wakes the worker, which reads the clock again
        assert r.wait_idle(WAIT)
        assert build.calls == 2
    finally:
        assert r.stop(WAIT)


def test_two_callers_never_build_at_once() -> None:
    gate = threading.Event()
    build = FakeBuild(gate=gate)
    r = ProfileRefresher(build, interval=0.001)
    r.start()
    results: list[RefreshResult | None] = []
    try:
        assert build.entered.wait(WAIT)
        r.mark_dirty()
        others = [
            threading.Thread(target=lambda: results.append(r.run_once(force=True)))
            for _ in range(3)
        ]
        for t in others:
            t.start()
        for t in others:
            t.join(0.2)  # they wait for the worker's build
        gate.set()
        for t in others:
            t.join(WAIT)
        assert r.wait_idle(WAIT)
    finally:
        assert r.stop(WAIT)
    assert build.most_active == 1
    # The worker's build, then one more for the mark: by the worker or one caller.
    assert build.calls == 2
    assert len(results) == 3
    assert sum(x is not None for x in results) <= 1


def test_a_failed_build_is_logged_without_its_text_and_retried_after_the_interval(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI (run by other tests in this process) stops "assay" logs from propagating.
    monkeypatch.setattr(logging.getLogger("assay"), "propagate", True)
    clock, build = FakeClock(), FakeBuild()
    build.fail_with = RuntimeError("raw text: my card is 4111 1111 1111 1111, user-77")
    seen: list[RefreshResult] = []
    r = ProfileRefresher(build, interval=60, on_result=seen.append, clock=clock)
    r.mark_dirty()
    with caplog.at_level(logging.WARNING, logger="assay.profiles"):
        failed = r.run_once()
    assert failed is not None
    assert failed.outcome == "failed"
    assert failed.error == "RuntimeError"  # an unknown exception's text may quote input
    records = [x for x in caplog.records if x.name == "assay.profiles"]
    assert len(records) == 1
    assert records[0].assay == {"error": "RuntimeError", "interval_seconds": 60.0}  # type: ignore[attr-defined]
    assert "4111" not in caplog.text
    assert "user-77" not in caplog.text
    assert r.status().pending  # not taken in
    clock.now += 59
    assert r.status().age_seconds == 59  # since the mark before the failed build
    assert r.run_once() is None  # retried after the interval, not before
    # assay's own errors keep their message (it never holds raw text or ids).
    build.fail_with = WorkspaceError("events files of 2026-01-05 changed; run again")
    clock.now += 1
    again = r.run_once()
    assert again is not None
    assert again.error == "WorkspaceError: events files of 2026-01-05 changed; run again"
    build.fail_with = None
    clock.now += 60
    ok = r.run_once()
    assert ok is not None
    assert ok.outcome == "ok"
    assert [x.outcome for x in seen] == ["failed", "failed", "ok"]
    assert dict(r.status().builds) == {"ok": 1, "failed": 2, "skipped": 0, "abandoned": 0}
    assert r.status().last == ok


def test_stop_abandons_a_build_between_two_days_and_closes_after_it() -> None:
    gate = threading.Event()
    build = FakeBuild(gate=gate)
    closed: list[int] = []
    r = ProfileRefresher(build, interval=0.001, on_close=lambda: closed.append(1))
    r.start()
    assert build.entered.wait(WAIT)
    assert r.stop(timeout=0) is False  # still building: nothing closed under it
    assert closed == []
    gate.set()  # the build reaches the end of its first day and stops there
    assert r.stop(WAIT) is True
    assert build.days_done == []
    status = r.status()
    assert status.last is not None
    assert status.last.outcome == "abandoned"
    assert status.pending  # what it did not take in waits for the next start
    assert not status.running
    assert closed == [1]
    assert r.stop(WAIT) is True  # idempotent
    assert closed == [1]
    r.mark_dirty()
    assert r.run_once(force=True) is None  # nothing builds after stop


def test_interval_zero_starts_no_worker_but_builds_on_demand() -> None:
    build = FakeBuild()
    r = ProfileRefresher(build, interval=0)
    r.start()
    r.mark_dirty()
    status = r.status()
    assert (status.enabled, status.running, status.pending) == (False, False, True)
    assert build.calls == 0
    result = r.run_once()
    assert result is not None
    assert result.outcome == "ok"
    assert r.stop(WAIT)


@pytest.mark.parametrize("interval", [-1.0, float("nan")])
def test_a_negative_or_nan_interval_is_a_usage_error(interval: float) -> None:
    with pytest.raises(UsageError, match=">= 0"):
        ProfileRefresher(FakeBuild(), interval=interval)


def test_status_is_json_ready_and_outcomes_are_the_documented_four() -> None:
    assert REFRESH_OUTCOMES == ("ok", "failed", "skipped", "abandoned")
    assert DEFAULT_REFRESH_INTERVAL == 60.0
    r = ProfileRefresher(lambda progress: None, interval=5)
    r.mark_dirty()
    assert r.run_once() == RefreshResult("skipped", r.status().last.seconds)  # type: ignore[union-attr]
    data = r.status().as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["last"]["outcome"] == "skipped"
    assert data["builds"]["skipped"] == 1
    assert data["enabled"] is True
    assert data["pending"] is False


def test_open_refreshes_a_real_workspace_and_closes_its_handle(root: Path) -> None:
    with assay.Workspace.open(root) as ws:
        build_profiles(ws)
        ws.forget("acme", "u1")
    r = ProfileRefresher.open(root, interval=0)
    r.mark_dirty()
    result = r.run_once()
    assert result is not None
    assert result.summary is not None
    assert result.summary.days == (D[0], D[1])  # u1 of acme was on D0 and D1
    assert r.stop(WAIT)
    with assay.Workspace.open(root) as ws:
        kept = [r for r in _events() if (r["tenant_id"], r["user_id"]) != ("acme", "u1")]
        assert _stored_counts(ws) == _expected(kept)
