"""Engine lifecycle on an engine of its own: start off the loop, sharing, refcount, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
from typing import Any

import pytest

from model_registry import get_client
from model_registry.clients._vllm_params import DEFAULT_STRUCTURED_OUTPUTS
from model_registry.clients.vllm import cached_engines, engine_starts
from model_registry.errors import ClientClosedError
from model_registry.types import Generation
from tests.local.conftest import ENGINE_KWARGS

pytestmark = pytest.mark.local

#: Differs from the shared engine's args, so these clients get an engine of their own.
OWN_ENGINE = {**ENGINE_KWARGS, "max_num_seqs": 8}


def _engine_processes() -> set[int]:
    """Child processes of this one, zombies included, except multiprocessing's resource
    tracker (it stays until the interpreter exits; it is not an engine)."""
    import psutil

    children = psutil.Process(os.getpid()).children(recursive=True)
    out = set()
    for child in children:
        try:
            if "resource_tracker" in " ".join(child.cmdline()):
                continue
        except psutil.ZombieProcess:
            pass  # exited but never waited for: still ours to reap
        except psutil.Error:
            continue
        out.add(child.pid)
    return out


def _direct_children() -> set[int]:
    import psutil

    return {child.pid for child in psutil.Process(os.getpid()).children()}


def _zombies() -> set[int]:
    """Children of this process that exited and were never reaped."""
    import psutil

    out = set()
    for child in psutil.Process(os.getpid()).children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                out.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return out


async def _gone(pids: set[int], within: float) -> set[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        left = pids & _engine_processes()
        if not left:
            return left
        await asyncio.sleep(0.25)
    return pids & _engine_processes()


async def test_engine_starts_off_the_loop_is_shared_and_stops_with_its_last_client(
    tiny: Any, tiny_name: str
) -> None:
    # `tiny` first: vLLM is imported, so this measures the engine start itself.
    before_pids = _engine_processes()
    before_starts = engine_starts()
    lags: list[float] = []
    stop = asyncio.Event()

    async def tick() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - t - 0.01)

    ticker = asyncio.create_task(tick())
    clients = [get_client(tiny_name, **OWN_ENGINE) for _ in range(16)]
    await asyncio.gather(*(c.start() for c in clients))  # 16 concurrent starts: one engine
    stop.set()
    await ticker
    a, b, others = clients[0], clients[1], clients[2:]

    assert engine_starts() == before_starts + 1
    assert all(c.engine is a.engine for c in clients) and a.engine is not None
    assert a.engine is not tiny.engine
    ours = [e for e in cached_engines() if e.engine_id == id(a.engine)]
    assert len(ours) == 1 and ours[0].refs == 16
    # our structured-output defaults are engine args too (part of the cache key)
    assert ours[0].engine_args == {
        **OWN_ENGINE,
        "structured_outputs_config": dict(DEFAULT_STRUCTURED_OUTPUTS),
    }

    # The loop kept running while the engine started (13-100 s here): most ticks on time,
    # none held up by the start (a rare longer one is the shared 2-core machine's scheduler).
    assert len(lags) > 100
    assert statistics.quantiles(lags, n=100)[98] < 0.1, sorted(lags)[-5:]
    assert max(lags) < 0.5, sorted(lags)[-5:]

    engine_pids = _engine_processes() - before_pids
    assert engine_pids, "the engine runs its core in processes of its own"

    g = await b.generate("hello", max_tokens=3, ignore_eos=True)
    assert g.usage.completion_tokens == 3

    # closing every other client while b generates does not stop the engine under it
    running = asyncio.create_task(b.generate("keep going", max_tokens=64, ignore_eos=True))
    await asyncio.sleep(0.2)
    for client in [a, *others]:
        await client.aclose()
    assert (await running).usage.completion_tokens == 64
    assert b.engine is not None and [
        e.refs for e in cached_engines() if e.engine_id == id(b.engine)
    ] == [1]
    assert (await b.generate("still here", max_tokens=2, ignore_eos=True)).text

    # An engine core slower to exit than vLLM's 5 s grace (a loaded machine makes it so;
    # stopped here to be sure) is killed by vLLM and must still be reaped by us.
    core = _direct_children() & engine_pids
    assert len(core) == 1
    os.kill(core.pop(), signal.SIGSTOP)
    await b.aclose()
    assert all(e.engine_id != ours[0].engine_id for e in cached_engines())
    # the engine's processes have exited and been reaped: none is left a zombie
    assert _zombies() & engine_pids == set()
    assert await _gone(engine_pids, within=20) == set()
    assert tiny.engine is not None  # the shared engine is untouched
    assert (await tiny.generate("and you?", max_tokens=2, ignore_eos=True)).text


async def test_calls_in_flight_when_their_client_closes_finish_or_raise_client_closed_error(
    tiny: Any, tiny_name: str
) -> None:
    before_pids = _engine_processes()
    client = await get_client(tiny_name, **OWN_ENGINE)  # the last (only) client of its engine
    engine = client.engine
    engine_pids = _engine_processes() - before_pids
    long = {"max_tokens": 100_000, "ignore_eos": True}  # runs to the context limit

    async def streamed() -> Generation | None:
        async with client.stream("Go on.", **long) as stream:
            async for _ in stream:
                pass
        return stream.result

    calls = [asyncio.create_task(client.generate(f"Go on, {i}.", **long)) for i in range(3)]
    calls.append(asyncio.create_task(streamed()))
    deadline = time.monotonic() + 30
    while engine.get_num_unfinished_requests() < len(calls):
        assert time.monotonic() < deadline, "the calls never reached the engine"
        await asyncio.sleep(0.01)

    await asyncio.wait_for(client.aclose(), timeout=60)
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=5)
    assert all(isinstance(r, Generation | ClientClosedError) for r in results), results
    closed = [r for r in results if isinstance(r, ClientClosedError)]
    assert closed, "each call ran to the context limit before aclose() returned"
    assert str(closed[0]).startswith(
        f"the client for {tiny_name!r} was closed (aclose()) while this call was in flight"
    )
    assert _zombies() & engine_pids == set()
    assert await _gone(engine_pids, within=20) == set()
