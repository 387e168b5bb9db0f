"""The micro-batcher and the input checks of online inference (``assay.models._serving``).

The batcher is driven with a plain scoring function (each item's result is worked out by hand
from the item alone), so every expectation here is independent of the code under test. The
pool with real registered models is tested through the service (tests/unit/service/
test_predict.py) and as a real server (tests/integration/test_service_predict.py).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay._errors import UsageError
from assay.models._serving import (
    Batcher,
    Features,
    InputError,
    OverloadedError,
    ServingConfig,
    TabularPrediction,
    check_inputs,
)


class Recorder:
    """A scoring function that records the batches it was called with; ``x -> (x * 10, k)``."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[list[int]] = []
        self.gate = gate

    def __call__(self, items: list[int], top_k: int) -> list[tuple[int, int]]:
        if self.gate is not None:
            self.gate.wait(10)
        self.calls.append(list(items))
        return [(x * 10, top_k) for x in items]


def _batcher(score: Any, pool: ThreadPoolExecutor, **kw: Any) -> Batcher[int, Any]:
    options = {"max_batch": 8, "max_wait": 0.0, "max_queue": 100, **kw}
    return Batcher(score, executor=pool, **options)


def test_concurrent_requests_are_scored_in_one_call_and_each_gets_its_own_slice() -> None:
    score = Recorder()
    seen: list[int] = []

    async def main() -> list[list[tuple[int, int]]]:
        with ThreadPoolExecutor(1) as pool:
            # A long max_wait: the batch is scored when full (8 items), not on a timer.
            b = _batcher(score, pool, max_wait=30.0, on_batch=lambda n, results, s: seen.append(n))
            return await asyncio.gather(
                b.submit([1, 2], 3), b.submit([3], 1), b.submit([4, 5, 6], 2), b.submit([7, 8])
            )

    out = asyncio.run(main())
    assert out == [[(10, 3), (20, 3)], [(30, 3)], [(40, 3), (50, 3), (60, 3)], [(70, 3), (80, 3)]]
    assert score.calls == [[1, 2, 3, 4, 5, 6, 7, 8]]
    assert seen == [8]


def test_a_batch_takes_whole_requests_up_to_max_batch_and_a_larger_request_goes_alone() -> None:
    gate = threading.Event()
    score = Recorder(gate)

    async def main() -> list[list[tuple[int, int]]]:
        with ThreadPoolExecutor(1) as pool:
            b = _batcher(score, pool, max_batch=4)
            first = asyncio.ensure_future(b.submit([0]))
            await asyncio.sleep(0.05)  # the first call is running (held by the gate)
            rest = [b.submit([1, 2]), b.submit([3, 4]), b.submit([5, 6, 7, 8, 9]), b.submit([10])]
            waiting = asyncio.gather(first, *rest)
            await asyncio.sleep(0.05)
            gate.set()
            return await waiting

    out = asyncio.run(main())
    assert [[r for r, _ in part] for part in out] == [
        [0],
        [10, 20],
        [30, 40],
        [50, 60, 70, 80, 90],
        [100],
    ]
    # The first call alone; then [1, 2] + [3, 4] fill 4; [5..9] is larger than 4: alone; [10].
    assert score.calls == [[0], [1, 2, 3, 4], [5, 6, 7, 8, 9], [10]]


def test_a_full_queue_refuses_with_overloaded_and_scores_what_it_took() -> None:
    gate = threading.Event()
    score = Recorder(gate)

    async def main() -> tuple[list[Any], str]:
        with ThreadPoolExecutor(1) as pool:
            b = _batcher(score, pool, max_batch=2, max_queue=5)
            taken = [asyncio.ensure_future(b.submit([i, i])) for i in range(2)]
            await asyncio.sleep(0.05)
            with pytest.raises(OverloadedError) as refused:
                await b.submit([9, 9])  # 4 wait, 2 more would make 6 > 5
            gate.set()
            return list(await asyncio.gather(*taken)), str(refused.value)

    out, message = asyncio.run(main())
    assert out == [[(0, 1), (0, 1)], [(10, 1), (10, 1)]]
    assert "4 inputs already wait" in message
    assert "at most 5" in message


def test_an_error_in_scoring_reaches_every_request_of_the_batch_and_the_next_batch_runs() -> None:
    calls: list[list[int]] = []

    def score(items: list[int], top_k: int) -> list[int]:
        calls.append(list(items))
        if 13 in items:
            raise ValueError("bad batch")
        return [x + 1 for x in items]

    async def main() -> tuple[list[Any], list[int]]:
        with ThreadPoolExecutor(1) as pool:
            b = _batcher(score, pool, max_batch=3, max_wait=30.0)
            failed = await asyncio.gather(
                b.submit([12]), b.submit([13]), b.submit([14]), return_exceptions=True
            )
            after = await b.submit([1, 2, 3])
            return failed, after

    failed, after = asyncio.run(main())
    assert [type(e).__name__ for e in failed] == ["ValueError"] * 3
    assert after == [2, 3, 4]
    assert calls == [[12, 13, 14], [1, 2, 3]]


def test_a_request_cancelled_while_waiting_is_not_scored() -> None:
    gate = threading.Event()
    score = Recorder(gate)

    async def main() -> list[Any]:
        with ThreadPoolExecutor(1) as pool:
            b = _batcher(score, pool, max_batch=8)
            first = asyncio.ensure_future(b.submit([1]))
            await asyncio.sleep(0.05)
            gone = asyncio.ensure_future(b.submit([2]))
            kept = asyncio.ensure_future(b.submit([3]))
            await asyncio.sleep(0.01)
            gone.cancel()
            gate.set()
            out = await asyncio.gather(first, kept)
            assert b.queued == 0
            return out

    assert asyncio.run(main()) == [[(10, 1)], [(30, 1)]]
    assert score.calls == [[1], [3]]


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 7), min_size=1, max_size=12),
    max_batch=st.integers(1, 10),
)
def test_batched_answers_equal_one_by_one_answers(sizes: list[int], max_batch: int) -> None:
    """Whatever the request sizes and the batch limit, each request gets exactly the answers
    it would get alone, and no call holds more than max_batch items unless one request does."""
    requests = []
    start = 0
    for n in sizes:
        requests.append(list(range(start, start + n)))
        start += n
    score = Recorder()

    async def main() -> list[list[tuple[int, int]]]:
        with ThreadPoolExecutor(1) as pool:
            b = _batcher(score, pool, max_batch=max_batch, max_queue=1000)
            return await asyncio.gather(*(b.submit(r, 2) for r in requests))

    out = asyncio.run(main())
    assert out == [[(x * 10, 2) for x in r] for r in requests]
    assert sorted(x for call in score.calls for x in call) == list(range(start))
    for call in score.calls:
        assert len(call) <= max(max_batch, max(sizes))


# -- input checks -------------------------------------------------------------------------------

CONFIG = ServingConfig(max_inputs=3, max_text_chars=10, max_queue=10)
FEATURES = Features(numeric=("turns", "latency_ms"), categorical=("locale",))


@pytest.mark.parametrize(
    ("inputs", "field", "rule", "too_large"),
    [
        ("hello", "inputs", "type", False),
        ([], "inputs", "size", False),
        (["a", "b", "c", "d"], "inputs", "size", True),
        (["ok", 7], "inputs[1]", "type", False),
        (["ok", "x" * 11], "inputs[1]", "size", True),
    ],
)
def test_intent_inputs_are_refused_with_the_field_and_rule(
    inputs: object, field: str, rule: str, too_large: bool
) -> None:
    with pytest.raises(InputError) as err:
        check_inputs("intent", inputs, CONFIG)
    assert (err.value.field, err.value.rule, err.value.too_large) == (field, rule, too_large)
    assert isinstance(err.value, UsageError)


def test_ten_characters_are_allowed_and_eleven_are_not() -> None:
    assert check_inputs("intent", ["x" * 10], CONFIG) == ["x" * 10]


@pytest.mark.parametrize(
    ("record", "field", "rule", "says"),
    [
        (["turns"], "inputs[0]", "type", "must be an object"),
        ({"turns": 1, "latency_ms": 2.0, "locale": "en", "x": 1}, "inputs[0]", "unknown", "'x'"),
        ({"turns": 1, "locale": "en"}, "inputs[0].latency_ms", "missing", "latency_ms"),
        ({"turns": "1", "latency_ms": 2.0, "locale": "en"}, "inputs[0].turns", "type", "number"),
        ({"turns": True, "latency_ms": 2.0, "locale": "en"}, "inputs[0].turns", "type", "bool"),
        ({"turns": 1, "latency_ms": 2.0, "locale": 5}, "inputs[0].locale", "type", "string"),
    ],
)
def test_feature_records_are_checked_against_the_models_features(
    record: object, field: str, rule: str, says: str
) -> None:
    with pytest.raises(InputError) as err:
        check_inputs("tabular", [record], CONFIG, FEATURES)
    assert (err.value.field, err.value.rule) == (field, rule)
    assert says in str(err.value)
    assert "turns, latency_ms, locale" in str(err.value) or rule == "type"


def test_nulls_and_numbers_of_either_kind_are_accepted_for_features() -> None:
    records = [
        {"turns": 1, "latency_ms": 2.5, "locale": "en"},
        {"turns": None, "latency_ms": None, "locale": None},
    ]
    assert check_inputs("tabular", records, CONFIG, FEATURES) == records


def test_a_tabular_prediction_ranks_true_and_false_by_the_score() -> None:
    assert TabularPrediction(0.25).to_dict() == {
        "label": False,
        "probability": 0.75,
        "score": 0.25,
        "top_k": [{"label": False, "probability": 0.75}, {"label": True, "probability": 0.25}],
    }
    assert TabularPrediction(0.5).to_dict()["label"] is True


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"max_batch": 0}, "max_batch must be a whole number >= 1"),
        ({"max_wait_ms": -1.0}, "max_wait_ms must be a number >= 0"),
        ({"refresh_seconds": float("nan")}, "refresh_seconds must be a number >= 0"),
        ({"max_queue": 10, "max_inputs": 11}, "max_queue (10) must be at least max_inputs (11)"),
    ],
)
def test_serving_config_refuses_limits_that_cannot_work(options: dict[str, Any], says: str) -> None:
    with pytest.raises(UsageError) as err:
        ServingConfig(**options)
    assert says in str(err.value)


def test_the_serve_options_defaults_are_serving_configs() -> None:
    """``assay serve`` writes the defaults out (it imports the models lazily): they must agree."""
    import dataclasses

    from assay.cli.serve import PREDICT_DEFAULTS

    defaults = {f.name: f.default for f in dataclasses.fields(ServingConfig)}
    assert {k: defaults[k] for k in PREDICT_DEFAULTS} == PREDICT_DEFAULTS
