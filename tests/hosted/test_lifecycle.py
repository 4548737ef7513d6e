"""Import cost, quiet LiteLLM, closing, and LiteLLM's process-wide connection pool."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from model_registry import (
    ClientClosedError,
    Generation,
    InvalidParameterError,
    ServiceUnavailableError,
    get_client,
)
from model_registry.clients.litellm import LiteLLMClient, close_litellm_pool
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_importing_the_package_and_the_adapter_does_not_import_litellm() -> None:
    code = (
        "import sys, model_registry, model_registry.clients.litellm\n"
        "from model_registry import get_client\n"
        "get_client('openai:gpt-4.1', api_key='sk-x')\n"
        "print('litellm' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


async def test_calls_print_nothing_by_default(
    server: FakeOpenAIServer, capfd: pytest.CaptureFixture[str]
) -> None:
    server.configure("quiet-500", status=500)
    async with get_client("openai:quiet", api_base=server.base_url, api_key=SERVER_KEY) as client:
        await client.generate("x")
        async for _ in client.stream("x"):
            pass
    failing = get_client("openai:quiet-500", api_base=server.base_url, api_key=SERVER_KEY)
    with pytest.raises(ServiceUnavailableError):
        await failing.generate("x", num_retries=0)
    await failing.aclose()
    assert capfd.readouterr() == ("", "")


async def test_closed_client_raises_and_close_is_idempotent(server: FakeOpenAIServer) -> None:
    client = await get_client("openai:closing", api_base=server.base_url, api_key=SERVER_KEY)
    await client.aclose()
    await client.aclose()
    assert client.closed
    with pytest.raises(ClientClosedError, match="get a new one with get_client"):
        await client.generate("x")
    with pytest.raises(ClientClosedError):
        client.stream("x")


async def test_stream_is_not_a_generate_kwarg(server: FakeOpenAIServer) -> None:
    async with get_client("openai:m", api_base=server.base_url, api_key=SERVER_KEY) as client:
        with pytest.raises(InvalidParameterError, match=r"client\.stream\(prompt\)"):
            await client.generate("x", stream=True)


async def test_last_close_returns_file_descriptors_and_later_clients_work(
    server: FakeOpenAIServer,
) -> None:
    warm = get_client("openai:fd-warm", api_base=server.base_url, api_key=SERVER_KEY)
    await warm.generate("warm up imports")
    await warm.aclose()
    gc.collect()
    assert not LiteLLMClient._open_clients
    before = _open_fds()

    server.configure("fd", delay=0.2)
    clients = [
        await get_client("openai:fd", api_base=server.base_url, api_key=SERVER_KEY)
        for _ in range(3)
    ]
    for client in clients:
        await client.generate_many([f"p{i}" for i in range(40)], concurrency=40)
    during = _open_fds()
    for client in clients[:-1]:
        await client.aclose()
    assert _open_fds() > before  # one client is still open: the pool stays
    await clients[-1].aclose()
    after = _open_fds()

    assert during >= before + 40
    assert after == before
    async with get_client("openai:fd-after", api_base=server.base_url, api_key=SERVER_KEY) as c:
        assert (await c.generate("still works")).text == "echo: still works"


async def _pool_closed_fds() -> int:
    """Open file descriptors once no hosted client is open and LiteLLM's pool is empty."""
    await close_litellm_pool()
    gc.collect()
    return _open_fds()


async def _settled_fds(baseline: int, within: float = 5.0) -> int:
    """File descriptors once closed sockets are gone (the loop closes them a tick later)."""
    deadline = time.monotonic() + within
    while (count := _open_fds()) > baseline and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    return count


def _outcomes(results: list[Any]) -> set[type]:
    return {type(r) for r in results}


async def test_aclose_cancels_calls_in_flight_which_raise_client_closed(
    server: FakeOpenAIServer, litellm: ModuleType
) -> None:
    warm = get_client("openai:warm-up", api_base=server.base_url, api_key=SERVER_KEY)
    await warm.generate("x")
    await warm.aclose()
    baseline = await _pool_closed_fds()

    client = get_client("openai:in-flight", api_base=server.base_url, api_key=SERVER_KEY)
    await client.generate("warm")
    calls = [asyncio.create_task(client.generate(f"!delay=30 {i}")) for i in range(8)]
    stream = client.stream("one two three four five six", num_retries=0)
    server.configure("in-flight", chunk_delay=1)  # the stream is still going at aclose()
    assert await stream.__anext__() == "echo:"
    while server.stats("in-flight").in_flight < 9:  # noqa: ASYNC110 (another process)
        await asyncio.sleep(0.02)
    started = time.monotonic()
    await client.aclose()

    assert time.monotonic() - started < 2
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert _outcomes(results) == {ClientClosedError}
    with pytest.raises(ClientClosedError):
        await stream.__anext__()
    await asyncio.sleep(0.3)  # nothing starts again once closed
    assert litellm.in_memory_llm_clients_cache.cache_dict == {}
    assert await _settled_fds(baseline) == baseline
    await server.await_idle("in-flight")


async def test_aclose_of_a_client_still_starting_leaves_no_pool(
    server: FakeOpenAIServer, litellm: ModuleType
) -> None:
    baseline = await _pool_closed_fds()
    client = get_client("openai:cold", api_base=server.base_url, api_key=SERVER_KEY)
    calls = [asyncio.create_task(client.generate(f"cold {i}")) for i in range(8)]
    await asyncio.sleep(0)  # each call is on its way: starting the client
    await client.aclose()

    results = await asyncio.gather(*calls, return_exceptions=True)
    assert _outcomes(results) <= {ClientClosedError, Generation}
    await asyncio.sleep(0.3)
    assert not LiteLLMClient._open_clients
    assert litellm.in_memory_llm_clients_cache.cache_dict == {}
    assert await _settled_fds(baseline) == baseline


def test_one_liners_in_fresh_event_loops_leave_nothing_behind(server: FakeOpenAIServer) -> None:
    code = textwrap.dedent(
        f"""
        import asyncio, gc, os
        from model_registry import get_client

        async def one_liner(i):
            client = get_client("openai:loops", api_base={server.base_url!r},
                                api_key={SERVER_KEY!r})
            return await client.generate(f"run {{i}}")

        def pending_tasks():
            return sum(
                1 for o in gc.get_objects() if isinstance(o, asyncio.Task) and not o.done()
            )

        for i in range(21):
            assert asyncio.run(one_liner(i)).text == f"echo: run {{i}}"
            gc.collect()
            tasks = pending_tasks() if i in (2, 20) else -1  # a scan of every object is slow
            print(len(os.listdir("/proc/self/fd")), tasks, flush=True)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    counts = [tuple(map(int, line.split())) for line in result.stdout.split("\n") if line]
    assert len(counts) == 21
    fds = [fd for fd, _ in counts]
    assert max(fds[2:]) == fds[2], fds  # flat once warmed up: nothing left per event loop
    assert counts[20][1] == counts[2][1], counts  # no task of a closed loop left pending


async def test_mutable_defaults_are_never_changed_by_calls(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aliases = tmp_path / "aliases.toml"
    aliases.write_text(
        '[aliases."team-model"]\nprovider = "openai"\nmodel_id = "team"\n'
        '[aliases."team-model".defaults]\nmetadata = { team = "a" }\n'
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(aliases))
    tags = {"run": "nightly", "labels": ["x"]}
    from_alias = get_client("team-model", api_base=server.base_url, api_key=SERVER_KEY)
    from_kwarg = get_client(
        "openai:team", metadata=tags, api_base=server.base_url, api_key=SERVER_KEY
    )
    for client in (from_alias, from_kwarg):
        async with client:
            for _ in range(3):
                await client.generate("x")
            await client.generate("x", metadata={"call": "1"})
            async for _ in client.stream("x"):
                pass
            await client.generate_many(["a", "b", "c"])

    assert dict(from_alias.params["metadata"]) == {"team": "a"}
    assert get_client("team-model", api_key="sk-x").params["metadata"] == {"team": "a"}
    assert from_kwarg.params["metadata"] == {"run": "nightly", "labels": ["x"]}
    assert tags == {"run": "nightly", "labels": ["x"]}
