"""A local call's `timeout` starts at the call: the wait for its limits (here a slot of
`concurrency = 1` held by another call) and the generation share it."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from model_registry import get_client
from model_registry.errors import RequestTimeoutError
from tests.local.conftest import ENGINE_KWARGS

pytestmark = pytest.mark.local

ENDLESS = {"max_tokens": 100_000, "ignore_eos": True}
HOLDER_S = 1.5  # the first call holds the only slot this long
TIMEOUT_S = 2.0  # the second call's: past it the call raises, whatever it was doing
#: The limit checked: the timeout, 20% and 0.3 s of slack; counted from after the
#: generation (HOLDER_S + TIMEOUT_S = 3.5 s) it would be far past.
WITHIN_S = TIMEOUT_S * 1.2 + 0.3


async def _hold_the_slot(client: Any) -> None:
    with pytest.raises(RequestTimeoutError):
        await client.generate("Go on.", timeout=HOLDER_S, **ENDLESS)


@pytest.mark.parametrize("how", ["generate", "stream"])
async def test_a_timeout_counts_the_wait_for_a_slot(tiny_name: str, how: str) -> None:
    client = get_client(tiny_name, temperature=0.0, limits={"concurrency": 1}, **ENGINE_KWARGS)
    async with client, anyio.create_task_group() as tg:
        tg.start_soon(_hold_the_slot, client)
        await anyio.sleep(0.1)  # the holder takes the slot first
        started = time.perf_counter()
        with pytest.raises(RequestTimeoutError):
            if how == "generate":
                await client.generate("Go on.", timeout=TIMEOUT_S, **ENDLESS)
            else:
                async with client.stream("Go on.", timeout=TIMEOUT_S, **ENDLESS) as stream:
                    async for _ in stream:
                        pass
        elapsed = time.perf_counter() - started
    assert elapsed <= WITHIN_S, f"raised after {elapsed:.2f} s, timeout={TIMEOUT_S} s"
