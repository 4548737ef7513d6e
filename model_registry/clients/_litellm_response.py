"""LiteLLM's answers read into a `Generation`: a whole answer, or a stream piece by piece."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from model_registry.clients._asked import Asked, hosted_extras
from model_registry.clients.base import BaseClient
from model_registry.types import Generation, Usage

__all__ = ["StreamState", "body_if_not_event_stream", "whole_answer"]


def whole_answer(response: Any, client: BaseClient, latency: float, asked: Asked) -> Generation:
    """The `Generation` of LiteLLM's answer to a call that did not stream."""
    choice = response.choices[0] if response.choices else None
    message = getattr(choice, "message", None)
    return _generation(
        client,
        latency,
        text=getattr(message, "content", None) or "",
        finish_reason=getattr(choice, "finish_reason", None),
        usage=getattr(response, "usage", None),
        model=getattr(response, "model", None),
        raw=response,
        cost=_cost(response),
        **hosted_extras(response, asked, provider=client.provider, model=client.model_id),
    )


class StreamState:
    """What a stream has said so far: the text pieces, the finish reason, usage and model."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.cost: float | None = None
        self.model: str | None = None

    def add(self, chunk: Any) -> Iterator[str]:
        """Take in one chunk; yield its text delta (of choice 0), if any."""
        self.model = getattr(chunk, "model", None) or self.model
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
            # LiteLLM prices the stream once, at its end (stream_chunk_builder), and puts
            # that figure on the usage chunk it sends last.
            self.cost = _cost(chunk)
        for choice in getattr(chunk, "choices", None) or ():
            if getattr(choice, "index", 0) != 0:
                continue
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
            delta = getattr(getattr(choice, "delta", None), "content", None)
            if delta:
                self.pieces.append(delta)
                yield delta

    def generation(self, client: BaseClient, latency: float) -> Generation:
        """The whole answer."""
        return _generation(
            client,
            latency,
            text="".join(self.pieces),
            finish_reason=self.finish_reason,
            usage=self.usage,
            model=self.model,
            raw=None,
            cost=self.cost,
        )


async def body_if_not_event_stream(response: Any) -> str | None:
    """The body of an answer to a stream request that says it is no event stream, else None."""
    raw = getattr(getattr(response, "completion_stream", None), "response", None)
    headers = getattr(raw, "headers", None)
    if raw is None or headers is None or not hasattr(raw, "aread"):
        return None  # not the openai SDK's stream: the end of the stream tells instead
    content_type = str(headers.get("content-type") or "")
    if not content_type or "event-stream" in content_type:
        return None
    data = await raw.aread()
    return bytes(data).decode("utf-8", "replace")


def _generation(
    client: BaseClient,
    latency: float,
    *,
    text: str,
    finish_reason: str | None,
    usage: Any,
    model: str | None,
    raw: Any,
    cost: float | None,
    **extras: Any,
) -> Generation:
    """A `Generation` of `client`'s: LiteLLM's usage read, its model or else the client's."""
    return Generation(
        text=text,
        finish_reason=finish_reason,
        usage=_usage(usage),
        model=model or client.model_id,
        provider=client.provider,
        latency_s=latency,
        raw=raw,
        cost=cost,
        name=client.name,
        **extras,
    )


def _cost(response: Any) -> float | None:
    """LiteLLM's own price of a call in USD (`_hidden_params["response_cost"]`, which it
    computes once per call), or None where it has none (a model it does not price)."""
    hidden = getattr(response, "_hidden_params", None)
    cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
    if isinstance(cost, int | float) and not isinstance(cost, bool) and cost == cost:
        return float(cost)
    return None


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        total_tokens=getattr(usage, "total_tokens", None),
    )
