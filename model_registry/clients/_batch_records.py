"""A batch's answers as the store keeps them, and back: `StoredResult` from a `Generation`
and a `Generation` (`from_store=True`) from a stored answer."""

from __future__ import annotations

from typing import Any

import msgspec

from model_registry.clients._structured import OutputSchema
from model_registry.errors import BudgetExceededError, OutputValidationError
from model_registry.store import ResultStore, StoredResult
from model_registry.types import Generation, TokenLogprob, ToolCall, Usage

__all__ = ["_generation", "_record", "_stored_generation", "keep_in_store"]


def keep_in_store(
    store: ResultStore, key: str | None, index: int, result: Generation | BaseException
) -> None:
    """Queue one answer or error to `store` (an enqueue: its writer commits it); a prompt
    without a key, or not sent for the budget, is not stored (a rerun sends it)."""
    if key is None or isinstance(result, BudgetExceededError):
        return
    if isinstance(result, Generation):
        store.put_result(key, index, _record(result))
    else:
        status = getattr(result, "status_code", None)
        status = status if isinstance(status, int) else None
        store.put_error(key, index, type(result).__name__, str(result), status)


def _record(generation: Generation) -> StoredResult:
    usage = generation.usage
    return StoredResult(
        text=generation.text,
        finish_reason=generation.finish_reason,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cost=generation.cost,
        latency_s=generation.latency_s,
        model=generation.model,
        provider=generation.provider,
        name=generation.name or "",
        extra=_extra(generation),
        cached_tokens=usage.cached_tokens,
        reasoning_tokens=usage.reasoning_tokens,
    )


def _extra(generation: Generation) -> dict[str, Any]:
    """What a store keeps beyond the columns: logprobs, reasoning and tool calls (`parsed`
    is parsed again from the text on resume, so it comes back as the same type)."""
    extra: dict[str, Any] = {}
    if generation.logprobs is not None:
        extra["logprobs"] = generation.logprobs
    if generation.reasoning is not None:
        extra["reasoning"] = generation.reasoning
    if generation.tool_calls is not None:
        extra["tool_calls"] = [call.to_dict() for call in generation.tool_calls]
    return extra


def _stored_generation(stored: StoredResult, schema: OutputSchema | None) -> Generation | None:
    """A stored answer as a Generation; None (call again) when it no longer validates (the
    schema changed under the same name)."""
    try:
        return _generation(stored, schema)
    except OutputValidationError:
        return None


def _generation(stored: StoredResult, schema: OutputSchema | None = None) -> Generation:
    extra = stored.extra
    logprobs, tool_calls = extra.get("logprobs"), extra.get("tool_calls")
    parsed = None
    if schema is not None and not tool_calls:
        parsed = schema.parse(stored.text, provider=stored.provider, model=stored.model)
    return Generation(
        text=stored.text,
        finish_reason=stored.finish_reason,
        usage=Usage(
            stored.prompt_tokens,
            stored.completion_tokens,
            stored.total_tokens,
            stored.cached_tokens,
            stored.reasoning_tokens,
        ),
        model=stored.model,
        provider=stored.provider,
        latency_s=stored.latency_s,
        cost=stored.cost,
        name=stored.name or None,
        from_store=True,
        parsed=parsed,
        logprobs=None if logprobs is None else msgspec.convert(logprobs, list[TokenLogprob]),
        reasoning=extra.get("reasoning"),
        tool_calls=None if tool_calls is None else msgspec.convert(tool_calls, list[ToolCall]),
        batch_id=extra.get("batch_id"),
    )
