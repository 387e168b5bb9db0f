"""Rollout plans: every state transition, its record, atomicity and a crash mid-rollout."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from assay._errors import NotFoundError, UsageError
from assay.models import Routing
from assay.rollout import _plan
from assay.rollout._plan import RolloutStore, parse_release, parse_steps, routing
from assay.store import Workspace
from assay.store._meta import MetaStore

T0 = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> RolloutStore:
    return RolloutStore(MetaStore(tmp_path / "assay.sqlite"), clock=clock)


def _telemetry(store: RolloutStore, **kw: object) -> _plan.Rollout:
    args: dict[str, object] = {"field": "model_version", "stable": "v1", "candidate": "v2"}
    return store.start(**(args | kw))  # type: ignore[arg-type]


def test_start_without_shadow_is_at_the_first_canary_step(store: RolloutStore) -> None:
    r = _telemetry(store)
    assert (r.state, r.step_index, r.weight, r.kind) == ("canary", 0, 0.01, "telemetry")
    assert r.steps == (1.0, 5.0, 25.0, 50.0, 100.0)
    [t] = store.history(r.id)
    assert (t.from_state, t.to_state, t.weight, t.reason, t.at) == (
        None,
        "canary",
        0.01,
        "start",
        "2026-05-04T10:00:00+00:00",
    )


def test_shadow_then_every_step_then_promoted(store: RolloutStore, clock: Clock) -> None:
    r = _telemetry(store, shadow_seconds=600.0, steps=(10, 50, 100))
    assert (r.state, r.weight, r.step_index) == ("shadow", 0.0, -1)
    weights = []
    for _ in range(3):
        clock.now += dt.timedelta(minutes=1)
        weights.append(store.advance(r.id, "due").weight)
    assert weights == [0.1, 0.5, 1.0]
    with pytest.raises(UsageError, match="at its last step"):
        store.advance(r.id, "again")
    done = store.promote(r.id, "gates say promote")
    assert (done.state, done.weight, done.live) == ("promoted", 1.0, False)
    history = store.history(r.id)
    assert [(t.from_state, t.to_state, t.weight) for t in history] == [
        (None, "shadow", 0.0),
        ("shadow", "canary", 0.1),
        ("canary", "canary", 0.5),
        ("canary", "canary", 1.0),
        ("canary", "promoted", 1.0),
    ]
    assert history[2].at == "2026-05-04T10:02:00+00:00"
    with pytest.raises(UsageError, match="it is promoted"):
        store.abort(r.id)


def test_promote_before_the_last_step_is_refused(store: RolloutStore) -> None:
    r = _telemetry(store)
    with pytest.raises(UsageError, match="step 1 of 5"):
        store.promote(r.id, "too early")
    assert store.get(r.id).state == "canary"


def test_pause_keeps_the_weight_and_resume_returns_to_the_state(store: RolloutStore) -> None:
    r = _telemetry(store, steps=(20, 100))
    paused = store.pause(r.id)
    assert (paused.state, paused.weight, paused.paused_from) == ("paused", 0.2, "canary")
    with pytest.raises(UsageError, match="cannot advance"):
        store.advance(r.id, "x")
    with pytest.raises(UsageError, match="cannot pause"):
        store.pause(r.id)
    back = store.resume(r.id)
    assert (back.state, back.weight, back.paused_from) == ("canary", 0.2, None)
    with pytest.raises(UsageError, match="cannot resume"):
        store.resume(r.id)


def test_a_shadow_pause_resumes_in_shadow(store: RolloutStore) -> None:
    r = _telemetry(store, shadow_seconds=60.0)
    assert store.pause(r.id).weight == 0.0
    assert store.resume(r.id).state == "shadow"


def test_rollback_and_abort_set_the_weight_to_zero(store: RolloutStore) -> None:
    a = _telemetry(store, steps=(50, 100))
    store.pause(a.id)
    rolled = store.rollback(a.id, "handoff up", incident_id=7)
    assert (rolled.state, rolled.weight, rolled.incident_id) == ("rolled_back", 0.0, 7)
    assert store.history(a.id)[-1].reason == "handoff up"
    b = _telemetry(store, candidate="v3")
    assert store.abort(b.id).weight == 0.0
    for move in (store.rollback, store.abort):
        with pytest.raises(UsageError, match="only a rollout in shadow, canary or paused"):
            move(b.id, "again")


def test_a_release_has_one_live_rollout(store: RolloutStore) -> None:
    r = _telemetry(store)
    with pytest.raises(UsageError, match=f"rollout {r.id} of this release is still live"):
        _telemetry(store)
    store.abort(r.id)
    assert _telemetry(store).id == r.id + 1


def test_unknown_rollout_names_the_list_command(store: RolloutStore) -> None:
    with pytest.raises(NotFoundError, match=r"no rollout 9 .*assay rollout list --all"):
        store.get(9)


def test_due_after_the_step_duration(store: RolloutStore, clock: Clock) -> None:
    r = _telemetry(store, step_seconds=3600.0)
    clock.now = T0 + dt.timedelta(seconds=3599)
    assert not store.due(r)
    clock.now = T0 + dt.timedelta(seconds=3600)
    assert store.due(r)


def test_a_failed_transition_leaves_no_trace(
    store: RolloutStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = _telemetry(store)

    def dies(*args: object) -> None:
        raise RuntimeError("process dies after the update, before the record")

    monkeypatch.setattr(_plan, "_log", dies)
    with pytest.raises(RuntimeError):
        store.advance(r.id, "x")
    monkeypatch.undo()
    after = store.get(r.id)
    assert (after.state, after.step_index, len(store.history(r.id))) == ("canary", 0, 1)


def test_a_crash_mid_rollout_resumes_from_the_persisted_state(tmp_path: Path) -> None:
    first = Workspace.init(tmp_path / "ws")
    store = RolloutStore(first.meta)
    r = store.start(field="prompt_template", stable="p1", candidate="p2", steps=(5, 25, 100))
    store.advance(r.id, "due")
    store.pause(r.id)
    # The process "dies": no close; a new process opens the workspace again.
    again = Workspace.open(tmp_path / "ws")
    resumed = RolloutStore(again.meta).get(r.id)
    assert (resumed.state, resumed.paused_from, resumed.weight) == ("paused", "canary", 0.25)
    nxt = RolloutStore(again.meta).resume(r.id)
    assert (nxt.state, nxt.step_index) == ("canary", 1)
    assert RolloutStore(again.meta).advance(r.id, "due").weight == 1.0
    assert len(RolloutStore(again.meta).history(r.id)) == 5
    again.close()
    first.close()


def test_routing_reads_the_live_served_rollout(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    store = RolloutStore(ws.meta)
    assert routing(ws, "intent") is None
    r = store.start(
        model="intent",
        field="model_version",
        stable="3",
        candidate="4",
        shadow_seconds=60.0,
        opt_out_tenants=["t9", "t1", "t9"],
    )
    expected = Routing(
        rollout_id=str(r.id),
        stable_version=3,
        candidate_version=4,
        weight=0.0,
        shadow=True,
        opt_out_tenants=frozenset({"t1", "t9"}),
    )
    assert routing(ws, "intent") == expected
    store.advance(r.id, "due")
    routed = routing(ws, "intent")
    assert routed is not None
    assert (routed.weight, routed.shadow) == (0.01, False)
    assert routing(ws, "other") is None
    store.abort(r.id)
    assert routing(ws, "intent") is None
    ws.close()


def test_telemetry_rollouts_route_nothing(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    RolloutStore(ws.meta).start(field="model_version", stable="3", candidate="4")
    assert routing(ws, "3") is None
    ws.close()


@pytest.mark.parametrize("text", ["1,5,50", "5,1,100", "0,100", "a,b", "", "50,50,100"])
def test_bad_steps_say_the_form(text: str) -> None:
    with pytest.raises(UsageError, match=r"e\.g\. --steps 1,5,25,50,100"):
        parse_steps(text)


def test_steps_parse() -> None:
    assert parse_steps("2, 10,100") == (2.0, 10.0, 100.0)


@pytest.mark.parametrize("text", ["model_version", "app_version=1", "flight=", "=v2"])
def test_bad_release_says_the_fields(text: str) -> None:
    with pytest.raises(UsageError, match="model_version, prompt_template, flight"):
        parse_release(text, "--release")


def test_release_parses() -> None:
    assert parse_release("flight = exp-a", "--release") == ("flight", "exp-a")


def test_a_served_rollout_splits_model_version(store: RolloutStore) -> None:
    with pytest.raises(UsageError, match="splits model_version, not flight"):
        store.start(model="m", field="flight", stable="a", candidate="b")
    with pytest.raises(UsageError, match="two different releases"):
        store.start(field="flight", stable="a", candidate="a")


def test_the_tables_are_made_once_per_open_store(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "assay.sqlite")
    RolloutStore(meta)
    meta.execute("DROP TABLE rollout_transitions")
    # A second store on the same open metadata does not write the schema again ...
    RolloutStore(meta)
    names = {r[0] for r in meta.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "rollout_transitions" not in names
    meta.close()
    # ... and a new process (a new MetaStore) does.
    again = MetaStore(tmp_path / "assay.sqlite")
    RolloutStore(again)
    names = {r[0] for r in again.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"rollouts", "rollout_transitions"} <= names
    again.close()


def test_transitions_are_release_events_in_their_window(tmp_path: Path, clock: Clock) -> None:
    from types import SimpleNamespace

    from assay.rollout._plan import release_events

    meta = MetaStore(tmp_path / "assay.sqlite")
    store = RolloutStore(meta, clock=clock)
    ws: Any = SimpleNamespace(meta=meta)
    day = dt.timedelta(days=1)
    a = _telemetry(store, shadow_seconds=60.0, steps=(10, 100))  # 05-04 shadow
    clock.now += day
    store.advance(a.id, "shadow over")  # 05-05 canary 10%
    store.pause(a.id)
    store.resume(a.id)
    clock.now += day
    store.advance(a.id, "step")  # 05-06 canary 100%
    store.promote(a.id, "gates")
    b = store.start(field="flight", stable="old", candidate="new", opt_out_tenants=["acme"])
    clock.now += day
    store.rollback(b.id, "handoff up")  # 05-07
    got = release_events(ws, dt.date(2026, 5, 5), dt.date(2026, 5, 7))
    rows = [
        (e["event"], e["field"], e["value"], str(e["first_seen"]), e["days_before"], e["weight"])
        for e in got
    ]
    assert rows == [
        ("step", "model_version", "v2", "2026-05-05", 2, 0.1),
        ("pause", "model_version", "v2", "2026-05-05", 2, 0.1),
        ("resume", "model_version", "v2", "2026-05-05", 2, 0.1),
        ("step", "model_version", "v2", "2026-05-06", 1, 1.0),
        ("promote", "model_version", "v2", "2026-05-06", 1, 1.0),
        ("start", "flight", "new", "2026-05-06", 1, 0.01),
        ("rollback", "flight", "new", "2026-05-07", 0, 0.0),
    ]
    assert {(e["source"], e["rollout_id"]) for e in got} == {("rollout", 1), ("rollout", 2)}
    assert got[-1]["at"] == "2026-05-07T10:00:00+00:00"
    # The shadow start on 05-04 is outside the window; acme opted out of rollout 2.
    first = release_events(ws, dt.date(2026, 5, 4), dt.date(2026, 5, 4))
    assert [(e["event"], e["weight"]) for e in first] == [("start", 0.0)]
    acme = release_events(ws, dt.date(2026, 5, 6), dt.date(2026, 5, 7), tenant="acme")
    assert [e["event"] for e in acme] == ["step", "promote"]
    with pytest.raises(UsageError, match="swap them"):
        release_events(ws, dt.date(2026, 5, 7), dt.date(2026, 5, 6))


def test_no_rollout_ever_means_no_release_events_and_no_tables(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from assay.rollout._plan import release_events

    meta = MetaStore(tmp_path / "assay.sqlite")
    ws: Any = SimpleNamespace(meta=meta)
    assert release_events(ws, dt.date(2026, 5, 1), dt.date(2026, 5, 7)) == []
    tables = meta.execute("SELECT name FROM sqlite_master WHERE name LIKE 'rollout%'")
    assert tables == []
