"""LiteLLM's answers read into a `Generation`: a whole answer, or a stream piece by piece.

Log-probabilities: asked of a provider LiteLLM says does not return them, the call is
refused before it is sent (`refuse_unsupported_logprobs`); asked and not returned anyway,
the paid answer is kept with `logprobs=None` and a warning is logged once per name.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from model_registry.clients._asked import (
    Asked,
    HostedStreamExtras,
    extra_fields,
    field,
    openai_logprobs,
)
from model_registry.clients._litellm_usage import read_usage
from model_registry.clients._tools import ToolCallDeltas, ToolSchemas, read_tool_calls
from model_registry.clients.base import BaseClient
from model_registry.errors import InvalidParameterError
from model_registry.types import Generation, Resolution

__all__ = [
    "StreamState",
    "body_if_not_event_stream",
    "refuse_unsupported_logprobs",
    "stream_extras",
    "whole_answer",
]

logger = logging.getLogger("model_registry")

#: Names whose answer came without the log-probabilities asked for (warned once each).
_warned_no_logprobs: set[str] = set()


def refuse_unsupported_logprobs(params: Mapping[str, Any], resolution: Resolution) -> None:
    """Raise InvalidParameterError, before anything is sent, when `logprobs` or
    `top_logprobs` is asked of a model LiteLLM says does not return them."""
    for key in ("logprobs", "top_logprobs"):
        if params.get(key) in (None, False):
            continue
        supported = _supported_params(resolution.model_id, resolution.spec.route_prefix)
        if supported is not None and key not in supported:
            raise InvalidParameterError(
                f"{key}={params[key]!r} in a call to {resolution.name!r}: LiteLLM says provider "
                f"{resolution.spec.route_prefix!r} does not return log-probabilities for "
                f"{resolution.model_id!r}; call it without {key} (nothing was sent)"
            )


@functools.lru_cache(maxsize=256)
def _supported_params(model: str, provider: str) -> frozenset[str] | None:
    """The OpenAI params LiteLLM sends for `provider`/`model`; None when it does not know.
    Called only once a hosted client has started, so LiteLLM is imported already."""
    from litellm import get_supported_openai_params

    try:
        found = get_supported_openai_params(model=model, custom_llm_provider=provider)
    except Exception:  # a provider LiteLLM cannot look up: the answer tells instead
        return None
    return frozenset(found) if found is not None else None


def _kept_without_logprobs(asked: Asked, returned: bool, client: BaseClient) -> Asked:
    """`asked`, or, when log-probabilities were asked and none came, `asked` without them
    (the answer is kept: it is paid for), with a warning logged once per name."""
    if not asked.logprobs or returned:
        return asked
    if client.name not in _warned_no_logprobs:
        _warned_no_logprobs.add(client.name)
        logger.warning(
            "%s: logprobs were asked, but %s model %r returned none; its answers are kept "
            "with logprobs=None (call it without logprobs to silence this)",
            client.name,
            client.provider,
            client.model_id,
        )
    return asked._replace(logprobs=False)


def whole_answer(response: Any, client: BaseClient, latency: float, asked: Asked) -> Generation:
    """The `Generation` of LiteLLM's answer to a call that did not stream (built directly,
    its fields passed by name: no dict of them is made, on every call)."""
    choices = field(response, "choices")
    choice = choices[0] if choices else None
    message = field(choice, "message")
    logprobs = openai_logprobs(field(choice, "logprobs"))
    asked = _kept_without_logprobs(asked, logprobs is not None, client)
    tool_calls = read_tool_calls(
        field(message, "tool_calls"), asked.tools, provider=client.provider, model=client.model_id
    )
    if tool_calls:  # the answer is the calls: there is no text to validate
        asked = asked._replace(schema=None)
    text, finish_reason = field(message, "content") or "", field(choice, "finish_reason")
    parsed, logprobs, reasoning = extra_fields(
        asked,
        text=text,
        finish_reason=finish_reason,
        logprobs=logprobs,
        reasoning=field(message, "reasoning_content"),
        provider=client.provider,
        model=client.model_id,
    )
    return Generation(
        text=text,
        finish_reason=finish_reason,
        usage=read_usage(field(response, "usage")),
        model=field(response, "model") or client.model_id,
        provider=client.provider,
        latency_s=latency,
        raw=response,
        cost=_cost(response),
        name=client.name,
        tool_calls=tool_calls,
        parsed=parsed,
        logprobs=logprobs,
        reasoning=reasoning,
    )


class StreamState:
    """What a stream has said so far: the text pieces, the finish reason, usage, model and
    tool calls (checked against `tools`, the call's tool schemas, at the end)."""

    def __init__(self, tools: ToolSchemas | None = None) -> None:
        self.tools = tools
        self.tool_deltas = ToolCallDeltas()
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
            self.tool_deltas.add(getattr(getattr(choice, "delta", None), "tool_calls", None))
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
            tool_calls=read_tool_calls(
                self.tool_deltas.whole(),
                self.tools,
                provider=client.provider,
                model=client.model_id,
            ),
        )


def stream_extras(
    extras: HostedStreamExtras, whole: Generation, client: BaseClient
) -> dict[str, Any]:
    """The extra fields (parsed, logprobs, reasoning) of a stream's final Generation."""
    extras.asked = _kept_without_logprobs(extras.asked, extras.logprobs is not None, client)
    if whole.tool_calls:  # the answer is the calls: there is no text to validate
        extras.asked = extras.asked._replace(schema=None)
    return extras.fields(
        whole.text, whole.finish_reason, provider=client.provider, model=client.model_id
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
        usage=read_usage(usage),
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
    hidden = field(response, "_hidden_params")
    cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
    if isinstance(cost, int | float) and not isinstance(cost, bool) and cost == cost:
        return float(cost)
    return None
