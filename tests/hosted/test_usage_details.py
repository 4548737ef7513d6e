"""Cached and reasoning tokens read from each provider's own usage shape (respx at the real
URLs, and the loopback server), kept in a results_db and summed by its summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from model_registry import ResultStore, Usage, get_client
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY

OPENAI_URL = "https://api.openai.com/v1/chat/completions"
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
GEMINI_URL = (
    "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
)

OPENAI_RESPONSE = {
    "id": "chatcmpl-C1",
    "object": "chat.completion",
    "created": 1754000000,
    "model": "o4-mini-2025-04-16",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 256,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": None,
}
OPENAI_PLAIN_USAGE = {"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16}
ANTHROPIC_RESPONSE = {
    "id": "msg_01Cache",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Paris."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 14,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 2048,
        "output_tokens": 2,
    },
}
GEMINI_RESPONSE = {
    "candidates": [
        {
            "content": {"parts": [{"text": "Paris."}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 2100,
        "cachedContentTokenCount": 2048,
        "candidatesTokenCount": 2,
        "thoughtsTokenCount": 90,
        "totalTokenCount": 2192,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "abc123",
}

pytestmark = pytest.mark.usefixtures("provider_keys")


@pytest.mark.parametrize(
    ("name", "url", "response", "expected"),
    [
        (
            "openai:o4-mini",
            OPENAI_URL,
            OPENAI_RESPONSE,
            Usage(2006, 300, 2306, cached_tokens=1920, reasoning_tokens=256),
        ),
        (
            "openai:gpt-4.1",
            OPENAI_URL,
            {**OPENAI_RESPONSE, "usage": OPENAI_PLAIN_USAGE},
            Usage(14, 2, 16, cached_tokens=None, reasoning_tokens=None),
        ),
        # LiteLLM counts Anthropic's cache reads into prompt_tokens, and says 0 reasoning
        # tokens for an answer without a thinking block.
        (
            "anthropic:claude-sonnet-4-5",
            ANTHROPIC_URL,
            ANTHROPIC_RESPONSE,
            Usage(2062, 2, 2064, cached_tokens=2048, reasoning_tokens=0),
        ),
        (
            "gemini:gemini-2.5-flash",
            GEMINI_URL,
            GEMINI_RESPONSE,
            Usage(2100, 92, 2192, cached_tokens=2048, reasoning_tokens=90),
        ),
    ],
    ids=["openai", "openai-without-details", "anthropic", "gemini"],
)
async def test_cached_and_reasoning_tokens_come_from_each_providers_usage(
    respx_mock: respx.MockRouter, name: str, url: str, response: dict[str, Any], expected: Usage
) -> None:
    route = respx_mock.post(url).mock(return_value=httpx.Response(200, json=response))
    async with get_client(name) as client:
        generation = await client.generate("Capital of France?", max_tokens=400)

    assert route.called
    assert generation.usage == expected
    assert generation.to_dict()["usage"] == {
        "prompt_tokens": expected.prompt_tokens,
        "completion_tokens": expected.completion_tokens,
        "total_tokens": expected.total_tokens,
        "cached_tokens": expected.cached_tokens,
        "reasoning_tokens": expected.reasoning_tokens,
    }


def _openai_sse() -> bytes:
    head = {
        "id": "chatcmpl-C2",
        "object": "chat.completion.chunk",
        "created": 1754000000,
        "model": "o4-mini-2025-04-16",
        "system_fingerprint": None,
    }
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"index": 0, "delta": {"content": "Par"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"content": "is."}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": OPENAI_RESPONSE["usage"]},
    ]
    events = [f"data: {json.dumps({**head, **chunk})}\n\n" for chunk in chunks]
    return ("".join(events) + "data: [DONE]\n\n").encode()


def _anthropic_sse() -> bytes:
    message = {
        "id": "msg_02Cache",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 14,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 2048,
            "output_tokens": 1,
        },
    }
    text_delta = {"type": "text_delta", "text": "Paris."}
    events = [
        ("message_start", {"type": "message_start", "message": message}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": text_delta}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 2},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events).encode()


@pytest.mark.parametrize(
    ("name", "url", "sse", "cached", "reasoning"),
    [
        ("openai:o4-mini", OPENAI_URL, _openai_sse(), 1920, 256),
        ("anthropic:claude-sonnet-4-5", ANTHROPIC_URL, _anthropic_sse(), 2048, 0),
    ],
    ids=["openai", "anthropic"],
)
async def test_a_streams_final_usage_carries_cached_and_reasoning_tokens(
    respx_mock: respx.MockRouter, name: str, url: str, sse: bytes, cached: int, reasoning: int
) -> None:
    respx_mock.post(url).mock(
        return_value=httpx.Response(200, content=sse, headers={"content-type": "text/event-stream"})
    )
    async with get_client(name) as client:
        stream = client.stream("Capital of France?", max_tokens=400)
        text = "".join([delta async for delta in stream])

    assert text == stream.result.text == "Paris."
    usage = stream.result.usage
    assert (usage.cached_tokens, usage.reasoning_tokens) == (cached, reasoning)


# --- the loopback server ---------------------------------------------------------------


def _kwargs(server: FakeOpenAIServer) -> dict[str, str]:
    return {"api_base": server.base_url, "api_key": SERVER_KEY}


async def test_loopback_server_reports_the_cached_and_reasoning_tokens_a_prompt_asks_for(
    server: FakeOpenAIServer,
) -> None:
    async with get_client("openai:usage-knobs", **_kwargs(server)) as client:
        whole = await client.generate("long context !cached=7 !reasoning=3")
        stream = client.stream("long context !cached=7 !reasoning=3")
        _ = [delta async for delta in stream]
        plain = await client.generate("no details here")

    assert (whole.usage.cached_tokens, whole.usage.reasoning_tokens) == (7, 3)
    assert (stream.result.usage.cached_tokens, stream.result.usage.reasoning_tokens) == (7, 3)
    assert (plain.usage.cached_tokens, plain.usage.reasoning_tokens) == (None, None)
    assert whole.text == "echo: long context !cached=7 !reasoning=3"


async def test_results_db_keeps_cached_and_reasoning_tokens_and_sums_them(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    db = tmp_path / "run.sqlite"
    prompts = ["a !cached=5 !reasoning=2", "b !cached=11", "c"]
    async with get_client("openai:usage-store", **_kwargs(server)) as client:
        called = await client.generate_many(prompts, results_db=db)
        stored = await client.generate_many(prompts, results_db=db)

    assert [g.from_store for g in stored] == [True] * 3
    assert [g.usage for g in stored] == [g.usage for g in called]
    assert [(g.usage.cached_tokens, g.usage.reasoning_tokens) for g in stored] == [
        (5, 2),
        (11, None),
        (None, None),
    ]
    with ResultStore(db) as store:
        summary = store.summary()
    assert (summary.results, summary.cached_tokens, summary.reasoning_tokens) == (3, 16, 2)
