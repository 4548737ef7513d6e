"""Embedding-only LiteLLM providers (Voyage, Jina AI) by name: `embed` reaches their real
endpoints (respx at the real URLs), and `generate` on them fails loudly."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from model_registry import BadRequestError, Embeddings, get_client

VOYAGE_URL = "https://api.voyageai.com/v1/embeddings"
JINA_URL = "https://api.jina.ai/v1/embeddings"
VOYAGE_KEY = "pa-voyage-test-key"
JINA_KEY = "jina-test-key"


@pytest.fixture(autouse=True)
def _embedding_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOYAGE_API_KEY", VOYAGE_KEY)
    monkeypatch.setenv("JINA_AI_API_KEY", JINA_KEY)


def _answer(model: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -0.5]},
            {"object": "embedding", "index": 1, "embedding": [0.25, 0.75]},
        ],
        "model": model,
        "usage": {"total_tokens": 7},
    }


@pytest.mark.parametrize("name", ["voyage:voyage-3", "voyage/voyage-3"])
async def test_a_voyage_name_embeds_at_voyage_s_endpoint(
    respx_mock: respx.MockRouter, name: str
) -> None:
    answer = httpx.Response(200, json=_answer("voyage-3"))
    route = respx_mock.post(VOYAGE_URL).mock(return_value=answer)
    async with get_client(name) as client:
        embeddings = await client.embed(["first text", "second"], dimensions=2)

    assert route.call_count == 1
    assert route.calls.last.request.headers["authorization"] == f"Bearer {VOYAGE_KEY}"
    assert json.loads(route.calls.last.request.content) == {
        "input": ["first text", "second"],
        "model": "voyage-3",
        "output_dimension": 2,  # LiteLLM's name for `dimensions` at Voyage
    }
    assert isinstance(embeddings, Embeddings)
    assert embeddings.vectors == [[0.5, -0.5], [0.25, 0.75]]
    assert embeddings.usage.prompt_tokens == 7
    assert embeddings.cost == pytest.approx(7 * 6e-08)  # LiteLLM's price of voyage-3
    assert (embeddings.model, embeddings.provider) == ("voyage-3", "voyage")


async def test_a_jina_ai_name_embeds_at_jina_s_endpoint(respx_mock: respx.MockRouter) -> None:
    answer = httpx.Response(200, json=_answer("jina-embeddings-v3"))
    route = respx_mock.post(JINA_URL).mock(return_value=answer)
    async with get_client("jina_ai/jina-embeddings-v3") as client:
        embeddings = await client.embed(["first text", "second"])

    assert route.call_count == 1
    assert route.calls.last.request.headers["authorization"] == f"Bearer {JINA_KEY}"
    body = json.loads(route.calls.last.request.content)
    assert (body["model"], body["input"]) == ("jina-embeddings-v3", ["first text", "second"])
    assert embeddings.vectors == [[0.5, -0.5], [0.25, 0.75]]
    assert embeddings.provider == "jina_ai"


async def test_generate_on_a_voyage_name_fails_loudly_without_a_request(
    respx_mock: respx.MockRouter,
) -> None:
    async with get_client("voyage:voyage-3") as client:
        with pytest.raises(BadRequestError) as caught:
            await client.generate("hello", max_retries=0)
    # LiteLLM's own refusal, mapped to ours: Voyage has no chat endpoint
    assert str(caught.value).startswith("voyage model 'voyage-3' (HTTP 400): Unmapped LLM")
    assert VOYAGE_KEY not in str(caught.value)
    assert not respx_mock.calls  # refused before any request
