"""Events (`model_registry.on`) and spans of streams and embeddings on the loopback server:
a stream has the events of `generate`, `embed` and `embed_many` those of a call and a
batch, with `operation="embeddings"`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model_registry import BadRequestError, Embeddings, get_client, instrument, off, uninstrument
from model_registry.events import EVENT_NAMES, BatchEnd, CallEnd, CallStart
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY, model_name
from tests.hosted.test_events import (
    LIMITED_RETRIED_THEN_FALLBACK,
    chain,
    listen,
    without_send_waits,
)

__all__ = ["chain"]  # the fixture, shared with test_events.py

PRICED = "text-embedding-3-small"  # in LiteLLM's price map: 2e-08 USD a token


@pytest.fixture(autouse=True)
def _no_handler_left() -> Iterator[None]:
    yield
    for name in EVENT_NAMES:
        off(name)


async def test_a_stream_rate_limited_then_retried_then_answered_by_a_fallback_has_every_event(
    server: FakeOpenAIServer, chain: dict[str, str]
) -> None:
    async with get_client("primary") as client:
        await client.generate("warm up")
        await client.generate("warm up again")  # the rpm bucket is empty now: ~2 s each
        server.configure(chain["primary"], status=429, headers={"retry-after": "2"})
        seen = listen()
        stream = client.stream("hello there")
        pieces = [piece async for piece in stream]
    assert "".join(pieces) == "echo: hello there" and stream.result.name == "second"
    seen = without_send_waits(seen)
    assert [e.kind for e in seen] == LIMITED_RETRIED_THEN_FALLBACK
    assert len({e.call_id for e in seen}) == 1
    start, wait, *_, fallback, third, end = seen
    assert isinstance(start, CallStart) and (start.prompt, start.operation) == (
        "hello there",
        "chat",
    )
    assert (wait.limit, wait.name) == ("rpm", "primary")  # type: ignore[attr-defined]
    assert (fallback.from_name, fallback.to_name) == ("primary", "second")  # type: ignore[attr-defined]
    assert (third.name, third.number) == ("second", 1)  # type: ignore[attr-defined]
    assert isinstance(end, CallEnd)
    assert (end.name, end.error, end.attempts, end.operation) == ("second", None, 3, "chat")
    assert end.generation is stream.result and end.latency_s >= wait.seconds  # type: ignore[attr-defined]
    assert json.loads(json.dumps(end.to_dict()))["generation"]["text"] == "echo: hello there"


async def test_a_call_made_between_two_pieces_of_a_stream_is_a_call_of_its_own(
    server: FakeOpenAIServer, chain: dict[str, str]
) -> None:
    server.configure(chain["second"], chunk_delay=0.05)
    seen = listen()
    async with get_client("second") as client:
        stream = client.stream("one two three")
        first = await anext(stream)
        inner = await client.generate("inside")
        rest = [piece async for piece in stream]
    assert first + "".join(rest) == "echo: one two three" and inner.text == "echo: inside"
    starts = [e for e in seen if isinstance(e, CallStart)]
    ends = {e.call_id: e for e in seen if isinstance(e, CallEnd)}
    assert [s.prompt for s in starts] == ["one two three", "inside"]
    assert len({s.call_id for s in starts}) == 2
    assert [ends[s.call_id].generation.text for s in starts] == [  # type: ignore[union-attr]
        "echo: one two three",
        "echo: inside",
    ]
    assert all(ends[s.call_id].attempts == 1 for s in starts)


async def test_a_stream_that_fails_or_is_closed_early_ends_with_its_error(
    server: FakeOpenAIServer, chain: dict[str, str]
) -> None:
    server.configure(chain["second"], chunk_delay=0.05)
    seen = listen()
    async with get_client("second") as client:
        stream = client.stream("one two three four")
        await anext(stream)
        await stream.aclose()
        server.configure(chain["second"], status=400, message="bad prompt")
        with pytest.raises(BadRequestError):
            async for _ in client.stream("refused"):
                pass
    closed, failed = (e for e in seen if isinstance(e, CallEnd))
    assert (closed.error, closed.generation) == ("GeneratorExit", None)
    assert "closed the stream before its end" in (closed.message or "")
    assert (failed.error, failed.status_code, failed.attempts) == ("BadRequestError", 400, 1)
    assert [e.kind for e in seen].count("call_start") == 2


async def test_embed_emits_call_events_with_the_embeddings_and_their_cost(
    server: FakeOpenAIServer,
) -> None:
    seen = listen()
    client = get_client(f"openai:{PRICED}", api_base=server.url, api_key=SERVER_KEY)
    async with client:
        embeddings = await client.embed(["the cat sat", "a dog"])
    assert [e.kind for e in seen] == ["call_start", "attempt", "call_end"]
    start, _, end = seen
    assert isinstance(start, CallStart) and isinstance(end, CallEnd)
    assert (start.operation, start.prompt, start.model) == (
        "embeddings",
        ["the cat sat", "a dog"],
        PRICED,
    )
    assert (end.operation, end.generation, end.error) == ("embeddings", None, None)
    assert end.embeddings is embeddings and end.cost == pytest.approx(5 * 2e-08)
    assert json.loads(json.dumps(end.to_dict()))["embeddings"]["usage"]["prompt_tokens"] == 5


async def test_embed_many_is_a_batch_of_calls_and_a_rerun_counts_the_stored_texts(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    seen = listen()
    db = tmp_path / "vectors.sqlite"
    texts = ["a", "b c", "d", "e f g", "h"]
    async with get_client(f"openai:{PRICED}", api_base=server.url, api_key=SERVER_KEY) as client:
        await client.embed_many(texts, batch_size=2, results_db=db)
        first = list(seen)
        seen.clear()
        again = await client.embed_many([*texts, "new one"], batch_size=2, results_db=db)
    kinds = [e.kind for e in first]
    assert (kinds[0], kinds[-1]) == ("batch_start", "batch_end")
    assert sorted(kinds[1:-1]) == ["attempt"] * 3 + ["call_end"] * 3 + ["call_start"] * 3
    batch_id = first[0].call_id
    assert {e.batch_id for e in first if isinstance(e, CallStart)} == {batch_id}
    end = first[-1]
    assert isinstance(end, BatchEnd) and end.call_id == batch_id
    assert (end.prompts, end.succeeded, end.failed, end.from_store) == (5, 5, 0, 0)
    assert end.cost == pytest.approx(8 * 2e-08)  # a token a word
    assert [e.kind for e in seen] == [
        "batch_start",
        "call_start",
        "attempt",
        "call_end",
        "batch_end",
    ]
    rerun = seen[-1]
    assert isinstance(rerun, BatchEnd) and isinstance(again, Embeddings)
    assert (rerun.prompts, rerun.succeeded, rerun.from_store) == (6, 6, 5)
    assert rerun.cost == pytest.approx(2 * 2e-08)  # only the new text's request


async def test_an_embed_many_that_fails_counts_the_texts_of_the_failed_request(
    server: FakeOpenAIServer,
) -> None:
    model = model_name()
    server.configure(model, status=400, message="too long")
    seen = listen()
    async with get_client(f"openai:{model}", api_base=server.url, api_key=SERVER_KEY) as client:
        with pytest.raises(BadRequestError):
            await client.embed_many(["a", "b", "c"], batch_size=2, concurrency=1)
    end = seen[-1]
    assert isinstance(end, BatchEnd)
    assert (end.error, end.succeeded, end.failed) == ("BadRequestError", 0, 2)
    ends = [e for e in seen if isinstance(e, CallEnd)]
    assert [(e.operation, e.error) for e in ends] == [("embeddings", "BadRequestError")]


sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")  # a dev dependency: CI has it
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode  # noqa: E402


@pytest.fixture
def exporter() -> Iterator[Any]:
    found = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(found))
    instrument(tracer_provider=provider)
    yield found
    uninstrument()


async def test_a_stream_and_an_embed_have_their_spans(
    server: FakeOpenAIServer, exporter: Any
) -> None:
    model = model_name()
    async with get_client(f"openai:{model}", api_base=server.url, api_key=SERVER_KEY) as client:
        stream = client.stream("three words here")
        text = "".join([piece async for piece in stream])
    async with get_client(f"openai:{PRICED}", api_base=server.url, api_key=SERVER_KEY) as client:
        await client.embed(["four words in here"])
    chat, embed = exporter.get_finished_spans()
    assert text == "echo: three words here" and chat.name == f"chat {model}"
    attributes = dict(chat.attributes)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.usage.output_tokens"] == 4
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert [e.name for e in chat.events] == ["attempt"]
    assert embed.name == f"embeddings {PRICED}" and embed.status.status_code != StatusCode.ERROR
    attributes = dict(embed.attributes)
    assert attributes["gen_ai.operation.name"] == "embeddings"
    assert attributes["gen_ai.usage.input_tokens"] == 4
    assert attributes["model_registry.cost"] == pytest.approx(4 * 2e-08)
    assert "gen_ai.usage.output_tokens" not in attributes
