"""LiteLLM's answer to `litellm.aembedding` as our `Embeddings`: vectors in input order
(by each item's `index`), usage, and LiteLLM's price of the call."""

from __future__ import annotations

import array
import base64
from typing import TYPE_CHECKING, Any

from model_registry._embeddings import Embeddings
from model_registry.clients._litellm_response import _cost
from model_registry.clients._litellm_usage import read_usage
from model_registry.errors import APIError

if TYPE_CHECKING:
    from model_registry.clients.base import BaseClient

__all__ = ["embeddings_answer"]


def embeddings_answer(response: Any, client: BaseClient, count: int, latency: float) -> Embeddings:
    """The `Embeddings` of an answer to `count` texts; APIError when it holds another number
    of vectors (a provider that dropped some)."""
    data = getattr(response, "data", None) or ()
    items = [_read(item, position) for position, item in enumerate(data)]
    if any(index != position for position, (index, _) in enumerate(items)):
        items.sort(key=lambda pair: pair[0])  # by `index`; an item without one by its position
    vectors = [_vector(value) for _, value in items]
    if len(vectors) != count or None in vectors:
        raise APIError(
            f"the answer holds {len(vectors)} vectors for {count} texts; retry the call, or "
            "send fewer texts per request (embed_many's batch_size)",
            provider=client.provider,
            model=client.model_id,
        )
    usage = read_usage(getattr(response, "usage", None))
    return Embeddings(
        vectors=[v for v in vectors if v is not None],
        usage=usage,
        model=getattr(response, "model", None) or client.model_id,
        provider=client.provider,
        cost=_cost(response),
        name=client.name,
        latency_s=latency,
    )


def _read(item: Any, position: int) -> tuple[Any, Any]:
    """An answer item's `index` (its position where it has none) and its `embedding`."""
    if isinstance(item, dict):
        return item.get("index", position), item.get("embedding")
    return getattr(item, "index", position), getattr(item, "embedding", None)


def _vector(value: Any) -> list[float] | None:
    """A vector as floats: a list, or base64 of little-endian float32 (`encoding_format`)."""
    if isinstance(value, list):
        try:
            return array.array("d", value).tolist()  # numbers, converted in C
        except TypeError:
            return [float(x) for x in value]
    if isinstance(value, str):
        floats = array.array("f")
        floats.frombytes(base64.b64decode(value))
        return floats.tolist()
    return None
