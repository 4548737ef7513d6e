"""What reaches each provider's real endpoint, and how its answer becomes a Generation (respx)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from model_registry import Generation, get_client

pytestmark = pytest.mark.usefixtures("provider_keys")

OPENAI_URL = "https://api.openai.com/v1/chat/completions"
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
GEMINI_URL = (
    "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
)
DEEPSEEK_URL = "https://api.deepseek.com/beta/chat/completions"

OPENAI_RESPONSE = {
    "id": "chatcmpl-Bx1",
    "object": "chat.completion",
    "created": 1754000000,
    "model": "gpt-4.1-2025-04-14",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 14,
        "completion_tokens": 2,
        "total_tokens": 16,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_1",
}
ANTHROPIC_RESPONSE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Paris."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 14, "output_tokens": 2},
}
GEMINI_RESPONSE = {
    "candidates": [
        {
            "content": {"parts": [{"text": "Paris."}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 14, "candidatesTokenCount": 2, "totalTokenCount": 16},
    "modelVersion": "gemini-2.5-flash",
    "responseId": "abc123",
}
DEEPSEEK_RESPONSE = {**OPENAI_RESPONSE, "model": "deepseek-chat", "system_fingerprint": "fp_ds"}

PROMPT = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "Capital of France?"},
]


def _body(route: respx.Route) -> dict[str, Any]:
    return json.loads(route.calls.last.request.content)


def _header(route: respx.Route, name: str) -> str | None:
    return route.calls.last.request.headers.get(name)


@pytest.mark.parametrize(
    ("name", "url", "response", "auth_header", "auth_value", "model"),
    [
        (
            "openai:gpt-4.1",
            OPENAI_URL,
            OPENAI_RESPONSE,
            "authorization",
            "Bearer sk-openai-test-key",
            "gpt-4.1-2025-04-14",
        ),
        (
            "anthropic:claude-sonnet-4-5",
            ANTHROPIC_URL,
            ANTHROPIC_RESPONSE,
            "x-api-key",
            "sk-ant-test-key",
            "claude-sonnet-4-5-20250929",
        ),
        (
            "gemini:gemini-2.5-flash",
            GEMINI_URL,
            GEMINI_RESPONSE,
            "x-goog-api-key",
            "gemini-test-key",
            "gemini-2.5-flash",
        ),
        (
            "deepseek:deepseek-chat",
            DEEPSEEK_URL,
            DEEPSEEK_RESPONSE,
            "authorization",
            "Bearer sk-deepseek-test-key",
            "deepseek-chat",
        ),
    ],
)
async def test_each_provider_gets_its_own_request_and_its_answer_parses(
    respx_mock: respx.MockRouter,
    name: str,
    url: str,
    response: dict[str, Any],
    auth_header: str,
    auth_value: str,
    model: str,
) -> None:
    route = respx_mock.post(url).mock(return_value=httpx.Response(200, json=response))
    async with get_client(name, temperature=0.25) as client:
        generation = await client.generate(PROMPT, max_tokens=64)

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == url
    assert _header(route, auth_header) == auth_value
    body = _body(route)
    provider = name.partition(":")[0]
    if provider == "gemini":
        assert body["contents"] == [{"role": "user", "parts": [{"text": "Capital of France?"}]}]
        assert body["system_instruction"] == {"parts": [{"text": "Answer in one word."}]}
        assert body["generationConfig"] == {"temperature": 0.25, "max_output_tokens": 64}
    elif provider == "anthropic":
        assert body["model"] == "claude-sonnet-4-5"
        assert body["system"] == [{"type": "text", "text": "Answer in one word."}]
        assert body["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]}
        ]
        assert (body["temperature"], body["max_tokens"]) == (0.25, 64)
    else:
        assert body == {
            "model": name.partition(":")[2],
            "messages": PROMPT,
            "temperature": 0.25,
            "max_tokens": 64,
        }
    assert isinstance(generation, Generation)
    assert generation.text == "Paris."
    assert generation.finish_reason == "stop"
    usage = generation.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (14, 2, 16)
    assert generation.model == model
    assert generation.provider == provider
    assert generation.latency_s > 0
    assert generation.raw is not None
    assert "raw" not in repr(generation)


async def test_alias_defaults_reach_the_wire_and_kwargs_override_them(
    respx_mock: respx.MockRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aliases = tmp_path / "aliases.toml"
    aliases.write_text(
        '[aliases."thinker"]\nprovider = "openai"\nmodel_id = "gpt-5.2-2025-12-11"\n'
        '[aliases."thinker".defaults]\nreasoning_effort = "high"\ntemperature = 1.0\n'
        "max_completion_tokens = 900\n"
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(aliases))
    route = respx_mock.post(OPENAI_URL).mock(
        return_value=httpx.Response(200, json={**OPENAI_RESPONSE, "model": "gpt-5.2-2025-12-11"})
    )
    async with get_client("thinker", max_completion_tokens=500) as client:
        await client.generate("Why?")
        first = _body(route)
        await client.generate("Why?", reasoning_effort="low", seed=7)
        second = _body(route)

    assert first == {
        "model": "gpt-5.2-2025-12-11",
        "messages": [{"role": "user", "content": "Why?"}],
        "reasoning_effort": "high",
        "temperature": 1.0,
        "max_completion_tokens": 500,
    }
    assert second == {**first, "reasoning_effort": "low", "seed": 7}


async def test_per_call_api_key_and_api_base_reach_the_wire(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("https://proxy.example.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, json=OPENAI_RESPONSE)
    )
    async with get_client("openai:gpt-4.1") as client:
        await client.generate("hi", api_key="sk-per-call", api_base="https://proxy.example.test/v1")
    assert _header(route, "authorization") == "Bearer sk-per-call"


OPENAI_SSE = [
    {
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        ]
    },
    {"choices": [{"index": 0, "delta": {"content": "The"}, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"content": " capital"}, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"content": " is Paris."}, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 14, "completion_tokens": 5, "total_tokens": 19}},
]


def _openai_sse() -> bytes:
    base = {
        "id": "chatcmpl-Bx2",
        "object": "chat.completion.chunk",
        "created": 1754000000,
        "model": "gpt-4.1-2025-04-14",
        "system_fingerprint": "fp_1",
    }
    events = [f"data: {json.dumps({**base, **chunk})}\n\n" for chunk in OPENAI_SSE]
    return ("".join(events) + "data: [DONE]\n\n").encode()


def _anthropic_sse() -> bytes:
    events = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_01",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5-20250929",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 14, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "The"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": " capital is Paris."},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events).encode()


def _gemini_sse() -> bytes:
    chunks = [
        {
            "candidates": [
                {"content": {"parts": [{"text": "The capital"}], "role": "model"}, "index": 0}
            ],
            "modelVersion": "gemini-2.5-flash",
        },
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": " is Paris."}], "role": "model"},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 14,
                "candidatesTokenCount": 5,
                "totalTokenCount": 19,
            },
            "modelVersion": "gemini-2.5-flash",
        },
    ]
    return "".join(f"data: {json.dumps(chunk)}\r\n\r\n" for chunk in chunks).encode()


@pytest.mark.parametrize(
    ("name", "url", "sse", "asks_usage"),
    [
        ("openai:gpt-4.1", OPENAI_URL, _openai_sse(), True),
        ("anthropic:claude-sonnet-4-5", ANTHROPIC_URL, _anthropic_sse(), False),
        (
            "gemini:gemini-2.5-flash",
            GEMINI_URL.replace(":generateContent", ":streamGenerateContent?alt=sse"),
            _gemini_sse(),
            False,
        ),
    ],
)
async def test_stream_yields_deltas_then_holds_the_generation_with_usage(
    respx_mock: respx.MockRouter, name: str, url: str, sse: bytes, asks_usage: bool
) -> None:
    route = respx_mock.post(url).mock(
        return_value=httpx.Response(200, content=sse, headers={"content-type": "text/event-stream"})
    )
    async with get_client(name) as client:
        stream = client.stream("Capital of France?", max_tokens=32)
        deltas = [delta async for delta in stream]

    body = _body(route)
    if name.startswith("gemini"):
        assert body["generationConfig"] == {"max_output_tokens": 32}
    else:
        assert (body["stream"], body["max_tokens"]) == (True, 32)
    if asks_usage:
        assert body["stream_options"] == {"include_usage": True}
    else:
        assert "stream_options" not in body
    assert len(deltas) >= 2
    assert "".join(deltas) == "The capital is Paris."
    assert stream.result is not None
    assert stream.result.text == "The capital is Paris."
    assert stream.result.finish_reason == "stop"
    usage = stream.result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (14, 5, 19)
    assert stream.result.provider == name.partition(":")[0]


async def test_user_stream_options_are_sent_as_given(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(OPENAI_URL).mock(
        return_value=httpx.Response(
            200, content=_openai_sse(), headers={"content-type": "text/event-stream"}
        )
    )
    async with get_client("openai:gpt-4.1") as client:
        async for _ in client.stream("hi", stream_options={"include_usage": False}):
            pass
    assert _body(route)["stream_options"] == {"include_usage": False}
