"""Structured output, logprobs and reasoning text at the wire (respx at the real URLs).

What each provider receives through LiteLLM for `response_format=SomeModel`, and how its
answer becomes `Generation.parsed`, `.logprobs` and `.reasoning`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec
import pytest
import respx
from pydantic import BaseModel, Field

from model_registry import InvalidParameterError, OutputValidationError, aliases, get_client
from model_registry.types import TokenLogprob
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY
from tests.hosted.test_wire import (
    ANTHROPIC_RESPONSE,
    ANTHROPIC_URL,
    DEEPSEEK_RESPONSE,
    DEEPSEEK_URL,
    GEMINI_RESPONSE,
    GEMINI_URL,
    OPENAI_RESPONSE,
    OPENAI_URL,
)

pytestmark = pytest.mark.usefixtures("provider_keys")


class Verdict(BaseModel):
    label: Literal["good", "bad"]
    score: int = Field(ge=1, le=5)
    reasons: list[str]


class VerdictStruct(msgspec.Struct):
    label: Literal["good", "bad"]
    score: int


ANSWER = '{"label":"good","score":4,"reasons":["clear"]}'
SCHEMA = Verdict.model_json_schema()
CLOSED = {**SCHEMA, "additionalProperties": False}
OPENAI_FORMAT = {
    "type": "json_schema",
    "json_schema": {"schema": CLOSED, "name": "Verdict", "strict": True},
}


def _openai_answer(content: str, **message: Any) -> dict[str, Any]:
    choice = {**OPENAI_RESPONSE["choices"][0]}
    choice["message"] = {"role": "assistant", "content": content, **message}
    return {**OPENAI_RESPONSE, "choices": [choice]}


def _anthropic_answer(content: str) -> dict[str, Any]:
    return {**ANTHROPIC_RESPONSE, "content": [{"type": "text", "text": content}]}


def _gemini_answer(content: str) -> dict[str, Any]:
    candidate = {**GEMINI_RESPONSE["candidates"][0], "content": {"parts": [{"text": content}]}}
    return {**GEMINI_RESPONSE, "candidates": [candidate]}


def _deepseek_answer(content: str, **message: Any) -> dict[str, Any]:
    return {**_openai_answer(content, **message), "model": DEEPSEEK_RESPONSE["model"]}


def _body(route: respx.Route) -> dict[str, Any]:
    return json.loads(route.calls.last.request.content)


ANTHROPIC_SCORE = {
    "description": "Note: minimum value: 1, maximum value: 5.",
    "title": "Score",
    "type": "integer",
}


@pytest.mark.parametrize(
    ("name", "url", "answer", "sent"),
    [
        pytest.param(
            "openai:gpt-4.1",
            OPENAI_URL,
            _openai_answer(ANSWER),
            lambda body: body["response_format"] == OPENAI_FORMAT,
            id="openai",
        ),
        pytest.param(
            "anthropic:claude-sonnet-4-5",
            ANTHROPIC_URL,
            _anthropic_answer(ANSWER),
            # Anthropic's structured outputs take no integer range: LiteLLM moves it into
            # the description, and our validation still enforces it on the answer.
            lambda body: (
                body["output_format"]
                == {
                    "type": "json_schema",
                    "schema": {
                        **CLOSED,
                        "properties": {**SCHEMA["properties"], "score": ANTHROPIC_SCORE},
                    },
                }
            ),
            id="anthropic",
        ),
        pytest.param(
            "gemini:gemini-2.5-flash",
            GEMINI_URL,
            _gemini_answer(ANSWER),
            lambda body: (
                body["generationConfig"]
                == {
                    "max_output_tokens": 64,
                    "response_mime_type": "application/json",
                    "response_json_schema": SCHEMA,
                }
            ),
            id="gemini",
        ),
        pytest.param(
            "deepseek:deepseek-chat",
            DEEPSEEK_URL,
            _deepseek_answer(ANSWER),
            lambda body: body["response_format"] == OPENAI_FORMAT,
            id="deepseek",
        ),
    ],
)
async def test_each_provider_gets_its_json_schema_format_and_the_answer_is_parsed(
    respx_mock: respx.MockRouter, name: str, url: str, answer: dict[str, Any], sent: Any
) -> None:
    route = respx_mock.post(url).mock(return_value=httpx.Response(200, json=answer))
    async with get_client(name) as client:
        generation = await client.generate("Judge it.", response_format=Verdict, max_tokens=64)
    assert sent(_body(route)), _body(route)
    assert generation.parsed == Verdict(label="good", score=4, reasons=["clear"])
    assert generation.text == ANSWER


@pytest.mark.parametrize(
    ("response_format", "expected", "answer", "parsed"),
    [
        pytest.param(
            VerdictStruct,
            {
                "name": "VerdictStruct",
                "strict": True,
                "schema": {
                    "title": "VerdictStruct",
                    "type": "object",
                    "properties": {
                        "label": {"enum": ["bad", "good"]},
                        "score": {"type": "integer"},
                    },
                    "required": ["label", "score"],
                    "additionalProperties": False,
                },
            },
            '{"label":"bad","score":2}',
            VerdictStruct(label="bad", score=2),
            id="struct",
        ),
        pytest.param(
            {"title": "Pair", "type": "object", "properties": {"a": {"type": "integer"}}},
            {
                "name": "Pair",
                "strict": True,
                "schema": {
                    "title": "Pair",
                    "type": "object",
                    "properties": {"a": {"type": "integer"}},
                    "additionalProperties": False,
                },
            },
            '{"a":1}',
            {"a": 1},
            id="schema-dict",
        ),
    ],
)
async def test_a_struct_or_a_schema_dict_is_sent_as_a_strict_json_schema(
    respx_mock: respx.MockRouter,
    response_format: Any,
    expected: dict[str, Any],
    answer: str,
    parsed: Any,
) -> None:
    route = respx_mock.post(OPENAI_URL).mock(
        return_value=httpx.Response(200, json=_openai_answer(answer))
    )
    async with get_client("openai:gpt-4.1") as client:
        generation = await client.generate("x", response_format=response_format)
    assert _body(route)["response_format"] == {"type": "json_schema", "json_schema": expected}
    assert generation.parsed == parsed


async def test_a_schema_dict_answer_is_plain_validated_data(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(OPENAI_URL).mock(
        return_value=httpx.Response(200, json=_openai_answer('{"a": 3}'))
    )
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    async with get_client("openai:gpt-4.1") as client:
        generation = await client.generate("x", response_format=schema)
    assert generation.parsed == {"a": 3}
    assert generation.to_dict()["parsed"] == {"a": 3}


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        pytest.param('{"label": "good", "score": 4', "Invalid JSON", id="not-json"),
        pytest.param('{"label": "fine", "score": 9, "reasons": []}', "label", id="enum"),
        pytest.param(
            '{"label": "good", "score": 9, "reasons": []}', "less than or equal", id="range"
        ),
    ],
)
async def test_an_answer_that_does_not_validate_raises_with_the_raw_text(
    respx_mock: respx.MockRouter, answer: str, problem: str
) -> None:
    respx_mock.post(OPENAI_URL).mock(return_value=httpx.Response(200, json=_openai_answer(answer)))
    async with get_client("openai:gpt-4.1") as client:
        with pytest.raises(OutputValidationError) as caught:
            await client.generate("x", response_format=Verdict)
    error = caught.value
    assert error.text == answer
    assert problem in error.validation_message
    assert (error.provider, error.model) == ("openai", "gpt-4.1")
    assert "Verdict" in str(error) and ".text" in str(error)


async def test_a_schema_dict_violation_names_the_place(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(OPENAI_URL).mock(
        return_value=httpx.Response(200, json=_openai_answer('{"a": "three"}'))
    )
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    async with get_client("openai:gpt-4.1") as client:
        with pytest.raises(OutputValidationError) as caught:
            await client.generate("x", response_format=schema)
    assert caught.value.validation_message == "'three' is not of type 'integer' (at $['a'])"


LOGPROBS = {
    "content": [
        {
            "token": "Par",
            "logprob": -0.01,
            "bytes": [80, 97, 114],
            "top_logprobs": [
                {"token": "Par", "logprob": -0.01, "bytes": [80, 97, 114]},
                {"token": "Lyon", "logprob": -4.6, "bytes": [76, 121, 111, 110]},
            ],
        },
        {
            "token": "is.",
            "logprob": -0.2,
            "bytes": [105, 115, 46],
            "top_logprobs": [
                {"token": "is.", "logprob": -0.2, "bytes": [105, 115, 46]},
                {"token": "is", "logprob": -1.7, "bytes": [105, 115]},
            ],
        },
    ],
    "refusal": None,
}


async def test_logprobs_are_parsed_from_an_openai_answer(respx_mock: respx.MockRouter) -> None:
    answer = _openai_answer("Paris.")
    answer["choices"][0]["logprobs"] = LOGPROBS
    route = respx_mock.post(OPENAI_URL).mock(return_value=httpx.Response(200, json=answer))
    async with get_client("openai:gpt-4.1") as client:
        generation = await client.generate("x", logprobs=True, top_logprobs=2)
    assert (_body(route)["logprobs"], _body(route)["top_logprobs"]) == (True, 2)
    assert generation.logprobs == [
        TokenLogprob("Par", -0.01, (("Par", -0.01), ("Lyon", -4.6))),
        TokenLogprob("is.", -0.2, (("is.", -0.2), ("is", -1.7))),
    ]


async def test_logprobs_asked_and_not_returned_keep_the_answer(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.post(OPENAI_URL).mock(
        return_value=httpx.Response(200, json=_openai_answer("Paris."))
    )
    async with get_client("openai:gpt-4.1") as client:
        generation = await client.generate("x", logprobs=True)
    assert (generation.text, generation.logprobs) == ("Paris.", None)


async def test_top_logprobs_without_logprobs_is_refused_before_any_request(
    respx_mock: respx.MockRouter,
) -> None:
    async with get_client("openai:gpt-4.1") as client:
        with pytest.raises(
            InvalidParameterError, match=r"top_logprobs in a call to .* needs logprobs=True"
        ):
            await client.generate("x", top_logprobs=2)


async def test_reasoning_text_comes_from_a_deepseek_answer(respx_mock: respx.MockRouter) -> None:
    answer = _deepseek_answer("Paris.", reasoning_content="France's capital is Paris.")
    respx_mock.post(DEEPSEEK_URL).mock(return_value=httpx.Response(200, json=answer))
    async with get_client("deepseek:deepseek-reasoner") as client:
        generation = await client.generate("Capital of France?")
    assert generation.text == "Paris."
    assert generation.reasoning == "France's capital is Paris."


async def test_an_answer_without_reasoning_has_none(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(OPENAI_URL).mock(
        return_value=httpx.Response(200, json=_openai_answer("Paris."))
    )
    async with get_client("openai:gpt-4.1") as client:
        generation = await client.generate("x")
    assert (generation.reasoning, generation.parsed, generation.logprobs) == (None, None, None)
    assert "reasoning" not in generation.to_dict()


def _sse(chunks: list[dict[str, Any]]) -> bytes:
    lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1754000000,
        "model": "deepseek-reasoner",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


async def test_a_stream_keeps_reasoning_out_of_its_deltas_and_parses_at_the_end(
    respx_mock: respx.MockRouter,
) -> None:
    chunks = [
        _chunk({"role": "assistant", "reasoning_content": "Think: "}),
        _chunk({"reasoning_content": "it is good."}),
        _chunk({"content": ANSWER[:20]}),
        _chunk({"content": ANSWER[20:]}),
        _chunk({}, finish="stop"),
    ]
    respx_mock.post(DEEPSEEK_URL).mock(
        return_value=httpx.Response(
            200, content=_sse(chunks), headers={"content-type": "text/event-stream"}
        )
    )
    async with get_client("deepseek:deepseek-reasoner") as client:
        stream = client.stream("Judge it.", response_format=Verdict)
        deltas = [delta async for delta in stream]
    assert "".join(deltas) == ANSWER
    assert stream.result is not None
    assert stream.result.reasoning == "Think: it is good."
    assert stream.result.parsed == Verdict(label="good", score=4, reasons=["clear"])


async def test_chat_template_kwargs_pass_through_as_a_body_key(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(OPENAI_URL).mock(
        return_value=httpx.Response(200, json=_openai_answer("ok"))
    )
    async with get_client("openai:gpt-4.1") as client:
        await client.generate("x", chat_template_kwargs={"enable_thinking": False})
    assert _body(route)["chat_template_kwargs"] == {"enable_thinking": False}


async def test_an_alias_schema_file_is_read_at_load_and_sent_as_its_schema(
    respx_mock: respx.MockRouter, tmp_path: Path, user_aliases: Callable[[str], Path]
) -> None:
    schema = tmp_path / "pair.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "integer"}}}))
    user_aliases(
        '[aliases."pairs"]\nprovider = "openai"\nmodel_id = "gpt-4.1"\n'
        '[aliases."pairs".defaults]\nresponse_format = "pair.json"\n'
    )
    route = respx_mock.post(OPENAI_URL).mock(
        return_value=httpx.Response(200, json=_openai_answer('{"a": 2}'))
    )
    async with get_client("pairs") as client:
        schema.unlink()  # read once, when the alias file loaded: the calls never read it
        generations = [await client.generate("x") for _ in range(3)]
    assert _body(route)["response_format"]["json_schema"] == {
        "name": "pair",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"a": {"type": "integer"}},
            "additionalProperties": False,
        },
    }
    assert [g.parsed for g in generations] == [{"a": 2}] * 3


async def test_a_stored_answer_is_keyed_by_the_schema_file_content_not_its_path(
    server: FakeOpenAIServer, tmp_path: Path, user_aliases: Callable[[str], Path]
) -> None:
    schema = tmp_path / "pair.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "integer"}}}))
    user_aliases(
        '[aliases."pairs"]\nprovider = "openai"\nmodel_id = "schema-keys"\n'
        '[aliases."pairs".defaults]\nresponse_format = "pair.json"\n'
        f"api_base = {server.base_url!r}\napi_key = {SERVER_KEY!r}\n"
    )
    server.configure("schema-keys", reply='{"a": 1}')
    db = tmp_path / "run.sqlite"

    async def run() -> list[Any]:
        aliases.clear_cache()  # a new run loads the alias files again
        async with get_client("pairs") as client:
            return await client.generate_many(["x", "y"], results_db=db)

    assert [g.parsed for g in await run()] == [{"a": 1}] * 2
    await run()
    assert server.stats("schema-keys").requests == 2  # the rerun answered from the store
    # an edited schema is another request: its stored answers are not returned for it
    schema.write_text(json.dumps({"type": "object", "required": ["a"]}))
    assert [g.parsed for g in await run()] == [{"a": 1}] * 2
    assert server.stats("schema-keys").requests == 4
