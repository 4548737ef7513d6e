"""Load with injected faults: every call ends typed, counts add up, nothing is left over.

Calls at concurrency 512 against the loopback server, with about 2% each of HTTP 500,
HTTP 429, answers slower than the timeout and dropped connections. LiteLLM spends about
10 ms of CPU a call, so a plain `uv run pytest` makes 2,000 calls; `.ci/run` sets
`MODEL_REGISTRY_LOAD_CALLS=10000` for the full run. What is asserted holds on a busy
machine too: there, some calls run past their timeout before an answer comes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from collections.abc import Iterator

import pytest

from model_registry import (
    APIConnectionError,
    Generation,
    RateLimitError,
    RequestTimeoutError,
    ServiceUnavailableError,
    get_client,
)
from model_registry.errors import ModelCallError
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY

CALLS = int(os.environ.get("MODEL_REGISTRY_LOAD_CALLS", "2000"))
CONCURRENCY = 512
TIMEOUT_S = 15.0

# one prompt in 50 of each kind: 2% each
FAULTS: dict[int, tuple[str, type[BaseException]]] = {
    0: ("!status=500", ServiceUnavailableError),
    1: ("!status=429", RateLimitError),
    2: (f"!delay={TIMEOUT_S + 60}", RequestTimeoutError),
    3: ("!drop=1", APIConnectionError),  # no response came: not a made-up 500
}


def _prompts(n: int) -> tuple[list[str], list[type[BaseException]]]:
    """The prompts, and the outcome each must have on an idle machine."""
    prompts, expected = [], []
    for i in range(n):
        fault = FAULTS.get(i % 50)
        prompts.append(f"call {i} {fault[0]}" if fault else f"call {i}")
        expected.append(fault[1] if fault else Generation)
    return prompts, expected


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _settle(baseline: int, deadline_s: float = 10.0) -> int:
    """File descriptors after closing sockets settle (the loop closes them a tick later)."""
    end = time.monotonic() + deadline_s
    while True:
        await asyncio.sleep(0.05)
        count = _open_fds()
        if count <= baseline or time.monotonic() > end:
            return count


@contextlib.contextmanager
def _no_log_records() -> Iterator[None]:
    """No log record below ERROR is made: a failure's report is its assertion, not
    thousands of captured lines of the calls' logging."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.slow
async def test_thousands_of_calls_with_faults_all_end_typed_and_leave_nothing(
    server: FakeOpenAIServer,
) -> None:
    prompts, expected = _prompts(CALLS)
    fds_before = _open_fds()
    tasks_before = asyncio.all_tasks()

    client = get_client(
        "openai:load",
        api_base=server.base_url,
        api_key=SERVER_KEY,
        timeout=TIMEOUT_S,
        num_retries=0,
        max_retries=0,
    )
    with _no_log_records():
        results = await client.generate_many(
            prompts, concurrency=CONCURRENCY, return_exceptions=True
        )
        await client.aclose()

    # Each call ends as its fault says, or, on a machine too busy to answer within the
    # timeout, as a RequestTimeoutError; a busy machine times out some calls, never most.
    outcomes = collections.Counter(type(r).__name__ for r in results)
    summary = f"{CALLS} calls: {dict(outcomes)}"
    wrong = [
        f"{prompt!r}: {type(result).__name__}"
        for prompt, result, want in zip(prompts, results, expected, strict=True)
        if not isinstance(result, want | RequestTimeoutError)
    ]
    assert wrong == [], f"{summary}; {len(wrong)} ended otherwise, first: {wrong[:5]}"
    late = sum(
        isinstance(r, RequestTimeoutError) and want is not RequestTimeoutError
        for r, want in zip(results, expected, strict=True)
    )
    assert late <= CALLS // 5, f"{summary}; {late} timed out that were answered in time"
    for prompt, result in zip(prompts, results, strict=True):
        if isinstance(result, Generation):
            assert result.text == f"echo: {prompt}"  # order kept, nothing mixed up
        else:
            assert isinstance(result, ModelCallError)
            assert (result.provider, result.model) == ("openai", "load")

    stats = server.stats("load")
    # no retries were configured: at most one request a call (a late one may never leave)
    assert CALLS - late <= stats.requests <= CALLS, summary
    assert stats.max_in_flight <= CONCURRENCY
    await server.await_idle()
    assert asyncio.all_tasks() - tasks_before == set()
    assert await _settle(fds_before) <= fds_before


async def test_retries_happen_exactly_as_configured(server: FakeOpenAIServer) -> None:
    prompts = [f"r{i} !status=500" if i % 4 == 0 else f"r{i}" for i in range(40)]
    async with get_client(
        "openai:retries", api_base=server.base_url, api_key=SERVER_KEY, num_retries=2
    ) as client:
        results = await client.generate_many(prompts, return_exceptions=True)

    failed = [r for r in results if isinstance(r, ServiceUnavailableError)]
    assert len(failed) == 10
    assert all(r.status_code == 500 for r in failed)
    # each failing prompt was sent 1 + 2 times, each good one once
    assert server.stats("retries").requests == 30 + 10 * 3


@pytest.mark.parametrize("timeout_s", [0.5, 1.5])
async def test_per_call_timeout_is_honoured_within_20_percent(
    server: FakeOpenAIServer, timeout_s: float
) -> None:
    async with get_client(
        "openai:slow", api_base=server.base_url, api_key=SERVER_KEY, num_retries=0
    ) as client:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            await client.generate("!delay=5", timeout=timeout_s)
        elapsed = time.monotonic() - started
    assert timeout_s <= elapsed * 1.02 and elapsed <= timeout_s * 1.2


async def test_cancelling_generate_many_cancels_every_call_it_started(
    server: FakeOpenAIServer,
) -> None:
    tasks_before = asyncio.all_tasks()
    async with get_client("openai:cancel", api_base=server.base_url, api_key=SERVER_KEY) as client:
        task = asyncio.create_task(
            client.generate_many([f"c{i} !delay=30" for i in range(100)], concurrency=40)
        )
        while server.stats("cancel").in_flight < 40:  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.02)
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 1.0
    await server.await_idle()
    stats = server.stats("cancel")
    assert stats.requests == 40  # the 60 waiting for a slot never went out
    assert stats.in_flight == 0
    assert asyncio.all_tasks() - tasks_before == set()
