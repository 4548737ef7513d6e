"""Local usage: vLLM's prefix-cache hits are reported as cached prompt tokens."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.local


async def test_a_repeated_long_prompt_reports_its_prefix_cache_hits(
    tiny: Any, tokenizer: Any
) -> None:
    words = (f"w{i}" for i in range(10_000))
    prompt = ""
    while len(tokenizer(prompt).input_ids) < 320:  # a few KV-cache blocks, within 512
        prompt += f" {next(words)}"
    first = await tiny.generate(prompt, max_tokens=2, ignore_eos=True)
    again = await tiny.generate(prompt, max_tokens=2, ignore_eos=True)
    stream = tiny.stream(prompt, max_tokens=2, ignore_eos=True)
    _ = [delta async for delta in stream]

    # The first time only a shared prefix (the chat template's start) may be cached; then
    # every whole KV-cache block of the prompt is.
    assert first.usage.cached_tokens < again.usage.cached_tokens < again.usage.prompt_tokens
    assert again.usage.cached_tokens >= again.usage.prompt_tokens / 2
    assert stream.result.usage.cached_tokens == again.usage.cached_tokens
    assert again.usage.reasoning_tokens is None
