"""A local call's `timeout` starts at the call: the wait for its limits (here a slot of
`concurrency = 1` held by another call) counts against it.

The holder keeps the slot with an open stream it stops reading, not with a long
generation: the tiny model's context (512 tokens) can be generated in under a second on
a fast machine, so "endless" generations end early there (a CI run saw it)."""

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
TIMEOUT_S = 2.0  # the second call's: past it the call raises, whatever it was doing
HOLDER_S = TIMEOUT_S + 2.0  # the first call holds the only slot this long
#: The limit checked: the timeout, 20% and 0.3 s of slack; a call that waited for the
#: slot without counting it would raise only after HOLDER_S.
WITHIN_S = TIMEOUT_S * 1.2 + 0.3


async def _hold_the_slot(client: Any, holding: anyio.Event) -> None:
    async with client.stream("Go on.", **ENDLESS) as stream:
        async for _ in stream:
            holding.set()
            await anyio.sleep(HOLDER_S)  # the stream's permit is held while it is open
            break


@pytest.mark.parametrize("how", ["generate", "stream"])
async def test_a_timeout_counts_the_wait_for_a_slot(tiny_name: str, how: str) -> None:
    client = get_client(tiny_name, temperature=0.0, limits={"concurrency": 1}, **ENGINE_KWARGS)
    async with client, anyio.create_task_group() as tg:
        holding = anyio.Event()
        tg.start_soon(_hold_the_slot, client, holding)
        await holding.wait()  # the holder has the slot
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
