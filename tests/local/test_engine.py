"""Calls on the session's shared engine: results, streaming, limits, cancellation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
import pytest

from model_registry import get_client
from model_registry.clients.vllm import cached_engines, engine_starts
from model_registry.errors import ClientClosedError, InvalidParameterError, RequestTimeoutError
from model_registry.types import Generation
from tests.local.conftest import ENGINE_KWARGS

pytestmark = pytest.mark.local

LONG = {"max_tokens": 400, "ignore_eos": True}


async def _unfinished_requests_drop_to_zero(client: Any, within: float = 1.0) -> float:
    started = time.perf_counter()
    while client.engine.get_num_unfinished_requests():
        if time.perf_counter() - started > within:
            raise AssertionError(
                f"{client.engine.get_num_unfinished_requests()} request(s) still in the engine"
            )
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


async def test_generate_returns_a_generation(tiny: Any, tiny_model_dir: Any) -> None:
    g = await tiny.generate("Say something.", max_tokens=8, ignore_eos=True)
    assert isinstance(g, Generation)
    assert g.finish_reason == "length"
    assert g.usage.completion_tokens == 8
    assert g.usage.total_tokens == g.usage.prompt_tokens + 8  # type: ignore[operator]
    assert g.model == str(tiny_model_dir) and g.provider == "local"
    assert g.text and g.latency_s > 0


async def test_usage_counts_match_the_tokenizer(tiny: Any, tokenizer: Any) -> None:
    prompt = "How many tokens is this prompt?"
    g = await tiny.generate(prompt, max_tokens=5, ignore_eos=True)
    templated = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    expected = tokenizer(templated, add_special_tokens=False).input_ids
    assert g.raw.prompt_token_ids == expected  # the chat template, one BOS
    assert g.usage.prompt_tokens == len(expected)
    assert g.usage.completion_tokens == len(g.raw.outputs[0].token_ids) == 5


async def test_a_list_of_messages_goes_through_the_chat_template(tiny: Any, tokenizer: Any) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
    ]
    g = await tiny.generate(messages, max_tokens=2)
    templated = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert g.raw.prompt == templated
    assert templated.endswith("<|im_start|>assistant\n")


async def test_raw_sends_a_plain_completion(tiny: Any, tokenizer: Any) -> None:
    g = await tiny.generate("def main():", raw=True, max_tokens=2)
    assert g.raw.prompt == "def main():"
    assert g.raw.prompt_token_ids == tokenizer("def main():").input_ids


async def test_max_tokens_is_honoured(tiny: Any) -> None:
    g = await tiny.generate("Count.", max_tokens=3, ignore_eos=True)
    assert g.usage.completion_tokens == 3 and g.finish_reason == "length"


async def test_there_is_no_silent_16_token_cap(tiny: Any) -> None:
    g = await tiny.generate("Write at length.", min_tokens=40)
    assert g.usage.completion_tokens is not None and g.usage.completion_tokens >= 40
    # Without max_tokens the request may run to the context limit (512 here).
    assert g.usage.prompt_tokens + g.usage.completion_tokens <= 512  # type: ignore[operator]


async def test_stop_token_ids_are_honoured(tiny: Any) -> None:
    free = await tiny.generate("Stop early.", max_tokens=6, ignore_eos=True)
    stop_at = free.raw.outputs[0].token_ids[2]
    first = free.raw.outputs[0].token_ids.index(stop_at)
    g = await tiny.generate("Stop early.", max_tokens=6, stop_token_ids=[stop_at])
    assert g.finish_reason == "stop"
    assert g.usage.completion_tokens == first + 1
    assert g.raw.outputs[0].stop_reason == stop_at


async def test_greedy_stream_equals_generate(tiny: Any) -> None:
    g = await tiny.generate("Tell me a story.", max_tokens=30, ignore_eos=True)
    stream = tiny.stream("Tell me a story.", max_tokens=30, ignore_eos=True)
    deltas = [delta async for delta in stream]
    assert len(deltas) > 1
    assert "".join(deltas) == g.text
    assert stream.result is not None
    assert stream.result.text == g.text
    usage = stream.result.usage  # cached_tokens may differ: the stream reuses g's prefix
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        g.usage.prompt_tokens,
        g.usage.completion_tokens,
    )
    assert stream.result.finish_reason == "length"


async def test_seed_is_per_request(tiny: Any) -> None:
    a = await tiny.generate("Pick.", temperature=1.0, seed=1, max_tokens=12, ignore_eos=True)
    b = await tiny.generate("Pick.", temperature=1.0, seed=1, max_tokens=12, ignore_eos=True)
    c = await tiny.generate("Pick.", temperature=1.0, seed=2, max_tokens=12, ignore_eos=True)
    assert a.text == b.text
    assert a.text != c.text


async def test_an_engine_arg_at_call_time_is_refused(tiny: Any) -> None:
    with pytest.raises(InvalidParameterError) as info:
        await tiny.generate("x", max_model_len=128)
    assert str(info.value) == (
        "'max_model_len' is an engine arg, fixed when the engine starts; pass it to "
        f"get_client({tiny.name!r}, ...) or the alias defaults, not to a call"
    )


async def test_an_unknown_call_kwarg_is_refused(tiny: Any) -> None:
    with pytest.raises(InvalidParameterError, match=r"'max_token' in this call \(did you mean"):
        await tiny.generate("x", max_token=3)


async def test_cancelling_a_task_aborts_its_request(tiny: Any) -> None:
    task = asyncio.create_task(tiny.generate("Go on.", **LONG))
    await asyncio.sleep(0.3)
    assert tiny.engine.get_num_unfinished_requests() == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _unfinished_requests_drop_to_zero(tiny) < 1.0
    g = await tiny.generate("Still there?", max_tokens=4, ignore_eos=True)
    assert g.usage.completion_tokens == 4


async def test_a_cancel_scope_aborts_the_request(tiny: Any) -> None:
    with anyio.move_on_after(0.3) as scope:
        await tiny.generate("Go on.", **LONG)
    assert scope.cancelled_caught
    await _unfinished_requests_drop_to_zero(tiny)


async def test_a_timeout_aborts_the_request(tiny: Any) -> None:
    started = time.perf_counter()
    with pytest.raises(RequestTimeoutError, match=r"timeout=0.3 s"):
        await tiny.generate("Go on.", timeout=0.3, **LONG)
    assert time.perf_counter() - started < 0.3 * 1.2 + 0.1
    await _unfinished_requests_drop_to_zero(tiny)


@pytest.mark.parametrize("timeout_s", [1.0])
async def test_a_timeout_is_honoured_within_20_percent(tiny: Any, timeout_s: float) -> None:
    started = time.perf_counter()
    with pytest.raises(RequestTimeoutError):
        await tiny.generate("Go on.", timeout=timeout_s, max_tokens=100_000, ignore_eos=True)
    elapsed = time.perf_counter() - started
    assert timeout_s <= elapsed * 1.02 and elapsed <= timeout_s * 1.2
    await _unfinished_requests_drop_to_zero(tiny)


async def _until_in_engine(client: Any, count: int, within: float = 30.0) -> None:
    deadline = time.perf_counter() + within
    while client.engine.get_num_unfinished_requests() < count:
        assert time.perf_counter() < deadline, "the requests never reached the engine"
        await asyncio.sleep(0.01)


async def test_cancelling_100_in_flight_generations_leaves_none_running(tiny: Any) -> None:
    tasks = [asyncio.create_task(tiny.generate(f"Go on, {i}.", **LONG)) for i in range(100)]
    await _until_in_engine(tiny, 100)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert await _unfinished_requests_drop_to_zero(tiny, within=1.0) < 1.0
    g = await tiny.generate("Still serving?", max_tokens=3, ignore_eos=True)
    assert g.usage.completion_tokens == 3


async def test_cancelling_generate_many_aborts_every_request_it_started(tiny: Any) -> None:
    task = asyncio.create_task(tiny.generate_many([f"Long {i}" for i in range(20)], **LONG))
    await _until_in_engine(tiny, 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _unfinished_requests_drop_to_zero(tiny, within=1.0) < 1.0


async def test_leaving_a_stream_early_aborts_the_request(tiny: Any) -> None:
    async with tiny.stream("Go on.", **LONG) as stream:
        async for _ in stream:
            break
    await _unfinished_requests_drop_to_zero(tiny)
    assert not stream.done  # closed early: no result


async def test_generate_many_keeps_order_and_batches(tiny: Any) -> None:
    prompts = [f"Prompt number {i}" for i in range(8)]
    singles = [await tiny.generate(p, max_tokens=6, ignore_eos=True) for p in prompts]
    many = await tiny.generate_many(prompts, max_tokens=6, ignore_eos=True)
    assert [g.text for g in many] == [g.text for g in singles]


async def test_generate_many_can_return_exceptions(tiny: Any) -> None:
    results = await tiny.generate_many(
        ["fine", [{"role": "user"}]],
        return_exceptions=True,
        max_tokens=2,  # type: ignore[list-item]
    )
    assert isinstance(results[0], Generation)
    assert isinstance(results[1], InvalidParameterError)


async def test_the_one_liner_in_a_loop_reuses_the_engine(tiny: Any, tiny_name: str) -> None:
    before = engine_starts()
    for _ in range(3):
        g = await get_client(tiny_name, temperature=0.0, **ENGINE_KWARGS).generate(
            "hi", max_tokens=2
        )
        assert g.usage.completion_tokens is not None
    assert engine_starts() == before
    mine = [e for e in cached_engines() if e.engine_id == id(tiny.engine)]
    assert len(mine) == 1 and mine[0].refs >= 4


async def test_a_closed_client_refuses_calls(tiny_name: str, tiny: Any) -> None:
    client = await get_client(tiny_name, **ENGINE_KWARGS)
    assert client.engine is tiny.engine
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await client.generate("x")
    assert tiny.engine is not None  # the shared engine lives on
