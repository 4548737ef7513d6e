"""The data that crosses the library's boundary, and the one client protocol."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, TypedDict, runtime_checkable

import msgspec

from model_registry.errors import InvalidParameterError

if TYPE_CHECKING:
    from model_registry.resolve import Resolution

__all__ = [
    "REDACTED",
    "ClientKind",
    "Generation",
    "GenerationStream",
    "Message",
    "ModelClient",
    "Prompt",
    "Usage",
    "is_secret_key",
    "redact",
    "to_messages",
]

ClientKind = Literal["hosted", "local"]

REDACTED = "***"
_SECRET_SUFFIXES = ("_key", "_token", "_secret")


def is_secret_key(key: str) -> bool:
    """True for kwargs whose values are credentials (`api_key`, `*_key`, `*_token`, `*_secret`)."""
    lowered = key.lower()
    return lowered == "api_key" or lowered.endswith(_SECRET_SUFFIXES)


def redact(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `params` with every credential value replaced by `***`."""
    return {k: (REDACTED if is_secret_key(k) else v) for k, v in params.items()}


class Message(TypedDict):
    """One chat message, in the OpenAI shape that LiteLLM speaks."""

    role: str
    content: str


Prompt = str | Sequence[Message]


class Usage(msgspec.Struct, frozen=True):
    """Token counts of one call (None where the provider did not report them)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class Generation(msgspec.Struct, frozen=True):
    """The answer to one prompt. `raw` is the backend's own response object."""

    text: str
    finish_reason: str | None
    usage: Usage
    model: str
    provider: str
    latency_s: float
    raw: Any = None

    def __repr__(self) -> str:
        return (
            f"Generation(text={self.text!r}, finish_reason={self.finish_reason!r}, "
            f"usage={self.usage!r}, model={self.model!r}, provider={self.provider!r}, "
            f"latency_s={self.latency_s:.3f})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (without `raw`)."""
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": msgspec.structs.asdict(self.usage),
            "model": self.model,
            "provider": self.provider,
            "latency_s": self.latency_s,
        }


class GenerationStream:
    """Async iterator of text deltas; once exhausted, `result` holds the whole `Generation`.

    Backends feed it an async generator that yields `str` deltas and, last, the `Generation`.
    """

    def __init__(self, events: AsyncGenerator[str | Generation, None]) -> None:
        self._events = events
        self.result: Generation | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        event = await self._events.__anext__()
        if isinstance(event, Generation):
            self.result = event
            await self._events.aclose()
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        """Stop the stream early; the backend request is cancelled."""
        await self._events.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


@runtime_checkable
class ModelClient(Protocol):
    """What `get_client()` returns, for every provider."""

    name: str
    provider: str
    model_id: str
    kind: ClientKind

    @property
    def resolution(self) -> Resolution: ...

    @property
    def closed(self) -> bool: ...

    async def generate(self, prompt: Prompt, **kwargs: Any) -> Generation: ...

    def stream(self, prompt: Prompt, **kwargs: Any) -> GenerationStream: ...

    async def generate_many(
        self,
        prompts: Sequence[Prompt],
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
        progress: bool = False,
        **kwargs: Any,
    ) -> list[Generation | BaseException]: ...

    async def aclose(self) -> None: ...

    def __await__(self) -> Generator[Any, None, Self]: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def to_messages(prompt: Prompt) -> list[Message]:
    """The chat messages of a prompt: a string is one user message, a list is checked and kept."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    messages = list(prompt)
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise InvalidParameterError(
                f"prompt message {i} must be a mapping with 'role' and 'content', got {message!r}"
            )
    return messages
