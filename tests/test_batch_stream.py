"""Batches read their prompts a chunk at a time: any iterable (async ones for `iter_many`),
keys numbered across chunks as `ResultStore.batch_keys` numbers them, and memory that does
not grow with the number of prompts. The backend is an in-process client (BaseClient's
subclass hooks), so every layer of the batch runs and 20,000 calls take seconds."""

from __future__ import annotations

import contextlib
import sqlite3
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

import model_registry
from model_registry import ResultStore
from model_registry.clients._batch_feed import ChunkKeys
from model_registry.clients.base import BaseClient
from model_registry.types import Generation, Usage


class _EchoClient(BaseClient):
    """Answers each prompt with its own text at once; counts the calls."""

    kind: ClassVar[Any] = "hosted"
    default_concurrency: ClassVar[int | None] = 64

    def __init__(self) -> None:
        super().__init__(model_registry.resolve("openai/echo-model"))
        self.calls = 0

    async def _generate(self, prompt: Any, kwargs: dict[str, Any], deadline: Any) -> Generation:
        self.calls += 1
        if prompt == "fail":
            raise ValueError("no answer for 'fail'")
        await anyio.lowlevel.checkpoint()
        return Generation(
            text=f"echo {prompt}",
            finish_reason="stop",
            usage=Usage(1, 2, 3),
            model="echo-model",
            provider="openai",
            latency_s=0.0,
        )


def _peak_bytes(n: int) -> int:
    """Python's peak allocation while `iter_many` reads `n` prompts from a generator and the
    results are thrown away."""

    async def run() -> int:
        client = _EchoClient()
        async for _ in client.iter_many(f"prompt {i}" for i in range(200)):
            pass  # warm-up: imports, caches
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            count = 0
            async for _ in client.iter_many(f"prompt {i}" for i in range(n)):
                count += 1
            assert count == n
            return tracemalloc.get_traced_memory()[1] - start
        finally:
            tracemalloc.stop()

    return anyio.run(run)


def test_iter_many_over_a_generator_keeps_memory_flat() -> None:
    small, large = _peak_bytes(2_000), _peak_bytes(20_000)
    slope = (large - small) / 18_000
    # Holding every prompt or result costs well over 300 bytes a prompt; a chunk does not grow.
    assert slope < 100, f"{slope:.0f} bytes a prompt (peaks {small} and {large} bytes)"


def test_a_generator_is_read_as_the_batch_goes() -> None:
    pulled = 0

    def prompts() -> Iterator[str]:
        nonlocal pulled
        for i in range(5_000):
            pulled += 1
            yield f"p {i}"

    async def run() -> int:
        async with contextlib.aclosing(_EchoClient().iter_many(prompts())) as results:
            async for _ in results:
                return pulled
        raise AssertionError("no result")

    assert anyio.run(run) < 5_000


def test_iter_many_takes_an_async_iterable() -> None:
    async def prompts() -> AsyncIterator[str]:
        for i in range(2_500):
            yield f"p {i}"

    async def run() -> dict[int, str]:
        return {i: r.text async for i, r in _EchoClient().iter_many(prompts())}

    got = anyio.run(run)
    assert got == {i: f"echo p {i}" for i in range(2_500)}


def test_generate_many_over_a_generator_returns_results_in_input_order() -> None:
    async def run() -> list[Generation]:
        return await _EchoClient().generate_many(f"p {i}" for i in range(3_000))

    results = anyio.run(run)
    assert [r.text for r in results] == [f"echo p {i}" for i in range(3_000)]


def test_an_error_of_an_iterable_batch_names_its_prompt() -> None:
    async def run() -> None:
        await _EchoClient().generate_many(iter(["a", "b", "fail", "c"]), concurrency=1)

    with pytest.raises(ValueError) as caught:
        anyio.run(run)
    assert caught.value.index == 2  # type: ignore[attr-defined]
    assert "(prompt 2 of prompts given to generate_many)" in caught.value.__notes__


def test_keys_are_numbered_across_chunks_and_a_rerun_reads_every_chunk(tmp_path: Path) -> None:
    """Repeats far apart (more than a chunk) keep `batch_keys`' numbering; a rerun over the
    same generator answers every prompt from the store."""
    prompts = [f"p {i % 1_500}" for i in range(4_000)]
    db = tmp_path / "run.sqlite"

    async def run() -> tuple[int, list[Generation]]:
        client = _EchoClient()
        await client.generate_many(iter(prompts), results_db=db)
        again = await client.generate_many(iter(prompts), results_db=db)
        return client.calls, again

    calls, again = anyio.run(run)
    assert calls == 4_000
    assert all(r.from_store for r in again)
    assert [r.text for r in again] == [f"echo {p}" for p in prompts]
    client = _EchoClient()
    target, params = client._store_target(), dict(client.params)
    hashes = [
        ResultStore.request_key(target, [{"role": "user", "content": p}], params) for p in prompts
    ]
    with contextlib.closing(sqlite3.connect(db)) as con:
        stored = dict(con.execute("SELECT idx, key FROM results").fetchall())
    assert [stored[i] for i in range(4_000)] == ResultStore.batch_keys(hashes)


def test_chunk_keys_number_repeats_as_batch_keys_does_across_merges() -> None:
    """Past `merge_at` requests the seen ones move to a sorted array; numbering is unchanged."""
    prompts = [f"p {(i * 7) % 1_300}" for i in range(5_000)]
    keys = ChunkKeys("openai/echo-model", {})
    keys.merge_at = 100
    got = [k for start in range(0, 5_000, 700) for k in keys(prompts[start : start + 700])]
    hashes = [
        ResultStore.request_key("openai/echo-model", [{"role": "user", "content": p}], {})
        for p in prompts
    ]
    assert got == ResultStore.batch_keys(hashes)
