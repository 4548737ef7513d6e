"""A call's `timeout` bounds everything from the call to its answer: the provider's cooldown
and the declared limits' waits too. A call that cannot start before its deadline raises at
once (RateLimitError with `retry_after` for a cooldown, RequestTimeoutError for a limiter
wait); in a batch a prompt's timeout starts once it holds its limiter tokens. A Retry-After
over 24 hours counts as 24 hours.

Each test declares a provider of its own at the loopback server (a fresh limiter and
cooldown: the day-long pauses here reach no other test's clients)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import anyio
import pytest

from model_registry import RateLimitError, RequestTimeoutError, get_client
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import declare, model_name

DAY = 86400.0
#: What a broken bound would wait instead (a day, or the whole limiter queue): the tests
#: give up long before and fail rather than hang.
GIVE_UP = 20.0


async def _pause_the_provider(server: FakeOpenAIServer, provider: str, headers: dict) -> None:
    """One 429 with `headers`: the provider cools down (the call itself is not retried)."""
    hot = model_name()
    server.configure(hot, status=429, headers=headers, times=1)
    async with get_client(f"{provider}:{hot}") as client:
        with pytest.raises(RateLimitError):
            await client.generate("refused")


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "86400"},
        {"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"},
        {"retry-after-ms": "1e12"},
    ],
    ids=["a-day", "http-date-2100", "retry-after-ms"],
)
async def test_a_cooldown_past_the_timeout_raises_at_once_with_its_retry_after(
    server: FakeOpenAIServer, provider: str, headers: dict
) -> None:
    await _pause_the_provider(server, provider, headers)
    cold = model_name()
    async with get_client(f"{provider}:{cold}") as other:
        started = time.monotonic()
        with anyio.fail_after(GIVE_UP), pytest.raises(RateLimitError) as caught:
            await other.generate("x", timeout=3)
    assert time.monotonic() - started < 5.0
    assert DAY - 60 <= (caught.value.retry_after or 0) <= DAY  # over 24 h counts as 24 h
    assert "timeout=3" in str(caught.value)
    assert server.stats(cold).requests == 0


async def test_a_stream_that_cannot_start_before_its_timeout_raises_at_once(
    server: FakeOpenAIServer, provider: str
) -> None:
    await _pause_the_provider(server, provider, {"Retry-After": "86400"})
    async with get_client(f"{provider}:{model_name()}") as other:
        started = time.monotonic()
        with anyio.fail_after(GIVE_UP), pytest.raises(RateLimitError) as caught:
            async for _ in other.stream("x", timeout=3):
                pass
    assert time.monotonic() - started < 5.0
    assert caught.value.retry_after is not None and caught.value.retry_after > 3


async def test_a_pause_ending_on_another_day_is_logged_with_its_date(
    server: FakeOpenAIServer, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="model_registry"):
        await _pause_the_provider(server, provider, {"Retry-After": "86400"})
    assert re.search(r"waits until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", caplog.text), caplog.text


async def test_a_limiter_wait_that_reaches_the_timeout_raises_request_timeout(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    """One call in flight at a time: a second call with timeout=0.5 behind a slow first one
    raises when its deadline passes, naming the limits it waited for."""
    declare(tmp_path, server, provider, f'[limits."{provider}"]\nconcurrency = 1\n')
    slow, quick = model_name(), model_name()
    server.configure(slow, delay=3.0)
    async with (
        get_client(f"{provider}:{slow}") as first,
        get_client(f"{provider}:{quick}") as second,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(first.generate, "holds the slot")
        while not server.request_starts(slow):  # noqa: ASYNC110 (another process's state)
            await anyio.sleep(0.01)
        started = time.monotonic()
        with anyio.fail_after(GIVE_UP), pytest.raises(RequestTimeoutError) as caught:
            await second.generate("x", timeout=0.5)
        waited = time.monotonic() - started
    assert 0.4 <= waited < 2.5
    assert "declared limits" in str(caught.value)
    assert server.stats(quick).requests == 0


async def test_in_a_batch_each_prompt_s_timeout_starts_once_it_holds_its_limits(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    """rpm = 60 paces 4 prompts about a second apart: the last waits about 3 s for the
    limiter, longer than its timeout, and still gets its answer."""
    declare(tmp_path, server, provider, f'[limits."{provider}"]\nrpm = 60\n')
    model = model_name()
    async with get_client(f"{provider}:{model}") as client:
        with anyio.fail_after(GIVE_UP):
            answers = await client.generate_many([f"p{i}" for i in range(4)], timeout=1.5)
    assert len(answers) == 4
    starts = server.request_starts(model)
    assert max(starts) - min(starts) > 1.5
