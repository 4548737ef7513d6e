"""`embed` on a local name is refused before any engine starts (local embeddings through
vLLM's pooling runner are not supported yet)."""

from __future__ import annotations

import pytest

from model_registry import InvalidParameterError, get_client

pytestmark = pytest.mark.local


async def test_embed_on_a_local_name_is_refused_before_any_engine(tiny_name: str) -> None:
    client = get_client(tiny_name)
    with pytest.raises(InvalidParameterError, match="local embeddings are not supported") as e:
        await client.embed(["a"])
    assert tiny_name in str(e.value)
    with pytest.raises(InvalidParameterError, match="local embeddings are not supported"):
        await client.embed_many(["a", "b"])
    assert not client._started  # nothing was started
    await client.aclose()
