"""Declared limits on the wire (issue 20): the loopback server records when each request
arrives, so the tests read what the provider would see. Each test declares its own
provider (a fresh limiter key) and its own model names (the server's counters)."""

from __future__ import annotations

import bisect
import logging
import time
import uuid
from pathlib import Path

import anyio
import pytest

from model_registry import (
    InvalidParameterError,
    RateLimitError,
    ServiceUnavailableError,
    UnknownModelError,
    get_client,
)
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY

QUIET = "num_retries = 0\nmax_retries = 0"


@pytest.fixture
def loopback(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """(provider, tag): a provider of its own at the loopback server; tag makes model names."""
    tag = uuid.uuid4().hex[:8]
    monkeypatch.setenv("LOOPBACK_KEY", SERVER_KEY)
    return f"loop{tag}", tag


def declare(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: FakeOpenAIServer,
    provider: str,
    body: str,
) -> None:
    path = tmp_path / "aliases.toml"
    path.write_text(
        f'[providers."{provider}"]\nlitellm_prefix = "openai"\n'
        f'api_base = "{server.base_url}"\napi_key_env = "LOOPBACK_KEY"\n\n{body}',
        encoding="utf-8",
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(path))


def alias(name: str, provider: str, model: str) -> str:
    return (
        f'[aliases."{name}"]\nprovider = "{provider}"\nmodel_id = "{model}"\n'
        f'[aliases."{name}".defaults]\n{QUIET}\n\n'
    )


#: Seconds a permitted request may take to reach the server on a loaded 2-core machine:
#: the limiter's own bound is exact where it admits calls (tests/test_limits.py); on the
#: wire, requests admitted a little apart may arrive together.
SEND_JITTER = 0.25


async def warm_up(client: object, server: FakeOpenAIServer, model: str) -> int:
    """One call first, so the timed ones do not pay LiteLLM's first-call start-up; the
    number of requests the server saw for `model` so far."""
    await client.generate("warm up")  # type: ignore[attr-defined]
    return len(server.request_starts(model))


def most_in_one_second(times: list[float], weights: list[float] | None = None) -> float:
    weights = weights or [1.0] * len(times)
    pairs = sorted(zip(times, weights, strict=True))
    return max(sum(w for t, w in pairs if start <= t < start + 1.0) for start, _ in pairs)


async def test_rpm_spreads_requests_so_every_one_second_window_stays_in_bounds(
    server: FakeOpenAIServer,
    loopback: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider, tag = loopback
    model = f"rpm-{tag}"
    declare(
        tmp_path,
        monkeypatch,
        server,
        provider,
        alias("steady", provider, model) + f'[limits."{provider}"]\nrpm = 1200\n',
    )
    async with get_client("steady") as client:
        before = await warm_up(client, server, model)
        await anyio.sleep(1.0)  # the bucket refills: the run starts with a full burst
        results = await client.generate_many([f"q{i}" for i in range(150)], concurrency=64)
    assert len(results) == 150
    starts = server.request_starts(model)[before:]
    assert len(starts) == 150
    assert most_in_one_second(starts) <= 1.5 * 1200 / 60 + 1 + SEND_JITTER * 1200 / 60
    # the long-run rate: 150 requests at 20 a second, less one half-second burst
    assert max(starts) - min(starts) >= (150 - 10) / 20 - 0.5


def most_in_any_window(times: list[float], seconds: float) -> int:
    """The most arrivals in any closed window [t, t + seconds]."""
    ts = sorted(times)
    return max(bisect.bisect_right(ts, t + seconds) - i for i, t in enumerate(ts))


async def test_a_batch_at_concurrency_256_never_goes_over_rpm_in_any_window(
    server: FakeOpenAIServer,
    loopback: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 20's "done when", scaled down: 180 prompts at concurrency 256 under rpm = 1200
    (20 a second, a burst of 10). What a server counting a sliding window sees stays within
    the limit (W seconds: rpm*W/60 plus the burst, plus twice the usual send jitter, as 256
    tasks start at once; the limiter's own minute bound is tests/test_limits.py's); every
    prompt is answered at its first request. (At 50 a second LiteLLM's own work per request
    saturates a loaded 2-core machine: sends then bunch up whatever the limiter admits.)"""
    provider, tag = loopback
    model = f"batch-{tag}"
    rpm, burst = 1200, 1200 / 60 / 2
    declare(
        tmp_path,
        monkeypatch,
        server,
        provider,
        alias("bulk", provider, model) + f'[limits."{provider}"]\nrpm = {rpm}\n',
    )
    async with get_client("bulk") as client:
        before = await warm_up(client, server, model)
        results = await client.generate_many([f"q{i}" for i in range(180)], concurrency=256)
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(180)]
    starts = server.request_starts(model)[before:]
    assert len(starts) == 180  # no retries: nothing was refused
    assert server.stats(model).requests == 180 + before
    for seconds in (1, 5, 10):
        allowed = burst + rpm * (seconds + 2 * SEND_JITTER) / 60
        most = most_in_any_window(starts, seconds)
        assert most <= allowed, f"{most} requests in {seconds} s, at most {allowed} allowed"
    # the long-run rate: 180 requests at 20 a second, less one burst
    assert max(starts) - min(starts) >= (180 - burst) / (rpm / 60) - 0.5


async def test_concurrency_holds_across_every_client_of_one_provider(
    server: FakeOpenAIServer,
    loopback: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider, tag = loopback
    names = ["one", "two", "three"]
    body = "".join(alias(n, provider, f"{n}-{tag}") for n in names)
    declare(
        tmp_path, monkeypatch, server, provider, body + f'[limits."{provider}"]\nconcurrency = 8\n'
    )
    for n in names:
        server.configure(f"{n}-{tag}", delay=0.05)
    clients = [get_client(n) for n in names]
    async with anyio.create_task_group() as tg:
        for client in clients:
            tg.start_soon(lambda c=client: c.generate_many([f"q{i}" for i in range(40)]))
    for client in clients:
        await client.aclose()
    assert server.stats().requests == 120
    assert server.stats().max_in_flight <= 8


async def test_a_429_with_retry_after_pauses_every_client_of_the_provider(
    server: FakeOpenAIServer,
    loopback: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider, tag = loopback
    hot, cold = f"hot-{tag}", f"cold-{tag}"
    declare(
        tmp_path,
        monkeypatch,
        server,
        provider,
        alias("hot", provider, hot) + alias("cold", provider, cold),
    )
    server.configure(hot, status=429, headers={"Retry-After": "2"}, times=1)
    first, second = get_client("hot"), get_client("cold")
    with pytest.raises(RateLimitError) as caught:
        await first.generate("too fast")
    assert caught.value.retry_after == 2.0
    refused_at = server.request_starts(hot)[0]
    async with anyio.create_task_group() as tg:
        tg.start_soon(first.generate, "again")
        for i in range(5):
            tg.start_soon(second.generate, f"other {i}")
    after = server.request_starts(hot)[1:] + server.request_starts(cold)
    assert len(after) == 6
    assert min(after) >= refused_at + 2.0 - 0.05
    await first.aclose()
    await second.aclose()


async def test_tpm_holds_tokens_per_minute_with_known_usage(
    server: FakeOpenAIServer,
    loopback: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider, tag = loopback
    model = f"tpm-{tag}"
    declare(
        tmp_path,
        monkeypatch,
        server,
        provider,
        alias("wordy", provider, model) + '[limits."wordy"]\ntpm = 12000\n',
    )
    # every answer: 1 prompt word + 99 reply words = 100 tokens (the server's usage)
    server.configure(model, reply=" ".join(["w"] * 99))
    async with get_client("wordy", max_tokens=100) as client:
        before = await warm_up(client, server, model)
        results = await client.generate_many(["x"] * 12)
    assert {r.usage.total_tokens for r in results} == {100}
    starts = server.request_starts(model)[before:]
    per_second = 12000 / 60
    # a one-second window holds at most 1.5x the per-second rate plus one request's estimate
    assert most_in_one_second(starts) * 100 <= 1.5 * per_second + 105
    assert max(starts) - min(starts) >= (12 * 100 - 1.5 * per_second) / per_second - 0.5


async def test_limits_given_in_code_apply_to_the_clients_of_that_name(
    server: FakeOpenAIServer,
) -> None:
    model = f"code-{uuid.uuid4().hex[:8]}"
    server.configure(model, delay=0.1)
    kwargs = dict(api_base=server.base_url, api_key=SERVER_KEY, num_retries=0)
    async with get_client(f"openai:{model}", limits={"concurrency": 2}, **kwargs) as client:
        results = await client.generate_many([f"q{i}" for i in range(8)])
    assert len(results) == 8
    assert server.stats(model).max_in_flight <= 2


async def test_limits_that_never_bind_change_no_answer(
    server: FakeOpenAIServer,
    loopback: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider, tag = loopback
    model = f"free-{tag}"
    declare(
        tmp_path,
        monkeypatch,
        server,
        provider,
        alias("free", provider, model)
        + f'[limits."{provider}"]\nrpm = 10000000\ntpm = 1000000000\nconcurrency = 10000\n',
    )
    began = time.monotonic()
    async with get_client("free") as client:
        results = await client.generate_many([f"q{i}" for i in range(100)])
        streamed = [piece async for piece in client.stream("hello there")]
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(100)]
    assert "".join(streamed) == "echo: hello there"
    assert time.monotonic() - began < 30


async def test_retry_after_ms_is_read_in_seconds_and_other_errors_carry_none(
    server: FakeOpenAIServer,
) -> None:
    model = f"ms-{uuid.uuid4().hex[:8]}"
    kwargs = dict(api_base=server.base_url, api_key=SERVER_KEY, num_retries=0, max_retries=0)
    server.configure(model, status=503, headers={"retry-after-ms": "250"}, times=1)
    server.configure(f"{model}-500", status=500, headers={"Retry-After": "3"})
    async with get_client(f"openai:{model}", **kwargs) as client:
        with pytest.raises(ServiceUnavailableError) as unavailable:
            await client.generate("hi")
        with pytest.raises(ServiceUnavailableError) as failed:
            await get_client(f"openai:{model}-500", **kwargs).generate("hi")
    assert unavailable.value.retry_after == 0.25
    assert failed.value.retry_after is None  # only a 429 or a 503 asks to wait


async def test_our_arguments_never_reach_the_server(server: FakeOpenAIServer) -> None:
    model = f"ours-{uuid.uuid4().hex[:8]}"
    async with get_client(
        f"openai:{model}",
        limits={"rpm": 100000},
        fallbacks=[],
        strict=False,
        api_base=server.base_url,
        api_key=SERVER_KEY,
    ) as client:
        await client.generate("hi")
    assert not {"limits", "fallbacks", "strict", "results_db"} & set(server.stats(model).bodies[-1])


def test_bad_limits_in_code_name_get_client_and_the_key() -> None:
    with pytest.raises(InvalidParameterError) as info:
        get_client("openai:gpt-4.1", api_key="x", limits={"rmp": 5})
    assert str(info.value) == (
        "get_client('openai:gpt-4.1', limits=): unknown key 'rmp' (did you mean 'rpm'?); the "
        "keys are rpm, tpm, concurrency"
    )


def test_typo_guard_warnings_are_logged_once_per_name(caplog: pytest.LogCaptureFixture) -> None:
    name = f"openai:gpt-4.1-typo{uuid.uuid4().hex[:6]}"
    with caplog.at_level(logging.WARNING, logger="model_registry"):
        get_client(name, api_key="x")
        get_client(name, api_key="x")
    warnings = [r for r in caplog.records if r.name == "model_registry"]
    assert len(warnings) == 1
    assert "is not in LiteLLM's model list" in warnings[0].getMessage()
    with pytest.raises(UnknownModelError):
        get_client(name, api_key="x", strict=True)
