"""Declared limits: rates spread out, tokens corrected, slots, cooldowns, parsing.

Real time, short runs; bounds carry generous margins and a slow machine only lowers counts.
The minute-long properties run on a virtual clock (exact: the buckets read the loop's time).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import importlib.util
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest

from model_registry.clients._policy.retries import retry_after_seconds
from model_registry.errors import InvalidParameterError
from model_registry.limits import (
    DEFAULT_COMPLETION_TOKENS,
    Limits,
    acquire,
    alias_key,
    estimate_tokens,
    limiter_for,
    provider_key,
    validate_limits,
)


def _fresh_key(api_key: str = "sk-test-secret") -> object:
    return provider_key("openai", f"http://127.0.0.1:9/{uuid.uuid4().hex}/v1", api_key)


def _most_in_any_window(times: list[float], weights: list[float] | None = None) -> float:
    weights = weights or [1.0] * len(times)
    pairs = sorted(zip(times, weights, strict=True))
    return max(sum(w for t, w in pairs if start <= t < start + 1.0) for start, _ in pairs)


async def _hammer(limiters: list, workers: int, seconds: float, tokens: float = 0) -> list[float]:
    """Workers acquire as fast as they may until `seconds` pass; waiters are then cancelled."""
    starts: list[float] = []

    async def worker() -> None:
        while True:
            async with acquire(limiters, tokens) as permit:
                starts.append(time.monotonic())
                permit.report_usage(int(tokens))

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await asyncio.gather(*(worker() for _ in range(workers)))
    return starts


async def test_rpm_starts_are_spread_out_and_within_the_long_run_rate() -> None:
    limiter = limiter_for(_fresh_key(), Limits(rpm=600))
    began = time.monotonic()
    starts = await _hammer([limiter], workers=50, seconds=5.0)
    elapsed = max(starts) - began
    per_second, burst = 600 / 60, 600 / 60 / 2
    assert _most_in_any_window(starts) <= 1.5 * per_second + 1
    assert len(starts) <= per_second * elapsed + burst + 1
    assert len(starts) >= 20  # it did run, at roughly the rate


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to its next timer instead of waiting for it, so
    minutes of limiter time (the buckets read `loop.time()`) pass in a moment."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        real_select = self._selector.select  # type: ignore[attr-defined]

        def select(timeout: float | None = None) -> list[Any]:
            events = real_select(0)
            if timeout is not None:
                # every turn takes a microsecond, as on a real clock: a bucket may set a
                # timer a rounding error ahead, which a clock standing still never reaches
                self._now += max(0.0 if events else timeout, 1e-6)
            return events  # type: ignore[no-any-return]

        self._selector.select = select  # type: ignore[attr-defined]

    def time(self) -> float:
        return self._now


def on_virtual_clock(main: Callable[[], Coroutine[Any, Any, list[float]]]) -> list[float]:
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(main())


def most_in_any_window(times: list[float], seconds: float, weights: list[float] | None = None):
    """The most starts (or their weights) in any closed window [t, t + seconds]."""
    order = sorted(range(len(times)), key=times.__getitem__)
    ts = [times[i] for i in order]
    ws = [1.0 if weights is None else weights[i] for i in order]
    sums = [0.0]
    for w in ws:
        sums.append(sums[-1] + w)
    return max(sums[bisect.bisect_right(ts, t + seconds)] - sums[i] for i, t in enumerate(ts))


async def _demand(limiter: object, seconds: float, pattern: str, tokens: float = 0) -> list[float]:
    """Start times of calls that ask as fast as they may ("steady"), or in waves with idle
    gaps that let the bucket refill ("waves"), for `seconds` of loop time."""
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    pause = random.Random(20).uniform

    async def worker() -> None:
        while True:
            async with acquire([limiter], tokens) as permit:  # type: ignore[list-item]
                starts.append(loop.time())
                permit.report_usage(int(tokens))
            if pattern == "waves":
                await asyncio.sleep(pause(0, 3) if len(starts) % 97 else pause(5, 40))

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await asyncio.gather(*(worker() for _ in range(50)))
    return starts


@pytest.mark.parametrize("pattern", ["steady", "waves"])
@pytest.mark.parametrize("rpm", [1, 3, 60, 90, 600, 3000])
def test_any_minute_holds_at_most_rpm_requests_and_any_second_one_and_a_half_seconds_worth(
    rpm: int, pattern: str
) -> None:
    """What a server counting a sliding minute sees: never more than `rpm` in 60 s; the
    burst (0.4 s worth) still keeps every 1 s window within 1.5x rpm/60; and the rate is
    not given away (a busy minute holds close to `rpm`: 1% and a one-request burst below
    it at most, the margin for requests that reach the server late)."""
    minutes = 6 if rpm >= 600 else 20
    limiter = limiter_for(_fresh_key(), Limits(rpm=rpm))
    starts = on_virtual_clock(lambda: _demand(limiter, 60 * minutes, pattern))
    assert most_in_any_window(starts, 60) <= rpm
    for seconds in (1, 5, 10):
        assert (
            most_in_any_window(starts, seconds) <= max(1.5 * rpm / 60, 1) + rpm * (seconds - 1) / 60
        )
    if pattern == "steady":
        assert len(starts) >= (rpm if rpm >= 60 else rpm / 2) * minutes * 0.97


def test_any_minute_holds_at_most_tpm_tokens() -> None:
    limiter = limiter_for(_fresh_key(), Limits(tpm=6000))  # bucket: 50 tokens
    starts = on_virtual_clock(lambda: _demand(limiter, 600, "steady", tokens=40))
    tokens = [40.0] * len(starts)
    assert most_in_any_window(starts, 60, tokens) <= 6000
    assert most_in_any_window(starts, 1, tokens) <= 1.5 * 100 + 40
    assert sum(tokens) >= 6000 * 10 * 0.98 - 40


async def test_tpm_keeps_tokens_within_the_rate_when_usage_is_known() -> None:
    limiter = limiter_for(_fresh_key(), Limits(tpm=3000))  # 50 tokens/s, bucket 25
    began = time.monotonic()
    starts = await _hammer([limiter], workers=20, seconds=3.0, tokens=30)
    elapsed = max(starts) - began
    tokens = [30.0] * len(starts)
    assert _most_in_any_window(starts, tokens) <= 1.5 * 50 + 30
    assert sum(tokens) <= 50 * elapsed + 25 + 30


async def test_tokens_used_beyond_the_estimate_are_a_debt_the_next_call_waits_for() -> None:
    limiter = limiter_for(_fresh_key(), Limits(tpm=600))  # 10 tokens/s, bucket 5
    async with acquire([limiter], 1) as permit:
        permit.report_usage(21)  # 20 over the estimate
    began = time.monotonic()
    async with acquire([limiter], 1):
        waited = time.monotonic() - began
    assert waited >= 1.0  # at least (20 + 1 - 5) / 10 s, less rounding


async def test_tokens_not_used_are_given_back_to_the_next_call() -> None:
    limiter = limiter_for(_fresh_key(), Limits(tpm=1200))  # 20 tokens/s, bucket 10
    async with acquire([limiter], 40) as permit:  # four bucket-sized parts: about 1.5 s
        permit.report_usage(0)
    began = time.monotonic()
    async with acquire([limiter], 40):
        waited = time.monotonic() - began
    assert waited < 1.0  # covered by the credit; without it about 2 s


async def test_a_charge_larger_than_the_bucket_is_taken_in_parts_without_deadlock() -> None:
    limiter = limiter_for(_fresh_key(), Limits(tpm=6000))  # bucket 50 tokens
    async with asyncio.timeout(15):
        async with acquire([limiter], 200):
            pass


async def test_concurrency_is_shared_by_every_client_of_one_key() -> None:
    key = _fresh_key()
    clients = [limiter_for(key, Limits(concurrency=8)) for _ in range(3)]
    assert clients[0] is clients[1] is clients[2]
    in_flight, most = 0, 0

    async def call(limiter: object) -> None:
        nonlocal in_flight, most
        async with acquire([limiter], 0):  # type: ignore[list-item]
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1

    await asyncio.gather(*(call(clients[i % 3]) for i in range(90)))
    assert most == 8


async def test_an_alias_limit_applies_on_top_of_its_providers() -> None:
    provider = limiter_for(_fresh_key(), Limits(concurrency=8))
    alias = limiter_for(alias_key(f"alias-{uuid.uuid4().hex}"), Limits(concurrency=2))
    in_flight, most = 0, 0

    async def call() -> None:
        nonlocal in_flight, most
        async with acquire([provider, alias], 0):
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1

    await asyncio.gather(*(call() for _ in range(20)))
    assert most == 2


async def test_cool_down_pauses_every_holder_then_resumes_spread_out() -> None:
    key = _fresh_key()
    holders = [limiter_for(key, Limits(rpm=600)) for _ in range(3)]
    entered: list[float] = []

    async def worker(i: int) -> None:
        while True:
            async with acquire([holders[i % 3]], 0):
                entered.append(time.monotonic())

    task = asyncio.gather(*(worker(i) for i in range(30)))
    await asyncio.sleep(0.3)
    holders[1].cool_down(1.0)
    paused_at = time.monotonic()
    await asyncio.sleep(2.2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    during = [t for t in entered if paused_at < t < paused_at + 0.99]
    after = [t for t in entered if t >= paused_at + 0.99]
    assert during == []
    assert after, "acquires resume after the cooldown"
    assert _most_in_any_window(after) <= 1.5 * 10 + 1  # no lockstep burst at the end


async def test_without_a_rate_the_callers_a_cooldown_paused_come_back_spread_out() -> None:
    """No `rpm` to smooth them: each waiter adds up to a quarter of its wait, at random,
    so 40 paused workers do not all send in the same instant."""
    limiter = limiter_for(_fresh_key(), Limits())
    limiter.cool_down(0.4)
    paused_at = time.monotonic()
    resumed: list[float] = []

    async def waiter() -> None:
        await limiter.wait_cooldown()
        resumed.append(time.monotonic() - paused_at)

    await asyncio.gather(*(waiter() for _ in range(40)))
    assert min(resumed) >= 0.4 - 0.01
    assert max(resumed) <= 0.4 * 1.25 + 0.1
    assert max(resumed) - min(resumed) > 0.03


async def test_a_new_limiter_sends_one_request_at_once_so_a_first_call_stall_adds_no_burst() -> (
    None
):
    """A backend's first call holds the event loop (LiteLLM's lazy set-up: ~0.4 s); what a
    bucket admits meanwhile leaves with the first requests. Starting with a full burst
    available put 16 requests into one second at rpm=600 on the wire (a strict server
    allows 15); a new bucket lets one go at once, then goes at the rate."""
    limiter = limiter_for(_fresh_key(), Limits(rpm=600))
    sent: list[float] = []
    warmed = False

    async def call() -> None:
        nonlocal warmed
        async with acquire([limiter], 0):
            await asyncio.sleep(0)  # the call's own awaits before it sends
            if not warmed:
                warmed = True
                time.sleep(0.4)  # noqa: ASYNC251 (the first call's set-up, holding the loop)
            sent.append(time.monotonic())

    await asyncio.gather(*(call() for _ in range(30)))
    assert most_in_any_window(sent, 1.0) <= 1.5 * 600 / 60


async def test_a_cancelled_wait_gives_its_slot_back() -> None:
    limiter = limiter_for(_fresh_key(), Limits(concurrency=1))
    async with acquire([limiter], 0):
        waiter = asyncio.create_task(acquire([limiter], 0).__aenter__())
        await asyncio.sleep(0.05)
        waiter.cancel()
    async with asyncio.timeout(5):
        async with acquire([limiter], 0):
            pass


def test_keys_hash_the_api_key_and_never_show_it() -> None:
    a = provider_key("openai", "https://user:pw@example.com/v1", "sk-live-abcdef")
    b = provider_key("openai", "https://user:pw@example.com/v1", "sk-live-other")
    assert a != b
    assert a == provider_key("openai", "https://user:pw@example.com/v1", "sk-live-abcdef")
    shown = repr(a) + repr(limiter_for(a, Limits(rpm=60)))
    for secret in ("sk-live-abcdef", "pw@"):
        assert secret not in shown


NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        ("2", 2.0),
        (" 1.5 ", 1.5),
        (0, 0.0),
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "Wed, 01 Jan 2025 12:00:05 GMT"}, 5.0),
        ("Wed, 01 Jan 2025 11:59:00 GMT", 0.0),  # a date in the past: go now
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After-Ms": "junk", "retry-after": "4"}, 4.0),
        ("-1", None),
        ("soon", None),
        ("inf", None),
        ("", None),
        (None, None),
        ({}, None),
        ({"content-type": "text/plain"}, None),
        ("86401", 86400.0),  # over 24 hours counts as 24 hours
        ("Fri, 01 Jan 2100 00:00:00 GMT", 86400.0),
        ({"retry-after-ms": "1e12"}, 86400.0),
    ],
)
def test_retry_after_seconds(given: object, seconds: float | None) -> None:
    assert retry_after_seconds(given, now=NOW) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"rmp": 600},
            "limits.'openai': unknown key 'rmp' (did you mean 'rpm'?); the keys are rpm, tpm, concurrency",
        ),
        (
            {"rpm": 0},
            "limits.'openai': 'rpm' must be a positive finite number "
            "(requests started per minute, e.g. rpm = 600), got 0",
        ),
        (
            {"tpm": float("inf")},
            "limits.'openai': 'tpm' must be a positive finite number "
            "(tokens per minute (prompt + completion), e.g. tpm = 200000), got inf",
        ),
        (
            {"rpm": "600"},
            "limits.'openai': 'rpm' must be a number "
            "(requests started per minute, e.g. rpm = 600), got str '600'",
        ),
        (
            {"concurrency": 2.5},
            "limits.'openai': 'concurrency' must be a whole number >= 1 "
            "(calls in flight, e.g. concurrency = 8), got 2.5",
        ),
        (
            {"concurrency": True},
            "limits.'openai': 'concurrency' must be a whole number >= 1 "
            "(calls in flight, e.g. concurrency = 8), got True",
        ),
        (
            {"rpm": -1, "burst": 3},
            "limits.'openai': 'rpm' must be a positive finite number "
            "(requests started per minute, e.g. rpm = 600), got -1; "
            "limits.'openai': unknown key 'burst'; the keys are rpm, tpm, concurrency",
        ),
    ],
)
def test_validation_messages_name_the_key_and_the_fix(table: dict, message: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        validate_limits(table, "limits.'openai'")
    assert str(caught.value) == message


def test_valid_limits_become_a_frozen_struct() -> None:
    assert validate_limits({"rpm": 600, "concurrency": 8}, "x") == Limits(rpm=600.0, concurrency=8)


@pytest.mark.parametrize(
    ("prompt", "max_tokens", "tokens"),
    [
        ("abcdefgh", 100, 2 + 4 + 100),
        ("abc", None, 1 + 4 + DEFAULT_COMPLETION_TOKENS),
        (
            [{"role": "user", "content": "abcd"}, {"role": "assistant", "content": "ab"}],
            10,
            2 + 8 + 10,
        ),
        ([{"role": "user", "content": [{"type": "text", "text": "abcdefgh"}]}], 0, 2 + 4),
    ],
)
def test_estimate_is_prompt_tokens_plus_max_tokens_or_the_default(
    prompt: object, max_tokens: int | None, tokens: int
) -> None:
    assert estimate_tokens(prompt, max_tokens) == tokens  # type: ignore[arg-type]


@pytest.mark.local  # a local client needs vLLM installed to be made (not started)
@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None
    and os.environ.get("MODEL_REGISTRY_REQUIRE_VLLM") != "1",
    reason="vLLM is not installed",
)
def test_a_local_alias_takes_its_declared_limits_and_hosted_fallbacks_without_a_backend(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from model_registry import get_client
    from model_registry.api import limits_in_force

    path = Path(str(tmp_path)) / "aliases.toml"
    path.write_text(
        '[aliases."tiny"]\nprovider = "local"\nmodel_id = "some-org/tiny-model"\n'
        'fallbacks = ["openai:gpt-4.1-mini"]\n\n[limits."tiny"]\nconcurrency = 2\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(path))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    client = get_client("tiny")
    assert (client.kind, client.fallbacks) == ("local", ("openai:gpt-4.1-mini",))  # type: ignore[attr-defined]
    assert limits_in_force(client.resolution) == {"tiny": {"concurrency": 2}}
    # the local client calls under the alias's limiter (a local model has no provider one)
    primary = client._clients[0]  # type: ignore[attr-defined]
    assert [limiter.key for limiter in primary._limits.limiters] == [alias_key("tiny")]


def test_importing_the_package_and_resolving_load_no_event_loop_machinery() -> None:
    """The limiter imports asyncio on first use: `import model_registry` and a warm
    `resolve` load neither asyncio (nor its ssl) nor a rate-limiting library."""
    code = (
        "import sys, model_registry\n"
        "model_registry.resolve('gpt-4.1'); model_registry.resolve('gpt-4.1')\n"
        "print(sorted({'asyncio', 'ssl', 'aiolimiter'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_after_a_cooldown_the_bucket_restarts_nearly_full_so_waiters_do_not_burst() -> None:
    """rpm=6000: a bucket of 40 requests, 99/s. A pause lets the bucket drain; the 60
    waiting workers used to take all 40 the moment the pause ended. Now the first to come
    back restarts the bucket with room for one, then the rate: about 11 in the first 0.1 s
    (the bound leaves room for a loaded machine's lag)."""
    limiter = limiter_for(_fresh_key(), Limits(rpm=6000))
    entered: list[float] = []

    async def worker() -> None:
        while True:
            async with acquire([limiter], 0):
                entered.append(time.monotonic())

    task = asyncio.gather(*(worker() for _ in range(60)))
    await asyncio.sleep(0.5)
    limiter.cool_down(1.5)
    paused_at = time.monotonic()
    await asyncio.sleep(2.5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    after = [t for t in entered if t >= paused_at + 1.49]
    assert len(after) >= 20, "acquires resume after the cooldown"
    first_tenth = [t for t in after if t <= after[0] + 0.1]
    assert len(first_tenth) <= 25
