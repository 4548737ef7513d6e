"""One result as a JSON-ready record: what `model-registry run` writes per line and
`model_registry.ray` adds to each row."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from model_registry.types import Generation

__all__ = ["result_record"]


def result_record(
    result: Generation | BaseException,
    *,
    scrub: Callable[[str], str] | None = None,
    parsed: bool = False,
) -> dict[str, Any]:
    """`text`, `finish_reason`, `usage`, `cost` and `error` (null on success) of one result;
    `parsed` too when asked (a response_format was set); `scrub` cleans error messages."""
    record: dict[str, Any]
    if isinstance(result, BaseException):
        status = getattr(result, "status_code", None)
        message = str(result)
        record = {"text": None, "finish_reason": None, "usage": None, "cost": None}
        record["error"] = {
            "class": type(result).__name__,
            "message": message if scrub is None else scrub(message),
            "status_code": status if isinstance(status, int) else None,
        }
        if parsed:
            record["parsed"] = None
        return record
    usage, cost = result.usage, result.cost
    record = {
        # a lone surrogate (which no encoding can write) as U+FFFD
        "text": result.text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"),
        "finish_reason": result.finish_reason,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "cached_tokens": usage.cached_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
        },
        "cost": cost if cost is None or math.isfinite(cost) else None,
        "error": None,
    }
    if parsed:
        record["parsed"] = _plain(result.parsed)
    return record


def _plain(value: Any) -> Any:
    """A parsed answer as JSON-ready data (a pydantic model as its JSON dict)."""
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value
