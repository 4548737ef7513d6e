"""LiteLLM's answer to `litellm.aembedding` as our `Embeddings`: vectors in input order
(by each item's `index`), usage, and LiteLLM's price of the call."""

from __future__ import annotations

import array
import base64
from typing import TYPE_CHECKING, Any

import msgspec

from model_registry._embeddings import Embeddings
from model_registry.clients._asked import field
from model_registry.clients._litellm_response import _cost
from model_registry.clients._litellm_usage import read_usage
from model_registry.errors import APIError

if TYPE_CHECKING:
    from model_registry.clients.base import BaseClient

__all__ = ["embeddings_answer"]

#: Vectors up to this length convert quicker with `array`, longer ones with msgspec.
_SHORT = 32


def embeddings_answer(response: Any, client: BaseClient, count: int, latency: float) -> Embeddings:
    """The `Embeddings` of an answer to `count` texts; APIError when it holds another number
    of vectors (a provider that dropped some)."""
    data = field(response, "data") or ()
    items = _items(data)
    if any(pair[0] != position for position, pair in enumerate(items)):
        items.sort(key=lambda pair: pair[0])  # by `index`; an item without one by its position
    vectors = [_vector(value) for _, value in items]
    if len(vectors) != count or None in vectors:
        readable = sum(vector is not None for vector in vectors)
        raise APIError(
            f"the answer holds {readable} vectors of numbers for {count} texts; retry the call, or "
            "send fewer texts per request (embed_many's batch_size)",
            provider=client.provider,
            model=client.model_id,
        )
    usage = read_usage(field(response, "usage"))
    return Embeddings(
        vectors=[v for v in vectors if v is not None],
        usage=usage,
        model=field(response, "model") or client.model_id,
        provider=client.provider,
        cost=_cost(response),
        name=client.name,
        latency_s=latency,
    )


def _items(data: Any) -> list[tuple[Any, Any]]:
    """Each answer item's `index` (its position where it has none) and its `embedding`."""
    if all(type(item) is dict for item in data):  # LiteLLM's own shape: one pass, no calls
        return [(item.get("index", i), item.get("embedding")) for i, item in enumerate(data)]
    items = []
    for position, item in enumerate(data):
        index = field(item, "index")
        items.append((position if index is None else index, field(item, "embedding")))
    return items


def _vector(value: Any) -> list[float] | None:
    """A vector as floats: a list, or base64 of little-endian float32 (`encoding_format`)."""
    if isinstance(value, list):
        try:  # checked and converted in C: msgspec is quicker past a few dozen numbers
            if len(value) > _SHORT:
                return msgspec.convert(value, list[float])
            return array.array("d", value).tolist()
        except (TypeError, msgspec.ValidationError):
            try:
                return [float(x) for x in value]
            except (TypeError, ValueError):
                return None  # not numbers: the caller says the answer is unreadable
    if isinstance(value, str):
        floats = array.array("f")
        floats.frombytes(base64.b64decode(value))
        return floats.tolist()
    return None
