"""What `embed` sends to each provider's real embeddings endpoint, and how the answer becomes
`Embeddings` (respx at the real URLs)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from model_registry import APIError, Embeddings, Usage, get_client

pytestmark = pytest.mark.usefixtures("provider_keys")

OPENAI_URL = "https://api.openai.com/v1/embeddings"
GEMINI_URL = (
    "https://generativelanguage.googleapis.com/v1beta/models/"
    "gemini-embedding-001:batchEmbedContents"
)


def _body(route: respx.Route) -> dict[str, Any]:
    return json.loads(route.calls.last.request.content)


async def test_openai_gets_the_texts_and_dimensions_and_vectors_come_back_in_input_order(
    respx_mock: respx.MockRouter,
) -> None:
    answer = {
        "object": "list",
        "data": [  # the API may list items out of order: `index` places each
            {"object": "embedding", "index": 1, "embedding": [0.0, 1.0, 0.5]},
            {"object": "embedding", "index": 0, "embedding": [1.0, 0.0, -0.5]},
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }
    route = respx_mock.post(OPENAI_URL).mock(return_value=httpx.Response(200, json=answer))
    async with get_client("openai:text-embedding-3-small") as client:
        embeddings = await client.embed(["first text", "second"], dimensions=3)

    assert route.call_count == 1
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-openai-test-key"
    assert _body(route) == {
        "model": "text-embedding-3-small",
        "input": ["first text", "second"],
        "dimensions": 3,
    }
    assert isinstance(embeddings, Embeddings)
    assert embeddings.vectors == [[1.0, 0.0, -0.5], [0.0, 1.0, 0.5]]
    assert embeddings.usage.prompt_tokens == 6 and embeddings.usage.total_tokens == 6
    assert embeddings.cost == pytest.approx(6 * 2e-08)  # LiteLLM's price of the model
    assert (embeddings.model, embeddings.provider, embeddings.name) == (
        "text-embedding-3-small",
        "openai",
        "openai:text-embedding-3-small",
    )


async def test_a_single_string_is_one_text(respx_mock: respx.MockRouter) -> None:
    answer = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.25, 0.75]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    route = respx_mock.post(OPENAI_URL).mock(return_value=httpx.Response(200, json=answer))
    embeddings = await get_client("openai:text-embedding-3-small").embed("one text")
    assert _body(route)["input"] == ["one text"]
    assert embeddings.vectors == [[0.25, 0.75]]


async def test_a_bare_openai_embedding_id_goes_to_openai(respx_mock: respx.MockRouter) -> None:
    answer = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.5]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    route = respx_mock.post(OPENAI_URL).mock(return_value=httpx.Response(200, json=answer))
    async with get_client("text-embedding-3-small", strict=True) as client:
        embeddings = await client.embed(["one text"])
    assert _body(route) == {"model": "text-embedding-3-small", "input": ["one text"]}
    assert (embeddings.provider, embeddings.name) == ("openai", "text-embedding-3-small")
    assert embeddings.vectors == [[0.5, 0.5]]


async def test_gemini_gets_its_batch_request_and_its_answer_parses(
    respx_mock: respx.MockRouter,
) -> None:
    answer = {"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]}
    route = respx_mock.post(GEMINI_URL).mock(return_value=httpx.Response(200, json=answer))
    async with get_client("gemini:gemini-embedding-001") as client:
        embeddings = await client.embed(["a b", "c"], dimensions=2)

    assert str(route.calls.last.request.url) == GEMINI_URL
    assert route.calls.last.request.headers["x-goog-api-key"] == "gemini-test-key"
    assert _body(route) == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": text}]},
                "outputDimensionality": 2,
            }
            for text in ("a b", "c")
        ]
    }
    assert embeddings.vectors == [[0.1, 0.2], [0.3, 0.4]]
    assert embeddings.provider == "gemini"
    assert isinstance(embeddings.usage, Usage)


async def test_an_answer_with_fewer_vectors_than_texts_is_an_error_not_a_short_list(
    respx_mock: respx.MockRouter,
) -> None:
    answer = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    respx_mock.post(OPENAI_URL).mock(return_value=httpx.Response(200, json=answer))
    with pytest.raises(APIError, match="1 vectors of numbers for 2 texts"):
        await get_client("openai:text-embedding-3-small").embed(["a", "b"])


async def test_a_long_vector_with_whole_numbers_comes_back_as_floats(
    respx_mock: respx.MockRouter,
) -> None:
    vector: list[Any] = [0.25] * 1536
    vector[0], vector[-1] = 0, 1  # JSON's whole numbers parse as ints
    answer = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": vector}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    respx_mock.post(OPENAI_URL).mock(return_value=httpx.Response(200, json=answer))
    embeddings = await get_client("openai:text-embedding-3-small").embed("one text")
    (got,) = embeddings.vectors
    assert got == [0.0] + [0.25] * 1534 + [1.0]
    assert all(type(x) is float for x in got)


@pytest.mark.parametrize("length", [3, 100])
async def test_a_vector_of_words_is_an_api_error_naming_the_model(
    respx_mock: respx.MockRouter, length: int
) -> None:
    answer = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": ["zero"] * length}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    respx_mock.post(OPENAI_URL).mock(return_value=httpx.Response(200, json=answer))
    with pytest.raises(APIError, match="0 vectors of numbers for 1 texts") as caught:
        await get_client("openai:text-embedding-3-small").embed("one text", num_retries=0)
    assert caught.value.model == "text-embedding-3-small"
