"""``ws.models.dataset``: hand-worked sessions, a plain-Python reference, point-in-time rules."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from models_data import ModelsFactory, ev
from models_reference import reference_dataset

from assay import NotFoundError, UsageError
from assay.models import (
    CATEGORICAL_FEATURES,
    LABELS,
    NUMERIC_FEATURES,
    feature_columns,
)

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


def at(**delta: float) -> dt.datetime:
    return T0 + dt.timedelta(**delta)


def rows_of(table: pa.Table) -> list[dict[str, Any]]:
    return table.to_pylist()


def assert_rows_equal(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [(r["tenant_id"], r["session_id"]) for r in got] == [
        (r["tenant_id"], r["session_id"]) for r in want
    ]
    for g, w in zip(got, want, strict=True):
        for key, value in w.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
            else:
                assert g[key] == value, (key, g["session_id"])


# -- hand-worked ------------------------------------------------------------------------------


def handworked_rows() -> list[dict[str, Any]]:
    """Two sessions of one user, a later session that closes the data, an unrelated tenant.

    Listed out of time order on purpose.
    """
    s1 = {"tenant": "t1", "user": "u1", "session": "s1"}
    s2 = {"tenant": "t1", "user": "u1", "session": "s2"}
    return [
        # s2 (the user's second session), 2026-03-03 23:58 -> 03-04 00:01: spans midnight.
        ev(at(days=1, hours=13, minutes=58), type="session_start", **s2),
        ev(
            at(days=1, hours=14, minutes=1),
            type="turn",
            turn_index=1,
            latency_ms=300.0,
            locale="fr-FR",
            intent="billing",
            intent_confidence=0.4,
            **s2,
        ),
        ev(
            at(days=1, hours=13, minutes=59),
            type="turn",
            turn_index=0,
            latency_ms=100.0,
            tokens_in=10,
            tokens_out=20,
            retrieved_doc_ids=["a", "b"],
            cited_doc_ids=["a"],
            **s2,
        ),
        ev(at(days=1, hours=14), type="error", error_code="timeout", **s2),
        # After s2's prediction time: a label, and later events that must not be features.
        ev(at(days=1, hours=14, minutes=2), type="feedback", feedback=-1, **s2),
        ev(at(days=1, hours=14, minutes=3), type="error", **s2),
        # s1: the user's first session, 2026-03-02 10:00.
        ev(
            at(),
            type="turn",
            turn_index=0,
            latency_ms=1000.0,
            tokens_in=5,
            tokens_out=7,
            locale="en-US",
            platform="web",
            model_version="m1",
            prompt_template="p1",
            app_version="1.0",
            intent="oos",
            intent_confidence=0.9,
            **s1,
        ),
        ev(at(minutes=1), type="feedback", rating=2, **s1),  # thumbs down (rating <= 2)
        ev(at(minutes=2), type="handoff", handoff=True, **s1),
        # Late feedback on s1, arriving after s2 started: never in s2's user history.
        ev(at(days=1, hours=14, minutes=30), type="feedback", feedback=1, **s1),
        # Another tenant with the same user_id, and an event that closes every window.
        ev(at(days=3), type="turn", tenant="t2", user="u1", session="x1"),
    ]


def test_handworked_sessions(models_over: ModelsFactory) -> None:
    table = models_over(handworked_rows()).dataset("thumbs_down")
    rows = {r["session_id"]: r for r in rows_of(table)}
    # x1's window (1 day) ends after the last stored event (x1 itself): not a row.
    assert set(rows) == {"s1", "s2"}
    s1, s2 = rows["s1"], rows["s2"]

    assert s1["prediction_time"] == T0
    assert s1["day"] == dt.date(2026, 3, 2)
    assert s1["label"] is True  # the rating 2 one minute later
    assert (s1["n_turns"], s1["latency_mean_ms"], s1["tokens_out_mean"]) == (1.0, 1000.0, 7.0)
    assert (s1["hour_of_day"], s1["weekday"]) == (10.0, 0.0)
    assert (s1["user_prev_sessions"], s1["user_tenure_days"]) == (0.0, 0.0)
    assert s1["user_prev_thumbs_down_rate"] is None
    assert s1["citation_share"] is None  # no document retrieved
    assert (s1["intent"], s1["locale"], s1["platform"]) == ("oos", "en-US", "web")

    # s2: last turn at 03-04 00:01 (turn_index 1); started 03-03 23:58.
    assert s2["prediction_time"] == at(days=1, hours=14, minutes=1)
    assert s2["day"] == dt.date(2026, 3, 4)
    assert s2["label"] is True
    assert s2["n_turns"] == 2.0
    assert s2["latency_mean_ms"] == 200.0
    assert s2["latency_max_ms"] == 300.0
    assert s2["tokens_in_mean"] == 10.0  # one turn has tokens
    assert (s2["n_errors"], s2["any_error"]) == (1.0, 1.0)  # the 00:03 error is after pt
    assert (s2["retrieved_docs"], s2["cited_docs"], s2["citation_share"]) == (2.0, 1.0, 0.5)
    assert s2["session_duration_s"] == 180.0
    assert (s2["hour_of_day"], s2["weekday"]) == (0.0, 2.0)  # a Wednesday
    assert (s2["intent"], s2["intent_confidence"], s2["locale"]) == ("billing", 0.4, "fr-FR")
    # The last turn (00:01, 300 ms) and the one before it (23:59, 100 ms, no confidence): its
    # answer came at 23:59:00.1, 119.9 s before the last turn, across midnight.
    assert (s2["last_turn_latency_ms"], s2["prev_turn_latency_ms"]) == (300.0, 100.0)
    assert s2["prev_turn_gap_s"] == pytest.approx(119.9)
    assert s2["prev_turn_intent_confidence"] is None
    # s1 has one turn: no previous turn.
    assert s1["last_turn_latency_ms"] == 1000.0
    assert (s1["prev_turn_latency_ms"], s1["prev_turn_gap_s"]) == (None, None)
    assert s1["prev_turn_intent_confidence"] is None
    # History before 03-03 23:58: s1, its rating 2 (rated, down) and its handoff; s1's late
    # thumbs-up (03-04 00:30) came after s2 started.
    assert s2["user_prev_sessions"] == 1.0
    assert s2["user_prev_thumbs_down_rate"] == 1.0
    assert s2["user_prev_handoff_rate"] == 1.0
    assert s2["user_tenure_days"] == pytest.approx(1 + (13 * 3600 + 58 * 60) / 86400)
    # Tenant history: the 28 days before 03-03 (s2's start day) hold s1 and its rating 2
    # and handoff, not the late thumbs-up of 03-04.
    assert s2["tenant_thumbs_down_rate_28d"] == 1.0
    assert s2["tenant_handoff_rate_28d"] == 1.0


def test_tenant_history_reads_days_before_the_start_day(models_over: ModelsFactory) -> None:
    rows = [
        ev(at(days=-3), type="turn", session="a"),
        ev(at(days=-3, minutes=1), type="feedback", feedback=-1, session="a"),
        ev(at(days=-2), type="turn", session="b", user="u2"),
        ev(at(days=-2, minutes=1), type="feedback", feedback=1, session="b", user="u2"),
        ev(at(days=-2, minutes=2), type="handoff", session="b", user="u2"),
        ev(at(days=-29), type="turn", session="old", user="u3"),  # 29 days before: outside
        ev(at(days=-29, minutes=1), type="feedback", feedback=-1, session="old", user="u3"),
        ev(at(), type="turn", session="c", user="u4"),
        ev(at(minutes=5), type="feedback", feedback=-1, session="c", user="u4"),  # same day
        ev(at(days=2), type="turn", session="end", user="u5"),
    ]
    table = models_over(rows).dataset()
    c = next(r for r in rows_of(table) if r["session_id"] == "c")
    # Days 02-02..03-01: sessions a and b; feedback -1 and +1; one handoff.
    assert c["tenant_thumbs_down_rate_28d"] == 0.5
    assert c["tenant_handoff_rate_28d"] == 0.5


def test_same_user_id_in_two_tenants_is_two_users(models_over: ModelsFactory) -> None:
    rows = [
        ev(at(), type="turn", tenant="t1", session="a"),
        ev(at(minutes=1), type="feedback", feedback=-1, tenant="t1", session="a"),
        ev(at(hours=1), type="turn", tenant="t2", session="b"),
        ev(at(days=3), type="turn", tenant="t1", session="z"),
    ]
    b = next(r for r in rows_of(models_over(rows).dataset()) if r["session_id"] == "b")
    assert b["user_prev_sessions"] == 0.0
    assert b["user_prev_thumbs_down_rate"] is None


def test_a_session_whose_window_is_open_is_not_a_row(models_over: ModelsFactory) -> None:
    rows = [
        ev(at(), type="turn", session="a"),
        ev(at(hours=23), type="turn", session="b", user="u2"),
        ev(at(days=1, hours=1), type="turn", session="c", user="u3"),  # the last event
    ]
    m = models_over(rows)
    # a: 10:00 + 1 day <= 03-03 11:00; b: 03-03 09:00 + 1 day is later; c: later still.
    assert [r["session_id"] for r in rows_of(m.dataset())] == ["a"]
    assert [r["session_id"] for r in rows_of(m.dataset(label_window_days=2))] == []
    # until ends the data at 03-03 00:00: a's window (until 03-03 10:00) is open.
    assert rows_of(m.dataset(until=dt.date(2026, 3, 2))) == []
    assert m.dataset("thumbs_down_next").num_rows == 0  # 8 days never closed


def test_thumbs_down_next_reads_the_next_session(models_over: ModelsFactory) -> None:
    rows = [
        ev(at(), type="turn", session="a"),
        ev(at(days=2), type="turn", session="b"),
        ev(at(days=2, minutes=1), type="feedback", feedback=-1, session="b"),
        ev(at(days=3), type="turn", session="c"),  # b's next: no thumbs-down
        ev(at(days=12), type="turn", session="d"),  # 9 days after c: not "next within 7"
        ev(at(days=12, minutes=1), type="feedback", feedback=-1, session="d"),
        ev(at(days=30), type="turn", session="z", user="other"),
    ]
    table = models_over(rows).dataset("thumbs_down_next")
    got = {r["session_id"]: r["label"] for r in rows_of(table)}
    assert got == {"a": True, "b": False, "c": False, "d": False}


def test_attributes_are_features_only_when_opted_in(models_over: ModelsFactory) -> None:
    rows = [
        ev(at(), type="session_start", attributes=[("plan", "pro"), ("ticket", "1")]),
        ev(at(minutes=1), type="turn"),
        ev(at(minutes=2), type="feedback", feedback=-1, attributes=[("plan", "zzz")]),
        ev(at(days=3), type="turn", session="z"),
    ]
    m = models_over(rows)
    plain = m.dataset()
    assert not [c for c in plain.column_names if c.startswith("attr_")]
    opted = m.dataset(attributes=["plan"])
    # The feedback event's value is never read: it is label-bearing.
    assert opted.column("attr_plan").to_pylist() == ["pro"]
    assert feature_columns(opted) == (
        list(NUMERIC_FEATURES),
        [*CATEGORICAL_FEATURES, "attr_plan"],
    )


def test_schema_and_metadata(models_over: ModelsFactory) -> None:
    table = models_over(handworked_rows()).dataset("handoff", since=dt.date(2026, 3, 3))
    keys = ["tenant_id", "session_id", "user_id", "day", "prediction_time"]
    assert table.column_names[:5] == keys
    assert table.schema.field("day").type == pa.date32()
    assert table.schema.field("prediction_time").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("label").type == pa.bool_()
    assert all(table.schema.field(n).type == pa.float64() for n in NUMERIC_FEATURES)
    meta = table.schema.metadata
    assert meta[b"assay.label"] == b"handoff"
    assert json.loads(meta[b"assay.window"])["since"] == "2026-03-03"
    assert b"last turn" in meta[b"assay.prediction_time"]
    # since (03-03) keeps s2 only; s2 has no handoff after its prediction time.
    assert [(r["session_id"], r["label"]) for r in rows_of(table)] == [("s2", False)]


def test_bad_arguments_say_how_to_fix(models_over: ModelsFactory) -> None:
    m = models_over(handworked_rows())
    with pytest.raises(UsageError, match="label must be one of thumbs_down"):
        m.dataset("thumbs_up")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="label_window_days"):
        m.dataset(label_window_days=0)
    with pytest.raises(UsageError, match="since must not be after until"):
        m.dataset(since=dt.date(2026, 3, 5), until=dt.date(2026, 3, 1))
    with pytest.raises(NotFoundError, match="did you mean t1"):
        m.dataset(tenant="t11")
    # The checks are the metrics package's (assay.metrics.check_date / check_tenant).
    with pytest.raises(UsageError, match=r"since must be a datetime\.date"):
        m.dataset(since="2026-03-01")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"until must be a datetime\.date"):
        m.dataset(until=dt.datetime(2026, 3, 1, tzinfo=UTC))
    with pytest.raises(UsageError, match="tenant must be a non-empty tenant_id"):
        m.dataset(tenant="")
    with pytest.raises(UsageError, match="attributes"):
        m.dataset(attributes=[""])


def test_empty_workspace_gives_an_empty_table(models_over: ModelsFactory) -> None:
    table = models_over([]).dataset()
    assert table.num_rows == 0
    assert feature_columns(table)[0] == list(NUMERIC_FEATURES)


def test_previous_turn_is_the_one_below_the_last_in_time_index_and_id(
    models_over: ModelsFactory,
) -> None:
    # Listed out of order; three turns share the last instant. The last is index 2 ("e2");
    # below it at the same instant: index 2 with a smaller id ("e1") beats index 1 ("e9").
    rows = [
        ev(at(), type="turn", turn_index=1, latency_ms=50.0) | {"event_id": "e9"},
        ev(at(), type="turn", turn_index=2, latency_ms=70.0, intent_confidence=0.5)
        | {"event_id": "e2"},
        ev(at(seconds=-40), type="turn", turn_index=0, latency_ms=10.0) | {"event_id": "e0"},
        ev(at(), type="turn", turn_index=2, latency_ms=60.0, intent_confidence=0.25)
        | {"event_id": "e1"},
        # A later error and a later session's turn: not this session's turns.
        ev(at(days=3), type="turn", session="z", user="other") | {"event_id": "e3"},
    ]
    a = next(r for r in rows_of(models_over(rows).dataset()) if r["session_id"] == "s1")
    assert a["last_turn_latency_ms"] == 70.0
    assert (a["prev_turn_latency_ms"], a["prev_turn_intent_confidence"]) == (60.0, 0.25)
    # Same instant: the previous answer ends 60 ms after the last turn began.
    assert a["prev_turn_gap_s"] == pytest.approx(-0.06)


# -- against the reference --------------------------------------------------------------------


def turn_reference(
    rows: list[dict[str, Any]], want: list[dict[str, Any]], until: dt.date | None
) -> list[dict[str, Any]]:
    """``want`` (the reference rows) with the last- and previous-turn features added, from a
    sort of each session's turns (every turn of a session is at or before its prediction
    time, the last turn's)."""
    turns: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in rows:
        if e["event_type"] == "turn" and (until is None or e["event_date"] <= until):
            turns.setdefault((e["tenant_id"], e["session_id"]), []).append(e)
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    out = []
    for row in want:
        ordered = sorted(
            turns[(row["tenant_id"], row["session_id"])],
            key=lambda e: (
                e["event_time"],
                -1 if e["turn_index"] is None else e["turn_index"],
                e["event_id"],
            ),
        )
        last = ordered[-1]
        assert last["event_time"] == row["prediction_time"]
        extra: dict[str, Any] = {
            "last_turn_latency_ms": last["latency_ms"],
            "prev_turn_latency_ms": None,
            "prev_turn_intent_confidence": None,
            "prev_turn_gap_s": None,
        }
        if len(ordered) > 1:
            prev = ordered[-2]
            extra["prev_turn_latency_ms"] = prev["latency_ms"]
            extra["prev_turn_intent_confidence"] = prev["intent_confidence"]
            if prev["latency_ms"] is not None:
                whole = (last["event_time"] - epoch) // dt.timedelta(seconds=1) - (
                    prev["event_time"] - epoch
                ) // dt.timedelta(seconds=1)
                extra["prev_turn_gap_s"] = whole - prev["latency_ms"] / 1000
        out.append(row | extra)
    return out


_TYPES = ["turn", "turn", "turn", "session_start", "feedback", "handoff", "error", "session_end"]


@st.composite
def event_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Random sessions: few tenants, users and sessions, times in minutes over 12 days,
    ties in time, late feedback, sessions over midnight, the same user id in two tenants."""
    n = draw(st.integers(1, 40))
    rows = []
    for i in range(n):
        tenant = draw(st.sampled_from(["t1", "t2"]))
        user = draw(st.sampled_from(["u1", "u2", "u3"]))
        session = draw(st.sampled_from(["s1", "s2", "s3", "s4", "s5"]))
        kind = draw(st.sampled_from(_TYPES))
        minute = draw(st.integers(0, 12 * 24 * 60)) // draw(st.sampled_from([1, 60, 720]))
        when = T0 + dt.timedelta(minutes=minute, seconds=draw(st.sampled_from([0, 0.5, 30])))
        fields: dict[str, Any] = {
            "turn_index": draw(st.none() | st.integers(0, 3)),
            "locale": draw(st.none() | st.sampled_from(["en", "fr"])),
            "intent": draw(st.none() | st.sampled_from(["a", "oos"])),
            "intent_confidence": draw(st.none() | st.sampled_from([0.25, 0.5])),
            "latency_ms": draw(st.none() | st.sampled_from([100.0, 250.5, 4000.0])),
            "tokens_in": draw(st.none() | st.integers(0, 50)),
            "retrieved_doc_ids": draw(st.none() | st.lists(st.just("d"), max_size=3)),
            "cited_doc_ids": draw(st.none() | st.lists(st.just("d"), max_size=2)),
            "feedback": draw(st.none() | st.sampled_from([-1, 1])),
            "rating": draw(st.none() | st.integers(1, 5)),
            "handoff": draw(st.none() | st.booleans()),
            "attributes": draw(st.none() | st.just([("k", draw(st.sampled_from(["x", "y"])))])),
        }
        rows.append(
            ev(when, tenant=tenant, user=user, session=f"{tenant}-{session}", type=kind, **fields)
            | {"event_id": f"e{i:03d}"}
        )
    return rows


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=event_sets(),
    label=st.sampled_from(LABELS),
    window=st.none() | st.integers(1, 3),
    since=st.none() | st.integers(0, 8),
    until=st.none() | st.integers(2, 12),
)
def test_dataset_matches_the_reference(
    models_over: ModelsFactory,
    rows: list[dict[str, Any]],
    label: str,
    window: int | None,
    since: int | None,
    until: int | None,
) -> None:
    since_day = None if since is None else T0.date() + dt.timedelta(days=since)
    until_day = None if until is None else T0.date() + dt.timedelta(days=until)
    if since_day and until_day and since_day > until_day:
        since_day = until_day
    got = models_over(rows).dataset(
        label,  # type: ignore[arg-type]
        since=since_day,
        until=until_day,
        attributes=["k"],
        label_window_days=window,
    )
    want = reference_dataset(
        rows, label, since=since_day, until=until_day, attributes=["k"], window=window
    )
    want = turn_reference(rows, want, until_day)
    assert_rows_equal(rows_of(got), want)
    if want:
        assert set(want[0]) >= set(NUMERIC_FEATURES)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=event_sets())
def test_one_tenant_is_its_rows_of_all_tenants(
    models_over: ModelsFactory, rows: list[dict[str, Any]]
) -> None:
    m = models_over(rows)
    every = [r for r in rows_of(m.dataset()) if r["tenant_id"] == "t1"]
    if any(r["tenant_id"] == "t1" for r in rows):
        assert_rows_equal(rows_of(m.dataset(tenant="t1")), every)


# -- point in time: what happens after the prediction time never changes a feature ------------


def _shift_after_prediction(
    rows: list[dict[str, Any]],
    session: str,
    pt: dt.datetime,
    start: dt.datetime,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """Move the session's label events and its events after ``pt`` to other (later) times,
    with other values; keep every other event."""
    out = []
    for r in rows:
        mine = r["session_id"] == session
        if mine and (r["event_type"] in ("feedback", "handoff") or r["event_time"] > pt):
            base = max(start, r["event_time"]) if r["event_time"] > pt else start
            when = base + dt.timedelta(minutes=rng.randint(0, 3000))
            r = ev(
                when,
                tenant=r["tenant_id"],
                user=r["user_id"],
                session=session,
                type=r["event_type"],
                feedback=rng.choice([None, -1, 1]),
                rating=rng.choice([None, 1, 5]),
                handoff=rng.choice([None, True]),
                latency_ms=rng.choice([None, 99999.0]),
                intent="moved",
                attributes=[("k", "moved")],
            ) | {"event_id": r["event_id"]}
        out.append(r)
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=event_sets(), seed=st.integers(0, 2**16))
def test_features_ignore_label_events_and_later_events(
    models_over: ModelsFactory, rows: list[dict[str, Any]], seed: int
) -> None:
    before = rows_of(models_over(rows).dataset(attributes=["k"]))
    if not before:
        return
    rng = random.Random(seed)
    target = rng.choice(before)
    session = target["session_id"]
    # The start to the second: floor(pt) - floor(start) = duration, so start <= pt - duration + 1 s.
    start = target["prediction_time"] - dt.timedelta(seconds=target["session_duration_s"] - 1)
    moved = _shift_after_prediction(rows, session, target["prediction_time"], start, rng)
    after = {
        (r["tenant_id"], r["session_id"]): r
        for r in rows_of(models_over(moved).dataset(attributes=["k"]))
    }
    again = after[(target["tenant_id"], session)]
    features = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES, "attr_k", "prediction_time", "day"]
    # Undefined features are nulls (never NaN), so plain equality compares them.
    for name in features:
        assert again[name] == target[name], name


def test_a_sessions_own_label_events_stamped_before_it_are_not_its_history(
    models_over: ModelsFactory,
) -> None:
    rows = [
        ev(at(days=-1), type="turn", session="a"),
        ev(at(days=-1, minutes=1), type="feedback", feedback=1, session="a"),
        # b's thumbs-down and handoff, stamped (skewed clock) before b's first event.
        ev(at(days=-2), type="feedback", feedback=-1, session="b"),
        ev(at(days=-2), type="handoff", session="b"),
        ev(at(), type="turn", session="b"),
        ev(at(days=3), type="turn", session="z", user="other"),
    ]
    b = next(r for r in rows_of(models_over(rows).dataset()) if r["session_id"] == "b")
    # Only a's thumbs-up is history: rate 0 / 1; no handoff; a's one session.
    assert b["user_prev_thumbs_down_rate"] == 0.0
    assert b["user_prev_handoff_rate"] == 0.0
    assert b["tenant_thumbs_down_rate_28d"] == 0.0
    assert b["tenant_handoff_rate_28d"] == 0.0


def test_features_are_every_sessions_dataset_row_without_the_label(
    models_over: ModelsFactory,
) -> None:
    m = models_over(handworked_rows())
    features = m.features()
    assert "label" not in features.column_names
    assert b"assay.label" not in features.schema.metadata
    assert feature_columns(features) == (list(NUMERIC_FEATURES), list(CATEGORICAL_FEATURES))
    rows = {r["session_id"]: r for r in rows_of(features)}
    # x1's label window is still open: not a dataset row, but it has features to score.
    assert set(rows) == {"s1", "s2", "x1"}
    for row in rows_of(m.dataset()):
        row.pop("label")
        assert rows[row["session_id"]] == row
    assert rows["x1"]["tenant_id"] == "t2"
