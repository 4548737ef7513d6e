"""Local embeddings through vLLM's pooling runner (`runner="pooling"`, or vLLM's choice for an
embedding architecture) on the tiny model: vectors of the model's size, the same for the same
text; a generate runner refuses `embed` (before any engine starts when it was asked for), and
a pooling engine refuses `generate`."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from model_registry import InvalidParameterError, ModelClient, ResultStore, get_client
from model_registry.testing import build_tiny_model
from tests.local.conftest import ENGINE_KWARGS

pytestmark = pytest.mark.local

HIDDEN_SIZE = 64  # the tiny model's hidden size: its embedding size


@pytest.fixture(scope="module")
async def embedder(tiny_name: str) -> AsyncIterator[ModelClient]:
    client = await get_client(tiny_name, runner="pooling", **ENGINE_KWARGS)
    yield client
    await client.aclose()


async def test_embed_on_a_generate_runner_is_refused_before_any_engine(tiny_name: str) -> None:
    client = get_client(tiny_name, runner="generate")
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


def _sentence_transformers(out: Path) -> None:
    """Sentence Transformers' files beside a causal LM's config (as Qwen3-Embedding has)."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    (out / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (out / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": HIDDEN_SIZE, "pooling_mode_lasttoken": True}
    (out / "1_Pooling" / "config.json").write_text(json.dumps(pooling), encoding="utf-8")


@pytest.fixture(scope="module", params=["embedding architecture", "sentence transformers"])
def embedding_model_dir(
    request: pytest.FixtureRequest, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An embedding model: `build_tiny_model(kind="embedding")` (an embedding architecture,
    mean pooling), or the tiny chat model's weights with Sentence Transformers' files."""
    out = tmp_path_factory.mktemp("tiny-embedding") / "model"
    if request.param == "embedding architecture":
        return build_tiny_model(out, kind="embedding")
    shutil.copytree(tiny_model_dir, out)
    _sentence_transformers(out)
    return out


async def test_an_embedding_model_embeds_without_runner(embedding_model_dir: Path) -> None:
    name = f"local:{embedding_model_dir}"
    async with get_client(name, **ENGINE_KWARGS) as client:
        embeddings = await client.embed(["the cat sat", "a dog"])
        assert [len(v) for v in embeddings.vectors] == [HIDDEN_SIZE] * 2
        many = await client.embed_many(["the cat sat", "a dog"], batch_size=1)
        assert many.vectors[1] == pytest.approx(embeddings.vectors[1], abs=1e-5)
        with pytest.raises(InvalidParameterError) as caught:
            await client.generate("hello")
    message = str(caught.value)
    assert name in message and "pooling runner" in message and "call embed()" in message


async def test_embed_on_a_generation_model_without_runner_says_to_pass_runner_pooling(
    tiny_name: str,
) -> None:
    client = get_client(tiny_name, **ENGINE_KWARGS)
    try:
        with pytest.raises(InvalidParameterError) as caught:
            await client.embed(["a"])
        with pytest.raises(InvalidParameterError, match="runner='pooling'"):
            await client.embed_many(["a", "b"])
        # vLLM picked the generate runner from the config when the engine started
        assert (await client.generate("hello", max_tokens=2)).finish_reason is not None
    finally:
        await client.aclose()
    message = str(caught.value)
    assert tiny_name in message and "generate runner (vLLM's choice" in message
    assert f"get_client({tiny_name!r}, runner='pooling')" in message
