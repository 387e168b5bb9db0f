"""Incidents: the life cycle, the "never raised twice" rule, validation and persistence."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay import NotFoundError, UsageError
from assay.store import INCIDENT_STATES, Incident, IncidentStore, NewIncident, Workspace
from assay.store._meta import MetaStore

MAR = dt.date(2026, 3, 1)


def day(n: int) -> dt.date:
    """March ``n``, 2026 (n may run past 31 into April)."""
    return MAR + dt.timedelta(days=n - 1)


def run(first: int, last: int, **kw: Any) -> NewIncident:
    fields: dict[str, Any] = {
        "kind": "anomaly",
        "key": "dau|tenant=acme|locale=fr",
        "tenant_id": "acme",
        "metric": "dau",
        "slice": {"locale": "fr"},
        "start": day(first),
        "end": day(last),
        "direction": "down",
        "severity": "medium",
        "expected": 100.0,
        "observed": 50.0,
        "score": 0.01,
        "details": {},
    }
    fields.update(kw)
    return NewIncident(**fields)


def record(store: IncidentStore, new: NewIncident, **kw: Any) -> tuple[Incident, str]:
    """``store.record``, checking that an incident comes back (the result is typed optional
    for the caller's sake, but an incident always comes back)."""
    inc, outcome = store.record(new, **kw)
    assert inc is not None
    return inc, outcome


def span(inc: Incident) -> tuple[int, int]:
    return (inc.start - MAR).days + 1, (inc.end - MAR).days + 1


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IncidentStore]:
    meta = MetaStore(tmp_path / "assay.sqlite")
    yield IncidentStore(meta)
    meta.close()


# -- life cycle ---------------------------------------------------------------------------------


def test_states_are_open_acknowledged_resolved() -> None:
    assert INCIDENT_STATES == ("open", "acknowledged", "resolved")


def test_an_incident_goes_open_then_acknowledged_then_resolved(store: IncidentStore) -> None:
    inc, outcome = record(store, run(2, 4))
    assert outcome == "opened"
    assert (inc.state, inc.acknowledged_at, inc.resolved_at) == ("open", None, None)
    acked = store.acknowledge(inc.id)
    assert acked.state == "acknowledged"
    assert acked.acknowledged_at is not None
    assert acked.resolved_at is None
    resolved = store.resolve(inc.id)
    assert resolved.state == "resolved"
    assert resolved.acknowledged_at == acked.acknowledged_at
    assert resolved.resolved_at is not None
    assert store.get(inc.id) == resolved


def test_repeating_ack_or_resolve_changes_nothing(store: IncidentStore) -> None:
    inc, _ = record(store, run(2, 4))
    acked = store.acknowledge(inc.id)
    assert store.acknowledge(inc.id) == acked
    resolved = store.resolve(inc.id)
    assert store.resolve(inc.id) == resolved


def test_an_open_incident_can_be_resolved_without_an_ack(store: IncidentStore) -> None:
    inc, _ = record(store, run(2, 4))
    resolved = store.resolve(inc.id)
    assert (resolved.state, resolved.acknowledged_at) == ("resolved", None)


def test_a_resolved_incident_cannot_be_acknowledged(store: IncidentStore) -> None:
    inc, _ = record(store, run(2, 4))
    store.resolve(inc.id)
    with pytest.raises(UsageError, match=f"incident {inc.id} is resolved"):
        store.acknowledge(inc.id)
    assert store.get(inc.id).state == "resolved"


@pytest.mark.parametrize("method", ["get", "acknowledge", "resolve"])
def test_an_unknown_id_is_not_found_and_says_how_to_list_ids(
    store: IncidentStore, method: str
) -> None:
    with pytest.raises(NotFoundError, match=r"no incident with id 42; .*--state all"):
        getattr(store, method)(42)


def test_unknown_id_for_update_details_is_not_found(store: IncidentStore) -> None:
    with pytest.raises(NotFoundError, match="42"):
        store.update_details(42, {"a": 1})


# -- the record rules, with hand-worked day ranges (gap_days = 1 unless said) -------------------


def test_overlapping_days_extend_the_incident(store: IncidentStore) -> None:
    first, _ = record(store, run(2, 4))
    inc, outcome = record(store, run(4, 6))
    assert outcome == "extended"
    assert inc.id == first.id
    assert span(inc) == (2, 6)
    assert len(store.list(state="all")) == 1


def test_an_earlier_overlapping_run_extends_the_start(store: IncidentStore) -> None:
    record(store, run(5, 8))
    inc, outcome = record(store, run(3, 5))
    assert (outcome, span(inc)) == ("extended", (3, 8))


def test_adjacent_days_are_within_a_gap_of_one(store: IncidentStore) -> None:
    record(store, run(2, 4))
    inc, outcome = record(store, run(5, 5))  # 5 <= 4 + 1
    assert (outcome, span(inc)) == ("extended", (2, 5))


def test_days_beyond_the_gap_open_a_new_incident(store: IncidentStore) -> None:
    first, _ = record(store, run(2, 4))
    second, outcome = record(store, run(6, 7))  # 6 > 4 + 1: one quiet day between
    assert outcome == "opened"
    assert second.id != first.id
    assert [span(i) for i in store.list()] == [(6, 7), (2, 4)]


def test_a_wider_gap_bridges_quiet_days(store: IncidentStore) -> None:
    record(store, run(2, 4))
    inc, outcome = record(store, run(6, 7), gap_days=2)  # 6 <= 4 + 2
    assert (outcome, span(inc)) == ("extended", (2, 7))


def test_gap_zero_merges_only_overlapping_days(store: IncidentStore) -> None:
    record(store, run(2, 4), gap_days=0)
    assert record(store, run(5, 5), gap_days=0)[1] == "opened"
    assert record(store, run(4, 4), gap_days=0)[1] == "unchanged"


def test_recording_the_same_run_again_is_unchanged(store: IncidentStore) -> None:
    first, _ = record(store, run(2, 4, details={"n": 3}))
    again, outcome = record(store, run(2, 4, details={"n": 3}))
    assert outcome == "unchanged"
    assert again == first  # updated_at too
    inner, outcome = record(store, run(3, 3, details={"n": 3}, severity="low", score=0.5))
    assert outcome == "unchanged"  # days inside, lower severity, weaker score
    assert inner == first


def test_a_resolved_incident_suppresses_touching_days(store: IncidentStore) -> None:
    inc, _ = record(store, run(2, 4))
    store.resolve(inc.id)
    # Its reach with gap 1 is days 1..5: nothing outside it.
    for first, last in [(2, 4), (3, 3), (1, 5), (5, 5), (1, 1)]:
        back, outcome = record(store, run(first, last))
        assert outcome == "suppressed"
        assert (back.id, back.state, span(back)) == (inc.id, "resolved", (2, 4))
    assert len(store.list(state="all")) == 1


def test_days_after_a_resolved_incident_and_its_gap_are_a_new_incident(
    store: IncidentStore,
) -> None:
    old, _ = record(store, run(2, 4))
    store.resolve(old.id)
    new, outcome = record(store, run(3, 9))  # days 3..5 are silent, 6..9 are new
    assert outcome == "opened"
    assert new.id != old.id
    assert span(new) == (6, 9)
    assert span(store.get(old.id)) == (2, 4)
    # The same run again changes nothing; a later run extends the new incident.
    assert record(store, run(3, 9))[1] == "unchanged"
    assert span(record(store, run(3, 10))[0]) == (6, 10)


def test_a_run_outside_the_resolved_reach_opens_without_looking_at_it(
    store: IncidentStore,
) -> None:
    old, _ = record(store, run(2, 4))
    store.resolve(old.id)
    new, outcome = record(store, run(6, 6))  # 6 > 4 + 1
    assert (outcome, span(new)) == ("opened", (6, 6))


def test_a_run_split_by_a_resolved_incident_records_both_sides(store: IncidentStore) -> None:
    old, _ = record(store, run(10, 12))
    store.resolve(old.id)
    # Reach 9..13: days 1..8 and 14..20 are left; the later part is returned.
    inc, outcome = record(store, run(1, 20))
    assert (outcome, span(inc)) == ("opened", (14, 20))
    assert sorted(span(i) for i in store.list()) == [(1, 8), (14, 20)]


def test_merging_takes_the_highest_severity_and_smallest_score(store: IncidentStore) -> None:
    record(store, run(2, 4, severity="medium", score=0.01))
    inc, _ = record(store, run(4, 5, severity="high", score=0.2))
    assert (inc.severity, inc.score) == ("high", 0.01)
    inc, _ = record(store, run(5, 6, severity="low", score=0.001))
    assert (inc.severity, inc.score) == ("high", 0.001)


def test_a_missing_score_does_not_erase_a_known_one(store: IncidentStore) -> None:
    record(store, run(2, 4, score=None))
    inc, outcome = record(store, run(4, 5, score=0.3))
    assert (outcome, inc.score) == ("extended", 0.3)
    inc, _ = record(store, run(5, 6, score=None))
    assert inc.score == 0.3


def test_values_come_from_the_run_that_ends_last(store: IncidentStore) -> None:
    record(store, run(3, 6, expected=100.0, observed=40.0))
    inc, outcome = record(store, run(1, 4, expected=90.0, observed=80.0))  # ends earlier
    assert (outcome, span(inc), inc.expected, inc.observed) == ("extended", (1, 6), 100.0, 40.0)
    inc, _ = record(store, run(6, 6, expected=110.0, observed=30.0))  # ends on the same day
    assert (inc.expected, inc.observed) == (110.0, 30.0)


def test_details_keep_old_keys_and_take_new_values(store: IncidentStore) -> None:
    record(store, run(2, 4, details={"a": 1, "b": [1, 2]}))
    inc, outcome = record(store, run(3, 4, details={"b": [3], "c": "x"}))
    assert outcome == "extended"
    assert inc.details == {"a": 1, "b": [3], "c": "x"}


def test_merging_keeps_the_state_and_direction(store: IncidentStore) -> None:
    inc, _ = record(store, run(2, 4))
    acked = store.acknowledge(inc.id)
    merged, outcome = record(store, run(4, 7, direction="up"))
    assert outcome == "extended"
    assert (merged.state, merged.direction, merged.acknowledged_at) == (
        "acknowledged",
        "down",
        acked.acknowledged_at,
    )


def test_a_run_bridging_two_incidents_makes_them_one(store: IncidentStore) -> None:
    older, _ = record(store, run(1, 2, details={"from": "older", "a": 1}, severity="high"))
    newer, _ = record(store, run(6, 7, details={"from": "newer"}, score=0.5))
    inc, outcome = record(store, run(3, 5, details={"bridge": True}, score=None))
    assert outcome == "extended"
    assert inc.id == newer.id  # the most recent survives
    assert span(inc) == (1, 7)
    assert inc.severity == "high"
    assert inc.score == 0.01  # the older one's score is the smallest
    assert inc.details == {"from": "newer", "a": 1, "bridge": True}
    folded = store.get(older.id)
    assert (folded.state, folded.merged_into, span(folded)) == ("resolved", newer.id, (1, 2))
    assert [i.id for i in store.list()] == [newer.id]
    # A later run on the folded incident's days goes to the survivor, not to "suppressed".
    again, outcome = record(store, run(1, 1))
    assert (outcome, again) == ("unchanged", inc)
    with pytest.raises(UsageError, match=f"merged into incident {newer.id}"):
        store.acknowledge(older.id)


def test_other_kinds_and_keys_are_separate_incidents(store: IncidentStore) -> None:
    a, _ = record(store, run(2, 4))
    b, outcome_b = record(store, run(2, 4, kind="drift"))
    c, outcome_c = record(store, run(2, 4, key="dau|tenant=acme|locale=de"))
    assert (outcome_b, outcome_c) == ("opened", "opened")
    assert len({a.id, b.id, c.id}) == 3


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"kind": "outage"},
            r"kind must be one of anomaly, drift, regression, model, rollout \(got 'outage'\)",
        ),
        ({"direction": "sideways"}, "direction must be one of up, down"),
        ({"severity": "critical"}, "severity must be one of low, medium, high"),
        ({"start": day(5), "end": day(4)}, "end must be on or after its start"),
        ({"start": dt.datetime(2026, 3, 2, tzinfo=dt.UTC)}, "must be a datetime.date"),
        ({"end": "2026-03-04"}, "must be a datetime.date"),
        ({"expected": float("nan")}, "expected must be a finite number or None"),
        ({"observed": float("inf")}, "observed must be a finite number or None"),
        ({"score": "0.1"}, "score must be a finite number or None"),
        ({"score": True}, "score must be a finite number or None"),
        ({"key": ""}, "key must be text of 1 to 512 characters"),
        ({"metric": None}, "metric must be text"),
        ({"tenant_id": ""}, "tenant_id must be text"),
        ({"slice": {"locale": 3}}, "slice must be a dict of dimension name to text or None"),
        ({"details": [1]}, "details must be a dict"),
        ({"details": {"x": object()}}, r"details\['x'\] must hold JSON values"),
        ({"details": {"x": [1, {2: "a"}]}}, r"details\['x'\]\[1\] must have text keys"),
    ],
)
def test_invalid_fields_are_usage_errors(
    store: IncidentStore, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        record(store, run(2, 4, **change))
    assert store.list(state="all") == []


@pytest.mark.parametrize("gap", [-1, 1.5, True])
def test_gap_days_must_be_a_non_negative_integer(store: IncidentStore, gap: Any) -> None:
    with pytest.raises(UsageError, match="gap_days must be an integer >= 0"):
        record(store, run(2, 4), gap_days=gap)


def test_details_are_stored_as_plain_json(store: IncidentStore) -> None:
    inc, _ = record(
        store,
        run(
            2,
            4,
            expected=np.float64(2.5),
            observed=np.int64(3),
            details={
                "first_seen": dt.date(2026, 3, 1),
                "counts": (np.int64(4), np.float32(0.5)),
                "gaps": [float("nan"), float("-inf"), 1.0],
                "nested": {"ok": np.bool_(True)},
            },
        ),
    )
    assert (inc.expected, inc.observed) == (2.5, 3.0)
    assert type(inc.observed) is float
    assert inc.details == {
        "first_seen": "2026-03-01",
        "counts": [4, 0.5],
        "gaps": [None, None, 1.0],
        "nested": {"ok": True},
    }


def test_as_dict_is_json_ready(store: IncidentStore) -> None:
    inc, _ = record(store, run(2, 4, details={"k": [1]}))
    d = inc.as_dict()
    assert d["start"] == "2026-03-02"
    assert d["end"] == "2026-03-04"
    assert d["slice"] == {"locale": "fr"}
    assert d["details"] == {"k": [1]}
    expected_keys = {f.name for f in dataclasses.fields(Incident)}
    assert set(d) == {*expected_keys, "title"}
    assert d["title"] == "dau down in acme (locale=fr)"


# -- listing and details ------------------------------------------------------------------------


def test_list_filters_by_state_tenant_kind_metric_and_limits(store: IncidentStore) -> None:
    a, _ = record(store, run(1, 1))
    b, _ = record(store, run(1, 1, kind="drift", tenant_id="beta", key="k-b"))
    c, _ = record(store, run(1, 1, metric="sessions", key="k-c"))
    d, _ = record(store, run(1, 1, kind="regression", key="k-d", tenant_id=None))
    store.acknowledge(b.id)
    store.resolve(c.id)

    def ids(**kw: Any) -> list[int]:
        return [i.id for i in store.list(**kw)]

    assert ids() == [d.id, b.id, a.id]  # open and acknowledged, newest first
    assert ids(state="all") == [d.id, c.id, b.id, a.id]
    assert ids(state="resolved") == [c.id]
    assert ids(state="acknowledged") == [b.id]
    assert ids(state="open") == [d.id, a.id]
    assert ids(tenant="beta") == [b.id]
    assert ids(kind="regression") == [d.id]
    assert ids(metric="sessions", state="all") == [c.id]
    assert ids(state="all", limit=2) == [d.id, c.id]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"state": "closed"}, "state must be one of open, acknowledged, resolved or all"),
        ({"kind": "bug"}, "kind must be one of"),
        ({"limit": 0}, "limit must be an integer >= 1"),
    ],
)
def test_list_rejects_bad_filters(store: IncidentStore, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        store.list(**kw)


def test_update_details_adds_keys_and_only_then_touches_updated_at(
    store: IncidentStore,
) -> None:
    inc, _ = record(store, run(2, 4, details={"a": 1, "b": 2}))
    same = store.update_details(inc.id, {"a": 1})
    assert same == inc
    changed = store.update_details(inc.id, {"b": 3, "when": dt.date(2026, 3, 5)})
    assert changed.details == {"a": 1, "b": 3, "when": "2026-03-05"}
    assert (changed.start, changed.end, changed.state) == (inc.start, inc.end, inc.state)
    with pytest.raises(UsageError, match="must hold JSON values"):
        store.update_details(inc.id, {"x": {1, 2}})


# -- persistence --------------------------------------------------------------------------------


def test_incidents_persist_across_workspace_reopen(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        inc, _ = record(ws.incidents, run(2, 4, details={"q": 0.01}))
        ws.incidents.acknowledge(inc.id)
    with Workspace.open(tmp_path / "ws") as ws:
        back = ws.incidents.get(inc.id)
        assert back.state == "acknowledged"
        assert (span(back), back.details) == ((2, 4), {"q": 0.01})
        assert record(ws.incidents, run(2, 4, details={"q": 0.01}))[1] == "unchanged"


def test_an_old_metadata_file_without_the_table_is_upgraded_in_place(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        ws.keys.create(tenant_id="acme", scopes=("read",))
    db = tmp_path / "ws" / "assay.sqlite"
    con = sqlite3.connect(db)
    con.execute("DROP TABLE incidents")  # as a workspace made before incidents existed
    con.commit()
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    assert "incidents" not in tables
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.incidents.list(state="all") == []
        assert record(ws.incidents, run(2, 4))[1] == "opened"
        assert len(ws.keys.list()) == 1  # the old rows are still there
    con = sqlite3.connect(db)
    indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    con.close()
    assert "incidents_kind_key" in indexes


def test_a_failed_record_leaves_nothing_half_written(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "assay.sqlite")
    try:
        store = IncidentStore(meta)

        def insert_then_fail() -> None:
            with meta.transaction() as conn:
                conn.execute(
                    "INSERT INTO incidents (kind, key, metric, slice, start_day, end_day, "
                    "direction, severity, details, state, created_at, updated_at) VALUES "
                    "('anomaly', 'k', 'dau', '{}', '2026-03-01', '2026-03-01', 'up', 'low', "
                    "'{}', 'open', 'now', 'now')"
                )
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            insert_then_fail()
        assert store.list(state="all") == []
    finally:
        meta.close()


# -- properties ---------------------------------------------------------------------------------

runs_strategy = st.lists(
    st.tuples(st.integers(1, 40), st.integers(0, 5)).map(lambda t: (t[0], t[0] + t[1])),
    min_size=1,
    max_size=12,
)


def clusters(runs: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Reference: sort the runs and sweep, joining a run whose first day is at most ``gap``
    days after the current cluster's last day."""
    out: list[list[int]] = []
    for first, last in sorted(runs):
        if out and first <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], last)
        else:
            out.append([first, last])
    return [(a, b) for a, b in out]


@settings(max_examples=80, deadline=None)
@given(runs=runs_strategy, gap=st.integers(0, 3))
def test_recorded_runs_become_the_clusters_of_their_days(
    runs: list[tuple[int, int]], gap: int
) -> None:
    with tempfile.TemporaryDirectory() as d:
        meta = MetaStore(Path(d) / "assay.sqlite")
        try:
            store = IncidentStore(meta)
            for first, last in runs:
                record(store, run(first, last), gap_days=gap)
            live = sorted(span(i) for i in store.list())
            assert live == clusters(runs, gap)
            # Every recorded day is in one live incident; live incidents are > gap days apart.
            for first, last in runs:
                for n in range(first, last + 1):
                    assert sum(a <= n <= b for a, b in live) == 1
            for (_, b), (c, _) in itertools.pairwise(live):
                assert c > b + gap
            # Recording every run again changes nothing.
            before = store.list(state="all")
            for first, last in runs:
                assert record(store, run(first, last), gap_days=gap)[1] == "unchanged"
            assert store.list(state="all") == before
        finally:
            meta.close()


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("run"), runs_strategy.map(lambda r: r[0])),
            st.tuples(st.just("resolve"), st.integers(0, 5)),
        ),
        min_size=1,
        max_size=15,
    ),
    gap=st.integers(0, 2),
)
def test_resolved_incidents_silence_only_their_reach(
    steps: list[tuple[str, Any]], gap: int
) -> None:
    with tempfile.TemporaryDirectory() as d:
        meta = MetaStore(Path(d) / "assay.sqlite")
        try:
            store = IncidentStore(meta)
            recorded: set[int] = set()
            frozen: dict[int, tuple[int, int]] = {}
            for action, arg in steps:
                if action == "run":
                    record(store, run(*arg), gap_days=gap)
                    recorded.update(range(arg[0], arg[1] + 1))
                else:
                    live = store.list(state="open")
                    if live:
                        inc = store.resolve(live[arg % len(live)].id)
                        frozen[inc.id] = span(inc)
            everything = store.list(state="all")
            # A resolved incident's days never change after it is resolved.
            for inc in everything:
                if inc.id in frozen:
                    assert span(inc) == frozen[inc.id]
            standing = [i for i in everything if i.merged_into is None]
            spans = sorted(span(i) for i in standing)
            # The incidents of the series never touch one another...
            for (_, b), (c, _) in itertools.pairwise(spans):
                assert c > b + gap
            # ...and every recorded day is in a live incident, or near a resolved one.
            live_spans = [span(i) for i in standing if i.state != "resolved"]
            resolved_spans = [span(i) for i in standing if i.state == "resolved"]
            for n in recorded:
                live_hit = any(a <= n <= b for a, b in live_spans)
                silenced = any(a - gap <= n <= b + gap for a, b in resolved_spans)
                assert live_hit or silenced
        finally:
            meta.close()


# -- one incident seen in several series (details["seen_in"]) ----------------------------------


def _seen(tenant: str, first: int, last: int, **kw: Any) -> dict[str, Any]:
    return {
        "key": f"latency_p95|tenant={tenant}",
        "tenant_id": tenant,
        "slice": {},
        "metric": "latency_p95",
        "start": day(first).isoformat(),
        "end": day(last).isoformat(),
        "direction": "up",
        **kw,
    }


def _release(first: int, last: int, *members: dict[str, Any]) -> NewIncident:
    return run(
        first,
        last,
        key="release|prompt_template=rag-v3",
        tenant_id=members[0]["tenant_id"],
        metric="latency_p95",
        slice={"prompt_template": "rag-v3"},
        direction="up",
        details={
            "cause": {"field": "prompt_template", "value": "rag-v3"},
            "seen_in": list(members),
        },
    )


def test_findings_of_one_cause_in_other_tenants_join_its_incident(store: IncidentStore) -> None:
    first, outcome = record(store, _release(2, 4, _seen("a", 2, 4)))
    assert (outcome, first.tenant_id, first.title) == (
        "opened",
        "a",
        "prompt_template=rag-v3: latency_p95 up in a",
    )
    # Another scan (another slice field) sees b, and a's episode again, one day longer.
    inc, outcome = record(store, _release(3, 5, _seen("b", 3, 5), _seen("a", 3, 5, observed=9.0)))
    assert (outcome, inc.id, span(inc)) == ("extended", first.id, (2, 5))
    assert inc.tenant_id is None  # seen in two tenants
    assert inc.details["seen_in"] == [
        _seen("a", 2, 5, observed=9.0),  # one entry per series: the later one, days widened
        _seen("b", 3, 5),
    ]
    assert inc.title == "prompt_template=rag-v3: latency_p95 up in 2 tenants (2 series)"
    # Recording the same again changes nothing.
    again = _release(3, 5, _seen("b", 3, 5), _seen("a", 3, 5, observed=9.0))
    assert record(store, again)[1] == "unchanged"
    # The incident is listed for either tenant, and for its metric.
    assert [i.id for i in store.list(tenant="b")] == [inc.id]
    assert [i.id for i in store.list(tenant="a", metric="latency_p95")] == [inc.id]
    assert store.list(tenant="c") == []
    assert store.list(metric="dau") == []
    assert store.get(inc.id).as_dict()["title"] == inc.title


def test_an_incident_without_seen_in_is_seen_in_its_own_series(store: IncidentStore) -> None:
    inc, _ = record(store, run(2, 4))
    assert inc.seen_in == [
        {
            "key": "dau|tenant=acme|locale=fr",
            "tenant_id": "acme",
            "slice": {"locale": "fr"},
            "metric": "dau",
            "start": "2026-03-02",
            "end": "2026-03-04",
            "direction": "down",
            "expected": 100.0,
            "observed": 50.0,
        }
    ]
