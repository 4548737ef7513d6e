"""`Embeddings`: the public result of an embedding call; its repr never prints the vectors."""

from __future__ import annotations

import msgspec
import pytest

import model_registry
from model_registry import Embeddings, Usage


def _embeddings(count: int = 3, size: int = 1536) -> Embeddings:
    return Embeddings(
        vectors=[[0.125] * size for _ in range(count)],
        usage=Usage(prompt_tokens=7, total_tokens=7),
        model="text-embedding-3-small",
        provider="openai",
        cost=1.4e-07,
        name="openai:text-embedding-3-small",
    )


def test_embeddings_is_exported_and_frozen() -> None:
    assert "Embeddings" in model_registry.__all__
    embeddings = _embeddings()
    with pytest.raises(AttributeError):
        embeddings.cost = 0.0  # type: ignore[misc]


def test_the_repr_is_short_and_names_the_shape_not_the_numbers() -> None:
    shown = repr(_embeddings())
    assert shown == (
        "Embeddings(vectors=<3 x 1536>, usage=Usage(prompt_tokens=7, total_tokens=7), "
        "cost=1.4e-07, model='text-embedding-3-small', provider='openai', "
        "name='openai:text-embedding-3-small')"
    )
    assert "0.125" not in shown


def test_dimensions_length_and_plain_data() -> None:
    embeddings = _embeddings(count=2, size=4)
    assert (len(embeddings), embeddings.dimensions) == (2, 4)
    data = embeddings.to_dict()
    assert data["vectors"] == [[0.125] * 4, [0.125] * 4]
    assert data["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
    assert msgspec.json.decode(msgspec.json.encode(data))["cost"] == 1.4e-07
    assert Embeddings([], Usage(), "m", "p").dimensions is None
