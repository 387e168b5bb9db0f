"""The simulated world behind the events: tenants, users, their habits, and the incidents.

Everything here is drawn from the seed before any event is generated, so that
:func:`assay.synth.truth` can describe a data set without generating it, and so that each day's
events can be generated independently of the others.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from assay._errors import UsageError
from assay.synth import _rag
from assay.synth._clinc import OOS_INTENT, load_clinc150
from assay.synth._pii import PII_KINDS

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# Random streams: each consumer gets its own, so adding draws to one never shifts another.
STREAM_WORLD = 1
STREAM_INCIDENTS = 2
STREAM_DAY = 3
STREAM_IDS = 4

LOCALES: tuple[str, ...] = ("en-US", "en-GB", "de-DE", "fr-FR", "ja-JP")
_HOME_LOCALE_P = (0.45, 0.15, 0.15, 0.15, 0.10)
# A typical UTC offset of each locale's users, in hours: sets the hour of day they are active.
_LOCALE_UTC_OFFSET_H = (-6.0, 0.0, 1.0, 1.0, 9.0)
PLATFORMS: tuple[str, ...] = ("web", "ios", "android", "teams")
_PLATFORM_P = (0.45, 0.2, 0.2, 0.15)
APP_VERSIONS: tuple[str, ...] = ("4.2.0", "4.2.1", "4.3.0")
BASE_MODEL_VERSION = "v2.0"
ROLLOUT_MODEL_VERSION = "v2.1"
MODEL_VERSIONS: tuple[str, ...] = (BASE_MODEL_VERSION, ROLLOUT_MODEL_VERSION)
PROMPT_TEMPLATES: tuple[str, ...] = ("rag-v3", "rag-v2", "chat-v5", "smalltalk-v1")
TEMPLATE_P = (0.40, 0.15, 0.35, 0.10)
#: Median answer latency of each template, in ms (latency is log-normal around it).
TEMPLATE_MEDIAN_MS = (1400.0, 1700.0, 900.0, 450.0)
LATENCY_SIGMA = 0.45
RAG_TEMPLATES = (0, 1)
REGRESSED_TEMPLATE = 0
FLIGHTS: tuple[str, ...] = ("exp-answer-length", "exp-retriever-b", "exp-tone-casual")
_FLIGHT_P = (0.3, 0.2, 0.15)
ERROR_CODES: tuple[str, ...] = ("timeout", "rate_limited", "upstream_5xx", "content_filter")
ERROR_CODE_P = (0.4, 0.25, 0.25, 0.1)
#: Offsets (minutes east of UTC) used by the events whose ``event_time`` is not in ``Z`` form.
TIME_OFFSETS_MIN: tuple[int, ...] = (330, -480, 540, 60, -300)

#: Activity multiplier per ISO weekday, Monday first.
WEEKDAY_FACTORS: tuple[float, ...] = (1.0, 1.0, 1.0, 0.97, 0.9, 0.5, 0.45)
_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# Rates of the generative model; recorded in truth.json under "rates".
DAILY_GROWTH = 0.003
NEW_USER_FRACTION = 0.3
CHURN_MEAN_DAYS = 365.0
NEW_USER_BOOST = 1.0
NEW_USER_BOOST_DAYS = 7.0
ACTIVITY_BETA = (0.9, 2.4)
EXTRA_SESSIONS_MEAN = 0.3
TURNS_GEOMETRIC_P = 0.38
MAX_TURNS = 15
HANDOFF_RATE = 0.04
HANDOFF_FACTOR = 3.5
ABANDON_RATE = 0.03
ERROR_RATE = 0.012
FEEDBACK_RATE = 0.05
RATING_GIVEN = 0.35
OOS_RATE = 0.08
INTENT_ZIPF = 0.8
OFFSET_TIME_RATE = 0.02
EPOCH_MS_RATE = 0.01
ATTRIBUTE_PII_RATE = 0.002
COLLIDING_USER_FRACTION = 0.02

OUTAGE_FACTOR = 0.15
OUTAGE_ERROR_RATE = 0.3
LATENCY_FACTOR = 2.0
#: Fewer days than this leave no room for a baseline before each incident: none is injected.
MIN_INCIDENT_DAYS = 28

TRUTH_FORMAT = "assay.synth.truth/1"


def utc_yesterday() -> datetime.date:
    """The UTC day before today: the last day of a synthetic data set by default."""
    return datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)


@dataclass(frozen=True, init=False)
class SynthConfig:
    """What to generate.

    Parameters
    ----------
    tenants : int, default 20
        Number of tenants (a few large, many small; sizes fall off as 1 / rank).
    users : int, default 200
        Users per tenant on average: the data set has ``tenants * users`` distinct
        (tenant, user) pairs in all, some of whom first appear during the period.
    days : int, default 60
        Number of UTC days, from ``start``. Incidents are injected only when ``days >= 28``.
    seed : int, default 0
        Seed of every random draw; the same seed and days give the same bytes.
    start : datetime.date, optional
        The first day. Default: ``days`` days ending at ``end``.
    pii_rate : float, default 0.03
        Fraction of ``turn`` texts with planted personal data (e-mail, phone, card, IBAN, IP).
    rag : bool, default False
        Keyword only. Retrieval with known relevance (a query per RAG turn in
        ``attributes['query_id']``, relevant docs per query) and the injected ``rag_release``
        incident: see :mod:`assay.synth._rag`. Off, the data set is the one made without it.
    end : datetime.date, optional
        The last day (inclusive), keyword only; give ``start`` or ``end``, not both. Default:
        yesterday (UTC), so that the data is recent, as real telemetry is: an HTTP ingest of
        today's events extends it by a day instead of leaving months of silent days between
        the two, and the HTTP lateness bound (30 days) accepts the last days' events.

    Attributes
    ----------
    start : datetime.date
        The first day, resolved at construction: a config made without dates holds the dates
        of the day it was made, so its output does not change when the clock passes midnight.
    end : datetime.date
        The last day (a property: ``start + days - 1``).

    Raises
    ------
    UsageError
        If a count is below 1, the seed is negative, ``pii_rate`` lies outside [0, 1], a day
        is not a ``datetime.date``, or both ``start`` and ``end`` are given.

    Examples
    --------
    >>> import datetime
    >>> c = SynthConfig(days=7, end=datetime.date(2026, 3, 1))
    >>> c.start, c.end
    (datetime.date(2026, 2, 23), datetime.date(2026, 3, 1))
    >>> SynthConfig(days=7, end=c.end) == SynthConfig(days=7, start=c.start)
    True
    """

    tenants: int
    users: int
    days: int
    seed: int
    start: datetime.date
    pii_rate: float
    rag: bool

    def __init__(
        self,
        tenants: int = 20,
        users: int = 200,
        days: int = 60,
        seed: int = 0,
        start: datetime.date | None = None,
        pii_rate: float = 0.03,
        *,
        end: datetime.date | None = None,
        rag: bool = False,
    ) -> None:
        for name, value in (("tenants", tenants), ("users", users), ("days", days)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"SynthConfig.{name} must be an integer >= 1 (got {value!r})")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise UsageError(f"SynthConfig.seed must be an integer >= 0 (got {seed!r})")
        for name, day in (("start", start), ("end", end)):
            if day is not None and (
                not isinstance(day, datetime.date) or isinstance(day, datetime.datetime)
            ):
                raise UsageError(
                    f"SynthConfig.{name} must be a datetime.date (got {type(day).__name__}); "
                    "pass e.g. datetime.date(2026, 1, 1)"
                )
        if start is not None and end is not None:
            raise UsageError(
                "give SynthConfig start or end, not both (days sets the other; "
                f"got start={start}, end={end})"
            )
        if not 0.0 <= pii_rate <= 1.0:
            raise UsageError(f"SynthConfig.pii_rate must lie in [0, 1] (got {pii_rate!r})")
        if start is None:
            start = (end if end is not None else utc_yesterday()) - datetime.timedelta(
                days=days - 1
            )
        resolved: dict[str, object] = {
            "tenants": tenants,
            "users": users,
            "days": days,
            "seed": seed,
            "start": start,
            "pii_rate": pii_rate,
            "rag": bool(rag),
        }
        for attr, attr_value in resolved.items():
            object.__setattr__(self, attr, attr_value)  # frozen: set once, here

    @property
    def end(self) -> datetime.date:
        """The last day (inclusive)."""
        return self.start + datetime.timedelta(days=self.days - 1)


def rng_for(config: SynthConfig, *stream: int) -> np.random.Generator:
    """An independent generator for one consumer of randomness."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([config.seed, *stream])))


@dataclass(frozen=True)
class Incidents:
    """Day indices (from ``start``) and targets of the injected incidents; -1 when absent."""

    outage_tenant: int = -1
    outage_start: int = -1
    outage_end: int = -1
    handoff_tenant: int = -1
    handoff_locale: int = -1
    handoff_start: int = -1
    latency_start: int = -1
    rag_start: int = -1
    rag_locale: int = -1


@dataclass(frozen=True, eq=False)
class World:
    """Tenants and users, and the incidents; all arrays are indexed by tenant or user."""

    config: SynthConfig
    tenant_ids: tuple[str, ...]
    tenant_users: I64
    tenant_rank: I64
    tenant_locale_mix: F64
    user_tenant: I64
    user_number: I64
    user_id_width: int
    user_p: F64
    user_join: I64
    user_churn: I64
    user_locale: I64
    user_platform: I64
    user_hour_utc: F64
    user_upgrade: I64
    user_flights: I64
    flight_combos: tuple[tuple[str, ...], ...]
    intent_p: F64
    incidents: Incidents
    day0_ms: int
    colliding_user_ids: int

    def activity_prob(self, day: int) -> F64:
        """Probability that each user is active on ``day`` (index from ``start``).

        ``p_u * weekday_factor * (1 + daily_growth) ** day``, times
        ``1 + boost * exp(-age / boost_days)`` for users who joined during the period (age in
        days since joining); 1 on a user's join day; 0 before it and from the user's churn day
        on; times the outage factor for the outage tenant on outage days; capped at 1.
        """
        cfg = self.config
        weekday = (cfg.start + datetime.timedelta(days=day)).weekday()
        age = day - self.user_join
        p = self.user_p * (WEEKDAY_FACTORS[weekday] * (1.0 + DAILY_GROWTH) ** day)
        joined_in_period = self.user_join >= 0
        boost = 1.0 + NEW_USER_BOOST * np.exp(-np.maximum(age, 0) / NEW_USER_BOOST_DAYS)
        p = np.where(joined_in_period, p * boost, p)
        p = np.where(age == 0, 1.0, p)
        p = np.where((age < 0) | (day >= self.user_churn), 0.0, p)
        inc = self.incidents
        if inc.outage_start <= day <= inc.outage_end:
            p = np.where(self.user_tenant == inc.outage_tenant, p * OUTAGE_FACTOR, p)
        return np.minimum(p, 1.0)


def _tenant_sizes(total: int, tenants: int) -> I64:
    """Sizes by rank: 1 each, plus the rest shared in proportion to 1 / (rank + 1).

    The shares are rounded down and the users left over go to the largest remainders, so
    the sizes sum to ``total`` exactly (``total >= tenants``).
    """
    w = 1.0 / np.arange(1, tenants + 1)
    share = (total - tenants) * w / w.sum()
    sizes: I64 = np.floor(share).astype(np.int64)
    short = total - tenants - int(sizes.sum())
    sizes[np.argsort(-(share - sizes), kind="stable")[:short]] += 1
    return sizes + 1


@functools.lru_cache(maxsize=4)
def build_world(config: SynthConfig) -> World:
    """Draw the tenants, users and incidents of ``config`` (cached: the world is immutable)."""
    rng = rng_for(config, STREAM_WORLD)
    n_t = config.tenants
    total = n_t * config.users
    sizes_by_rank = _tenant_sizes(total, n_t)
    rank_of_tenant = rng.permutation(n_t).astype(np.int64)
    tenant_users = sizes_by_rank[rank_of_tenant]
    tenant_of_rank = np.argsort(rank_of_tenant)
    width = max(3, len(str(n_t - 1)))
    tenant_ids = tuple(f"tenant-{i:0{width}d}" for i in range(n_t))

    # Incident targets: the largest tenant for the handoff jump, a mid-size one for the outage.
    handoff_tenant = int(tenant_of_rank[0])
    outage_tenant = int(tenant_of_rank[min(n_t - 1, max(1, round(n_t / 3)))])

    n_loc = len(LOCALES)
    mix = np.empty((n_t, n_loc))
    handoff_locale = -1
    for t in range(n_t):
        home = int(rng.choice(n_loc, p=_HOME_LOCALE_P))
        rest = rng.dirichlet(np.ones(n_loc))
        mix[t] = 0.3 * rest
        mix[t, home] += 0.7
        if t == handoff_tenant:
            # The rollout slice is a sizeable minority of the tenant: big enough to measure,
            # small enough that only a breakdown by locale finds it.
            others = [i for i in range(n_loc) if i != home]
            handoff_locale = others[int(np.argmax(rest[others]))]
            mix[t] = 0.15 * rest
            mix[t, home] += 0.55
            mix[t, handoff_locale] += 0.30
    platform_mix = rng.dirichlet(np.array(_PLATFORM_P) * 20.0, size=n_t)

    user_tenant = np.repeat(np.arange(n_t, dtype=np.int64), tenant_users)
    n_u = len(user_tenant)
    first_user = np.concatenate([[0], np.cumsum(tenant_users)[:-1]]).astype(np.int64)
    local_index = np.arange(n_u, dtype=np.int64) - first_user[user_tenant]
    user_number = np.arange(n_u, dtype=np.int64)
    # On purpose, a few raw user ids of every tenant also exist in the largest tenant: a user
    # is the pair (tenant, user), and these pairs must stay distinct users downstream.
    source = int(tenant_of_rank[0])
    n_collide = np.minimum(
        np.ceil(COLLIDING_USER_FRACTION * tenant_users).astype(np.int64),
        tenant_users[source],
    )
    n_collide[source] = 0
    collide = local_index < n_collide[user_tenant]
    user_number[collide] = first_user[source] + local_index[collide]
    colliding = int(n_collide.sum())

    user_p = rng.beta(*ACTIVITY_BETA, size=n_u)
    days = config.days
    is_new = rng.random(n_u) < NEW_USER_FRACTION
    join_day = rng.integers(1, days, size=n_u) if days > 1 else np.zeros(n_u, dtype=np.int64)
    user_join = np.where(is_new & (days > 1), join_day, -1).astype(np.int64)
    lifetime = np.floor(rng.exponential(CHURN_MEAN_DAYS, size=n_u)).astype(np.int64)
    user_churn = np.maximum(user_join, 0) + 1 + lifetime

    u_rand = rng.random(n_u)
    cum = np.cumsum(mix, axis=1)
    user_locale = (u_rand[:, np.newaxis] >= cum[user_tenant]).sum(axis=1).clip(0, n_loc - 1)
    p_rand = rng.random(n_u)
    pcum = np.cumsum(platform_mix, axis=1)
    user_platform = (p_rand[:, np.newaxis] >= pcum[user_tenant]).sum(axis=1)
    user_platform = user_platform.clip(0, len(PLATFORMS) - 1)
    local_peak = rng.normal(13.0, 2.5, size=n_u)
    user_hour_utc = np.mod(local_peak - np.array(_LOCALE_UTC_OFFSET_H)[user_locale], 24.0)

    upgrade = np.stack(
        [
            rng.normal(0.15 * days, 0.08 * days, size=n_u),
            rng.normal(0.45 * days, 0.12 * days, size=n_u),
        ],
        axis=1,
    )
    user_upgrade = np.sort(np.round(upgrade), axis=1).astype(np.int64)

    member = rng.random((n_u, len(FLIGHTS))) < np.array(_FLIGHT_P)
    member[member.sum(axis=1) > 2, 2] = False  # at most two flights per user
    combos: list[tuple[str, ...]] = [()]
    combo_index: dict[tuple[str, ...], int] = {(): 0}
    code = member @ (1 << np.arange(len(FLIGHTS)))
    user_flights = np.zeros(n_u, dtype=np.int64)
    for value in range(1, 1 << len(FLIGHTS)):
        names = tuple(FLIGHTS[i] for i in range(len(FLIGHTS)) if value >> i & 1)
        if len(names) > 2:
            continue
        combo_index[names] = len(combos)
        combos.append(names)
        user_flights[code == value] = combo_index[names]

    intents = sorted(set(load_clinc150().column("intent").to_pylist()) - {OOS_INTENT})
    popularity = 1.0 / np.arange(1, len(intents) + 1) ** INTENT_ZIPF
    intent_p = np.empty(len(intents))
    intent_p[rng.permutation(len(intents))] = popularity / popularity.sum() * (1.0 - OOS_RATE)

    incidents = Incidents()
    if days >= MIN_INCIDENT_DAYS:
        irng = rng_for(config, STREAM_INCIDENTS)
        o_start = round(0.3 * days) + int(irng.integers(0, 3))
        o_len = int(irng.integers(3, 6))
        incidents = Incidents(
            outage_tenant=outage_tenant,
            outage_start=o_start,
            outage_end=o_start + o_len - 1,
            handoff_tenant=handoff_tenant,
            handoff_locale=handoff_locale,
            handoff_start=round(0.5 * days) + int(irng.integers(0, 3)),
            latency_start=round(0.7 * days) + int(irng.integers(0, 3)),
        )
        if config.rag:
            # Drawn after the others: turning rag on moves no other incident.
            incidents = dataclasses.replace(
                incidents,
                rag_start=round(0.6 * days) + int(irng.integers(0, 3)),
                rag_locale=1 + int(irng.integers(0, n_loc - 1)),
            )

    day0 = datetime.datetime.combine(config.start, datetime.time(), tzinfo=datetime.UTC)
    return World(
        config=config,
        tenant_ids=tenant_ids,
        tenant_users=tenant_users,
        tenant_rank=rank_of_tenant,
        tenant_locale_mix=mix,
        user_tenant=user_tenant,
        user_number=user_number,
        user_id_width=max(6, len(str(n_u - 1))),
        user_p=user_p,
        user_join=user_join,
        user_churn=user_churn,
        user_locale=user_locale.astype(np.int64),
        user_platform=user_platform.astype(np.int64),
        user_hour_utc=user_hour_utc,
        user_upgrade=user_upgrade,
        user_flights=user_flights,
        flight_combos=tuple(combos),
        intent_p=intent_p,
        incidents=incidents,
        day0_ms=int(day0.timestamp()) * 1000,
        colliding_user_ids=colliding,
    )


def _iso(config: SynthConfig, day: int) -> str:
    return (config.start + datetime.timedelta(days=day)).isoformat()


def build_truth(world: World) -> dict[str, Any]:
    """The ground truth of ``world`` as plain JSON-able data (see the package docstring)."""
    cfg = world.config
    inc = world.incidents
    n_days = cfg.days
    dau_by_tenant = np.zeros((cfg.tenants, n_days))
    for d in range(n_days):
        dau_by_tenant[:, d] = np.bincount(
            world.user_tenant, weights=world.activity_prob(d), minlength=cfg.tenants
        )
    tenants = []
    for t, tenant_id in enumerate(world.tenant_ids):
        tenants.append(
            {
                "tenant_id": tenant_id,
                "users": int(world.tenant_users[t]),
                "size_rank": int(world.tenant_rank[t]),
                "locales": {
                    loc: round(float(world.tenant_locale_mix[t, i]), 4)
                    for i, loc in enumerate(LOCALES)
                },
                "expected_dau_mean": round(float(dau_by_tenant[t].mean()), 2),
            }
        )
    incidents: list[dict[str, Any]] = []
    if inc.outage_tenant >= 0:
        tenant = world.tenant_ids[inc.outage_tenant]
        before = dau_by_tenant[inc.outage_tenant, max(0, inc.outage_start - 7) : inc.outage_start]
        during = dau_by_tenant[inc.outage_tenant, inc.outage_start : inc.outage_end + 1]
        start, end = _iso(cfg, inc.outage_start), _iso(cfg, inc.outage_end)
        incidents.append(
            {
                "kind": "outage",
                "tenant_id": tenant,
                "start": start,
                "end": end,
                "metric": "dau",
                "slice": {},
                "factor": OUTAGE_FACTOR,
                "error_rate": OUTAGE_ERROR_RATE,
                "expected_dau_before": round(float(before.mean()), 2),
                "expected_dau_during": round(float(during.mean()), 2),
                "expected": (
                    f"dau of {tenant} falls by about {1 - OUTAGE_FACTOR:.0%} (at least 60%) "
                    f"from {start} to {end} inclusive, against the 7 days before; error_rate "
                    f"of that tenant rises to about {OUTAGE_ERROR_RATE:.0%} on those days"
                ),
            }
        )
    if inc.handoff_tenant >= 0:
        tenant = world.tenant_ids[inc.handoff_tenant]
        locale = LOCALES[inc.handoff_locale]
        start = _iso(cfg, inc.handoff_start)
        rate = HANDOFF_RATE * HANDOFF_FACTOR
        incidents.append(
            {
                "kind": "handoff_jump",
                "tenant_id": tenant,
                "start": start,
                "end": cfg.end.isoformat(),
                "metric": "handoff_rate",
                "slice": {"locale": locale, "model_version": ROLLOUT_MODEL_VERSION},
                "locale": locale,
                "model_version": ROLLOUT_MODEL_VERSION,
                "baseline_model_version": BASE_MODEL_VERSION,
                "baseline_rate": HANDOFF_RATE,
                "factor": HANDOFF_FACTOR,
                "expected": (
                    f"from {start} on, sessions of {tenant} in locale {locale} run model_version "
                    f"{ROLLOUT_MODEL_VERSION} (every other session stays on {BASE_MODEL_VERSION}) "
                    f"and their handoff_rate rises from about {HANDOFF_RATE:.0%} to about "
                    f"{rate:.0%} ({HANDOFF_FACTOR}x); the tenant's other locales do not change"
                ),
            }
        )
    if inc.latency_start >= 0:
        template = PROMPT_TEMPLATES[REGRESSED_TEMPLATE]
        start = _iso(cfg, inc.latency_start)
        median = TEMPLATE_MEDIAN_MS[REGRESSED_TEMPLATE]
        p95 = median * math.exp(1.6448536269514722 * LATENCY_SIGMA)
        incidents.append(
            {
                "kind": "latency_regression",
                "tenant_id": None,
                "start": start,
                "end": cfg.end.isoformat(),
                "metric": "latency_p95",
                "slice": {"prompt_template": template},
                "prompt_template": template,
                "factor": LATENCY_FACTOR,
                "baseline_p50_ms": median,
                "baseline_p95_ms": round(p95, 1),
                "expected": (
                    f"from {start} on, latency_ms of turns with prompt_template {template} "
                    f"doubles in every tenant: p50 about {median:.0f} -> "
                    f"{median * LATENCY_FACTOR:.0f} ms, p95 about {p95:.0f} -> "
                    f"{p95 * LATENCY_FACTOR:.0f} ms; other templates do not change"
                ),
            }
        )
    if inc.rag_start >= 0:
        incidents.append(_rag_incident(world))
    sessions = dau_by_tenant.sum() * (1.0 + EXTRA_SESSIONS_MEAN)
    facts: dict[str, Any] = {
        "format": TRUTH_FORMAT,
        "seed": cfg.seed,
        "start": cfg.start.isoformat(),
        "end": cfg.end.isoformat(),
        "days": n_days,
        "config": {
            "tenants": cfg.tenants,
            "users": cfg.users,
            "days": n_days,
            "seed": cfg.seed,
            "start": cfg.start.isoformat(),
            "pii_rate": cfg.pii_rate,
        },
        "expected_events": round(float(sessions * _events_per_session())),
        "tenants": tenants,
        "incidents": incidents,
        "seasonality": {
            "weekday_factors": dict(zip(_WEEKDAY_NAMES, WEEKDAY_FACTORS, strict=True)),
        },
        "growth": {
            "daily_rate": DAILY_GROWTH,
            "new_user_fraction": NEW_USER_FRACTION,
            "new_user_boost": NEW_USER_BOOST,
            "new_user_boost_days": NEW_USER_BOOST_DAYS,
            "churn_mean_days": CHURN_MEAN_DAYS,
            "expected_dau": [round(float(x), 2) for x in dau_by_tenant.sum(axis=0)],
        },
        "rates": {
            "extra_sessions_per_active_day": EXTRA_SESSIONS_MEAN,
            "turns_per_session_mean": round(_mean_turns(), 4),
            "max_turns": MAX_TURNS,
            "handoff": HANDOFF_RATE,
            "abandoned_sessions": ABANDON_RATE,
            "error": ERROR_RATE,
            "feedback": FEEDBACK_RATE,
            "rating_given": RATING_GIVEN,
            "oos": OOS_RATE,
        },
        "dimensions": {
            "locales": list(LOCALES),
            "platforms": list(PLATFORMS),
            "app_versions": list(APP_VERSIONS),
            "model_versions": list(MODEL_VERSIONS),
            "prompt_templates": list(PROMPT_TEMPLATES),
            "flights": list(FLIGHTS),
            "error_codes": list(ERROR_CODES),
        },
        "pii": {
            "text_rate": cfg.pii_rate,
            "kinds": dict(PII_KINDS),
            "attribute_rate": ATTRIBUTE_PII_RATE,
        },
        "event_time": {
            "offset_rate": OFFSET_TIME_RATE,
            "epoch_ms_rate": EPOCH_MS_RATE,
            "offsets": [_offset_text(m) for m in TIME_OFFSETS_MIN],
        },
        "users": {
            "total": int(world.tenant_users.sum()),
            "colliding_user_ids": world.colliding_user_ids,
        },
    }
    if cfg.rag:
        facts["config"]["rag"] = True
        facts["dimensions"]["prompt_templates"].append(_rag.RAG_RELEASE_TEMPLATE)
        facts["rag"] = {
            "queries_per_tenant": _rag.QUERIES_PER_TENANT,
            "relevant_per_query": _rag.RELEVANT_PER_QUERY,
            "query_key": "attributes.query_id",
            "hit_rate": _rag.HIT_RATE,
            "cite_relevant": _rag.CITE_RELEVANT,
            "cite_other": _rag.CITE_OTHER,
        }
    return facts


def _rag_incident(world: World) -> dict[str, Any]:
    """The ``rag_release`` incident of ``truth.json``."""
    cfg = world.config
    inc = world.incidents
    locale = LOCALES[inc.rag_locale]
    start = _iso(cfg, inc.rag_start)
    old = PROMPT_TEMPLATES[_rag.REPLACED_TEMPLATE]
    new = _rag.RAG_RELEASE_TEMPLATE
    return {
        "kind": "rag_release",
        "tenant_id": None,
        "start": start,
        "end": cfg.end.isoformat(),
        "metric": "cited_rate",
        "slice": {"locale": locale, "prompt_template": new},
        "locale": locale,
        "prompt_template": new,
        "baseline_prompt_template": old,
        "hit_rate": {"before": _rag.HIT_RATE, "after": _rag.BAD_HIT_RATE},
        "cite_relevant": {"before": _rag.CITE_RELEVANT, "after": _rag.BAD_CITE_RELEVANT},
        "cite_other": {"before": _rag.CITE_OTHER, "after": _rag.BAD_CITE_OTHER},
        "expected": (
            f"from {start} on, every {old} turn of every tenant runs prompt_template {new} "
            f"(same latency); in locale {locale} {new} retrieves a relevant doc per slot with "
            f"probability {_rag.BAD_HIT_RATE} instead of {_rag.HIT_RATE} and cites less, so the "
            f"cited_rate of {locale} falls and its uncited_retrieved_share rises in every "
            "tenant; other locales and templates do not change"
        ),
    }


def _events_per_session() -> float:
    """Expected events of a session: start, turns and what follows them, handoff, end."""
    per_turn = 1.0 + FEEDBACK_RATE + ERROR_RATE
    return 1.0 + _mean_turns() * per_turn + HANDOFF_RATE + (1.0 - ABANDON_RATE)


def _mean_turns() -> float:
    """Mean of min(Geometric(p), MAX_TURNS): sum over k < MAX_TURNS of P(turns > k)."""
    return (1.0 - (1.0 - TURNS_GEOMETRIC_P) ** MAX_TURNS) / TURNS_GEOMETRIC_P


def _offset_text(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
