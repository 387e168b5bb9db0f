"""A judge on any OpenAI-compatible chat-completions endpoint (OpenAI, Azure OpenAI's v1 API,
vLLM, llama.cpp's server, Ollama, LiteLLM...).

Configuration: ``judge_url`` (the base URL; ``/v1/chat/completions`` is appended unless the URL
already ends with it), ``judge_model`` and ``judge_price_per_thousand_tokens`` are workspace
settings (``assay.toml`` or ``ASSAY_JUDGE_URL``, ``ASSAY_JUDGE_MODEL``, ...); the key is read
only from the environment, ``ASSAY_JUDGE_API_KEY``, sent as a bearer token, and never logged,
stored or shown (not even in ``repr``).

One request per answer: the system prompt asks for a verdict on each of the answer's claims
(split here, :func:`~assay.rag._judge.split_claims`, numbered in the request) from the
contexts alone, as a JSON object ``{"claims": [{"claim", "verdict", "reason"}]}``
(``response_format = {"type": "json_object"}``, temperature 0). The reply is validated with
pydantic: not JSON, not that shape, a verdict outside ``supported | unsupported | unknown`` or
a different number of claims than were sent is an ``unparsable`` error, never a score.

Reliability: a 429, a 5xx, a timeout or a transport error is retried up to ``max_retries``
times, waiting what ``Retry-After`` says (seconds or an HTTP date; up to ``max_retry_after``,
beyond which the answer is an error) when the server sends it, else an exponential backoff
with jitter (``backoff * 2**attempt * U(0.5, 1)``, at most ``max_backoff``). Requests start at
most ``requests_per_second`` per second (a token bucket shared by every thread); concurrency
is the pipeline's (:func:`~assay.rag._judge.run_judge`). Tokens are read from the reply's
``usage`` and priced at ``price_per_1k_tokens``.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from assay._errors import UsageError
from assay.rag._judge import ClaimVerdict, Judgement, no_claims, split_claims

if TYPE_CHECKING:
    import httpx

    from assay.store import Settings

API_KEY_ENV = "ASSAY_JUDGE_API_KEY"
CHAT_PATH = "/v1/chat/completions"
PROMPT_VERSION = "groundedness-v1"
INSTALL_HINT = "pip install 'assay[rag]'"

SYSTEM_PROMPT = """You check whether claims are supported by the given contexts.
Judge each numbered claim using ONLY the contexts, not your own knowledge.
verdict is "supported" when the contexts state or directly imply the claim,
"unsupported" when they contradict it or do not contain it, and "unknown" when the
claim is not a factual statement (a greeting, a question, an instruction).
Reply with one JSON object and nothing else:
{"claims": [{"claim": "<the claim, verbatim>", "verdict": "supported|unsupported|unknown",
"reason": "<one short sentence>"}]}
with exactly one entry per numbered claim, in the same order."""


class _ClaimOut(BaseModel):
    model_config = ConfigDict(extra="ignore")
    claim: str
    verdict: Literal["supported", "unsupported", "unknown"]
    reason: str = ""


class _VerdictOut(BaseModel):
    model_config = ConfigDict(extra="ignore")
    claims: list[_ClaimOut]


def user_prompt(claims: Sequence[str], contexts: Sequence[str]) -> str:
    """The user message: the contexts, then the numbered claims."""
    ctx = "\n\n".join(f"[context {n}]\n{c}" for n, c in enumerate(contexts, 1)) or "(none)"
    numbered = "\n".join(f"{n}. {c}" for n, c in enumerate(claims, 1))
    return f"CONTEXTS:\n{ctx}\n\nCLAIMS:\n{numbered}"


def parse_verdicts(content: str, claims: Sequence[str]) -> tuple[ClaimVerdict, ...] | str:
    """The verdicts of a reply's message content, or why it does not parse (a message without
    any text of the reply, which may quote the answer)."""
    try:
        data = json.loads(content)
    except ValueError:
        return "the reply's content is not JSON"
    try:
        out = _VerdictOut.model_validate(data)
    except ValidationError as exc:
        where = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})[:3]
        return f"the reply's JSON is not {{'claims': [{{claim, verdict, reason}}]}} (at {where})"
    if len(out.claims) != len(claims):
        return f"the reply has {len(out.claims)} verdicts for {len(claims)} claims"
    # The claims are ours (the reply's copy may be reworded); the verdicts are the model's.
    return tuple(
        ClaimVerdict(c, o.verdict, o.reason[:500]) for c, o in zip(claims, out.claims, strict=True)
    )


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, bursts of ``capacity`` (thread-safe).

    ``clock`` and ``sleep`` are injectable so tests need no wall time.
    """

    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise UsageError(f"requests per second must be > 0 (got {rate}); e.g. 5")
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting for it; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return waited
                wait = (1.0 - self._tokens) / self.rate
            self._sleep(wait)
            waited += wait


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - the rag extra brings it
        raise UsageError(f"the OpenAI-compatible judge needs httpx: {INSTALL_HINT}") from exc
    return httpx


def retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date (RFC 9110);
    None when absent or unreadable (the caller falls back to its backoff).

    Examples
    --------
    >>> retry_after("3"), retry_after(None), retry_after("soon")
    (3.0, None, None)
    >>> retry_after("Wed, 21 Oct 2015 07:28:30 GMT",
    ...             now=datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC))
    30.0
    """
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class OpenAIJudge:
    """Groundedness from an OpenAI-compatible chat-completions endpoint (module docstring).

    Parameters
    ----------
    url : base URL of the API (``http://127.0.0.1:8000`` or ``https://api.openai.com``).
    model : model name sent in the request.
    api_key : bearer token (empty: no Authorization header); never shown.
    price_per_1k_tokens : USD per 1000 tokens (prompt and completion alike).
    requests_per_second : start rate limit, shared by all threads.
    timeout : seconds per request (connect, read, write).
    max_retries : retries after a 429, 5xx, timeout or transport error.
    backoff, max_backoff : the exponential backoff's first and largest wait, seconds.
    max_retry_after : the longest ``Retry-After`` honoured, seconds; a longer one ends the
        answer's retries (an error) rather than stall the run.
    """

    url: str
    model_name: str
    api_key: str = field(default="", repr=False)
    price_per_1k_tokens: float = 0.0
    requests_per_second: float = 5.0
    timeout: float = 30.0
    max_retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    #: How retries wait (tests record the waits instead of spending them).
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    _client: Any = field(default=None, init=False, repr=False)
    _bucket: TokenBucket | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise UsageError(
                f"the judge URL must start with http:// or https:// (got {self.url[:60]!r}); "
                "set judge_url in assay.toml or ASSAY_JUDGE_URL"
            )
        if not self.model_name:
            raise UsageError("no judge model: set judge_model in assay.toml or ASSAY_JUDGE_MODEL")
        if self.max_retries < 0:
            raise UsageError(f"max_retries must be >= 0 (got {self.max_retries})")
        base = self.url.rstrip("/")
        self.endpoint = base if base.endswith(CHAT_PATH) else base + CHAT_PATH
        self._bucket = TokenBucket(self.requests_per_second)
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        self._client = _httpx().Client(timeout=self.timeout, headers=headers)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> OpenAIJudge:
        """The judge the workspace settings and ``ASSAY_JUDGE_API_KEY`` describe."""
        if not settings.judge_url:
            raise UsageError(
                "--judge openai needs an endpoint: set judge_url (and judge_model) in "
                "assay.toml, or ASSAY_JUDGE_URL and ASSAY_JUDGE_MODEL"
            )
        return cls(
            url=settings.judge_url,
            model_name=settings.judge_model,
            api_key=os.environ.get(API_KEY_ENV, ""),
            price_per_1k_tokens=settings.judge_price_per_thousand_tokens,
            **options,
        )

    @property
    def judge_id(self) -> str:
        return "openai"

    @property
    def model(self) -> str:
        return self.model_name

    @property
    def prompt_version(self) -> str:
        return PROMPT_VERSION

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def judge(self, answer: str, contexts: Sequence[str]) -> Judgement:
        claims = split_claims(answer)
        if not claims:
            return no_claims()
        body = {
            "model": self.model_name,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": user_prompt(claims, contexts)},
            ],
        }
        httpx = _httpx()
        retries = 0
        failure: tuple[str, str] = ("transport", "no request sent")
        for attempt in range(self.max_retries + 1):
            if attempt:
                retries += 1
            assert self._bucket is not None
            self._bucket.acquire()
            wait: float | None = None
            try:
                response = self._client.post(self.endpoint, json=body)
            except httpx.TimeoutException:
                failure = ("timeout", f"no reply within {self.timeout:g} s")
            except httpx.TransportError as exc:
                failure = ("transport", f"the request failed ({type(exc).__name__})")
            else:
                status = response.status_code
                if status == 200:
                    return self._read(response, claims, retries)
                if status == 429:
                    failure = ("rate_limited", "429 Too Many Requests")
                    wait = retry_after(response.headers.get("retry-after"))
                elif status >= 500:
                    failure = ("http_status", f"HTTP {status} from the judge endpoint")
                    wait = retry_after(response.headers.get("retry-after"))
                else:
                    # 4xx other than 429: a bad request, key or model name; retrying won't help.
                    return Judgement.failed(
                        "http_status",
                        f"HTTP {status} from the judge endpoint; check judge_url, judge_model "
                        f"and {API_KEY_ENV}",
                        retries=retries,
                    )
            if attempt == self.max_retries:
                break
            if wait is None:
                wait = min(self.max_backoff, self.backoff * 2**attempt * random.uniform(0.5, 1.0))
            elif wait > self.max_retry_after:
                # The server asks for a longer pause than a judge run should sit through.
                kind, message = failure
                return Judgement.failed(
                    kind,
                    f"{message} with Retry-After {wait:g} s (over {self.max_retry_after:g} s)",
                    retries=retries,
                )
            self.sleep(wait)
        kind, message = failure
        return Judgement.failed(
            kind, f"{message}, after {self.max_retries + 1} attempts", retries=retries
        )

    def _read(self, response: httpx.Response, claims: list[str], retries: int) -> Judgement:
        usage: dict[str, Any] = {"retries": retries}
        try:
            data = response.json()
        except ValueError:
            return Judgement.failed("unparsable", "the reply is not JSON", **usage)
        tokens = data.get("usage") if isinstance(data, dict) else None
        if isinstance(tokens, dict):
            t_in = int(tokens.get("prompt_tokens") or 0)
            t_out = int(tokens.get("completion_tokens") or 0)
            usage.update(
                tokens_in=t_in,
                tokens_out=t_out,
                cost_usd=(t_in + t_out) / 1000.0 * self.price_per_1k_tokens,
            )
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return Judgement.failed(
                "unparsable", "the reply has no choices[0].message.content", **usage
            )
        if not isinstance(content, str):
            return Judgement.failed("unparsable", "the reply's content is not text", **usage)
        parsed = parse_verdicts(content, claims)
        if isinstance(parsed, str):
            return Judgement.failed("unparsable", parsed, **usage)
        return Judgement(claims=parsed, **usage)
