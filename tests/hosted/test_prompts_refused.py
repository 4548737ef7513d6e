"""A prompt LiteLLM cannot send is refused before any request: no attempt, no retry."""

from __future__ import annotations

from typing import Any

import pytest
import respx

from model_registry import InvalidParameterError, get_client
from model_registry.testing import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY

BAD_PROMPTS = [
    [{"role": "user", "content": 5}],
    [{"role": "user", "content": 1e999}],
    [{"role": "user", "content": [{"type": "text", "text": "x", "weight": float("nan")}]}],
]


@pytest.mark.parametrize("prompt", BAD_PROMPTS, ids=["int", "inf", "nan-in-a-part"])
async def test_a_bad_prompt_sends_nothing_to_the_server(
    server: FakeOpenAIServer, prompt: Any
) -> None:
    async with get_client(
        "openai:m", api_base=server.url, api_key=SERVER_KEY, num_retries=3
    ) as client:
        with pytest.raises(InvalidParameterError, match=r"^prompt message 0 'content'"):
            await client.generate(prompt)
        with pytest.raises(InvalidParameterError, match=r"^prompt message 0 'content'"):
            async for _ in client.stream(prompt):
                pass
        results = await client.generate_many(["ok", prompt], return_exceptions=True)
    assert results[0].text == "echo: ok"
    assert isinstance(results[1], InvalidParameterError)
    assert server.stats("m").requests == 1


@pytest.mark.usefixtures("provider_keys")
async def test_a_bad_prompt_makes_no_request_to_the_provider(
    respx_mock: respx.MockRouter,
) -> None:
    async with get_client("openai:gpt-4.1", num_retries=3) as client:
        with pytest.raises(InvalidParameterError, match="got int"):
            await client.generate([{"role": "user", "content": 5}])
    assert not respx_mock.calls  # no route: any request would have been an error too
