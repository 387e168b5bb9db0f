"""truth.json's session_labels: every session once, and the recorded probabilities are the law
the labels follow (the labels are read from the generated events, the way the models define
them: a thumbs-down at or after the session's last turn, a handoff)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from assay.synth import SynthConfig
from assay.synth._generate import (
    _FEEDBACK,
    _HANDOFF,
    _TURN,
    session_labels,
    simulate_day,
    truth,
)
from assay.synth._world import build_world

CONFIG = SynthConfig(tenants=6, users=200, days=30, seed=5)


def _labels_and_probabilities() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    world = build_world(CONFIG)
    y_down, y_hand, p_down, p_hand = [], [], [], []
    for day in range(CONFIG.days):
        d = simulate_day(world, day)
        n_s = len(d.s_tenant)
        last_turn = np.full(n_s, -1, dtype=np.int64)
        turns = d.ev_type == _TURN
        np.maximum.at(last_turn, d.ev_sess[turns], d.ev_time[turns])
        negative = (d.ev_type == _FEEDBACK) & (
            (d.ev_feedback == -1) | ((d.ev_rating >= 1) & (d.ev_rating <= 2))
        )
        late = d.ev_time >= last_turn[d.ev_sess]
        down = np.zeros(n_s, bool)
        down[d.ev_sess[negative & late]] = True
        hand = np.zeros(n_s, bool)
        hand[d.ev_sess[d.ev_type == _HANDOFF]] = True
        # Sessions cut by the end of the period may lose their label events: leave them out.
        whole = d.ev_time.max(initial=0) < world.day0_ms + (CONFIG.days - 1) * 86_400_000
        keep = np.ones(n_s, bool) if whole else np.zeros(n_s, bool)
        y_down.append(down[keep])
        y_hand.append(hand[keep])
        p_down.append(d.s_p_thumbs_down[keep])
        p_hand.append(d.s_p_handoff[keep])
    return tuple(np.concatenate(x) for x in (y_down, y_hand, p_down, p_hand))  # type: ignore[return-value]


def _check_calibrated(y: np.ndarray, p: np.ndarray, bins: int = 5) -> None:
    """Overall and per quantile bin of p: the positives counted are within 4 standard
    deviations of the expected count (a sum of independent Bernoulli(p))."""
    groups = [np.arange(p.size)]
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    groups += [np.flatnonzero(which == b) for b in range(bins)]
    for rows in groups:
        if rows.size == 0:
            continue
        expected = p[rows].sum()
        sd = math.sqrt(float((p[rows] * (1 - p[rows])).sum()))
        assert abs(y[rows].sum() - expected) <= 4 * sd + 1, (rows.size, y[rows].sum(), expected)


def test_labels_follow_the_recorded_probabilities() -> None:
    y_down, y_hand, p_down, p_hand = _labels_and_probabilities()
    assert y_down.size > 5000
    _check_calibrated(y_down, p_down)
    _check_calibrated(y_hand, p_hand)
    # The probabilities vary (slow and out-of-scope turns): a constant would pass the overall
    # check but not carry any information about which session will be unhappy.
    assert p_down.std() > 0.003
    # Handoff probabilities take the two rates of the world (the rolled-out slice is higher).
    assert set(np.round(np.unique(p_hand), 6)) <= {0.04, 0.14}


def test_truth_lists_every_session_once_with_its_day() -> None:
    facts = truth(SynthConfig(tenants=2, users=30, days=5, seed=2), sessions=True)
    labels = facts["session_labels"]
    n = len(labels["session_id"])
    assert n > 0
    assert len(set(zip(labels["tenant_id"], labels["session_id"], strict=True))) == n
    assert {len(labels[k]) for k in ("tenant_id", "day", "thumbs_down", "handoff")} == {n}
    assert min(labels["day"]) == facts["start"]
    assert max(labels["day"]) <= facts["end"]
    assert all(0.0 < p < 1.0 for p in labels["thumbs_down"])
    assert "thumbs_down_next" in labels["definition"]


def test_session_labels_match_the_day_simulated() -> None:
    world = build_world(CONFIG)
    d = simulate_day(world, 3)
    cols = session_labels(world, d)
    assert cols["session_id"] == d.s_ids.to_pylist()
    assert cols["thumbs_down"] == pytest.approx(d.s_p_thumbs_down.tolist(), rel=1e-9)
    assert set(cols["day"]) == {(CONFIG.start + dt.timedelta(days=3)).isoformat()}
