"""A stand-in OpenAI-compatible chat-completions server on 127.0.0.1 for the judge's tests and
benchmark (stdlib ``http.server``, one thread per request).

It answers ``POST /v1/chat/completions`` the way the real API does (``choices[0].message.content``
holding the JSON the prompt asks for, and ``usage``), judging each numbered claim by a rule of
its own, independent of assay's judges: a claim is ``supported`` when its text, lowercased and
without its final punctuation, occurs verbatim in the lowercased contexts.

Misbehaviour on demand, by a marker word in the request's claims:

- ``MALFORMED``: 200 whose message content is not JSON;
- ``BADSHAPE``: 200 with JSON of the wrong shape (a verdict ``maybe``);
- ``SLOW``: answers after ``slow_seconds`` (beyond the client's timeout);
- ``RATELIMIT``: 429 with ``Retry-After: <retry_after>`` the first ``rate_limit_times`` times
  a given request body arrives, then a normal answer;
- ``FAIL500``: always 500; ``FLAKY500``: 500 the first time a body arrives, then normal.

Every answer spends ``PROMPT_TOKENS`` + ``COMPLETION_TOKENS`` tokens. ``requests`` counts the
requests received; ``delay`` adds a fixed service time to each (for the benchmark).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROMPT_TOKENS = 100
COMPLETION_TOKENS = 20
_CLAIM_LINE = re.compile(r"^\d+\. (.*)$")


class StandIn:
    def __init__(
        self,
        *,
        slow_seconds: float = 2.0,
        retry_after: str = "3",
        rate_limit_times: int = 1,
        delay: float = 0.0,
    ) -> None:
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.rate_limit_times = rate_limit_times
        self.delay = delay
        self.requests = 0
        self.seen: Counter[str] = Counter()
        self.authorization: list[str] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with standin._lock:
                    standin.requests += 1
                    standin.seen[raw.decode()] += 1
                    times = standin.seen[raw.decode()]
                    standin.authorization.append(self.headers.get("Authorization", ""))
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                if standin.delay:
                    time.sleep(standin.delay)
                body = json.loads(raw)
                user = body["messages"][-1]["content"]
                contexts, _, claim_block = user.partition("\n\nCLAIMS:\n")
                claims = [
                    m.group(1)
                    for line in claim_block.splitlines()
                    if (m := _CLAIM_LINE.match(line))
                ]
                if "FAIL500" in claim_block or ("FLAKY500" in claim_block and times == 1):
                    self._send(500, {"error": {"message": "internal"}})
                    return
                if "RATELIMIT" in claim_block and times <= standin.rate_limit_times:
                    self._send(429, {"error": {"message": "slow down"}}, standin.retry_after)
                    return
                if "SLOW" in claim_block:
                    time.sleep(standin.slow_seconds)
                if "MALFORMED" in claim_block:
                    content = '{"claims": [{"claim": "x", "verdict": '
                elif "BADSHAPE" in claim_block:
                    content = json.dumps(
                        {"claims": [{"claim": c, "verdict": "maybe"} for c in claims]}
                    )
                else:
                    ctx = contexts.lower()
                    content = json.dumps(
                        {
                            "claims": [
                                {
                                    "claim": c,
                                    "verdict": "supported"
                                    if c.lower().rstrip(".!?") in ctx
                                    else "unsupported",
                                    "reason": "verbatim"
                                    if c.lower().rstrip(".!?") in ctx
                                    else "absent",
                                }
                                for c in claims
                            ]
                        }
                    )
                self._send(
                    200,
                    {
                        "id": "chatcmpl-standin",
                        "object": "chat.completion",
                        "model": body.get("model", ""),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": PROMPT_TOKENS,
                            "completion_tokens": COMPLETION_TOKENS,
                            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                        },
                    },
                )

            def _send(self, status: int, payload: Any, retry_after: str | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if retry_after is not None:
                        self.send_header("Retry-After", retry_after)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        return Handler


@contextmanager
def running(**options: Any) -> Iterator[StandIn]:
    """A stand-in server in a thread, shut down and closed at the end."""
    standin = StandIn(**options)
    thread = threading.Thread(target=standin.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        standin.server.shutdown()
        standin.server.server_close()
        thread.join(timeout=5)
