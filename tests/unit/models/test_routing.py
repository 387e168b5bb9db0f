"""Traffic split and shadow mode of online inference (``Routing``, ``assign``, ``ModelPool``).

The hash is checked against the documented formula computed here with ``struct`` (not the code
under test); shares against scipy's binomial intervals; the pool against stand-in models whose
predictions are worked out by hand from each text.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binom

from assay._errors import NotFoundError, UsageError
from assay.models import Routing
from assay.models._registry import VersionRef
from assay.models._serving import ModelPool, ServingConfig, ServingHooks, assign, bucket
from assay.privacy import new_key, pseudonym

USERS = [f"user-{i}" for i in range(2000)]


def reference_bucket(rollout_id: str, unit: str) -> float:
    """The documented unit position: SHA-256 of the 4-byte big-endian length of the rollout
    id, the id, then the unit; its first 8 bytes as an unsigned integer over 2**64."""
    rid = rollout_id.encode("utf-8")
    head = hashlib.sha256(struct.pack(">I", len(rid)) + rid + unit.encode("utf-8")).digest()[:8]
    (number,) = struct.unpack(">Q", head)
    return float(number) / 18446744073709551616.0


def _bounds(n: int, p: float) -> tuple[float, float]:
    lo, hi = binom.interval(0.9999, n, p)
    return lo, hi


# -- assignment ---------------------------------------------------------------------------------


def test_bucket_is_the_documented_hash() -> None:
    for unit in ["u_00", "u_1f3a", "req-7", ""]:
        assert bucket("rollout-1", unit) == reference_bucket("rollout-1", unit)
    # The length prefix: ("ab", "c") and ("a", "bc") are two different messages.
    assert bucket("ab", "c") != bucket("a", "bc")


def test_a_user_keeps_one_version_across_calls_and_as_the_weight_grows() -> None:
    key = new_key()
    units = [pseudonym(key, "t", u) for u in USERS]
    previous: set[str] = set()
    for weight in [0.0, 0.01, 0.05, 0.25, 0.5, 0.9, 1.0]:
        r = Routing("r-7", 3, 4, weight)
        on = {u for u in units if assign(r, tenant_id="t", user=u, request_id=None) == 4}
        # Asked again, every user gets the same answer.
        again = {u for u in units if assign(r, tenant_id="t", user=u, request_id="x") == 4}
        assert on == again
        assert previous <= on  # raising the weight never moves a user back to stable
        expected = {u for u in units if reference_bucket("r-7", u) < weight}
        assert on == expected
        previous = on
    assert previous == set(units)


@pytest.mark.parametrize("weight", [0.01, 0.05, 0.25, 0.5])
def test_the_share_on_the_candidate_is_within_binomial_bounds(weight: float) -> None:
    key = new_key()
    r = Routing("share", 1, 2, weight)
    on = sum(
        assign(r, tenant_id="t", user=pseudonym(key, "t", u), request_id=None) == 2 for u in USERS
    )
    lo, hi = _bounds(len(USERS), weight)
    assert lo <= on <= hi, (on, lo, hi)


def test_two_workspaces_with_different_keys_split_the_same_users_independently() -> None:
    # The hash sees the pseudonym, never the raw id: under two keys the same raw users fall
    # on the candidate independently, so the two splits agree on about half of the users
    # at weight 0.5 (p = 0.5 * 0.5 + 0.5 * 0.5), not on all of them.
    r = Routing("same-rollout", 1, 2, 0.5)
    one, two = new_key(), new_key()
    a = [assign(r, tenant_id="t", user=pseudonym(one, "t", u), request_id=None) for u in USERS]
    b = [assign(r, tenant_id="t", user=pseudonym(two, "t", u), request_id=None) for u in USERS]
    same = sum(x == y for x, y in zip(a, b, strict=True))
    lo, hi = _bounds(len(USERS), 0.5)
    assert lo <= same <= hi, same
    raw = [assign(r, tenant_id="t", user=u, request_id=None) for u in USERS]
    assert a != raw
    assert b != raw


def test_an_opted_out_tenant_always_gets_stable_and_others_follow_the_weight() -> None:
    r = Routing("r", 1, 2, 1.0, opt_out_tenants=frozenset({"bank"}))
    assert {assign(r, tenant_id="bank", user=u, request_id=None) for u in USERS[:50]} == {1}
    assert {assign(r, tenant_id="shop", user=u, request_id=None) for u in USERS[:50]} == {2}
    assert assign(r, tenant_id=None, user="u_1", request_id=None) == 2


def test_without_a_user_the_request_id_is_the_unit_and_without_either_stable() -> None:
    r = Routing("r", 1, 2, 0.5)
    for rid in ["req-1", "req-2", "req-3", "req-4", "req-5", "req-6"]:
        want = 2 if reference_bucket("r", rid) < 0.5 else 1
        assert assign(r, tenant_id="t", user=None, request_id=rid) == want
    assert assign(Routing("r", 1, 2, 1.0), tenant_id="t", user=None, request_id=None) == 1


@given(
    unit=st.text(min_size=1, max_size=40),
    w1=st.floats(0, 1),
    w2=st.floats(0, 1),
)
def test_assignment_is_monotone_in_the_weight(unit: str, w1: float, w2: float) -> None:
    lo, hi = sorted((w1, w2))
    at_lo = assign(Routing("m", 1, 2, lo), tenant_id=None, user=unit, request_id=None)
    at_hi = assign(Routing("m", 1, 2, hi), tenant_id=None, user=unit, request_id=None)
    assert not (at_lo == 2 and at_hi == 1)
    assert (at_lo == 2) == (reference_bucket("m", unit) < lo)


def test_weight_zero_is_all_stable_at_once() -> None:
    r = Routing("r", 1, 2, 0.0)
    assert {assign(r, tenant_id="t", user=u, request_id=u) for u in USERS} == {1}


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"weight": 1.5}, "weight must be a number from 0 to 1"),
        ({"weight": -0.1}, "weight must be a number from 0 to 1"),
        ({"weight": float("nan")}, "weight must be a number from 0 to 1"),
        ({"candidate_version": 1}, "must differ from stable_version"),
        ({"stable_version": 0}, "stable_version must be a registry version"),
        ({"rollout_id": ""}, "rollout_id must be a non-empty string"),
        ({"opt_out_tenants": {"a"}}, "opt_out_tenants must be a frozenset"),
    ],
)
def test_a_bad_routing_is_refused_saying_what_to_send(kwargs: dict[str, Any], says: str) -> None:
    fields: dict[str, Any] = {
        "rollout_id": "r",
        "stable_version": 1,
        "candidate_version": 2,
        "weight": 0.1,
        **kwargs,
    }
    with pytest.raises(UsageError, match=says):
        Routing(**fields)


# -- the pool -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    label: str
    probability: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "probability": self.probability}


class Stand:
    """A loaded version: version 1 labels a text by its first word, version 2 by its last."""

    kind = "intent"
    oos_label = None
    batcher: Any = None

    def __init__(self, ref: VersionRef) -> None:
        self.ref = ref

    def check(self, inputs: object) -> list[Any]:
        assert isinstance(inputs, list)
        return inputs

    def score(self, items: list[str], top_k: int) -> list[Label]:
        pick = 0 if self.ref.version == 1 else -1
        return [Label(text.split()[pick], 1.0) for text in items]


class Pool(ModelPool):
    """The pool over stand-in versions 1 and 2 of model ``m`` (champion: 1)."""

    def __init__(self, router: Any, clock: list[float], **kw: Any) -> None:
        self.shadowed: list[tuple[str, int, int, int, int]] = []
        self.skipped: list[tuple[str, int, int, int]] = []
        hooks = ServingHooks(
            shadowed=lambda *a: self.shadowed.append(a),
            shadow_skipped=lambda *a: self.skipped.append(a),
        )
        super().__init__(
            lambda: None,  # type: ignore[arg-type,return-value]
            ServingConfig(max_wait_ms=0, refresh_seconds=5.0),
            hooks=hooks,
            clock=lambda: clock[0],
            router=router,
            **kw,
        )
        self.loads: list[int] = []
        self.broken: set[int] = set()

    def _resolve_sync(self, ref: str) -> VersionRef:
        if not ref.startswith("m"):
            raise NotFoundError(f"no registered model {ref!r}")
        version = int(ref.split("/")[1]) if "/" in ref else 1
        return VersionRef("m", version, ())

    def _load_sync(self, ref: VersionRef) -> Any:
        self.loads.append(ref.version)
        if ref.version in self.broken:
            raise RuntimeError("cannot load")
        return Stand(ref)


class Router:
    def __init__(self, routing: Routing | None) -> None:
        self.routing = routing
        self.calls = 0

    def __call__(self, name: str) -> Routing | None:
        self.calls += 1
        return self.routing if name == "m" else None


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_router_is_read_at_most_every_refresh_seconds_and_a_rollback_applies_then() -> None:
    router = Router(Routing("r", 1, 2, 1.0))
    clock = [0.0]

    async def main() -> list[int]:
        pool = Pool(router, clock)
        seen = []
        for t in [0.0, 1.0, 4.9, 5.0, 6.0]:
            clock[0] = t
            if t == 4.9:
                router.routing = Routing("r", 1, 2, 0.0)  # rolled back
            seen.append((await pool.choose("m", user="u_1")).model.ref.version)
        pool.close()
        return seen

    assert _run(main()) == [2, 2, 2, 1, 1]
    assert router.calls == 2  # at 0.0 and at 5.0


def test_a_pinned_version_is_not_split_and_a_model_without_rollout_serves_its_champion() -> None:
    async def main() -> tuple[int, int, int]:
        pool = Pool(Router(Routing("r", 1, 2, 1.0)), [0.0])
        pinned = (await pool.choose("m/1", user="u_1")).model.ref.version
        routed = (await pool.choose("m@champion", user="u_1")).model.ref.version
        pool.router = Router(None)
        pool._routings.clear()
        plain = (await pool.choose("m", user="u_1")).model.ref.version
        pool.close()
        return pinned, routed, plain

    assert _run(main()) == (1, 2, 1)


def test_a_candidate_that_cannot_load_leaves_its_users_on_stable() -> None:
    async def main() -> int:
        pool = Pool(Router(Routing("r", 1, 2, 1.0)), [0.0])
        pool.broken.add(2)
        version = (await pool.choose("m", user="u_1")).model.ref.version
        pool.close()
        return version

    assert _run(main()) == 1


def test_shadow_answers_with_stable_and_counts_the_candidates_agreement_after() -> None:
    texts = ["pay bill now", "weather today weather", "book a flight"]
    # Version 1: first word; version 2: last word. Agree on the second text only.
    recorded: list[Any] = []

    async def main() -> tuple[list[Any], Any, Any]:
        pool = Pool(Router(Routing("r", 1, 2, 0.0, shadow=True)), [0.0])
        first = await pool.choose("m", user="u_1")
        assert first.shadow is None  # the candidate loads in the background meanwhile
        for _ in range(50):
            await asyncio.sleep(0.01)
            if (("m", 2)) in pool._loaded:
                break
        choice = await pool.choose("m", user="u_1")
        assert choice.shadow is not None
        out = await pool.predict_with(choice.model, texts)
        task = pool.shadow(out, choice.shadow, texts, on_result=recorded.append)
        got = await task
        pool.close()
        return out.predictions, got, choice

    answered, got, choice = _run(main())
    assert choice.model.ref.version == 1
    assert [p["label"] for p in answered] == ["pay", "weather", "book"]
    assert got is not None
    assert got.ref.version == 2
    assert [p["label"] for p in recorded[0].predictions] == ["now", "weather", "flight"]
    assert recorded[0].ref.version == 2


def test_shadow_counts_reach_the_hooks_per_model_stable_and_candidate() -> None:
    texts = ["pay bill now", "weather today weather", "book a flight", "go go"]

    async def main() -> list[tuple[str, int, int, int, int]]:
        pool = Pool(Router(Routing("r", 1, 2, 0.0, shadow=True)), [0.0])
        await pool.model("m/2")  # the candidate already loaded
        choice = await pool.choose("m", user="u_1")
        assert choice.shadow is not None
        out = await pool.predict_with(choice.model, texts)
        await pool.shadow(out, choice.shadow, texts)
        pool.close()
        return pool.shadowed

    assert _run(main()) == [("m", 1, 2, 2, 2)]


def test_no_shadow_for_an_opted_out_tenant_nor_for_a_user_on_the_candidate() -> None:
    async def main() -> tuple[Any, Any]:
        routing = Routing("r", 1, 2, 1.0, shadow=True, opt_out_tenants=frozenset({"bank"}))
        pool = Pool(Router(routing), [0.0])
        await pool.model("m/2")
        opted = await pool.choose("m", tenant_id="bank", user="u_1")
        on_candidate = await pool.choose("m", tenant_id="shop", user="u_1")
        pool.close()
        return opted, on_candidate

    opted, on_candidate = _run(main())
    assert (opted.model.ref.version, opted.shadow) == (1, None)
    assert (on_candidate.model.ref.version, on_candidate.shadow) == (2, None)


def test_a_failing_router_keeps_its_last_answer() -> None:
    clock = [0.0]

    class Flaky(Router):
        def __call__(self, name: str) -> Routing | None:
            self.calls += 1
            if self.calls > 1:
                raise OSError("metadata store locked")
            return self.routing

    async def main() -> list[int]:
        pool = Pool(Flaky(Routing("r", 1, 2, 1.0)), clock)
        out = [(await pool.choose("m", user="u_1")).model.ref.version]
        clock[0] = 10.0
        out.append((await pool.choose("m", user="u_1")).model.ref.version)
        pool.close()
        return out

    assert _run(main()) == [2, 2]


def test_concurrent_requests_share_one_router_call() -> None:
    router = Router(Routing("r", 1, 2, 1.0))

    async def main() -> list[int]:
        pool = Pool(router, [0.0])
        await pool.model("m/2")
        got = await asyncio.gather(*(pool.choose("m", user=f"u_{i}") for i in range(10)))
        pool.close()
        return [c.model.ref.version for c in got]

    assert _run(main()) == [2] * 10
    assert router.calls == 1


def test_a_router_answer_that_is_not_a_routing_routes_nothing() -> None:
    async def main() -> int:
        pool = Pool(lambda name: {"weight": 1.0}, [0.0])
        version = (await pool.choose("m", user="u_1")).model.ref.version
        pool.close()
        return version

    assert _run(main()) == 1


def test_shadow_yields_when_a_full_batch_already_waits_for_the_candidate() -> None:
    texts = ["pay bill now", "go go", "book a flight"]

    async def main() -> tuple[Any, list[Any], list[Any]]:
        pool = Pool(Router(Routing("r", 1, 2, 0.0, shadow=True)), [0.0])
        await pool.model("m/2")
        choice = await pool.choose("m", user="u_1")
        assert choice.shadow is not None
        out = await pool.predict_with(choice.model, texts)
        choice.shadow.batcher.queued = pool.config.max_batch  # a full batch waits
        skipped = pool.shadow(out, choice.shadow, texts)
        choice.shadow.batcher.queued = pool.config.max_batch - 1  # one input less: shadowed
        task = pool.shadow(out, choice.shadow, texts)
        assert task is not None
        await task
        pool.close()
        return skipped, pool.skipped, pool.shadowed

    skipped, counted, shadowed = _run(main())
    assert skipped is None
    assert counted == [("m", 1, 2, 3)]
    assert shadowed == [("m", 1, 2, 1, 2)]
