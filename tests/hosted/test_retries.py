"""Retries of hosted calls (issue 20): ours, so each attempt obeys the limits. A 429 with
Retry-After pauses every client of the provider from the moment it arrives (not only once
the call gives up), a retry is a request the `rpm` bucket counts, `num_retries` works on
every route (LiteLLM's own retry did nothing off the openai SDK's routes), and no wait is
started that the call's timeout cannot hold.

The loopback server records when each request arrives; each test declares a provider of its
own (a fresh limiter and cooldown) and its own model names (the server's counters)."""

from __future__ import annotations

import itertools
import math
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx

from model_registry import (
    APIConnectionError,
    BadRequestError,
    ClientClosedError,
    InvalidParameterError,
    RateLimitError,
    ServiceUnavailableError,
    get_client,
)
from model_registry.clients._policy.retries import (
    DEFAULT_RETRIES,
    call_with_retries,
    is_loopback,
    retry_wait,
)
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import declare, model_name
from tests.hosted.test_wire import ANTHROPIC_RESPONSE, ANTHROPIC_URL


def gaps(server: FakeOpenAIServer, model: str) -> list[float]:
    starts = server.request_starts(model)
    return [later - earlier for earlier, later in itertools.pairwise(starts)]


# --- how many, and which ----------------------------------------------------------------


async def test_two_retries_by_default_on_a_5xx_then_the_error(
    server: FakeOpenAIServer, provider: str
) -> None:
    flaky, down = model_name(), model_name()
    server.configure(flaky, status=503, times=DEFAULT_RETRIES)
    server.configure(down, status=503)
    async with get_client(f"{provider}:{flaky}") as client:
        generation = await client.generate("hello")
    assert generation.text == "echo: hello"
    assert server.stats(flaky).requests == DEFAULT_RETRIES + 1
    async with get_client(f"{provider}:{down}") as client:
        with pytest.raises(ServiceUnavailableError):
            await client.generate("hello")
    assert server.stats(down).requests == DEFAULT_RETRIES + 1


@pytest.mark.parametrize(("kwargs", "requests"), [({"num_retries": 0}, 1), ({"num_retries": 4}, 5)])
async def test_num_retries_sets_the_attempts_and_max_retries_is_read_alike(
    server: FakeOpenAIServer, provider: str, kwargs: dict[str, int], requests: int
) -> None:
    for given in (kwargs, {"max_retries": next(iter(kwargs.values()))}):
        model = model_name()
        server.configure(model, status=500)
        async with get_client(f"{provider}:{model}", **given) as client:
            with pytest.raises(ServiceUnavailableError):
                await client.generate("x")
        assert server.stats(model).requests == requests, given


async def test_errors_a_retry_cannot_fix_are_raised_after_one_request(
    server: FakeOpenAIServer, provider: str
) -> None:
    model = model_name()
    server.configure(model, status=400, message="bad field", error_type="invalid_request_error")
    async with get_client(f"{provider}:{model}", num_retries=3) as client:
        with pytest.raises(BadRequestError):
            await client.generate("x")
    assert server.stats(model).requests == 1


async def test_opening_a_stream_is_retried_and_the_stream_then_runs(
    server: FakeOpenAIServer, provider: str
) -> None:
    model = model_name()
    server.configure(model, status=503, times=1)
    async with get_client(f"{provider}:{model}") as client:
        stream = client.stream("three word answer")
        text = "".join([delta async for delta in stream])
    assert text == "echo: three word answer"
    assert server.stats(model).requests == 2


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
async def test_a_bad_num_retries_is_named_before_any_request(
    server: FakeOpenAIServer, provider: str, bad: object
) -> None:
    model = model_name()
    with pytest.raises(InvalidParameterError, match="num_retries"):
        get_client(f"{provider}:{model}", num_retries=bad)
    async with get_client(f"{provider}:{model}") as client:
        with pytest.raises(InvalidParameterError, match=r"'num_retries' in a call to .*>= 0"):
            await client.generate("x", num_retries=bad)
    assert server.stats(model).requests == 0


# --- Retry-After --------------------------------------------------------------------------


async def test_retry_after_is_waited_before_the_retry_and_pauses_other_clients_meanwhile(
    server: FakeOpenAIServer, provider: str
) -> None:
    """The old gap: the openai SDK waited the header inside one call while every other
    client of the provider kept sending; now the cooldown starts with the 429 itself."""
    hot, cold = model_name(), model_name()
    server.configure(hot, status=429, headers={"Retry-After": "2"}, times=1)
    first, second = get_client(f"{provider}:{hot}"), get_client(f"{provider}:{cold}")
    await second.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(first.generate, "rate limited once")
        while not server.request_starts(hot):  # noqa: ASYNC110 (another process's state)
            await anyio.sleep(0.01)
        await anyio.sleep(0.3)  # the 429 has arrived; first is inside its own retry wait
        for i in range(4):
            tg.start_soon(second.generate, f"other {i}")
    refused_at = server.request_starts(hot)[0]
    after = server.request_starts(hot)[1:] + server.request_starts(cold)
    assert len(after) == 5
    assert min(after) >= refused_at + 2.0 - 0.05
    await first.aclose()
    await second.aclose()


async def test_a_retry_after_longer_than_the_time_left_is_raised_at_once_with_why(
    server: FakeOpenAIServer, provider: str
) -> None:
    model = model_name()
    server.configure(model, status=429, headers={"Retry-After": "30"})
    async with get_client(f"{provider}:{model}", timeout=5) as client:
        started = time.monotonic()
        with pytest.raises(RateLimitError) as caught:
            await client.generate("x")
    assert time.monotonic() - started < 2.0  # not 30 s, not the 5 s timeout either
    assert caught.value.retry_after == 30.0
    assert any("not retried" in note for note in caught.value.__notes__)
    assert server.stats(model).requests == 1


async def test_an_hour_long_retry_after_is_raised_at_once_and_the_pause_is_logged(
    server: FakeOpenAIServer, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A quota spent for the hour: no retry sleeps an hour (a fallback can take over), and
    the provider's pause, which the next calls wait out, is said, not silent."""
    model = model_name()
    server.configure(model, status=429, headers={"Retry-After": "3600"})
    async with get_client(f"{provider}:{model}") as client:  # no timeout at all
        started = time.monotonic()
        with (
            caplog.at_level("WARNING", logger="model_registry"),
            pytest.raises(RateLimitError) as caught,
        ):
            await client.generate("x")
    assert time.monotonic() - started < 2.0
    assert any("over the 60 s a retry waits" in note for note in caught.value.__notes__)
    assert server.stats(model).requests == 1
    assert f"{provider} asked to wait 3600 s (Retry-After)" in caplog.text


def test_the_wait_is_the_header_plus_a_spread_or_a_growing_backoff() -> None:
    class Limited(Exception):
        retry_after = 2.0

    header_waits = [retry_wait(Limited(), 1) for _ in range(200)]
    assert all(2.0 <= wait <= 2.5 for wait in header_waits)
    assert max(header_waits) - min(header_waits) > 0.1  # spread: no lockstep comeback
    backoffs = [[retry_wait(ValueError(), attempt) for _ in range(50)] for attempt in (1, 2, 5)]
    assert all(0.375 <= wait <= 0.5 for wait in backoffs[0])
    assert all(0.75 <= wait <= 1.0 for wait in backoffs[1])
    assert all(6.0 <= wait <= 8.0 for wait in backoffs[2])  # capped at 8 s


# --- limits -------------------------------------------------------------------------------


async def test_a_retry_takes_a_request_from_the_rpm_bucket(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    """rpm = 30: one request at once, then one each ~2.07 s. The retry after a 503 would
    go after a 0.4 s backoff; it waits for the bucket, since the server counts it."""
    declare(tmp_path, server, provider, f'[limits."{provider}"]\nrpm = 30\n')
    model = model_name()
    server.configure(model, status=503, times=1)
    async with get_client(f"{provider}:{model}") as client:
        await client.generate("x")
    assert gaps(server, model)[0] >= 60 / 29 - 0.1


async def test_aclose_during_a_retry_wait_stops_the_call(
    server: FakeOpenAIServer, provider: str
) -> None:
    model = model_name()
    server.configure(model, status=429, headers={"Retry-After": "20"})
    client = await get_client(f"{provider}:{model}")
    failure: list[BaseException] = []

    async def call() -> None:
        try:
            await client.generate("x")
        except ClientClosedError as exc:
            failure.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        while not server.request_starts(model):  # noqa: ASYNC110 (another process's state)
            await anyio.sleep(0.01)
        await anyio.sleep(0.2)
        with anyio.fail_after(1.0):
            await client.aclose()
    assert len(failure) == 1
    assert server.stats(model).requests == 1


# --- other routes -------------------------------------------------------------------------


@pytest.mark.usefixtures("provider_keys")
async def test_num_retries_retries_anthropic_too_and_honours_retry_after(
    respx_mock: respx.MockRouter,
) -> None:
    """Off the openai SDK's routes LiteLLM's retry needed tenacity, which LiteLLM does not
    install: `num_retries` did nothing there. Ours retries, after the header's wait."""
    seen: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        if len(seen) == 1:
            error: dict[str, Any] = {"type": "rate_limit_error", "message": "slow down"}
            return httpx.Response(
                429, json={"type": "error", "error": error}, headers={"retry-after": "1"}
            )
        return httpx.Response(200, json=ANTHROPIC_RESPONSE)

    respx_mock.post(ANTHROPIC_URL).mock(side_effect=answer)
    async with get_client(f"anthropic:claude-sonnet-4-5-{uuid.uuid4().hex[:6]}") as client:
        generation = await client.generate("Capital of France?", max_tokens=16)
    assert generation.text == "Paris."
    assert len(seen) == 2
    assert seen[1] - seen[0] >= 1.0 - 0.05


@pytest.mark.parametrize(("asked", "retried"), [(59.0, True), (60.0, True), (61.0, False)])
async def test_a_retry_waits_up_to_60_s_of_retry_after_never_more(
    asked: float, retried: bool
) -> None:
    """At the cap the spread may take the wait past 60 s: the header decides, not the
    spread. `pause` is the client's wait (here it records, it does not sleep)."""
    waits: list[float] = []
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RateLimitError("slow down", provider="p", model="m", retry_after=asked)
        return "answer"

    async def pause(seconds: float) -> None:
        waits.append(seconds)

    if retried:
        answer = await call_with_retries(attempt, retries=2, deadline=math.inf, pause=pause)
        assert (answer, calls) == ("answer", 2)
        assert asked <= waits[0] <= asked * 1.25
    else:
        with pytest.raises(RateLimitError) as caught:
            await call_with_retries(attempt, retries=2, deadline=math.inf, pause=pause)
        assert (calls, waits) == (1, [])
        assert "asked to wait 61 s, over the 60 s a retry waits" in caught.value.__notes__[0]


async def test_a_refused_loopback_connection_backs_off_briefly() -> None:
    """Nothing listens on the port: four retries back off 0.05 to 0.2 s each (about
    0.5 s in all), not 0.5, 1, 2, 4 s (5.6 s at least) as for a remote host."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    async with get_client("openai:m-refused", api_base=base, api_key="sk-x") as client:
        started = time.monotonic()
        with pytest.raises(APIConnectionError):
            await client.generate("x", num_retries=4)
    assert time.monotonic() - started < 4.0


def test_loopback_addresses_are_told_apart_from_remote_ones() -> None:
    local = [
        "http://127.0.0.1:8000/v1",
        "http://localhost:1/v1",
        "http://[::1]:80",
        "http://127.5.5.5",
    ]
    remote = ["https://api.openai.com/v1", "http://10.0.0.1:8000/v1", None, "", "not a url"]
    assert [is_loopback(url) for url in local] == [True] * len(local)
    assert [is_loopback(url) for url in remote] == [False] * len(remote)
