"""A prompt no chat template can take is refused before the engine sees it (local models)."""

from __future__ import annotations

from typing import Any

import pytest

from model_registry.errors import InvalidParameterError

pytestmark = pytest.mark.local


@pytest.mark.parametrize(
    "prompt",
    [
        [{"role": "user", "content": 5}],
        [{"role": "user", "content": float("inf")}],
        [{"role": "user", "content": "x", "name": float("nan")}],
    ],
    ids=["int", "inf", "nan-beside"],
)
async def test_a_bad_prompt_is_refused_before_the_engine(tiny: Any, prompt: Any) -> None:
    with pytest.raises(InvalidParameterError, match=r"^prompt message 0 '(content|name)'"):
        await tiny.generate(prompt, max_tokens=4)
    with pytest.raises(InvalidParameterError, match=r"^prompt message 0 '(content|name)'"):
        async for _ in tiny.stream(prompt, max_tokens=4):
            pass
    assert (await tiny.generate("hi", max_tokens=4)).usage.completion_tokens == 4
