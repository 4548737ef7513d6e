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
from tests.hosted.conftest import SERVER_KEY, declare, model_name

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


@pytest.fixture
def limited_chain(server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """ "slow" (tpm 6,000, one retry) -> "priced" (gpt-4o-mini, which LiteLLM prices), each
    on a provider of its own at the loopback server: "slow"'s model id."""
    tag = model_name()
    monkeypatch.setenv("LOOPBACK_KEY", SERVER_KEY)
    text = ""
    for name, model, fallbacks in (("slow", tag, '["priced"]'), ("priced", "gpt-4o-mini", "[]")):
        text += (
            f'[providers."{name}-{tag}"]\nlitellm_prefix = "openai"\n'
            f'api_base = "{server.base_url}"\napi_key_env = "LOOPBACK_KEY"\n\n'
            f'[aliases."{name}"]\nprovider = "{name}-{tag}"\nmodel_id = "{model}"\n'
            f"fallbacks = {fallbacks}\n"
        )
    text += '[aliases."slow".defaults]\nnum_retries = 1\n[limits."slow"]\ntpm = 6000\n'
    (tmp_path / "aliases.toml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(tmp_path / "aliases.toml"))
    return tag


async def test_a_call_that_waits_retries_and_falls_back_has_our_attributes_and_steps(
    server: FakeOpenAIServer, limited_chain: str, exporter: InMemorySpanExporter
) -> None:
    instrument(tracer_provider=tracer_provider(exporter))
    server.configure(limited_chain, status=429, headers={"retry-after": "1"})
    async with get_client("slow") as client:
        # 86 tokens (the prompt's 6, max_tokens 80) over tpm 6,000's 40-token buckets:
        # ~0.47 s of waiting where the call is admitted and as long again at its send
        generation = await client.generate("hello", max_tokens=80)
    assert generation.name == "priced"
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    steps = [(e.name, dict(e.attributes or {})) for e in span.events]
    waits = [a for name, a in steps if name == "limiter_wait"]
    assert [name for name, _ in steps] == [
        "limiter_wait",  # admitted
        "attempt",
        "limiter_wait",  # sent
        "cooldown",
        "retry",
        "attempt",
        "cooldown",
        "fallback",
        "attempt",
    ]
    assert [a["model_registry.limit"] for a in waits] == ["tpm", "tpm"]
    assert all(float(a["model_registry.seconds"]) >= 0.3 for a in waits)  # type: ignore[arg-type]
    waited = sum(float(a["model_registry.seconds"]) for a in waits)  # type: ignore[arg-type]
    assert attributes["model_registry.limiter_wait_s"] == pytest.approx(waited)
    cooldowns = [a for n, a in steps if n == "cooldown"]
    assert [a["model_registry.retry_after"] for a in cooldowns] == [1.0, 1.0]
    (retry,) = [a for n, a in steps if n == "retry"]
    assert (retry["error.type"], retry["model_registry.status_code"]) == ("RateLimitError", 429)
    assert retry["model_registry.retry_after"] == 1.0
    (fallback,) = [a for n, a in steps if n == "fallback"]
    assert (fallback["model_registry.from_name"], fallback["model_registry.to_name"]) == (
        "slow",
        "priced",
    )
    assert fallback["model_registry.reason"] == "RateLimitError"
    # the span is the call's: what was asked (gen_ai.request.*), who answered and how
    assert attributes["gen_ai.request.model"] == limited_chain
    assert attributes["gen_ai.response.model"] == generation.model
    assert attributes["model_registry.name"] == "priced"
    assert attributes["model_registry.route"] == "openai/gpt-4o-mini"
    assert attributes["model_registry.attempts"] == 3
    cost = attributes["model_registry.cost"]
    assert isinstance(cost, float) and cost > 0 and cost == generation.cost


def test_instrument_without_a_provider_uses_the_global_one() -> None:
    code = (
        "import asyncio\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import"
        " InMemorySpanExporter\n"
        "import model_registry\n"
        "from model_registry.testing import fake_openai_server\n"
        "exporter = InMemorySpanExporter()\n"
        "provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "trace.set_tracer_provider(provider)\n"
        "model_registry.instrument()\n"
        "async def main():\n"
        "    async with fake_openai_server() as server:\n"
        "        kwargs = {'api_base': server.url, 'api_key': 'sk-fake'}\n"
        "        async with model_registry.get_client('openai:global', **kwargs) as client:\n"
        "            await client.generate('hi')\n"
        "asyncio.run(main())\n"
        "print([span.name for span in exporter.get_finished_spans()])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split("\n")[-2] == "['chat global']"
