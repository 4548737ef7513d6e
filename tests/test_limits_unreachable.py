"""Rates no process reaches are declared but not counted: a call under them does no bucket
work (the benchmark's "never-binding limits"), while any rate below them binds as before."""

from __future__ import annotations

import time
import uuid

import pytest

from model_registry import resolve
from model_registry.clients._policy.call_limits import CallLimits
from model_registry.limits import (
    UNREACHABLE_RPM,
    UNREACHABLE_TPM,
    Limiter,
    Limits,
    acquire,
    alias_key,
    limiter_for,
)

NEVER_BINDING = Limits(rpm=1e9, tpm=1e12, concurrency=100_000)


def _limiter(limits: Limits) -> Limiter:
    return limiter_for(alias_key(f"unreachable-{uuid.uuid4().hex}"), limits)


async def test_unreachable_rates_keep_no_bucket_and_the_rest_stays() -> None:
    limiter = _limiter(NEVER_BINDING)
    assert limiter.limits == NEVER_BINDING  # shown as declared
    assert limiter.counted == Limits(concurrency=100_000)
    state = limiter._state()
    assert (state.requests, state.sends, state.tokens, state.token_sends) == (None,) * 4
    assert state.slots is not None


async def test_rates_just_below_the_unreachable_ones_are_counted() -> None:
    limits = Limits(rpm=UNREACHABLE_RPM * 0.999, tpm=UNREACHABLE_TPM * 0.999)
    limiter = _limiter(limits)
    assert limiter.counted == limits
    state = limiter._state()
    assert None not in (state.requests, state.sends, state.tokens, state.token_sends)


async def test_a_low_rate_beside_an_unreachable_one_still_binds() -> None:
    limiter = _limiter(Limits(rpm=120, tpm=1e12))  # 2 a second: one at once, then the rate
    starts: list[float] = []
    for _ in range(3):
        async with acquire([limiter], 10):
            starts.append(time.monotonic())
    assert starts[-1] - starts[0] >= 0.8


@pytest.mark.parametrize(
    ("limits", "binding"),
    [
        (Limits(rpm=1e9, tpm=1e12), False),
        (NEVER_BINDING, True),
        (Limits(rpm=600), True),
    ],
)
def test_a_client_under_unreachable_rates_takes_no_permit_and_paces_no_send(
    limits: Limits, binding: bool
) -> None:
    resolution = resolve("openai:gpt-4o")
    call_limits = CallLimits(resolution.provider, resolution.model_id)
    call_limits.configure(resolution, None, None, limits)
    assert call_limits.binding is binding  # False: the call takes the common path
    assert bool(call_limits.paced) is (limits.rpm == 600)
