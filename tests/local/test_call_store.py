"""A result store for single calls on the tiny local model: a stored answer comes back from
`generate` and `stream` of a client whose engine never starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from model_registry import ResultStore, get_client
from tests.local.conftest import ENGINE_KWARGS

pytestmark = pytest.mark.local

ASKED: dict[str, Any] = {"max_tokens": 4, "ignore_eos": True}


async def test_a_stored_local_answer_comes_back_without_starting_an_engine(
    tiny: Any, tiny_name: str, tmp_path: Path
) -> None:
    with ResultStore(tmp_path / "calls.sqlite") as store:
        made = await tiny.generate("Hello", results_db=store, **ASKED)
        fresh = get_client(tiny_name, temperature=0.0, results_db=store, **ENGINE_KWARGS)
        try:
            replayed = await fresh.generate("Hello", **ASKED)
            stream = fresh.stream("Hello", **ASKED)
            deltas = [delta async for delta in stream]
            assert fresh.engine is None  # never started: nothing was asked of an engine
        finally:
            await fresh.aclose()
    assert not made.from_store and made.usage.completion_tokens == 4
    assert replayed.from_store and stream.result.from_store
    assert replayed.text == stream.result.text == made.text
    assert deltas == ([made.text] if made.text else [])
    assert replayed.usage == made.usage
