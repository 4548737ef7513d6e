"""vLLM's reasoning and tool-call parsers on the tiny model: `reasoning_parser` (an engine
arg) fills `Generation.reasoning`, `tool_call_parser` reads `tool_choice="auto"` calls.

Random weights never write the markup on their own: a grammar (structured decoding, also
during the reasoning: `enable_in_reasoning`) makes the tiny model write a think block or a
hermes `<tool_call>` block, the markup as the tokenizer's own tokens (`<[id]>` in the lark
grammar)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from model_registry import InvalidParameterError
from tests.local.conftest import ENGINE_KWARGS

pytestmark = pytest.mark.local

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}
THINK = "<think> /[a-z]{3,8}/ </think> /[a-z]{3,8}/"
CALL = (
    r'<tool_call> "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"" /[a-z]{1,8}/ '
    r'"\", \"days\": " /[1-7]/ "}}" </tool_call>'
)
MARKUP = ("<think>", "</think>", "<tool_call>", "</tool_call>")


def forced(tokenizer: Any, grammar: str) -> dict[str, Any]:
    """Sampling params that make the tiny model write `grammar` (lark; the markup written
    as tokens)."""
    from vllm.sampling_params import StructuredOutputsParams

    for token in MARKUP:
        grammar = grammar.replace(token, f"<[{tokenizer.convert_tokens_to_ids(token)}]>")
    return {"structured_outputs": StructuredOutputsParams(grammar=f"start: {grammar}")}


@pytest.fixture(scope="module")
async def thinker(tiny_name: str) -> AsyncIterator[Any]:
    """The tiny model on an engine with vLLM's "deepseek_r1" reasoning parser."""
    from model_registry import get_client

    client = await get_client(
        tiny_name,
        temperature=0.0,
        reasoning_parser="deepseek_r1",
        structured_outputs_config={"enable_in_reasoning": True},
        **ENGINE_KWARGS,
    )
    yield client
    await client.aclose()


async def test_a_reasoning_parser_fills_reasoning_in_generate_and_stream(
    thinker: Any, tokenizer: Any
) -> None:
    g = await thinker.generate("Think first.", max_tokens=40, **forced(tokenizer, THINK))
    assert g.reasoning is not None and 3 <= len(g.reasoning) <= 8 and g.reasoning.isalpha()
    assert 3 <= len(g.text) <= 8 and g.text.isalpha()
    assert "think" not in g.text
    assert g.usage.reasoning_tokens is not None and g.usage.reasoning_tokens >= 1
    stream = thinker.stream("Think first.", max_tokens=40, **forced(tokenizer, THINK))
    deltas = [delta async for delta in stream]
    assert "".join(deltas) == stream.result.text == g.text  # greedy: the same answer
    assert stream.result.reasoning == g.reasoning


async def test_reasoning_and_an_auto_tool_call_in_one_answer(thinker: Any, tokenizer: Any) -> None:
    g = await thinker.generate(
        "Weather?",
        tools=[WEATHER],
        tool_call_parser="hermes",
        max_tokens=80,
        **forced(tokenizer, "<think> /[a-z]{3,8}/ </think> " + CALL),
    )
    assert g.reasoning is not None and g.reasoning.isalpha()
    assert g.tool_calls is not None and [c.name for c in g.tool_calls] == ["get_weather"]
    assert g.finish_reason == "tool_calls"
    assert g.text == ""


async def test_auto_tool_choice_reads_a_hermes_tool_call(tiny: Any, tokenizer: Any) -> None:
    kwargs = {"tools": [WEATHER], "tool_choice": "auto", "tool_call_parser": "hermes"}
    g = await tiny.generate("Weather?", max_tokens=80, **kwargs, **forced(tokenizer, CALL))
    assert g.finish_reason == "tool_calls"
    assert g.tool_calls is not None and len(g.tool_calls) == 1
    call = g.tool_calls[0]
    assert call.name == "get_weather"
    assert set(call.arguments) == {"city", "days"} and 1 <= call.arguments["days"] <= 7
    assert g.text == ""
    assert g.reasoning is None
    stream = tiny.stream("Weather?", max_tokens=80, **kwargs, **forced(tokenizer, CALL))
    assert [delta async for delta in stream] == []  # the call's markup is no text
    assert stream.result.tool_calls is not None
    assert stream.result.tool_calls[0].arguments == call.arguments


async def test_auto_tool_choice_without_a_call_is_plain_text(tiny: Any) -> None:
    g = await tiny.generate("Hi", tools=[WEATHER], tool_call_parser="hermes", max_tokens=6)
    assert g.tool_calls is None
    assert g.text and g.finish_reason == "length"


async def test_an_unknown_tool_call_parser_is_refused_with_the_known_ones(tiny: Any) -> None:
    with pytest.raises(InvalidParameterError, match=r"tool_call_parser='hermez'.*hermes"):
        await tiny.generate("Weather?", tools=[WEATHER], tool_call_parser="hermez")
