"""Durable runs on the tiny local model: the same store, keys and resume as hosted models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model_registry import Generation, ResultStore


async def test_a_local_batch_is_kept_and_a_rerun_comes_from_the_store(
    tiny: Any, tmp_path: Path
) -> None:
    db = tmp_path / "run.sqlite"
    prompts = ["Hello", "World", "Hello", "Local models"]

    first = await tiny.generate_many(prompts, results_db=db, max_tokens=4, ignore_eos=True)
    assert all(isinstance(g, Generation) and not g.from_store for g in first)
    assert {(g.name, g.cost, g.provider) for g in first} == {(tiny.name, None, "local")}

    again = await tiny.generate_many(prompts, results_db=db, max_tokens=4, ignore_eos=True)
    assert [g.text for g in again] == [g.text for g in first]
    assert all(g.from_store for g in again)
    assert [g.usage for g in again] == [g.usage for g in first]

    # other sampling params are another request: called, not read back
    other = await tiny.generate_many(prompts[:1], results_db=db, max_tokens=2, ignore_eos=True)
    assert not other[0].from_store

    with ResultStore(db) as store:
        totals = store.summary()
    assert (totals.results, totals.failed, totals.cost) == (5, 0, None)
    assert totals.completion_tokens == 4 * 4 + 2
