"""One hosted call as it goes to LiteLLM: what it sends, its deadline and retries, and the
attempts made of it.

One object a call holds all of it, and its `attempt` is what the retry loop runs: no
closure is made per call (a closure is a function, its cells and their tuple, each an
object the garbage collector counts; at 256 calls in flight the collector ran ~20% more
often for ours than for raw LiteLLM, benchmarks/README.md "Session 13"). The call is its
own attempt (`__call__`), which notes on a connection error how many attempts were made.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from model_registry.clients._asked import Asked
from model_registry.errors import APIConnectionError

__all__ = ["LiteLLMCall"]


class LiteLLMCall:
    """One call: its `params` (LiteLLM's kwargs, a fresh dict), `messages`, what it asked
    for beyond text (`asked`), its `deadline` (anyio's clock) and `timeout`, its `retries`
    after the first attempt; `made`, the attempts made so far; `send`, one request."""

    __slots__ = (
        "asked",
        "client",
        "deadline",
        "made",
        "messages",
        "params",
        "retries",
        "send",
        "timeout",
    )

    def __init__(
        self,
        client: Any,
        params: dict[str, Any],
        messages: list[Any],
        asked: Asked,
        deadline: float,
        timeout: float | None,
        retries: int,
    ) -> None:
        self.client, self.params, self.messages, self.asked = client, params, messages, asked
        self.deadline, self.timeout, self.retries = deadline, timeout, retries
        self.made = 0
        self.send: Callable[[], Awaitable[Any]] | None = None

    def __call__(self) -> Awaitable[Any]:
        """One attempt: `send()` as one step of the call (the client's `_step`). The call is
        its own attempt: the retry loop calls it, with no bound method made a call."""
        self.made += 1
        step: Awaitable[Any] = self.client._step(self.send, self, True)
        return step

    def note_attempts(self, error: APIConnectionError) -> None:
        """Note on a connection error how many attempts the call has made."""
        plural = "s" if self.made != 1 else ""
        error.add_note(
            f"{self.made} attempt{plural} made (num_retries={self.retries}), none answered"
        )
