"""Events (`model_registry.on`) of local calls on the tiny model: the same events, with the
same fields, as a hosted call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from model_registry import Generation, get_client, off, on
from model_registry.events import (
    EVENT_NAMES,
    Attempt,
    BatchEnd,
    CallEnd,
    CallStart,
    Event,
    LimiterWait,
)
from tests.local.conftest import ENGINE_KWARGS

pytestmark = pytest.mark.local


@pytest.fixture
def seen() -> Iterator[list[Event]]:
    events: list[Event] = []
    for name in EVENT_NAMES:
        on(name, events.append)
    yield events
    for name in EVENT_NAMES:
        off(name)


async def test_a_local_call_emits_the_events_of_a_hosted_one(tiny: Any, seen: list[Event]) -> None:
    generation = await tiny.generate("Hello", max_tokens=3, ignore_eos=True)
    assert [e.kind for e in seen] == ["call_start", "attempt", "call_end"]
    start, attempt, end = seen
    assert isinstance(start, CallStart) and isinstance(attempt, Attempt)
    assert isinstance(end, CallEnd)
    assert len({e.call_id for e in seen}) == 1
    assert {(e.name, e.provider) for e in seen} == {(tiny.name, "local")}
    assert (attempt.number, end.attempts, end.error, end.from_store) == (1, 1, None, False)
    assert end.generation is generation and end.cost is None and end.latency_s > 0


async def test_a_local_batch_emits_batch_events_around_its_calls(
    tiny: Any, seen: list[Event]
) -> None:
    results = await tiny.generate_many(["a", "b"], max_tokens=2, ignore_eos=True)
    assert all(isinstance(g, Generation) for g in results)
    kinds = [e.kind for e in seen]
    assert (kinds[0], kinds[-1]) == ("batch_start", "batch_end")
    assert sorted(kinds[1:-1]) == ["attempt"] * 2 + ["call_end"] * 2 + ["call_start"] * 2
    end = seen[-1]
    assert (end.prompts, end.succeeded, end.failed, end.cost) == (2, 2, 0, 0.0)  # type: ignore[attr-defined]


async def _hold_the_slot(client: Any, holding: anyio.Event) -> None:
    async with client.stream("Go on.", max_tokens=64, ignore_eos=True) as stream:
        async for _ in stream:
            holding.set()
            await anyio.sleep(0.5)  # the stream's permit is held while it is open
            break


async def test_a_local_call_behind_a_concurrency_limit_reports_its_wait(
    tiny_name: str, seen: list[Event]
) -> None:
    client = get_client(tiny_name, temperature=0.0, limits={"concurrency": 1}, **ENGINE_KWARGS)
    async with client, anyio.create_task_group() as group:
        holding = anyio.Event()
        group.start_soon(_hold_the_slot, client, holding)
        await holding.wait()
        generation = await client.generate("Hello", max_tokens=2, ignore_eos=True)
    (wait,) = [e for e in seen if isinstance(e, LimiterWait)]
    (end,) = [e for e in seen if isinstance(e, CallEnd) and e.generation is generation]
    assert (wait.call_id, wait.name, wait.provider) == (end.call_id, tiny_name, "local")
    assert wait.limit == "concurrency" and 0.2 <= wait.seconds <= end.latency_s


async def test_a_local_call_end_carries_the_engines_queue_time(
    tiny: Any, seen: list[Event]
) -> None:
    generation = await tiny.generate("Hello", max_tokens=3, ignore_eos=True)
    end = seen[-1]
    assert isinstance(end, CallEnd) and end.queue_s is not None
    metrics = generation.raw.metrics  # vLLM's RequestStateStats: engine-core timestamps
    assert end.queue_s == pytest.approx(metrics.scheduled_ts - metrics.queued_ts)
    assert 0 <= end.queue_s < end.latency_s


async def test_a_local_stream_emits_the_events_of_a_call(tiny: Any, seen: list[Event]) -> None:
    stream = tiny.stream("Hello", max_tokens=4, ignore_eos=True)
    pieces = [piece async for piece in stream]
    assert [e.kind for e in seen] == ["call_start", "attempt", "call_end"]
    start, attempt, end = seen
    assert isinstance(start, CallStart) and isinstance(end, CallEnd)
    assert (start.prompt, start.operation, end.operation) == ("Hello", "chat", "chat")
    assert len({e.call_id for e in seen}) == 1
    assert (attempt.number, end.attempts, end.error) == (1, 1, None)  # type: ignore[attr-defined]
    assert end.generation is stream.result and end.generation.text == "".join(pieces)
    assert end.queue_s is not None and 0 <= end.queue_s < end.latency_s


async def test_local_embeddings_emit_the_events_of_a_hosted_embed(
    tiny_name: str, seen: list[Event]
) -> None:
    async with get_client(tiny_name, runner="pooling", **ENGINE_KWARGS) as embedder:
        embeddings = await embedder.embed(["a cat", "a dog"])
        first = list(seen)
        seen.clear()
        await embedder.embed_many(["a", "b", "c"], batch_size=2)
    assert [e.kind for e in first] == ["call_start", "attempt", "call_end"]
    start, _, end = first
    assert isinstance(start, CallStart) and isinstance(end, CallEnd)
    assert (start.operation, start.prompt, start.provider) == (
        "embeddings",
        ["a cat", "a dog"],
        "local",
    )
    assert (end.embeddings, end.generation, end.error, end.queue_s) == (
        embeddings,
        None,
        None,
        None,
    )
    kinds = [e.kind for e in seen]
    assert (kinds[0], kinds[-1]) == ("batch_start", "batch_end")
    assert sorted(kinds[1:-1]) == ["attempt"] * 2 + ["call_end"] * 2 + ["call_start"] * 2
    batch = seen[-1]
    assert isinstance(batch, BatchEnd) and (batch.prompts, batch.succeeded) == (3, 3)
