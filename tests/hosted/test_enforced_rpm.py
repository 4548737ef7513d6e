"""Issue 20's "done when" at CI size: a batch at concurrency 256 against a server that
ENFORCES the rate limit (a strict provider: a request over it gets a 429 with Retry-After,
`model_registry.testing`'s `configure(model, rpm=...)`). With the same `rpm` declared, the
server refuses nothing; without it, the same batch is refused, so the first test can fail.

Each test has a provider of its own (an alias file at the loopback server), so the
provider-wide cooldown its 429s start reaches no other test's clients.
"""

from __future__ import annotations

import bisect
import math
import uuid
from typing import Any

import anyio

from model_registry import Generation, RateLimitError, get_client
from tests.fixtures.openai_server import FakeOpenAIServer

#: The issue's test: rpm=600 over about 20 s (200 prompts at 9.8 a second).
#: What is left for send jitter is the limiter's margin under the server's 1 s bound (a
#: burst of 0.4 s worth, not 0.5; 0.99 of the rate): about 120 ms at any rate. Requests
#: admitted apart can reach the server together (a burst's requests leave behind calls
#: admitted after them; a stalled loop sends at once what it admitted). Without that
#: margin a loaded 2-core machine got refusals (2026-11-29): at 1,800 a minute one 429 in
#: each of 3 runs, at 1,200 in 2 of 9, at 600 none in 6.
PROMPTS, RPM = 200, 600
#: What the server admits in any 1 s window (1.5x rpm/60).
PER_SECOND = math.floor(1.5 * RPM / 60)
#: A correctness deadline, far above the 20 s the batch needs.
DEADLINE = 120


def most_in_any_window(times: list[float], seconds: float) -> int:
    """The most arrivals in any window of `seconds` that is open at its start, as the
    server counts its trailing window."""
    ts = sorted(times)
    return max(i + 1 - bisect.bisect_right(ts, t - seconds) for i, t in enumerate(ts))


async def run_batch(name: str, **kwargs: Any) -> list[Generation | BaseException]:
    """The batch: PROMPTS prompts at concurrency 256, after one warm-up call on a model of
    its own (LiteLLM's first-call start-up would stall the loop inside the batch)."""
    warm = name.rsplit(":", 1)[0] + ":warm-up"
    async with get_client(warm) as client:
        await client.generate("warm up")
    prompts = [f"q{i}" for i in range(PROMPTS)]
    with anyio.fail_after(DEADLINE):
        async with get_client(name, **kwargs) as client:
            return await client.generate_many(prompts, concurrency=256, return_exceptions=True)


async def test_a_batch_under_the_declared_rpm_is_never_refused_by_a_server_enforcing_it(
    server: FakeOpenAIServer, provider: str
) -> None:
    model = f"enforced-{uuid.uuid4().hex[:8]}"
    server.configure(model, rpm=RPM)
    results = await run_batch(f"{provider}:{model}", limits={"rpm": RPM})
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} prompts failed, the first: {errors[0]!r}"
    texts = [r.text for r in results if isinstance(r, Generation)]
    assert texts == [f"echo: q{i}" for i in range(PROMPTS)]
    stats = server.stats(model)
    assert stats.rejected == 0
    starts = server.request_starts(model)
    assert len(starts) == PROMPTS == stats.requests  # each prompt answered at its first request
    assert most_in_any_window(starts, 1.0) <= PER_SECOND
    assert most_in_any_window(starts, 60.0) <= RPM


async def test_the_same_batch_without_a_declared_limit_is_refused(
    server: FakeOpenAIServer, provider: str
) -> None:
    """The contrast: the server's enforcement bites, so the test above could fail."""
    model = f"unlimited-{uuid.uuid4().hex[:8]}"
    server.configure(model, rpm=RPM)
    results = await run_batch(f"{provider}:{model}", num_retries=0, max_retries=0)
    refused = [r for r in results if isinstance(r, RateLimitError)]
    assert refused, "the server refused nothing: it does not enforce its rpm"
    assert all(isinstance(r, Generation | RateLimitError) for r in results)
    assert all(e.retry_after is not None and 0 < e.retry_after <= 60 for e in refused)
    assert server.stats(model).rejected >= len(refused)
