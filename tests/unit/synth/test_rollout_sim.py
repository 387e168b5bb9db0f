"""The rollout simulation: rates as the scenario says (binomial bounds, scipy), the locale-only
effect only in its locale, determinism, and a short replay against a workspace."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from assay._api import Workspace
from assay._demo import replay_rollout
from assay.synth import SCENARIOS, rollout_steps, step_events
from assay.synth._rollout import BAD_LOCALE, LOCALES, TURNS

DAY = dt.date(2026, 5, 4)
#: Two-sided p-value under which a count is called inconsistent with the scenario's rate.
#: Tests are seeded, so this only guards against a wrong rate, not chance.
P_FLOOR = 1e-4
#: A short plan for the replays (few looks, so the tests stay quick).
STEPS = (5.0, 50.0, 100.0)


def _sessions(events: pa.Table) -> dict[tuple[str, str], tuple[int, int]]:
    """(model_version, locale) -> (sessions, handed-off sessions), counted from the rows
    (plain Python, independent of the generator's own tallies)."""
    seen: dict[str, tuple[str, str]] = {}
    handed: set[str] = set()
    for row in events.select(["session_id", "model_version", "locale", "handoff"]).to_pylist():
        seen[row["session_id"]] = (row["model_version"], row["locale"])
        if row["handoff"]:
            handed.add(row["session_id"])
    n = Counter(seen.values())
    k = Counter(seen[s] for s in handed)
    return {key: (n[key], k[key]) for key in n}


@pytest.fixture(scope="module")
def locale_step() -> pa.Table:
    return step_events("locale", weight=50, sessions=60_000, day=DAY, seed=7).events


def test_handoff_rates_match_each_scenario_within_binomial_bounds() -> None:
    truth = {
        # scenario -> (stable rate, candidate rate outside the bad locale, in it)
        "equal": (0.012, 0.012, 0.012),
        "locale": (0.012, 0.012, 0.035),
        "better": (0.012, 0.006, 0.006),
    }
    for name, (p_stable, p_cand, p_bad) in truth.items():
        events = step_events(name, weight=50, sessions=40_000, day=DAY, seed=5).events
        for (version, locale), (n, k) in _sessions(events).items():
            p = p_stable if version == "v1" else (p_bad if locale == BAD_LOCALE else p_cand)
            test = stats.binomtest(k, n, p)
            assert test.pvalue > P_FLOOR, (name, version, locale, k, n, p)


def test_the_locale_effect_is_only_in_its_locale(locale_step: pa.Table) -> None:
    counts = _sessions(locale_step)
    for locale in LOCALES:
        n_s, k_s = counts["v1", locale]
        n_c, k_c = counts["v2", locale]
        _, p = stats.fisher_exact([[k_s, n_s - k_s], [k_c, n_c - k_c]])
        if locale == BAD_LOCALE:
            assert p < 1e-6
            assert k_c / n_c > 2 * k_s / n_s
        else:
            assert p > P_FLOOR, (locale, k_s, n_s, k_c, n_c)


def test_the_slower_candidate_takes_one_and_a_half_times_as_long() -> None:
    events = step_events("slower", weight=50, sessions=4_000, day=DAY, seed=2).events
    rows = events.filter(pa.compute.equal(events["event_type"], "turn"))
    version = np.asarray(rows["model_version"].to_pylist())
    log_lat = np.log(np.asarray(rows["latency_ms"].to_pylist(), dtype=float))
    diff = log_lat[version == "v2"].mean() - log_lat[version == "v1"].mean()
    se = math.sqrt(
        log_lat[version == "v2"].var() / (version == "v2").sum()
        + log_lat[version == "v1"].var() / (version == "v1").sum()
    )
    assert abs(diff - math.log(1.5)) < 4 * se
    # The equal scenario: no difference.
    same = step_events("equal", weight=50, sessions=4_000, day=DAY, seed=2).events
    turns = same.filter(pa.compute.equal(same["event_type"], "turn"))
    v = np.asarray(turns["model_version"].to_pylist())
    lat = np.asarray(turns["latency_ms"].to_pylist(), dtype=float)
    assert stats.mannwhitneyu(lat[v == "v1"], lat[v == "v2"]).pvalue > P_FLOOR


def test_the_candidate_share_follows_the_step_weight() -> None:
    for weight in (1.0, 5.0, 25.0):
        step = step_events("equal", weight=weight, sessions=20_000, day=DAY, seed=1)
        n_cand = sum(n for (v, _), (n, _) in _sessions(step.events).items() if v == "v2")
        assert stats.binomtest(n_cand, 20_000, weight / 100).pvalue > P_FLOOR
        # The generator's own tallies agree with the rows.
        assert sum(step.sessions["candidate"].values()) == n_cand


def test_rollout_steps_one_day_per_plan_step_and_deterministic_by_seed() -> None:
    a = rollout_steps("locale", steps=(5, 50), sessions_per_step=300, seed=4)
    b = rollout_steps("locale", steps=(5, 50), sessions_per_step=300, seed=4)
    c = rollout_steps("locale", steps=(5, 50), sessions_per_step=300, seed=5)
    assert [(s.weight, s.day) for s in a] == [(5.0, DAY), (50.0, DAY + dt.timedelta(days=1))]
    assert all(x.events.equals(y.events) for x, y in zip(a, b, strict=True))
    assert not a[0].events.equals(c[0].events)
    # Event ids never repeat across steps (a replay stores them all).
    ids = [i for s in a for i in s.events.column("event_id").to_pylist()]
    assert len(ids) == len(set(ids)) == 2 * 300 * TURNS


@settings(max_examples=20, deadline=None)
@given(
    weight=st.floats(0, 100),
    sessions=st.integers(1, 60),
    scenario=st.sampled_from(sorted(SCENARIOS)),
)
def test_every_session_has_its_turns_one_version_and_at_most_one_handoff(
    weight: float, sessions: int, scenario: str
) -> None:
    events = step_events(scenario, weight=weight, sessions=sessions, day=DAY, seed=0).events
    rows = events.to_pylist()
    assert len(rows) == sessions * TURNS
    by_session: dict[str, list[dict[str, object]]] = {}
    for r in rows:
        by_session.setdefault(str(r["session_id"]), []).append(r)
    for evs in by_session.values():
        assert len(evs) == TURNS
        assert len({e["model_version"] for e in evs}) == 1
        assert sum(bool(e["handoff"]) for e in evs) <= 1
        assert {e["event_date"] for e in evs} == {DAY}
    versions = {r["model_version"] for r in rows}
    if weight == 0:
        assert versions == {"v1"}
    if weight == 100:
        assert versions == {"v2"}


def test_a_wrong_scenario_or_weight_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="equal, locale, slower, better"):
        step_events("worse", weight=5, sessions=10, day=DAY)
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        step_events("equal", weight=150, sessions=10, day=DAY)


def test_a_replay_rolls_back_the_locale_regression_on_its_locale_only(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "b", create=True) as ws:
        bad = replay_rollout(
            ws, "locale", steps=STEPS, sessions_per_step=20_000, max_looks=3, seed=11
        )
    assert bad.rollout.state == "rolled_back"
    assert bad.rollout.weight == 0
    assert bad.looks[-1]["verdict"] == "rollback"
    assert [(g.gate, g.metric, g.slice) for g in bad.evidence] == [
        ("handoff", "handoff_rate", f"locale={BAD_LOCALE}")
    ]
    row = bad.evidence[0]
    assert row.candidate["rate"] > row.stable["rate"]
    # The candidate's traffic followed the plan: 5% first, never above the step reached.
    assert bad.looks[0]["weight"] == 5.0
    assert all(a["weight"] <= b["weight"] for a, b in itertools.pairwise(bad.looks))


def test_a_replay_of_an_equal_candidate_does_not_roll_back(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "a", create=True) as ws:
        same = replay_rollout(
            ws, "equal", steps=STEPS, sessions_per_step=20_000, max_looks=3, seed=11
        )
    assert same.rollout.state != "rolled_back"
    assert not same.evidence
    assert all(look["verdict"] != "rollback" for look in same.looks)
    assert [look["weight"] for look in same.looks] == [5.0, 50.0, 100.0]
