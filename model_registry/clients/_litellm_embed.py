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
    indexes, values = _items(field(response, "data") or ())
    if indexes != list(range(len(indexes))):  # by `index`; an item without one by its position
        values = [values[i] for i in sorted(range(len(indexes)), key=indexes.__getitem__)]
    vectors = _vectors(values)
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
        vectors=vectors,  # type: ignore[arg-type]  # none is None: checked above
        usage=usage,
        model=field(response, "model") or client.model_id,
        provider=client.provider,
        cost=_cost(response),
        name=client.name,
        latency_s=latency,
    )


def _items(data: Any) -> tuple[list[Any], list[Any]]:
    """The answer items' `index`es (an item's position where it has none) and `embedding`s."""
    if data and set(map(type, data)) == {dict}:  # LiteLLM's own shape: loops in C mostly
        return [d.get("index", i) for i, d in enumerate(data)], [d.get("embedding") for d in data]
    indexes, values = [], []
    for position, item in enumerate(data):
        index = field(item, "index")
        indexes.append(position if index is None else index)
        values.append(field(item, "embedding"))
    return indexes, values


def _vectors(values: list[Any]) -> list[list[float] | None]:
    """Each answer item's vector as floats (None: not a vector of numbers). Lists of numbers,
    the usual answer, convert in one call in C (16 vectors of 8 numbers in 3 µs, 10 one by
    one); anything else vector by vector."""
    try:
        return msgspec.convert(values, list[list[float]])  # type: ignore[no-any-return]
    except msgspec.ValidationError:
        return [_vector(value) for value in values]


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
