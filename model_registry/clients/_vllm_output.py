"""Local adapter, part 3: what one engine request has produced so far (`Tally`), and the
`Generation` made of it (reasoning and tool calls read as the call asked)."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from model_registry.clients._asked import Asked, generation_extras, vllm_logprobs
from model_registry.clients._tools import read_tool_calls
from model_registry.clients._vllm_parsing import OutputParsing
from model_registry.clients._vllm_tools import LocalTools
from model_registry.errors import APIError
from model_registry.types import Generation, Usage

__all__ = ["Tally", "local_generation"]


class Tally:
    """What one request has produced so far: text, token counts, the last output."""

    def __init__(self, delta: bool) -> None:
        self.delta = delta
        self.parts: list[str] = []
        self.completion_tokens = 0
        self.prompt_tokens: int | None = None
        self.cached_tokens: int | None = None
        self.last: Any = None
        self.token_ids: list[int] = []
        self.logprobs: list[Any] = []

    def add(self, out: Any) -> str:
        """Count one engine output; returns its new text."""
        self.last = out
        if self.prompt_tokens is None and out.prompt_token_ids is not None:
            self.prompt_tokens = len(out.prompt_token_ids)
        cached = getattr(out, "num_cached_tokens", None)  # prefix-cache hits, known after prefill
        if isinstance(cached, int):
            self.cached_tokens = cached
        completion = out.outputs[0]
        if self.delta:
            self.completion_tokens += len(completion.token_ids)
            if completion.text:
                self.parts.append(completion.text)
            self.token_ids.extend(completion.token_ids)
            self.logprobs.extend(completion.logprobs or ())
        else:
            self.completion_tokens = len(completion.token_ids)
            self.parts = [completion.text]
            self.token_ids = list(completion.token_ids)
            self.logprobs = list(completion.logprobs or ())
        return str(completion.text)

    def usage(self) -> Usage:
        """Token counts as a `Usage` (reasoning tokens: None, the engine does not count them)."""
        prompt, completion = self.prompt_tokens, self.completion_tokens
        total = None if prompt is None else prompt + completion
        return Usage(prompt, completion, total, cached_tokens=self.cached_tokens)


def local_generation(
    client: Any,
    tally: Tally,
    started: float,
    asked: tuple[Asked, int],
    tools: LocalTools | None,
    parsing: OutputParsing | None,
) -> Generation:
    """The `Generation` of a finished request of `client` (a `VLLMClient`); `asked`: what
    was asked and the logprob alternatives kept per token."""
    where = {"provider": client.provider, "model": client.model_id}
    if tally.last is None:
        raise APIError("the engine returned no output", **where)
    text = "".join(tally.parts)
    finish_reason = tally.last.outputs[0].finish_reason
    if finish_reason == "error":  # vLLM ended the request itself, e.g. a grammar it failed
        raise APIError(
            "the engine ended the request with an error (vLLM's finish_reason 'error'); "
            "the engine's log names the cause",
            **where,
        )
    usage, reasoning, calls = tally.usage(), None, None
    if parsing is not None:
        parsed = parsing.whole(text, tally.token_ids)
        text, reasoning = parsed.text, parsed.reasoning
        if parsed.reasoning_tokens:
            usage = msgspec.structs.replace(usage, reasoning_tokens=parsed.reasoning_tokens)
        if tools is not None and tools.auto:
            calls = read_tool_calls(parsed.calls, tools.schemas, **where)
    if tools is not None and not tools.auto:
        calls, text, finish_reason = tools.calls(text, **where), "", "tool_calls"
    elif calls:
        finish_reason = "tool_calls"
    wanted, top_k = asked
    logprobs = vllm_logprobs(tally.token_ids, tally.logprobs, top_k) if wanted.logprobs else None
    extras = generation_extras(
        wanted,
        text=text,
        finish_reason=finish_reason,
        logprobs=logprobs,
        reasoning=reasoning,
        **where,
    )
    return Generation(
        text=text,
        finish_reason=finish_reason,
        usage=usage,
        latency_s=time.perf_counter() - started,
        raw=tally.last,
        name=client.name,
        tool_calls=calls,
        **where,
        **extras,
    )
