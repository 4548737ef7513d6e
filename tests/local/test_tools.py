"""Local tool calls on the tiny random-weight model: `tool_choice="required"` or a named
function is decoded under a closed JSON schema, so even random weights give valid calls."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import Field

from model_registry import InvalidParameterError

pytestmark = pytest.mark.local

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                # bounded: random weights never end an unbounded string on their own
                "city": {"type": "string", "maxLength": 12},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "days"],
        },
    },
}


def lookup(word: Annotated[str, Field(max_length=12)]) -> str:
    """Look a word up."""
    return word


PROMPTS = [f"Weather question {i}" for i in range(20)]


async def test_required_tool_choice_gives_valid_calls_on_every_prompt(tiny: Any) -> None:
    answers = await tiny.generate_many(
        PROMPTS, tools=[WEATHER, lookup], tool_choice="required", max_tokens=120
    )
    for g in answers:
        assert g.finish_reason == "tool_calls"
        assert g.text == ""
        assert g.tool_calls is not None and len(g.tool_calls) == 1
        call = g.tool_calls[0]
        assert call.name in ("get_weather", "lookup")
        if call.name == "get_weather":
            assert set(call.arguments) == {"city", "days"}
            assert 1 <= call.arguments["days"] <= 7
        else:
            assert set(call.arguments) == {"word"}


async def test_a_named_function_is_called_whole_and_streamed(tiny: Any) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    g = await tiny.generate("Weather?", tools=[WEATHER], tool_choice=choice, max_tokens=120)
    assert g.tool_calls is not None and [c.name for c in g.tool_calls] == ["get_weather"]
    assert set(g.tool_calls[0].arguments) == {"city", "days"}
    stream = tiny.stream("Weather?", tools=[WEATHER], tool_choice=choice, max_tokens=120)
    assert [delta async for delta in stream] == []
    assert stream.result.tool_calls is not None
    assert stream.result.tool_calls[0].arguments == g.tool_calls[0].arguments  # greedy


async def test_a_multi_turn_tool_conversation_renders(tiny: Any) -> None:
    call = (await tiny.generate("Weather?", tools=[WEATHER], tool_choice="required")).tool_calls[0]
    conversation = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "tool_calls": [call.to_message_part()]},
        {"role": "tool", "tool_call_id": call.id, "content": "-3C"},
    ]
    g = await tiny.generate(conversation, tools=[WEATHER], tool_choice="none", max_tokens=8)
    assert g.tool_calls is None
    assert g.finish_reason in ("stop", "length")


async def test_auto_tool_choice_is_refused_on_a_local_model(tiny: Any) -> None:
    with pytest.raises(InvalidParameterError, match="tool-call parser"):
        await tiny.generate("Weather?", tools=[WEATHER], tool_choice="auto")
