"""Import cost, quiet LiteLLM, closing, and LiteLLM's process-wide connection pool."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest

from model_registry import (
    ClientClosedError,
    InvalidParameterError,
    ServiceUnavailableError,
    get_client,
)
from model_registry.clients.litellm import LiteLLMClient
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
