"""Local embeddings through vLLM's pooling runner (`runner="pooling"`) on the tiny model: vectors
of the model's size, the same for the same text; a generate runner refuses `embed` before any
engine starts, and a pooling engine refuses `generate`."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from model_registry import InvalidParameterError, ModelClient, ResultStore, get_client
from tests.local.conftest import ENGINE_KWARGS

pytestmark = pytest.mark.local

HIDDEN_SIZE = 64  # the tiny model's hidden size: its embedding size


@pytest.fixture(scope="module")
async def embedder(tiny_name: str) -> AsyncIterator[ModelClient]:
    client = await get_client(tiny_name, runner="pooling", **ENGINE_KWARGS)
    yield client
    await client.aclose()


async def test_embed_on_a_generate_runner_is_refused_before_any_engine(tiny_name: str) -> None:
    client = get_client(tiny_name)
    with pytest.raises(InvalidParameterError, match="runner='pooling'") as caught:
        await client.embed(["a"])
    assert tiny_name in str(caught.value)
    with pytest.raises(InvalidParameterError, match="runner='pooling'"):
        await client.embed_many(["a", "b"])
    assert not client._started
    await client.aclose()


async def test_pooling_runner_embeds_in_order_with_the_models_size(embedder: Any) -> None:
    texts = ["the cat sat", "a dog", "the cat sat"]
    embeddings = await embedder.embed(texts)
    assert [len(v) for v in embeddings.vectors] == [HIDDEN_SIZE] * 3
    assert embeddings.vectors[0] == embeddings.vectors[2] != embeddings.vectors[1]
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-3) for v in embeddings.vectors)
    alone = await embedder.embed("a dog")
    assert alone.vectors[0] == pytest.approx(embeddings.vectors[1], abs=1e-5)
    assert embeddings.usage.prompt_tokens is not None and embeddings.usage.prompt_tokens > 0
    assert (embeddings.provider, embeddings.cost) == ("local", None)


async def test_a_pooling_engine_refuses_generate(embedder: Any) -> None:
    with pytest.raises(InvalidParameterError, match=r"call embed\(\) or embed_many\(\)"):
        await embedder.generate("hello")


async def test_embed_many_on_the_pooling_runner_resumes_from_the_store(
    embedder: Any, tmp_path: Path
) -> None:
    db = tmp_path / "local.sqlite"
    texts = [f"text {i}" for i in range(7)]
    first = await embedder.embed_many(texts, batch_size=3, results_db=db)
    again = await embedder.embed_many(texts, batch_size=3, results_db=db)
    assert again.vectors == first.vectors and again.from_store == 7
    with ResultStore(db) as store:
        assert store.summary().results == 7
