"""Tool calls on hosted names: `tools=` and `tool_choice` on the wire, the answer's calls as
`Generation.tool_calls` (whole, streamed, stored and resumed), invalid arguments refused,
and a multi-turn conversation with a tool message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import BaseModel

from model_registry import (
    InvalidParameterError,
    OutputValidationError,
    ResultStore,
    ToolCall,
    get_client,
)
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY, model_name
from tests.hosted.test_wire import OPENAI_RESPONSE, OPENAI_URL

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": WEATHER_SCHEMA,
    },
}


def _tool_answer(arguments: str, name: str = "get_weather") -> dict[str, Any]:
    answer = copy.deepcopy(OPENAI_RESPONSE)
    answer["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        ],
    }
    answer["choices"][0]["finish_reason"] = "tool_calls"
    return answer


async def test_tools_and_tool_choice_reach_openai_and_the_calls_are_parsed(
    respx_mock: respx.MockRouter, provider_keys: dict[str, str]
) -> None:
    route = respx_mock.post(OPENAI_URL).mock(
        return_value=httpx.Response(200, json=_tool_answer('{"city": "Paris", "days": 2}'))
    )
    choice = {"type": "function", "function": {"name": "get_weather"}}
    async with get_client("openai:gpt-4.1") as client:
        g = await client.generate("Weather in Paris?", tools=[WEATHER], tool_choice=choice)
    body = json.loads(route.calls.last.request.content)
    assert body["tools"] == [WEATHER]
    assert body["tool_choice"] == choice
    assert body["messages"] == [{"role": "user", "content": "Weather in Paris?"}]
    assert g.finish_reason == "tool_calls"
    assert g.text == ""
    assert g.tool_calls == [
        ToolCall(
            "call_abc", "get_weather", {"city": "Paris", "days": 2}, '{"city": "Paris", "days": 2}'
        )
    ]
    assert g.to_dict()["tool_calls"] == [
        {
            "id": "call_abc",
            "name": "get_weather",
            "arguments": {"city": "Paris", "days": 2},
            "arguments_json": '{"city": "Paris", "days": 2}',
        }
    ]
    assert "tool_calls=[ToolCall(id='call_abc', name='get_weather'" in repr(g)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ('{"city": "Par', "not JSON"),
        ('{"days": 2}', "'city' is a required property"),
        ('{"city": "Paris", "wind": true}', "Additional properties"),
        ('["Paris"]', "not a JSON object"),
    ],
)
async def test_arguments_that_do_not_validate_raise_with_the_raw_string(
    respx_mock: respx.MockRouter, provider_keys: dict[str, str], arguments: str, problem: str
) -> None:
    respx_mock.post(OPENAI_URL).mock(return_value=httpx.Response(200, json=_tool_answer(arguments)))
    async with get_client("openai:gpt-4.1") as client:
        with pytest.raises(OutputValidationError) as caught:
            await client.generate("Weather?", tools=[WEATHER])
    assert caught.value.text == arguments
    assert problem in str(caught.value)
    assert "get_weather" in str(caught.value)


class GetWeather(BaseModel):
    """The weather in a city.

    Not sent: only the first line describes the tool."""

    city: str


def get_weather(city: str, days: int = 1) -> str:
    """The weather in a city, for some days."""
    return f"sunny in {city}"


@pytest.mark.parametrize(
    ("tool", "sent"),
    [
        (
            GetWeather,
            {
                "type": "function",
                "function": {
                    "name": "GetWeather",
                    "description": "The weather in a city.",
                    "parameters": {
                        "properties": {"city": {"title": "City", "type": "string"}},
                        "required": ["city"],
                        "type": "object",
                    },
                },
            },
        ),
        (
            get_weather,
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "The weather in a city, for some days.",
                    "parameters": {
                        "additionalProperties": False,
                        "properties": {
                            "city": {"title": "City", "type": "string"},
                            "days": {"default": 1, "title": "Days", "type": "integer"},
                        },
                        "required": ["city"],
                        "type": "object",
                    },
                },
            },
        ),
    ],
    ids=["pydantic-model", "function"],
)
async def test_a_pydantic_model_or_a_typed_function_is_sent_as_openai_tool_json(
    respx_mock: respx.MockRouter, provider_keys: dict[str, str], tool: Any, sent: dict[str, Any]
) -> None:
    route = respx_mock.post(OPENAI_URL).mock(
        return_value=httpx.Response(200, json=_tool_answer('{"city": "Oslo"}', tool.__name__))
    )
    async with get_client("openai:gpt-4.1") as client:
        g = await client.generate("Weather in Oslo?", tools=[tool], tool_choice="required")
    body = json.loads(route.calls.last.request.content)
    assert body["tools"] == [sent]
    assert body["tool_choice"] == "required"
    assert g.tool_calls is not None and g.tool_calls[0].arguments == {"city": "Oslo"}


@pytest.mark.parametrize(
    ("tools", "problem"),
    [
        ({"type": "function"}, "must be a list of tools"),
        ([{"type": "function", "function": {"parameters": {}}}], "has no 'name'"),
        ([42], "tools[0]"),
    ],
)
async def test_tools_that_are_no_tools_are_refused_before_sending(
    respx_mock: respx.MockRouter, provider_keys: dict[str, str], tools: Any, problem: str
) -> None:
    # respx_mock mocks no route here: a request sent would fail as unmocked, not as this
    async with get_client("openai:gpt-4.1") as client:
        with pytest.raises(InvalidParameterError, match=problem.replace("[", r"\[")):
            await client.generate("Weather?", tools=tools)


async def _loopback(server: FakeOpenAIServer) -> Any:
    return get_client(
        f"openai:{model_name()}", api_base=server.base_url, api_key=SERVER_KEY, tools=[WEATHER]
    )


async def test_the_fake_server_answers_a_required_tool_choice_whole_and_streamed(
    server: FakeOpenAIServer,
) -> None:
    async with await _loopback(server) as client:
        whole = await client.generate("Weather?", tool_choice="required")
        stream = client.stream("Weather?", tool_choice="required")
        deltas = [delta async for delta in stream]
    for g in (whole, stream.result):
        assert g.finish_reason == "tool_calls"
        assert g.text == ""
        assert g.tool_calls is not None and len(g.tool_calls) == 1
        assert (g.tool_calls[0].name, g.tool_calls[0].arguments) == ("get_weather", {"city": "x"})
        assert g.tool_calls[0].id.startswith("call_0_")
    assert "".join(deltas) == ""


async def test_a_streamed_call_is_assembled_from_its_deltas_and_text_stays_text(
    server: FakeOpenAIServer,
) -> None:
    arguments = '{"city":"Rio_de_Janeiro","days":3}'
    async with await _loopback(server) as client:
        stream = client.stream(f'!tool=get_weather:{arguments} !tool=get_weather:{{"city":"x"}}')
        deltas = [delta async for delta in stream]
        assert deltas == []
        calls = stream.result.tool_calls
        assert calls is not None
        assert [c.arguments_json for c in calls] == [arguments, '{"city":"x"}']
        assert calls[0].arguments == {"city": "Rio_de_Janeiro", "days": 3}
        texts = [delta async for delta in client.stream("plain words")]
        assert "".join(texts) == "echo: plain words"
        assert stream.result.finish_reason == "tool_calls"


async def test_invalid_streamed_arguments_raise_with_the_raw_string(
    server: FakeOpenAIServer,
) -> None:
    async with await _loopback(server) as client:
        with pytest.raises(OutputValidationError) as caught:
            async for _ in client.stream('!tool=get_weather:{"days":"many"}'):
                pass
    assert caught.value.text == '{"days":"many"}'


async def test_a_multi_turn_conversation_with_a_tool_message_is_sent_as_given(
    server: FakeOpenAIServer,
) -> None:
    async with await _loopback(server) as client:
        first = await client.generate('!tool=get_weather:{"city":"Oslo"}')
        assert first.tool_calls is not None
        call = first.tool_calls[0]
        conversation = [
            {"role": "user", "content": '!tool=get_weather:{"city":"Oslo"}'},
            {"role": "assistant", "tool_calls": [call.to_message_part()]},
            {"role": "tool", "tool_call_id": call.id, "content": "-3C and snow"},
        ]
        answer = await client.generate(conversation)
    assert answer.text == "echo: -3C and snow"
    assert answer.tool_calls is None
    assert answer.finish_reason == "stop"
    assert server.stats().bodies[-1]["messages"] == conversation


async def test_a_tool_message_without_its_call_id_is_refused(server: FakeOpenAIServer) -> None:
    async with await _loopback(server) as client:
        with pytest.raises(InvalidParameterError, match="tool_call_id"):
            await client.generate([{"role": "tool", "content": "-3C"}])


async def test_tool_calls_are_stored_and_a_resumed_run_returns_them_as_they_were(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    db = tmp_path / "run.sqlite"
    prompts = ['!tool=get_weather:{"city":"Lima"}', "no tool here"]
    async with await _loopback(server) as client:
        first = await client.generate_many(prompts, results_db=db, tools=[get_weather])
        again = await client.generate_many(prompts, results_db=db, tools=[get_weather])
    assert [g.from_store for g in again] == [True, True]
    assert again[0].tool_calls == first[0].tool_calls
    assert again[0].tool_calls is not None
    assert again[0].tool_calls[0].arguments == {"city": "Lima"}
    assert again[0].finish_reason == "tool_calls"
    assert again[1].tool_calls is None and again[1].text == first[1].text
    assert server.stats().requests == 2


def _weather_tool() -> Any:
    def get_weather(city: str, days: int = 1) -> str:
        """The weather in a city, for some days."""
        return city

    return get_weather


def test_a_function_tool_keys_a_stored_request_by_name_and_signature_not_address() -> None:
    messages = [{"role": "user", "content": "Weather?"}]
    first, second = _weather_tool(), _weather_tool()
    assert first is not second
    keys = {ResultStore.request_key("openai/m", messages, {"tools": [f]}) for f in (first, second)}
    assert len(keys) == 1
    assert ResultStore.request_key("openai/m", messages, {"tools": [get_weather]}) not in keys
