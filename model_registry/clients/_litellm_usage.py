"""Token usage between LiteLLM's shape and ours: `read_usage` reads LiteLLM's normalised usage
of an answer (a call's, a stream's, an embedding's, a batch answer's) into our `Usage`;
`litellm_usage` writes ours back as LiteLLM's, for its price calculators.
"""

from __future__ import annotations

from typing import Any

from model_registry.types import Usage

__all__ = ["litellm_usage", "read_usage"]


def read_usage(usage: Any) -> Usage:
    """LiteLLM's normalised usage: cached prompt tokens where it maps them into
    `prompt_tokens_details.cached_tokens` (OpenAI's own field, Anthropic's
    `cache_read_input_tokens`, Gemini's `cachedContentTokenCount`, DeepSeek's cache hits),
    reasoning tokens from `completion_tokens_details.reasoning_tokens`."""
    if usage is None:
        return Usage()
    return Usage(
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        total_tokens=getattr(usage, "total_tokens", None),
        cached_tokens=_count(getattr(usage, "prompt_tokens_details", None), "cached_tokens"),
        reasoning_tokens=_count(
            getattr(usage, "completion_tokens_details", None), "reasoning_tokens"
        ),
    )


def litellm_usage(usage: Usage) -> Any:
    """Our `Usage` as LiteLLM's, cached and reasoning tokens in their details (LiteLLM must
    be imported already: a hosted client's start imports it)."""
    import litellm

    cached, reasoning = usage.cached_tokens, usage.reasoning_tokens
    return litellm.Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        prompt_tokens_details=None if cached is None else {"cached_tokens": cached},
        completion_tokens_details=None if reasoning is None else {"reasoning_tokens": reasoning},
    )


def _count(details: Any, name: str) -> int | None:
    """A whole count from a usage details object (or dict), None where absent."""
    value = details.get(name) if isinstance(details, dict) else getattr(details, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
