"""``ws.models.dataset``: hand-worked ties, the cases the one-pass build must order exactly.

The build picks the last turn with one ``max_by`` and counts a user's earlier sessions and
signals from one sort of the user's stream; these sessions put every tie it must break on
the same instant.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from models_data import ModelsFactory, ev

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


def at(**delta: float) -> dt.datetime:
    return T0 + dt.timedelta(**delta)


def by_session(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["session_id"]): r for r in rows}


def test_last_turn_ties_go_to_turn_index_then_event_id(models_over: ModelsFactory) -> None:
    # Four turns of one session at the same instant: the highest turn_index (3) wins, and of
    # the two with index 3 the larger event_id ("e5" > "e1"); a missing index counts as -1.
    rows = [
        ev(at(), type="turn", session="a", turn_index=2, locale="xx", intent_confidence=0.1)
        | {"event_id": "e9"},
        ev(at(), type="turn", session="a", turn_index=3, locale="fr", intent_confidence=0.2)
        | {"event_id": "e1"},
        ev(at(), type="turn", session="a", turn_index=3, locale="de", intent_confidence=0.3)
        | {"event_id": "e5"},
        ev(at(), type="turn", session="a", turn_index=None, locale="yy", intent_confidence=0.4)
        | {"event_id": "e8"},
        ev(at(days=3), type="turn", session="z", user="other") | {"event_id": "e0"},
    ]
    a = by_session(models_over(rows).dataset().to_pylist())["a"]
    assert (a["locale"], a["intent_confidence"]) == ("de", 0.3)
    assert (a["prediction_time"], a["n_turns"]) == (T0, 4.0)


def test_sessions_and_signals_at_the_same_start_are_not_history(
    models_over: ModelsFactory,
) -> None:
    # u1's sessions a and b both start at T0; a's thumbs-down is stamped at T0 too (not
    # before either start). c starts an hour later: a and b, and a's rating, are its history.
    rows = [
        ev(at(), type="turn", session="a"),
        ev(at(), type="feedback", feedback=-1, session="a"),
        ev(at(), type="turn", session="b"),
        ev(at(minutes=5), type="turn", session="b"),
        ev(at(hours=1), type="turn", session="c"),
        ev(at(days=3), type="turn", session="z", user="other"),
    ]
    got = by_session(models_over(rows).dataset().to_pylist())
    for name in ("a", "b"):
        assert got[name]["user_prev_sessions"] == 0.0, name
        assert got[name]["user_prev_thumbs_down_rate"] is None, name
        assert got[name]["user_prev_handoff_rate"] is None, name
        assert got[name]["user_tenure_days"] == 0.0, name
    c = got["c"]
    assert c["user_prev_sessions"] == 2.0
    assert c["user_prev_thumbs_down_rate"] == 1.0  # one rated signal, a thumbs-down
    assert c["user_prev_handoff_rate"] == 0.0  # no handoff over two sessions
    assert c["user_tenure_days"] == pytest.approx(1 / 24)
    # a's own thumbs-down at its prediction time is its label; b has none.
    assert (got["a"]["label"], got["b"]["label"], c["label"]) == (True, False, False)
