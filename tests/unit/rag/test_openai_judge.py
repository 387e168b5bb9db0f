"""The OpenAI-compatible judge against a stand-in server on 127.0.0.1 (tests/unit/rag/standin.py):
verdicts and usage read from the reply, malformed replies, timeouts, 429 with Retry-After and 500
recorded as errors (never a score), retries counted, the cache answering a second run without a
request, and the token bucket on a fake clock."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from standin import COMPLETION_TOKENS, PROMPT_TOKENS, running

from assay import UsageError
from assay.rag._judge import JudgeCache, JudgeInput, run_judge
from assay.rag._openai import OpenAIJudge, TokenBucket, parse_verdicts, retry_after
from assay.store import Settings

CONTEXTS = ("Paris is in France and the Seine runs through it.",)


def make_judge(url: str, sleeps: list[float], **options: object) -> OpenAIJudge:
    params: dict[str, object] = {
        "model_name": "judge-1",
        "api_key": "sk-test-secret",
        "price_per_1k_tokens": 0.002,
        "requests_per_second": 1000.0,
        "timeout": 5.0,
        "max_retries": 2,
        **options,
    }
    return OpenAIJudge(url, sleep=sleeps.append, **params)  # type: ignore[arg-type]


def test_verdicts_tokens_and_cost_come_from_the_reply() -> None:
    sleeps: list[float] = []
    with running() as server, make_judge(server.url, sleeps) as judge:
        j = judge.judge("Paris is in France. Berlin is big.", CONTEXTS)
        assert server.authorization == ["Bearer sk-test-secret"]
    assert [(c.claim, c.verdict) for c in j.claims] == [
        ("Paris is in France.", "supported"),
        ("Berlin is big.", "unsupported"),
    ]
    assert j.error is None
    assert j.score == 0.5
    assert (j.tokens_in, j.tokens_out) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert j.cost_usd == pytest.approx(120 / 1000 * 0.002)
    assert (j.retries, sleeps) == (0, [])
    assert "sk-test-secret" not in repr(judge)


@pytest.mark.parametrize("marker", ["MALFORMED", "BADSHAPE"])
def test_an_unparsable_reply_is_an_error_without_a_score(marker: str) -> None:
    with running() as server, make_judge(server.url, []) as judge:
        j = judge.judge(f"The {marker} claim holds. Paris is in France.", CONTEXTS)
        assert server.requests == 1  # a bad reply is not retried: the model answered
    assert j.error is not None
    assert j.error.kind == "unparsable"
    assert j.score is None
    assert j.claims == ()
    assert j.tokens_in == PROMPT_TOKENS  # the tokens were spent all the same
    assert marker not in j.error.message  # messages never quote the answer


def test_a_timeout_is_retried_then_recorded_as_an_error() -> None:
    sleeps: list[float] = []
    with (
        running(slow_seconds=1.5) as server,
        make_judge(server.url, sleeps, timeout=0.2, max_retries=1) as judge,
    ):
        j = judge.judge("A SLOW answer.", CONTEXTS)
        assert server.requests == 2
    assert j.error is not None
    assert j.error.kind == "timeout"
    assert j.score is None
    assert j.retries == 1
    assert len(sleeps) == 1
    assert 0.25 <= sleeps[0] <= 0.5


def test_429_waits_retry_after_then_succeeds() -> None:
    sleeps: list[float] = []
    with (
        running(retry_after="3", rate_limit_times=2) as server,
        make_judge(server.url, sleeps, max_retries=4) as judge,
    ):
        j = judge.judge("RATELIMIT is in France.", ["ratelimit is in france"])
        assert server.requests == 3
    assert sleeps == [3.0, 3.0]
    assert j.retries == 2
    assert j.error is None
    assert j.score == 1.0


def test_429_beyond_the_retries_is_a_rate_limited_error() -> None:
    sleeps: list[float] = []
    with (
        running(retry_after="1", rate_limit_times=5) as server,
        make_judge(server.url, sleeps, max_retries=2) as judge,
    ):
        j = judge.judge("RATELIMIT again.", CONTEXTS)
        assert server.requests == 3
    assert j.error is not None
    assert j.error.kind == "rate_limited"
    assert (j.retries, sleeps, j.score) == (2, [1.0, 1.0], None)


def test_500_backs_off_exponentially_and_ends_as_an_error() -> None:
    sleeps: list[float] = []
    with running() as server, make_judge(server.url, sleeps, max_retries=2) as judge:
        j = judge.judge("FAIL500 here.", CONTEXTS)
        assert server.requests == 3
    assert j.error is not None
    assert j.error.kind == "http_status"
    assert j.retries == 2
    assert 0.25 <= sleeps[0] <= 0.5
    assert 0.5 <= sleeps[1] <= 1.0


def test_a_404_is_not_retried() -> None:
    with running() as server, make_judge(server.url + "/wrong", []) as judge:
        j = judge.judge("Paris is in France.", CONTEXTS)
        assert server.requests == 1
    assert j.error is not None
    assert j.error.kind == "http_status"
    assert "404" in j.error.message


def test_pipeline_skips_errors_in_the_mean_and_the_cache_answers_the_second_run(
    tmp_path: Path,
) -> None:
    items = [
        JudgeInput("Paris is in France.", CONTEXTS, "t1", "e1"),  # 1.0
        JudgeInput("Paris is in France. Berlin is big.", CONTEXTS, "t1", "e2"),  # 0.5
        JudgeInput("A MALFORMED reply.", CONTEXTS, "t1", "e3"),  # error
        JudgeInput("FAIL500 always.", CONTEXTS, "t2", "e4"),  # error
        JudgeInput("FLAKY500 the Seine runs through it.", CONTEXTS, "t2", "e5"),  # 0 after retry
        JudgeInput("  ", CONTEXTS, "t2", "e6"),  # no claim: no request
    ]
    cache = JudgeCache(tmp_path / "cache.sqlite")
    progress: list[int] = []
    with running() as server, make_judge(server.url, [], max_retries=1) as judge:
        run = run_judge(judge, items, concurrency=4, cache=cache, progress=progress.append)
        first = server.requests
        again = run_judge(judge, items, concurrency=4, cache=cache)
        second = server.requests - first
    summary = run.summary()
    assert first == 1 + 1 + 1 + 2 + 2  # FAIL500 and FLAKY500 retried once each
    assert [j.score for j in run.judgements] == [1.0, 0.5, None, None, 0.0, None]
    assert summary["judged"] == 3
    assert summary["errors"] == 3
    assert summary["errors_by_kind"] == {"unparsable": 1, "http_status": 1, "no_claims": 1}
    assert summary["mean_score"] == pytest.approx(0.5)
    assert summary["retries"] == 2
    assert summary["tokens_in"] == 4 * PROMPT_TOKENS  # the four 200 replies
    assert progress[-1] == 6
    assert sorted(progress) == progress
    # The second run: the three judged answers come from the cache; errors are asked again.
    assert second == 1 + 2
    assert again.summary()["cache_hits"] == 3
    assert [j.score for j in again.judgements] == [1.0, 0.5, None, None, 0.0, None]
    assert len(cache) == 3


def test_the_cache_key_changes_with_the_model_and_the_contexts(tmp_path: Path) -> None:
    cache = JudgeCache(tmp_path / "cache.sqlite")
    with running() as server:
        with make_judge(server.url, []) as a:
            run_judge(a, [JudgeInput("Paris is in France.", CONTEXTS)], cache=cache)
        with make_judge(server.url, [], model_name="judge-2") as b:
            run_judge(b, [JudgeInput("Paris is in France.", CONTEXTS)], cache=cache)
            run_judge(b, [JudgeInput("Paris is in France.", ("Other.",))], cache=cache)
        assert server.requests == 3


def test_from_settings_reads_url_model_price_and_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASSAY_JUDGE_API_KEY", "sk-env")
    settings = Settings(
        judge_url="http://127.0.0.1:9/", judge_model="m", judge_price_per_thousand_tokens=0.5
    )
    with OpenAIJudge.from_settings(settings) as judge:
        assert judge.endpoint == "http://127.0.0.1:9/v1/chat/completions"
        assert (judge.model, judge.api_key, judge.price_per_1k_tokens) == ("m", "sk-env", 0.5)
    with pytest.raises(UsageError, match="ASSAY_JUDGE_URL"):
        OpenAIJudge.from_settings(Settings())


def test_token_bucket_spaces_requests_at_the_rate() -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    bucket = TokenBucket(2.0, clock=lambda: now[0], sleep=sleep)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.5, 0.5, 0.5, 0.5])
    assert now[0] == pytest.approx(2.0)


@given(st.text(max_size=200), st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=4))
def test_parse_verdicts_never_raises_and_never_invents_verdicts(
    content: str, claims: list[str]
) -> None:
    out = parse_verdicts(content, claims)
    assert isinstance(out, str) or [c.claim for c in out] == claims


def test_parse_verdicts_checks_the_claim_count() -> None:
    one = '{"claims": [{"claim": "a", "verdict": "supported", "reason": "r"}]}'
    assert parse_verdicts(one, ["a", "b"]) == "the reply has 1 verdicts for 2 claims"
    (verdict,) = parse_verdicts(one, ["a"])  # type: ignore[misc]
    assert (verdict.verdict, verdict.reason) == ("supported", "r")


def test_a_retry_after_longer_than_the_limit_ends_the_retries() -> None:
    sleeps: list[float] = []
    with (
        running(retry_after="600", rate_limit_times=5) as server,
        make_judge(server.url, sleeps, max_retries=3, max_retry_after=120.0) as judge,
    ):
        j = judge.judge("RATELIMIT for long.", CONTEXTS)
        assert server.requests == 1
    assert j.error is not None
    assert j.error.kind == "rate_limited"
    assert "Retry-After 600 s" in j.error.message
    assert sleeps == []


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
    assert retry_after("Mon, 02 Mar 2026 10:00:45 GMT", now=now) == 45.0
    assert retry_after("Mon, 02 Mar 2026 09:00:00 GMT", now=now) == 0.0  # in the past
    assert retry_after("-5") == 0.0
