"""Synthetic telemetry of a telemetry-only rollout, with the known truth.

A rollout ``--release model_version=v2 --stable model_version=v1`` moves a share of the users
to the candidate step by step (the plan's steps, in percent). :func:`rollout_steps` writes the
events of each evaluation step: one day of sessions per step, each user on the candidate with
the step's share (sticky within the step), so that a rollout can be replayed step by step
against a workspace: store a step's events, evaluate the gates, apply the verdict, next step.

The scenarios (:data:`SCENARIOS`) say how the candidate differs from the stable release:

- ``equal``: not at all (a gate that rolls it back is a false alarm);
- ``locale``: handoff rises from 1.2% to 3.5% in one locale only (:data:`BAD_LOCALE`), the
  classic incident that overall rates and request success rates miss;
- ``slower``: every turn's latency is 1.5 times the stable release's;
- ``better``: handoff falls from 1.2% to 0.6% everywhere.

Everything is drawn from one seeded generator: the same seed gives the same events. The
module is below ``assay.rollout`` in DESIGN.md's layering and does not import it; the replay
itself (evaluate, apply) is the caller's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from assay.schema import EVENTS_SCHEMA

#: The release field and values of the simulated rollout.
FIELD = "model_version"
STABLE = "v1"
CANDIDATE = "v2"
#: Slices of the simulated traffic (uniform shares).
LOCALES: tuple[str, ...] = ("en-US", "de-DE", "fr-FR", "ja-JP")
PLATFORMS: tuple[str, ...] = ("web", "ios", "android")
#: The locale where scenario ``locale`` hurts.
BAD_LOCALE = "de-DE"
#: Turns per session; share of turns with a feedback, and of those a thumbs-down.
TURNS = 3
FEEDBACK_SHARE = 0.2
THUMBS_DOWN_SHARE = 0.25
#: Share of a session's events that are errors (instead of turns).
ERROR_SHARE = 0.01
#: Turn latency: lognormal with this log-mean (about 400 ms) and log-sd.
LATENCY_LOG_MEAN = 6.0
LATENCY_LOG_SD = 0.5
#: The default plan: 1, 5, 25, 50 then 100 percent of the users.
DEFAULT_STEPS: tuple[float, ...] = (1.0, 5.0, 25.0, 50.0, 100.0)


@dataclass(frozen=True)
class Scenario:
    """How the candidate differs from the stable release (the known truth).

    Attributes
    ----------
    name : str
    handoff : float
        The stable release's handoff rate (sessions handed off over sessions).
    candidate_handoff : float
        The candidate's handoff rate outside ``locale`` (everywhere when ``locale`` is None).
    locale : str or None
        The only locale where the candidate's handoff rate is ``locale_handoff``.
    locale_handoff : float
    latency_factor : float
        The candidate's turn latency over the stable release's.
    expected : str
        What a good gate does with it: ``rollback`` or ``promote``.
    """

    name: str
    handoff: float = 0.012
    candidate_handoff: float = 0.012
    locale: str | None = None
    locale_handoff: float = 0.012
    latency_factor: float = 1.0
    expected: str = "promote"

    def handoff_rate(self, arm: str, locale: str) -> float:
        """The true handoff rate of an arm (``stable`` or ``candidate``) in a locale."""
        if arm == "stable":
            return self.handoff
        if self.locale is not None and locale == self.locale:
            return self.locale_handoff
        return self.candidate_handoff


SCENARIOS: dict[str, Scenario] = {
    "equal": Scenario("equal"),
    "locale": Scenario("locale", locale=BAD_LOCALE, locale_handoff=0.035, expected="rollback"),
    "slower": Scenario("slower", latency_factor=1.5, expected="rollback"),
    "better": Scenario("better", candidate_handoff=0.006),
}


@dataclass(frozen=True)
class RolloutStep:
    """One evaluation step's telemetry.

    Attributes
    ----------
    index : int
        The step's position in the plan (0 first).
    weight : float
        The candidate's share of the users at this step, in percent.
    day : datetime.date
        The day all its events fall on.
    events : pyarrow.Table
        Its events, in the stored events schema (``assay.schema.EVENTS_SCHEMA``).
    sessions : dict
        ``{arm: {locale: sessions}}``: how many sessions each arm had in each locale.
    handoffs : dict
        ``{arm: {locale: handed-off sessions}}``.
    """

    index: int
    weight: float
    day: dt.date
    events: pa.Table
    sessions: dict[str, dict[str, int]] = field(default_factory=dict)
    handoffs: dict[str, dict[str, int]] = field(default_factory=dict)


def _scenario(scenario: str | Scenario) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if scenario not in SCENARIOS:
        raise ValueError(
            f"scenario must be one of {', '.join(SCENARIOS)} (got {scenario[:40]!r}); "
            "or pass a Scenario"
        )
    return SCENARIOS[scenario]


def step_events(
    scenario: str | Scenario,
    *,
    weight: float,
    sessions: int,
    day: dt.date,
    tenants: int = 20,
    seed: int = 0,
    index: int = 0,
) -> RolloutStep:
    """The events of one step: ``sessions`` sessions on ``day``, ``weight`` percent of them on
    the candidate. Deterministic by (``seed``, ``index``)."""
    sc = _scenario(scenario)
    if not 0 <= weight <= 100:
        raise ValueError(f"weight is a percentage in [0, 100] (got {weight!r})")
    if sessions < 1 or tenants < 1:
        raise ValueError(f"sessions and tenants must be >= 1 (got {sessions!r}, {tenants!r})")
    rng = np.random.default_rng([seed, index])
    n_s = sessions
    on_candidate = rng.random(n_s) < weight / 100.0
    arm = np.where(on_candidate, "candidate", "stable")
    locale = np.asarray(LOCALES)[rng.integers(0, len(LOCALES), n_s)]
    platform = np.asarray(PLATFORMS)[rng.integers(0, len(PLATFORMS), n_s)]
    tenant = rng.integers(0, tenants, n_s)
    p_handoff = np.array(
        [sc.handoff_rate(a, loc) for a, loc in zip(arm.tolist(), locale.tolist(), strict=True)]
    )
    handed = rng.random(n_s) < p_handoff
    # Events: TURNS per session; the handoff is marked on the session's last event.
    idx = np.repeat(np.arange(n_s), TURNS)
    turn = np.tile(np.arange(TURNS), n_s)
    n = len(idx)
    is_error = rng.random(n) < ERROR_SHARE
    factor = np.where(on_candidate[idx], sc.latency_factor, 1.0)
    latency = rng.lognormal(LATENCY_LOG_MEAN, LATENCY_LOG_SD, n) * factor
    fb = rng.random(n)
    has_feedback = (fb < FEEDBACK_SHARE) & ~is_error
    thumbs_down = rng.random(n) < THUMBS_DOWN_SHARE
    feedback = np.where(thumbs_down, -1, 1)
    t0 = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    seconds = rng.integers(0, 86_000, n_s)[idx] + turn * 30
    prefix = f"r{seed}-{index}-"
    cols: dict[str, pa.Array] = {
        "event_id": pa.array([f"{prefix}e{i}" for i in range(n)]),
        "event_time": pa.array(
            [t0 + dt.timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us", tz="UTC")
        ),
        "tenant_id": pa.array([f"tenant-{x:03d}" for x in tenant[idx]]),
        "user_id": pa.array([f"{prefix}u{x}" for x in idx]),
        "session_id": pa.array([f"{prefix}s{x}" for x in idx]),
        "event_type": pa.array(np.where(is_error, "error", "turn")),
        "turn_index": pa.array(turn, pa.int64()),
        "locale": pa.array(locale[idx]),
        "platform": pa.array(platform[idx]),
        "model_version": pa.array(np.where(on_candidate, CANDIDATE, STABLE)[idx]),
        "latency_ms": pa.array(np.where(is_error, np.nan, latency), from_pandas=True),
        "cost_usd": pa.array(rng.gamma(2.0, 0.002, n)),
        "feedback": pa.array(feedback, pa.int64(), mask=~has_feedback),
        "handoff": pa.array(handed[idx] & (turn == TURNS - 1)),
        "has_text": pa.array(np.zeros(n, bool)),
        "event_date": pa.array([day] * n, pa.date32()),
        "fingerprint": pa.array(
            np.arange(n, dtype=np.int64) + (seed * 1_000_003 + index) * 10_000_000
        ),
    }
    cols["ingested_at"] = cols["event_time"]
    arrays = [
        cols[f.name].cast(f.type) if f.name in cols else pa.nulls(n, f.type) for f in EVENTS_SCHEMA
    ]
    events = pa.Table.from_arrays(arrays, schema=EVENTS_SCHEMA)
    counts: dict[str, dict[str, int]] = {}
    handoffs: dict[str, dict[str, int]] = {}
    for a in ("stable", "candidate"):
        mine = arm == a
        counts[a] = {loc: int(np.sum(mine & (locale == loc))) for loc in LOCALES}
        handoffs[a] = {loc: int(np.sum(mine & handed & (locale == loc))) for loc in LOCALES}
    return RolloutStep(index, float(weight), day, events, counts, handoffs)


def rollout_steps(
    scenario: str | Scenario,
    *,
    steps: Sequence[float] = DEFAULT_STEPS,
    sessions_per_step: int = 20_000,
    start: dt.date = dt.date(2026, 5, 4),
    tenants: int = 20,
    seed: int = 0,
) -> list[RolloutStep]:
    """The events of each evaluation step of a rollout through ``steps`` (percent of users
    on the candidate), one day per step from ``start``; deterministic by ``seed``.

    Examples
    --------
    >>> steps = rollout_steps("locale", steps=(5, 50), sessions_per_step=200, seed=1)
    >>> [(s.index, s.weight, str(s.day)) for s in steps]
    [(0, 5.0, '2026-05-04'), (1, 50.0, '2026-05-05')]
    >>> steps[0].events.num_rows
    600
    """
    return [
        step_events(
            scenario,
            weight=w,
            sessions=sessions_per_step,
            day=start + dt.timedelta(days=i),
            tenants=tenants,
            seed=seed,
            index=i,
        )
        for i, w in enumerate(steps)
    ]
