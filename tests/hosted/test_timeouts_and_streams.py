"""`timeout` bounds a whole hosted call, and a stream that is no event stream fails as
`generate` does (a real server on 127.0.0.1 with injected faults)."""

from __future__ import annotations

import time

import pytest

from model_registry import (
    APIError,
    BadRequestError,
    Generation,
    RateLimitError,
    RequestTimeoutError,
    get_client,
)
from model_registry.errors import ModelCallError
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY

TIMEOUT_S = 2.0


def _kwargs(server: FakeOpenAIServer) -> dict[str, str]:
    return {"api_base": server.base_url, "api_key": SERVER_KEY}


def _within_timeout(elapsed: float, timeout: float = TIMEOUT_S) -> bool:
    return timeout * 0.98 <= elapsed <= timeout * 1.2


async def test_timeout_bounds_a_generate_whose_answer_trickles_in(
    server: FakeOpenAIServer,
) -> None:
    server.configure("trickle", trickle=1.0)  # 8 pieces, 1 s apart: no single read waits 2 s
    async with get_client("openai:trickle", num_retries=0, **_kwargs(server)) as client:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as info:
            await client.generate("x", timeout=TIMEOUT_S)
        elapsed = time.monotonic() - started

    assert _within_timeout(elapsed), elapsed
    assert info.value.status_code is None
    assert "timeout=2.0" in info.value.message


async def test_timeout_bounds_a_whole_stream_until_its_result(server: FakeOpenAIServer) -> None:
    server.configure("trickle-stream", reply="one two three four five six", chunk_delay=1.0)
    async with get_client("openai:trickle-stream", timeout=TIMEOUT_S, **_kwargs(server)) as client:
        stream = client.stream("x", num_retries=0)
        received: list[str] = []
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            async for delta in stream:
                received.append(delta)
        elapsed = time.monotonic() - started

    assert _within_timeout(elapsed), elapsed
    assert 1 <= len(received) < 6  # it did stream, and was cut off
    assert not stream.done


async def test_timeout_covers_every_retry(server: FakeOpenAIServer) -> None:
    server.configure("retry-slow", status=500, delay=0.8)  # 6 tries would take 4.8 s
    async with get_client("openai:retry-slow", **_kwargs(server)) as client:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            await client.generate("x", num_retries=5, timeout=TIMEOUT_S)
        elapsed = time.monotonic() - started

    assert _within_timeout(elapsed), elapsed
    assert 2 <= server.stats("retry-slow").requests <= 3


async def test_timeout_bounds_each_prompt_of_generate_many(server: FakeOpenAIServer) -> None:
    prompts = ["fast", "!delay=10 slow", "also fast"]
    async with get_client("openai:many-timeout", num_retries=0, **_kwargs(server)) as client:
        started = time.monotonic()
        results = await client.generate_many(prompts, timeout=TIMEOUT_S, return_exceptions=True)
        elapsed = time.monotonic() - started

    assert [type(r) for r in results] == [Generation, RequestTimeoutError, Generation]
    assert results[1].index == 1
    assert _within_timeout(elapsed), elapsed


NOT_EVENT_STREAMS = {
    "html-page": ("<html><body>Please log in</body></html>", "text/html", APIError),
    "error-object": (
        '{"error": {"message": "quota exceeded", "type": "insufficient_quota"}}',
        "application/json",
        BadRequestError,  # an error object without an HTTP code: the request was refused
    ),
    "error-object-429": (
        '{"error": {"message": "slow down", "code": 429}}',
        "application/json",
        RateLimitError,
    ),
    "empty-body": ("", "application/json", APIError),
    "broken-json": ('{"choices": [', "application/json", APIError),
}


@pytest.mark.parametrize("case", sorted(NOT_EVENT_STREAMS))
async def test_a_200_answer_that_is_no_event_stream_fails_the_stream_as_it_fails_generate(
    server: FakeOpenAIServer, case: str
) -> None:
    body, content_type, expected = NOT_EVENT_STREAMS[case]
    server.configure(case, body=body, content_type=content_type)
    async with get_client(f"openai:{case}", num_retries=0, **_kwargs(server)) as client:
        with pytest.raises(ModelCallError) as from_generate:
            await client.generate("x")
        stream = client.stream("x")
        with pytest.raises(ModelCallError) as from_stream:
            async for _ in stream:
                pass

    assert type(from_generate.value) is expected
    assert type(from_stream.value) is expected
    # no response said an error status: the server answered 200
    assert from_generate.value.status_code is None
    assert from_stream.value.status_code is None
    assert not stream.done
    if "error-object" in case:
        assert from_stream.value.message == from_generate.value.message
    else:
        assert "without a chat completion" in from_generate.value.message
        assert "without a chat completion" in from_stream.value.message
