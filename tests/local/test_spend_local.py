"""`max_cost` prices hosted calls only: with a local name it is refused before the engine
starts."""

from __future__ import annotations

import pytest

from model_registry import InvalidParameterError, get_client

pytestmark = pytest.mark.local


async def test_max_cost_with_a_local_name_is_refused_before_the_engine_starts(
    tiny_name: str,
) -> None:
    client = get_client(tiny_name)
    with pytest.raises(InvalidParameterError, match=r"is a local model .* drop max_cost"):
        await client.generate_many(["a"], max_cost=1.0)
    assert not client._started
    await client.aclose()
