"""OpenTelemetry spans of every call and batch, built on the events (`model_registry.on`).

`instrument()` turns them on: one CLIENT span per call (`chat {model}`, `embeddings
{model}`; the GenAI conventions' attributes, ours under `model_registry.*`), its attempts,
limiter waits, cooldowns, retries and fallbacks as span events, and one span per batch,
parent of its calls. Needs `opentelemetry-api` (the `otel` extra); nothing of it is
imported before the call. Prompts and answers are recorded only with `capture_content=True`.
"""

from __future__ import annotations

from typing import Any

from model_registry import events
from model_registry.errors import BackendNotInstalledError

__all__ = ["instrument", "uninstrument"]

_INSTALL_HINT = (
    "model_registry.instrument() needs opentelemetry-api: pip install "
    "'model-registry-llm[otel]' (and an SDK with an exporter, e.g. opentelemetry-sdk)"
)
#: Span events: the events of a call other than its start and end.
_STEPS = ("limiter_wait", "attempt", "retry", "cooldown", "fallback")
_active: list[_Spans] = []


def instrument(tracer_provider: Any = None, capture_content: bool = False) -> None:
    """Record a span for every call and batch from now on, with `tracer_provider` (the
    global one when None); `capture_content=True` adds prompts and answers."""
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise BackendNotInstalledError(_INSTALL_HINT) from exc
    uninstrument()
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    spans = _Spans(provider.get_tracer("model_registry"), capture_content)
    for name, handler in spans.handlers().items():
        events.on(name, handler)
    _active.append(spans)


def uninstrument() -> None:
    """Stop recording spans (what `instrument` turned on); nothing when it was not on."""
    while _active:
        for name, handler in _active.pop().handlers().items():
            events.off(name, handler)


def _ns(epoch_s: float) -> int:
    return int(epoch_s * 1e9)


class _Spans:
    """The spans open now, by call or batch id; each handler runs inline in the call."""

    def __init__(self, tracer: Any, capture_content: bool) -> None:
        self.tracer = tracer
        self.capture_content = capture_content
        self.open: dict[str, Any] = {}
        self.waited: dict[str, float] = {}

    def handlers(self) -> dict[str, Any]:
        found: dict[str, Any] = {name: self.step for name in _STEPS}
        found.update(
            call_start=self.call_start,
            call_end=self.call_end,
            batch_start=self.batch_start,
            batch_end=self.batch_end,
        )
        return found

    def call_start(self, event: events.CallStart) -> None:
        from opentelemetry import trace

        batch = self.open.get(event.batch_id) if event.batch_id else None
        context = trace.set_span_in_context(batch) if batch is not None else None
        span = self.tracer.start_span(
            f"{event.operation} {event.model}",
            context=context,
            kind=trace.SpanKind.CLIENT,
            start_time=_ns(event.at),
            attributes={
                "gen_ai.operation.name": event.operation,
                "gen_ai.provider.name": event.provider,
                "gen_ai.request.model": event.model,
                "model_registry.name": event.name,
                "model_registry.call_id": event.call_id,
                **({"model_registry.route": event.route} if event.route else {}),
            },
        )
        if self.capture_content and event.prompt is not None and event.operation == "chat":
            span.set_attribute("gen_ai.input.messages", _messages(event.prompt))
        self.open[event.call_id] = span

    def step(self, event: events.Event) -> None:
        span = self.open.get(event.call_id)
        if span is None:
            return
        fields = {
            f"model_registry.{key}": value
            for key, value in event.to_dict().items()
            if key not in ("event", "call_id", "provider", "model", "route", "at")
            and isinstance(value, str | int | float | bool)
        }
        if isinstance(event, events.LimiterWait):
            self.waited[event.call_id] = self.waited.get(event.call_id, 0.0) + event.seconds
        if isinstance(event, events.Retry):
            fields["error.type"] = event.error
        span.add_event(event.kind, attributes=fields, timestamp=_ns(event.at))

    def call_end(self, event: events.CallEnd) -> None:
        span = self.open.pop(event.call_id, None)
        if span is None:  # an answer read from a results_db: counted on its batch's span
            return
        from opentelemetry.trace import Status, StatusCode

        attributes: dict[str, Any] = {
            "model_registry.name": event.name,
            "model_registry.attempts": event.attempts,
            "model_registry.limiter_wait_s": self.waited.pop(event.call_id, 0.0),
            "model_registry.latency_s": event.latency_s,
        }
        if event.route:  # the answering name's, as `model_registry.name`
            attributes["model_registry.route"] = event.route
        if event.cost is not None:
            attributes["model_registry.cost"] = event.cost
        if event.queue_s is not None:
            attributes["model_registry.queue_s"] = event.queue_s
        generation = event.generation
        if event.embeddings is not None:
            attributes["gen_ai.response.model"] = event.embeddings.model
            if event.embeddings.usage.prompt_tokens is not None:
                attributes["gen_ai.usage.input_tokens"] = event.embeddings.usage.prompt_tokens
        elif generation is not None:
            usage = generation.usage
            attributes["gen_ai.response.model"] = generation.model
            attributes["gen_ai.response.finish_reasons"] = [generation.finish_reason or ""]
            if usage.prompt_tokens is not None:
                attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
            if usage.completion_tokens is not None:
                attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
            if self.capture_content:
                import json

                attributes["gen_ai.output.messages"] = json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": generation.text}]}]
                )
        else:
            attributes["error.type"] = event.error or "error"
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.set_attributes(attributes)
        span.end(end_time=_ns(event.at))

    def batch_start(self, event: events.BatchStart) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.provider.name": event.provider,
            "gen_ai.request.model": event.model,
            "model_registry.name": event.name,
        }
        if event.prompts is not None:  # unknown for an iterable: set at the end
            attributes["model_registry.prompts"] = event.prompts
        self.open[event.call_id] = self.tracer.start_span(
            f"batch {event.model}", start_time=_ns(event.at), attributes=attributes
        )

    def batch_end(self, event: events.BatchEnd) -> None:
        span = self.open.pop(event.call_id, None)
        if span is None:
            return
        span.set_attributes(
            {
                "model_registry.prompts": event.prompts,
                "model_registry.succeeded": event.succeeded,
                "model_registry.failed": event.failed,
                "model_registry.from_store": event.from_store,
                "model_registry.cost": event.cost,
            }
        )
        if event.error is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_attribute("error.type", event.error)
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.end(end_time=_ns(event.at))


def _messages(prompt: Any) -> str:
    """A prompt as the conventions' input messages (JSON)."""
    import json

    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    return json.dumps(
        [
            {"role": m.get("role"), "parts": [{"type": "text", "content": m.get("content")}]}
            for m in prompt
            if isinstance(m, dict)
        ],
        default=str,
    )
