"""Groundedness judge pipeline: throughput of the OpenAI-compatible judge against the stand-in
server on 127.0.0.1 (tests/unit/rag/standin.py), concurrency 1 against 8.

Goal (issue 17): the judge pipeline's throughput with concurrency. A model endpoint spends most
of a request waiting on the model, so the stand-in sleeps ``--service-ms`` per request (a small
model's latency); with 8 requests in flight the pipeline should approach 8x the throughput of
one at a time, and at concurrency 1 it should cost little over a bare ``httpx`` loop posting the
same requests (the baseline, same run).

Each answer has 3 claims and 2 contexts; the cache is off (every answer is a request) and the
rate limit is far above what is reached. Every judgement is checked to have a score (no error),
so the figures count only successful judgements.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/rag_judge.py --answers 200 --service-ms 20
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

from _bench import markdown_row, print_block, print_machine
from assay.rag import JudgeInput, OpenAIJudge, run_judge
from assay.rag._openai import SYSTEM_PROMPT, user_prompt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "unit" / "rag"))

from standin import running


def _answers(n: int) -> list[JudgeInput]:
    contexts = (
        "The Seine runs through Paris. Paris is the capital of France.",
        "Lyon lies on the Rhone.",
    )
    return [
        JudgeInput(
            f"Answer {i} says the Seine runs through Paris. Lyon lies on the Rhone. "
            f"It has {i} bridges.",
            contexts,
            "bench",
            f"e{i}",
        )
        for i in range(n)
    ]


def _pipeline(url: str, items: list[JudgeInput], concurrency: int) -> tuple[float, int]:
    with OpenAIJudge(url, "m", requests_per_second=1e6, timeout=30.0) as judge:
        start = time.perf_counter()
        run = run_judge(judge, items, concurrency=concurrency)
        seconds = time.perf_counter() - start
    summary = run.summary()
    if summary["errors"]:
        raise SystemExit(f"{summary['errors']} judgements failed: {summary['errors_by_kind']}")
    return seconds, int(summary["judged"])


def _bare_httpx(url: str, items: list[JudgeInput]) -> float:
    from assay.rag import split_claims

    with httpx.Client(timeout=30.0) as client:
        start = time.perf_counter()
        for item in items:
            claims = split_claims(item.answer)
            body = {
                "model": "m",
                "temperature": 0,
                "response_format": {"type": "json_object"},
                "messages": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {
                        "role": "user",
                        "content": user_prompt(claims, item.contexts),
                    },
                ],
            }
            client.post(url + "/v1/chat/completions", json=body).raise_for_status()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--answers", type=int, default=200)
    parser.add_argument("--service-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    items = _answers(args.answers)
    print_machine()
    with running(delay=args.service_ms / 1000) as server:
        _pipeline(server.url, items[:10], 2)  # warm-up: imports, connections
        base = _bare_httpx(server.url, items)
        one, n1 = _pipeline(server.url, items, 1)
        many, n8 = _pipeline(server.url, items, args.concurrency)
    rows = [
        ("bare httpx loop, 1 at a time", base, args.answers),
        ("assay pipeline, concurrency 1", one, n1),
        (f"assay pipeline, concurrency {args.concurrency}", many, n8),
    ]
    print_block(
        "rag judge throughput",
        [
            ("answers", str(args.answers)),
            ("stand-in service time", f"{args.service_ms:g} ms per request"),
            (f"concurrency {args.concurrency} / 1 throughput", f"{one / many:.2f}x"),
            ("assay c1 / bare httpx time", f"{one / base:.2f}x"),
        ],
    )
    print(markdown_row(["run", "seconds", "answers judged", "answers/s"]))
    print(markdown_row(["---", "---", "---", "---"]))
    for name, seconds, n in rows:
        print(markdown_row([name, f"{seconds:.2f}", str(n), f"{n / seconds:.1f}"]))


if __name__ == "__main__":
    main()
