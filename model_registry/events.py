"""What a call does, step by step, as typed events: `on(EVENT, handler)` and `off`.

Every event is a frozen msgspec Struct with `call_id`, `name`, `provider`, `route` and
`at` (epoch seconds), plus its own fields (docs/events.md lists them). A handler takes the
event as its one argument: a plain function runs inline (keep it quick); a coroutine
function is scheduled on the running loop, through a bounded queue that drops (counted by
`dropped()`) rather than grow. A handler that raises is logged once and never breaks a
call. Events carry no credential: errors are class names and redacted messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import msgspec

from model_registry._embeddings import Embeddings
from model_registry._events import EVENT_NAMES, EventName, dropped, off, on
from model_registry.types import Generation

__all__ = [
    "EVENT_NAMES",
    "Attempt",
    "BatchEnd",
    "BatchStart",
    "CallEnd",
    "CallStart",
    "Cooldown",
    "Event",
    "EventName",
    "Fallback",
    "Handler",
    "LimiterWait",
    "Operation",
    "Retry",
    "dropped",
    "off",
    "on",
]


#: What a call does: a chat completion (`generate`, `stream`) or embeddings (`embed`).
Operation = Literal["chat", "embeddings"]


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """What every event has: the call (a batch's id for batch events), the name it is on
    now (the fallback's, once one took over), its provider, model id and route, and when
    (epoch s)."""

    kind: ClassVar[str] = ""
    call_id: str
    name: str
    provider: str
    model: str
    route: str | None
    at: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: `{"event": "call_end", ...its fields}` (a Generation or
        Embeddings as its own `to_dict()`)."""
        data: dict[str, Any] = {"event": self.kind}
        for field in self.__struct_fields__:
            value = getattr(self, field)
            answer = isinstance(value, Generation | Embeddings)
            data[field] = value.to_dict() if answer else value
        return data


class CallStart(Event, frozen=True, kw_only=True):
    """A call begins: its `operation`, `prompt` (a string or chat messages as given; the
    texts for embeddings) and `batch_id` (the batch it is part of, else None)."""

    kind: ClassVar[str] = "call_start"
    operation: Operation = "chat"
    prompt: Any = None
    batch_id: str | None = None


class LimiterWait(Event, frozen=True, kw_only=True):
    """The call waited `seconds` for a declared limit ("rpm", "tpm", "concurrency") or a
    provider's Retry-After pause ("cooldown") before an attempt."""

    kind: ClassVar[str] = "limiter_wait"
    limit: Literal["rpm", "tpm", "concurrency", "cooldown"]
    seconds: float


class Attempt(Event, frozen=True, kw_only=True):
    """Attempt `number` (1, 2, ...) of the call on `name` is sent at `started` (epoch s)."""

    kind: ClassVar[str] = "attempt"
    number: int
    started: float


class Retry(Event, frozen=True, kw_only=True):
    """Attempt `attempt` failed with `error` (class name, HTTP `status_code` if any); the
    call waits `wait_s`, then tries again: the server's Retry-After (`retry_after`, s;
    this call's share of the provider's `cooldown`), else a backoff (`retry_after` None)."""

    kind: ClassVar[str] = "retry"
    attempt: int
    error: str
    status_code: int | None
    wait_s: float
    retry_after: float | None = None


class Cooldown(Event, frozen=True, kw_only=True):
    """`provider` asked (Retry-After, `retry_after` s) every caller to wait until `until`
    (epoch s): every client of it pauses `seconds`."""

    kind: ClassVar[str] = "cooldown"
    until: float
    seconds: float
    retry_after: float


class Fallback(Event, frozen=True, kw_only=True):
    """The call goes on from `from_name` to `to_name`; `reason`: the error's class name, or
    "cooldown" when `from_name`'s provider is paused by a Retry-After."""

    kind: ClassVar[str] = "fallback"
    from_name: str
    to_name: str
    reason: str


class CallEnd(Event, frozen=True, kw_only=True):
    """The call ended: its `generation` (`embeddings` for an embeddings call), or its `error`
    (class name) and redacted `message`; `name` is the name that answered (or last tried);
    `cost` in USD where known; `queue_s` the local engine's queue time."""

    kind: ClassVar[str] = "call_end"
    operation: Operation = "chat"
    generation: Generation | None = None
    embeddings: Embeddings | None = None
    error: str | None = None
    message: str | None = None
    status_code: int | None = None
    latency_s: float
    cost: float | None = None
    from_store: bool = False
    attempts: int = 0
    queue_s: float | None = None


class BatchStart(Event, frozen=True, kw_only=True):
    """A generate_many / iter_many batch of `prompts` begins (`call_id` is the batch's id,
    which each of its calls' `CallStart.batch_id` names)."""

    kind: ClassVar[str] = "batch_start"
    #: None when the prompts are an iterable of unknown length (read in chunks).
    prompts: int | None


class BatchEnd(Event, frozen=True, kw_only=True):
    """The batch ended: its `prompts` (those read, for an iterable), answers (`from_store`
    of them without a call), `failed` prompts (errors returned or raised), the `cost` of
    its calls (USD), `error` if it raised."""

    kind: ClassVar[str] = "batch_end"
    prompts: int
    succeeded: int
    failed: int
    from_store: int
    cost: float
    latency_s: float
    error: str | None = None


#: A handler: a plain function or a coroutine function of one event.
Handler = Callable[[Any], Any]
