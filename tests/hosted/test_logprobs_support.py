"""Log-probabilities a provider does not return: refused before the call where LiteLLM
knows it, else the paid answer is kept with `logprobs=None` (a warning once per name)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
import respx

from model_registry import InvalidParameterError, get_client
from model_registry.testing import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY
from tests.hosted.test_wire import OPENAI_RESPONSE, OPENAI_URL

pytestmark = pytest.mark.usefixtures("provider_keys")


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        (
            "anthropic:claude-sonnet-4-5",
            {"logprobs": True},
            "logprobs=True in a call to 'anthropic:claude-sonnet-4-5': LiteLLM says provider "
            "'anthropic' does not return log-probabilities for 'claude-sonnet-4-5'; call it "
            "without logprobs (nothing was sent)",
        ),
        (
            "gemini:gemini-2.5-flash",
            {"logprobs": True, "top_logprobs": 2},
            "top_logprobs=2 in a call to 'gemini:gemini-2.5-flash': LiteLLM says provider "
            "'gemini' does not return log-probabilities for 'gemini-2.5-flash'; call it "
            "without top_logprobs (nothing was sent)",
        ),
    ],
)
async def test_logprobs_of_a_provider_that_has_none_are_refused_before_the_call(
    respx_mock: respx.MockRouter, name: str, kwargs: dict[str, object], message: str
) -> None:
    async with get_client(name) as client:
        with pytest.raises(InvalidParameterError) as caught:
            await client.generate("x", **kwargs)
        with pytest.raises(InvalidParameterError):
            async for _ in client.stream("x", **kwargs):
                pass
    assert str(caught.value) == message
    assert not respx_mock.calls  # no route: a request would have been an error too


async def test_a_provider_that_has_them_is_asked_as_before(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(OPENAI_URL).mock(return_value=httpx.Response(200, json=OPENAI_RESPONSE))
    async with get_client("openai:gpt-4.1") as client:
        await client.generate("x", logprobs=True)
    assert json.loads(route.calls.last.request.content)["logprobs"] is True


async def test_an_answer_without_logprobs_is_kept_and_stored_with_one_warning(
    server: FakeOpenAIServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "run.sqlite"
    prompts = ["a", "b", "c"]
    caplog.set_level(logging.WARNING, logger="model_registry")
    async with get_client("openai:nolp", api_base=server.url, api_key=SERVER_KEY) as client:
        first = await client.generate_many(prompts, logprobs=True, results_db=db)
        again = await client.generate_many(prompts, logprobs=True, results_db=db)
        chunks = [d async for d in client.stream("d", logprobs=True)]
    assert [g.text for g in first] == ["echo: a", "echo: b", "echo: c"]
    assert [g.logprobs for g in first] == [None, None, None]
    assert [g.from_store for g in again] == [True, True, True]  # paid once, kept
    assert "".join(chunks) == "echo: d"
    assert server.stats("nolp").requests == 4
    warnings = [r.getMessage() for r in caplog.records if "logprobs" in r.getMessage()]
    assert warnings == [
        "openai:nolp: logprobs were asked, but openai model 'nolp' returned none; its answers "
        "are kept with logprobs=None (call it without logprobs to silence this)"
    ]
