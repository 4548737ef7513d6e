"""Durable runs on the tiny local model: the same store, keys and resume as hosted models."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from model_registry import Generation, ResultStore, get_client
from tests.local.conftest import ENGINE_KWARGS

pytestmark = pytest.mark.local


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


def _change_one_weight(weights: Path) -> None:
    """Retrain in place, in the smallest way: one weight's lowest mantissa bit flipped (in a
    safetensors file: an 8-byte header length, the JSON header, then the tensors' bytes)."""
    data = bytearray(weights.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    data[start + 2 * 100] ^= 1
    weights.write_bytes(bytes(data))


async def test_a_model_directory_is_keyed_by_its_files_so_a_copy_resumes_and_new_weights_do_not(
    tiny: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "run.sqlite"
    prompts = ["Hello", "Weights"]
    asked: dict[str, Any] = {"results_db": db, "max_tokens": 4, "ignore_eos": True}
    first = await tiny.generate_many(prompts, **asked)

    copy = tmp_path / "copy-of-tiny"
    shutil.copytree(tiny_model_dir, copy)
    async with get_client(f"local:{copy}", temperature=0.0, **ENGINE_KWARGS) as client:
        copied = await client.generate_many(prompts, **asked)
    assert all(g.from_store for g in copied)  # another path, the same files: the same keys
    assert [g.text for g in copied] == [g.text for g in first]

    _change_one_weight(copy / "model.safetensors")
    async with get_client(f"local:{copy}", temperature=0.0, **ENGINE_KWARGS) as client:
        retrained = await client.generate_many(prompts, **asked)
    assert not any(g.from_store for g in retrained)  # asked again, not an old answer
    with ResultStore(db) as store:
        assert store.summary().results == 4
