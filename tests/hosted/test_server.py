"""End to end against a real OpenAI-compatible server on 127.0.0.1 (its own process)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from model_registry import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    Generation,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServiceUnavailableError,
    Usage,
    get_client,
)
from model_registry.errors import ModelCallError
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY


def _kwargs(server: FakeOpenAIServer) -> dict[str, str]:
    return {"api_base": server.base_url, "api_key": SERVER_KEY}


async def test_one_liner_generates(server: FakeOpenAIServer) -> None:
    generation = await get_client("openai:one-liner", **_kwargs(server)).generate("hello there")

    assert generation.text == "echo: hello there"
    assert generation.finish_reason == "stop"
    assert generation.usage == Usage(prompt_tokens=2, completion_tokens=3, total_tokens=5)
    assert (generation.model, generation.provider) == ("one-liner", "openai")
    assert server.stats("one-liner").headers[-1]["authorization"] == f"Bearer {SERVER_KEY}"


async def test_held_client_uses_its_kwargs_and_per_call_kwargs_win(
    server: FakeOpenAIServer,
) -> None:
    client = await get_client("openai:held", temperature=0.2, max_tokens=10, **_kwargs(server))
    try:
        await client.generate("a")
        await client.generate([{"role": "user", "content": "b"}], temperature=0.9, top_p=None)
    finally:
        await client.aclose()

    first, second = server.stats("held").bodies
    assert first == {
        "model": "held",
        "messages": [{"role": "user", "content": "a"}],
        "temperature": 0.2,
        "max_tokens": 10,
    }
    assert (second["temperature"], second["max_tokens"]) == (0.9, 10)


async def test_provider_declared_in_an_alias_file_gets_its_key_and_base(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aliases = tmp_path / "aliases.toml"
    aliases.write_text(
        f'[providers.fakeco]\napi_base = "{server.base_url}"\napi_key_env = "FAKECO_KEY"\n'
        '[aliases."fake-fast"]\nprovider = "fakeco"\nmodel_id = "m-alias"\n'
        '[aliases."fake-fast".defaults]\ntemperature = 0.1\n'
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(aliases))
    monkeypatch.setenv("FAKECO_KEY", SERVER_KEY)

    async with get_client("fake-fast") as client:
        generation = await client.generate("hi")

    assert generation.text == "echo: hi"
    assert generation.provider == "fakeco"
    assert server.stats("m-alias").bodies[-1]["temperature"] == 0.1


async def test_keyless_compatible_server_never_gets_the_openai_key(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aliases = tmp_path / "aliases.toml"
    aliases.write_text(
        f'[providers.open]\napi_base = "{server.base_url}"\n'
        '[aliases."open-model"]\nprovider = "open"\nmodel_id = "m-open"\n'
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(aliases))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key")

    async with get_client("open-model") as client:
        with pytest.raises(AuthenticationError):  # this server wants a key; none was declared
            await client.generate("hi", num_retries=0)

    assert "sk-real-openai-key" not in server.stats("m-open").headers[-1]["authorization"]


async def test_stream_deltas_add_up_to_the_text_and_usage_is_on_the_result(
    server: FakeOpenAIServer,
) -> None:
    async with get_client("openai:streamer", **_kwargs(server)) as client:
        stream = client.stream("one two three four")
        deltas = [delta async for delta in stream]

    assert len(deltas) == 5
    assert stream.done
    assert "".join(deltas) == stream.result.text == "echo: one two three four"
    usage = stream.result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (4, 5, 9)
    assert stream.result.finish_reason == "stop"
    assert server.stats("streamer").bodies[-1]["stream_options"] == {"include_usage": True}


async def test_closing_a_stream_early_closes_the_request(server: FakeOpenAIServer) -> None:
    server.configure("long-stream", reply=" ".join(["word"] * 50), chunk_delay=0.05)
    async with get_client("openai:long-stream", **_kwargs(server)) as client:
        stream = client.stream("go")
        received = [await stream.__anext__(), await stream.__anext__()]
        await stream.aclose()
        await server.await_idle("long-stream", within=2)

    assert received == ["word", " word"]
    assert not stream.done
    with pytest.raises(RuntimeError, match=r"^the stream has no result yet: read it to its end"):
        stream.result  # noqa: B018
    assert server.stats("long-stream").disconnects == 1


async def test_stream_errors_are_typed(server: FakeOpenAIServer) -> None:
    server.configure("stream-503", status=503)
    async with get_client("openai:stream-503", num_retries=0, **_kwargs(server)) as client:
        with pytest.raises(ServiceUnavailableError) as info:
            async for _ in client.stream("x"):
                pass
    assert info.value.status_code == 503


async def test_generate_many_keeps_order_and_caps_in_flight_calls(server: FakeOpenAIServer) -> None:
    server.configure("many", delay=0.3)
    prompts = [f"prompt {i}" for i in range(200)]
    async with get_client("openai:many", **_kwargs(server)) as client:
        results = await client.generate_many(prompts, concurrency=32, max_tokens=5)

    assert [g.text for g in results] == [f"echo: prompt {i}" for i in range(200)]
    stats = server.stats("many")
    assert stats.requests == 200
    assert stats.max_in_flight == 32
    assert all(body["max_tokens"] == 5 for body in stats.bodies)


async def test_generate_many_return_exceptions_puts_errors_in_place(
    server: FakeOpenAIServer,
) -> None:
    prompts = ["a", "!status=429", "c", "!status=404"]
    async with get_client("openai:many-errors", num_retries=0, **_kwargs(server)) as client:
        results = await client.generate_many(prompts, return_exceptions=True)

    assert [type(r) for r in results] == [Generation, RateLimitError, Generation, NotFoundError]


async def test_generate_many_first_error_cancels_the_rest(server: FakeOpenAIServer) -> None:
    prompts = ["!status=400", *[f"!delay=5 slow {i}" for i in range(8)]]
    async with get_client("openai:many-cancel", num_retries=0, **_kwargs(server)) as client:
        started = time.monotonic()
        with pytest.raises(BadRequestError):
            await client.generate_many(prompts, concurrency=9)
        elapsed = time.monotonic() - started
        await server.await_idle("many-cancel", within=2)

    assert elapsed < 3
    stats = server.stats("many-cancel")
    assert (stats.requests, stats.disconnects) == (9, 8)


async def test_timeout_is_honoured(server: FakeOpenAIServer) -> None:
    server.configure("slow", delay=3)
    async with get_client("openai:slow", timeout=0.5, num_retries=0, **_kwargs(server)) as client:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as info:
            await client.generate("x")
        elapsed = time.monotonic() - started

    assert 0.5 <= elapsed < 0.5 * 1.2 + 0.15
    assert info.value.provider == "openai"
    assert info.value.model == "slow"
    assert server.stats("slow").requests == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServiceUnavailableError),
        (503, ServiceUnavailableError),
    ],
)
async def test_http_errors_map_to_typed_errors(
    server: FakeOpenAIServer, status: int, error: type[ModelCallError]
) -> None:
    model = f"status-{status}"
    server.configure(model, status=status, message=f"the provider says {status}")
    async with get_client(f"openai:{model}", num_retries=0, **_kwargs(server)) as client:
        with pytest.raises(error) as info:
            await client.generate("x")

    exc = info.value
    assert type(exc) is error
    assert (exc.provider, exc.model, exc.status_code) == ("openai", model, status)
    assert exc.message == f"the provider says {status}"
    assert str(exc) == f"openai model '{model}' (HTTP {status}): the provider says {status}"
    assert exc.cause_type is not None and exc.cause_type.startswith("litellm.")
    assert server.stats(model).requests == 1


async def test_wrong_key_is_an_authentication_error(server: FakeOpenAIServer) -> None:
    client = get_client("openai:wrong-key", api_base=server.base_url, api_key="sk-wrong")
    with pytest.raises(AuthenticationError) as info:
        await client.generate("x")
    await client.aclose()
    assert info.value.status_code == 401
    assert "Incorrect API key" in info.value.message


async def test_dropped_connection_is_a_connection_error_without_status(
    server: FakeOpenAIServer,
) -> None:
    server.configure("dropper", drop=True)
    async with get_client("openai:dropper", num_retries=0, **_kwargs(server)) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.generate("x")
    assert info.value.status_code is None


@pytest.mark.parametrize(("num_retries", "calls"), [(0, 1), (2, 3)])
async def test_num_retries_reaches_litellm(
    server: FakeOpenAIServer, num_retries: int, calls: int
) -> None:
    model = f"flaky-{num_retries}"
    server.configure(model, status=500, times=2)
    async with get_client(f"openai:{model}", **_kwargs(server)) as client:
        if num_retries:
            generation = await client.generate("x", num_retries=num_retries)
            assert generation.text == "echo: x"
        else:
            with pytest.raises(ServiceUnavailableError):
                await client.generate("x", num_retries=num_retries)

    assert server.stats(model).requests == calls
