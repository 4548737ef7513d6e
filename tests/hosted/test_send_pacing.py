"""Sends paced where they leave the process: calls admitted on time by the limiter can
reach the socket bunched when the work between admission and send stalls (a loaded
machine: LiteLLM prepares each call in the loop's thread pool). Here the pool is held on
purpose for the first seconds, so every call admitted meanwhile would go out at once;
the server's arrivals must still keep the 1 s bound, with margin for a loaded machine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from model_registry import get_client
from model_registry.clients._policy.paced_http import paced_session
from model_registry.limits import estimate_tokens
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.test_enforced_rpm import most_in_any_window

RPM = 600  # 10 a second: a 1 s window holds at most about 14 (a 0.4 s burst + the rate)
CALLS = 50
HELD = 3.0  # seconds the thread pool is held: about 30 calls admitted meanwhile
#: Generous above the limiter's 14, far below the ~40 that held calls send in one second.
MOST_PER_SECOND = 20


class _HeldPool(concurrent.futures.ThreadPoolExecutor):
    """A thread pool whose jobs submitted before `until` (time.monotonic()) start then."""

    def __init__(self, until: float) -> None:
        super().__init__(max_workers=CALLS + 8)
        self.until = until

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        until = self.until

        def held() -> Any:
            time.sleep(max(0.0, until - time.monotonic()))
            return fn(*args, **kwargs)

        return super().submit(held)


@pytest.fixture
async def held_pool() -> AsyncIterator[_HeldPool]:
    loop = asyncio.get_running_loop()
    pool = _HeldPool(until=0.0)
    loop.set_default_executor(pool)
    yield pool
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor())
    pool.shutdown(wait=True)


async def test_sends_stalled_after_admission_still_reach_the_server_spaced(
    server: FakeOpenAIServer, provider: str, held_pool: _HeldPool
) -> None:
    model = f"paced-{uuid.uuid4().hex[:8]}"
    async with get_client(f"{provider}:warm-up") as client:
        await client.generate("warm up")  # LiteLLM's first-call start-up, outside the test
    with anyio.fail_after(120):
        async with get_client(f"{provider}:{model}", limits={"rpm": RPM}) as client:
            held_pool.until = time.monotonic() + HELD
            results = await client.generate_many(
                [f"q{i}" for i in range(CALLS)], return_exceptions=True
            )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} calls failed, the first: {errors[0]!r}"
    arrivals = server.request_starts(model)
    assert len(arrivals) == CALLS
    most = most_in_any_window(arrivals, 1.0)
    assert most <= MOST_PER_SECOND, f"{most} requests reached the server within 1 s"


async def test_the_sends_leave_the_http_client_at_the_declared_rate(
    server: FakeOpenAIServer, provider: str, held_pool: _HeldPool
) -> None:
    """Where the request is sent (a hook after ours): the bucket's own bound, on a loop
    whose thread pool stalls the calls admitted in the first seconds."""
    model = f"paced-{uuid.uuid4().hex[:8]}"
    sends: list[float] = []

    async def record(request: Any) -> None:
        if model in request.content.decode():
            sends.append(anyio.current_time())

    with anyio.fail_after(120):
        async with get_client(f"{provider}:{model}", limits={"rpm": RPM}) as client:
            hooks = paced_session().event_hooks["request"]
            hooks.append(record)
            held_pool.until = time.monotonic() + HELD
            try:
                results = await client.generate_many(
                    [f"q{i}" for i in range(CALLS)], return_exceptions=True
                )
            finally:
                hooks.remove(record)
    assert not [r for r in results if isinstance(r, BaseException)]
    assert len(sends) == CALLS
    # a burst of 0.4 s worth (4) and 0.99 of the rate: at most 4 + 9.83 in any 1 s
    assert most_in_any_window(sends, 1.0) <= 14


async def test_tokens_stalled_after_admission_still_reach_the_server_spaced(
    server: FakeOpenAIServer, provider: str, held_pool: _HeldPool
) -> None:
    """`tpm` likewise: each request's charged tokens are taken again where it is sent."""
    model = f"paced-{uuid.uuid4().hex[:8]}"
    server.configure(model, reply=" ".join(["word"] * 16))  # usage close to the estimate
    tokens_each = estimate_tokens("q10", 16)  # what the limiter charges each call
    async with get_client(f"{provider}:warm-up") as client:
        await client.generate("warm up")
    with anyio.fail_after(120):
        tpm = tokens_each * RPM  # the same 10 calls a second as the rpm tests
        async with get_client(f"{provider}:{model}", limits={"tpm": tpm}) as client:
            held_pool.until = time.monotonic() + HELD
            results = await client.generate_many(
                [f"q{i + 10}" for i in range(CALLS)], max_tokens=16, return_exceptions=True
            )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} calls failed, the first: {errors[0]!r}"
    arrivals = server.request_starts(model)
    assert len(arrivals) == CALLS
    most = most_in_any_window(arrivals, 1.0)
    assert most <= MOST_PER_SECOND, f"{most} requests reached the server within 1 s"
