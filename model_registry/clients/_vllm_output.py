"""Local adapter, part 3: what one engine request has produced so far (`Tally`)."""

from __future__ import annotations

from typing import Any

from model_registry.types import Usage

__all__ = ["Tally"]


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
