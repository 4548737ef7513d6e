"""OpenTelemetry spans (`model_registry.instrument`) of hosted calls on the loopback server,
read back from the SDK's in-memory exporter: the GenAI attributes, retries as span events,
a batch's span over its calls, content only when asked."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model_registry import get_client, instrument, uninstrument
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import declare, model_name

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")  # a dev dependency: CI has it
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    yield InMemorySpanExporter()
    uninstrument()


@pytest.fixture
def model(server: FakeOpenAIServer, provider: str, tmp_path: Path) -> str:
    """An alias "traced" (one retry) on the test's own provider: its model id."""
    model = model_name()
    declare(
        tmp_path,
        server,
        provider,
        f'[aliases.traced]\nprovider = "{provider}"\nmodel_id = "{model}"\n'
        "[aliases.traced.defaults]\nnum_retries = 1\n",
    )
    return model


def tracer_provider(exporter: InMemorySpanExporter) -> Any:
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


async def test_a_call_retried_after_a_503_is_one_span_with_the_genai_attributes(
    server: FakeOpenAIServer, provider: str, model: str, exporter: InMemorySpanExporter
) -> None:
    instrument(tracer_provider=tracer_provider(exporter))
    server.configure(model, status=503, times=1)
    async with get_client("traced") as client:
        generation = await client.generate("hello there")
    (span,) = exporter.get_finished_spans()
    assert span.name == f"chat {model}" and span.kind == SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert {k: v for k, v in attributes.items() if k.startswith("gen_ai.")} == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": generation.model,
        "gen_ai.usage.input_tokens": generation.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": generation.usage.completion_tokens,
        "gen_ai.response.finish_reasons": ("stop",),
    }
    assert attributes["model_registry.name"] == "traced"
    assert attributes["model_registry.attempts"] == 2
    assert attributes["model_registry.route"] == f"openai/{model}"
    assert [e.name for e in span.events] == ["attempt", "retry", "attempt"]
    retry = dict(span.events[1].attributes or {})
    assert retry["error.type"] == "ServiceUnavailableError"
    assert retry["model_registry.status_code"] == 503 and retry["model_registry.wait_s"] > 0
    assert span.status.status_code != StatusCode.ERROR


async def test_a_batch_is_a_span_over_its_calls_and_a_failed_call_is_an_error_span(
    server: FakeOpenAIServer, model: str, exporter: InMemorySpanExporter
) -> None:
    instrument(tracer_provider=tracer_provider(exporter))
    async with get_client("traced") as client:
        results = await client.generate_many(["a", "b", "bad !status=400"], return_exceptions=True)
    assert isinstance(results[2], Exception)
    spans = exporter.get_finished_spans()
    (batch,) = [s for s in spans if s.name.startswith("batch")]
    calls = [s for s in spans if s.name.startswith("chat")]
    assert len(calls) == 3
    assert all(s.parent is not None and s.parent.span_id == batch.context.span_id for s in calls)
    assert dict(batch.attributes or {})["model_registry.succeeded"] == 2
    assert dict(batch.attributes or {})["model_registry.failed"] == 1
    (failed,) = [s for s in calls if s.status.status_code == StatusCode.ERROR]
    assert dict(failed.attributes or {})["error.type"] == "BadRequestError"


async def test_prompts_and_answers_are_recorded_only_when_asked(
    server: FakeOpenAIServer, model: str, exporter: InMemorySpanExporter
) -> None:
    instrument(tracer_provider=tracer_provider(exporter))
    async with get_client("traced") as client:
        await client.generate("quiet")
        instrument(tracer_provider=tracer_provider(exporter), capture_content=True)
        await client.generate("loud")
        uninstrument()
        await client.generate("unseen")
    quiet, loud = exporter.get_finished_spans()
    assert not any(k.endswith("messages") for k in (quiet.attributes or {}))
    attributes = dict(loud.attributes or {})
    assert json.loads(str(attributes["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "loud"}]}
    ]
    output = json.loads(str(attributes["gen_ai.output.messages"]))
    assert output[0]["parts"][0]["content"] == "echo: loud"


def test_the_package_imports_no_opentelemetry_until_instrument_is_called() -> None:
    code = (
        "import sys, model_registry\n"
        "before = any(m.startswith('opentelemetry') for m in sys.modules)\n"
        "model_registry.instrument()\n"
        "print(before, any(m.startswith('opentelemetry') for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
