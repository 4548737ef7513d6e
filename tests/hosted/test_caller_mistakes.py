"""Errors say what happened: the server's own status or none, and caller mistakes named
before anything goes on the wire."""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from model_registry import (
    APIConnectionError,
    Generation,
    InvalidParameterError,
    NotFoundError,
    RequestTimeoutError,
    ServiceUnavailableError,
    get_client,
)
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY


def _kwargs(server: FakeOpenAIServer) -> dict[str, str]:
    return {"api_base": server.base_url, "api_key": SERVER_KEY}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


async def test_nothing_listening_is_a_connection_error_without_a_status() -> None:
    base = f"http://127.0.0.1:{_closed_port()}/v1"
    async with get_client("openai:nobody", api_base=base, api_key="sk-x") as client:
        with pytest.raises(APIConnectionError) as from_generate:
            await client.generate("x", num_retries=0)
        with pytest.raises(APIConnectionError) as from_stream:
            async for _ in client.stream("x", num_retries=0):
                pass
    for error in (from_generate.value, from_stream.value):
        assert not isinstance(error, ServiceUnavailableError)
        assert error.status_code is None
        assert "(HTTP" not in str(error)


async def test_a_real_408_keeps_its_status(server: FakeOpenAIServer) -> None:
    server.configure("slow-408", status=408, message="request took too long")
    async with get_client("openai:slow-408", num_retries=0, **_kwargs(server)) as client:
        with pytest.raises(RequestTimeoutError) as info:
            await client.generate("x")
    assert info.value.status_code == 408
    assert info.value.message == "request took too long"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"seed": datetime.date(1979, 5, 27)}, "seed is of type date"),
        ({"extra_body": {"when": {datetime.time(1, 2)}}}, "extra_body['when'] is of type set"),
        ({"extra_body": {"at": [1, datetime.time(1, 2)]}}, "extra_body['at'][1] is of type time"),
        ({"extra_body": {(1, 2): 3}}, "extra_body has a key of type tuple"),
        ({"model": "other-model"}, "'model'"),
        ({"messages": []}, "'messages'"),
        ({"n": 3}, "n=3: each call returns one answer"),
        ({"timeout": 0}, "'timeout'"),
    ],
)
async def test_caller_mistakes_are_named_before_any_request(
    server: FakeOpenAIServer, kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidParameterError) as at_get_client:
        get_client("openai:mistake", **kwargs, **_kwargs(server))
    assert named in str(at_get_client.value)
    async with get_client("openai:mistake", **_kwargs(server)) as client:
        with pytest.raises(InvalidParameterError) as at_generate:
            await client.generate("x", **kwargs)
        with pytest.raises(InvalidParameterError) as at_stream:
            async for _ in client.stream("x", **kwargs):
                pass
    assert named in str(at_generate.value)
    assert named in str(at_stream.value)
    assert server.stats("mistake").requests == 0


async def test_n_other_than_one_is_refused_with_what_to_do_instead(
    server: FakeOpenAIServer,
) -> None:
    async with get_client("openai:samples", **_kwargs(server)) as client:
        with pytest.raises(InvalidParameterError) as info:
            await client.generate("x", n=3)
        assert (await client.generate("x", n=1)).text == "echo: x"
    assert info.value.args[0] == (
        "n=3: each call returns one answer; for several samples repeat the prompt in generate_many"
    )
    assert server.stats("samples").requests == 1


async def test_generate_many_refuses_a_single_string(server: FakeOpenAIServer) -> None:
    async with get_client("openai:one-string", **_kwargs(server)) as client:
        with pytest.raises(InvalidParameterError, match=r"list of prompts.*\[prompt\]"):
            await client.generate_many("hello")
    assert server.stats("one-string").requests == 0


@pytest.mark.parametrize("concurrency", [0, -1, 2.5, "4", True])
async def test_generate_many_refuses_a_concurrency_that_is_no_whole_positive_number(
    server: FakeOpenAIServer, concurrency: Any
) -> None:
    async with get_client("openai:bad-concurrency", **_kwargs(server)) as client:
        with pytest.raises(InvalidParameterError, match="concurrency must be a whole number"):
            await client.generate_many(["a", "b"], concurrency=concurrency)
    assert server.stats("bad-concurrency").requests == 0


async def test_generate_many_errors_name_their_prompt(server: FakeOpenAIServer) -> None:
    prompts = ["a", "b", "!status=404", "d"]
    async with get_client("openai:indexed", num_retries=0, **_kwargs(server)) as client:
        results = await client.generate_many(prompts, return_exceptions=True)
        with pytest.raises(NotFoundError) as info:
            await client.generate_many(prompts)

    assert [type(r) for r in results] == [Generation, Generation, NotFoundError, Generation]
    for error in (results[2], info.value):
        assert error.index == 2
        assert "(prompt 2 of the 4 given to generate_many)" in error.__notes__


def test_an_empty_litellm_log_variable_counts_as_unset(server: FakeOpenAIServer) -> None:
    code = textwrap.dedent(
        f"""
        import asyncio
        from model_registry import get_client

        async def main():
            client = get_client("openai:quiet-log", api_base={server.base_url!r},
                                api_key={SERVER_KEY!r})
            print((await client.generate("hi")).text)
            await client.aclose()

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LITELLM_LOG": ""},
    )
    assert (result.returncode, result.stdout.strip()) == (0, "echo: hi"), result.stderr
