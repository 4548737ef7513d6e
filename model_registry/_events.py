"""The event handlers registered with `on`, and how an event reaches them (see `events`).

Part of the bottom layer: clients emit through it, and with no handler registered an
emitting site costs one dict check (`HANDLERS`). The call in progress (`CURRENT`, a
context variable) gives every event of a call its `call_id`, name, provider and route.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, get_args

__all__ = [
    "BATCH",
    "CURRENT",
    "EVENT_NAMES",
    "HANDLERS",
    "MAX_QUEUED",
    "CallState",
    "EventName",
    "dropped",
    "emit",
    "emit_in_call",
    "new_id",
    "off",
    "on",
]

#: The events, in the order a call meets them.
EventName = Literal[
    "call_start",
    "limiter_wait",
    "attempt",
    "retry",
    "cooldown",
    "fallback",
    "call_end",
    "batch_start",
    "batch_end",
]
EVENT_NAMES: tuple[str, ...] = get_args(EventName)
#: Coroutine-handler calls waiting on one event loop; more are dropped (see `dropped`).
MAX_QUEUED = 10_000

#: event name -> (handler, is a coroutine function) pairs; empty when nobody listens.
HANDLERS: dict[str, tuple[tuple[Callable[[Any], Any], bool], ...]] = {}
#: Handlers whose error was logged already (ids of those that take no weak reference).
_failed: weakref.WeakSet[Callable[[Any], Any]] = weakref.WeakSet()
_failed_ids: set[int] = set()
_dropped = 0


class CallState:
    """The call in progress: its id, the name it is on now, and its attempts so far."""

    __slots__ = (
        "attempts",
        "batch_id",
        "call_id",
        "model",
        "name",
        "operation",
        "provider",
        "route",
        "started",
    )

    def __init__(self, where: Any, batch_id: str | None, operation: str = "chat") -> None:
        self.call_id = new_id()
        self.move(where)
        self.batch_id = batch_id
        self.operation = operation
        self.attempts = 0
        self.started = time.perf_counter()

    def move(self, where: Any) -> None:
        """The call goes on with `where` (a `Resolution`: the fallback's name)."""
        self.name, self.provider, self.model = where.name, where.provider, where.model_id
        self.route = where.route

    def fields(self) -> dict[str, Any]:
        """The fields every event of this call has, `at` now."""
        return {
            "call_id": self.call_id,
            "name": self.name,
            "provider": self.provider,
            "model": self.model,
            "route": self.route,
            "at": time.time(),
        }


CURRENT: contextvars.ContextVar[CallState | None] = contextvars.ContextVar(
    "model_registry_call", default=None
)
#: The id of the batch whose worker runs this call (None outside generate_many/iter_many).
BATCH: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "model_registry_batch", default=None
)


def new_id() -> str:
    """A fresh call or batch id (16 hex digits)."""
    return os.urandom(8).hex()


def on(event: str, handler: Callable[[Any], Any]) -> None:
    """Call `handler(event)` for every `event` ("call_start", "retry", "call_end", ...; see
    `EVENT_NAMES`) from now on: inline for a plain function, scheduled for a coroutine one."""
    _check_name(event, "on")
    if not callable(handler):
        raise TypeError(f"on({event!r}, handler): the handler must be callable, got {handler!r}")
    import inspect

    is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 (an object with an async __call__)
    )
    HANDLERS[event] = (*HANDLERS.get(event, ()), (handler, is_async))


def off(event: str, handler: Callable[[Any], Any] | None = None) -> None:
    """Stop calling `handler` for `event` (every handler of it when None); a handler that
    is not registered is ignored."""
    _check_name(event, "off")
    kept = tuple(p for p in HANDLERS.get(event, ()) if handler is not None and p[0] != handler)
    if kept:
        HANDLERS[event] = kept
    else:
        HANDLERS.pop(event, None)
    if handler is not None:
        with contextlib.suppress(TypeError):
            _failed.discard(handler)
        _failed_ids.discard(id(handler))


def _check_name(event: str, where: str) -> None:
    if event not in EVENT_NAMES:
        import difflib

        close = difflib.get_close_matches(str(event), EVENT_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"{where}({event!r}, ...): unknown event{hint}; the events are {', '.join(EVENT_NAMES)}"
        )


def dropped() -> int:
    """How many coroutine-handler calls were dropped because their queue was full."""
    return _dropped


def emit(event: Any) -> None:
    """Hand `event` (an `events.Event`) to the handlers of its kind."""
    for handler, is_async in HANDLERS.get(event.kind, ()):
        if is_async:
            _schedule(handler, event)
            continue
        try:
            handler(event)
        except Exception:
            _report(handler)


def emit_in_call(cls: type[Any], **fields: Any) -> None:
    """Emit a `cls` event of the call in progress (nothing outside a call)."""
    state = CURRENT.get()
    if state is None or cls.kind not in HANDLERS:
        return
    emit(cls(**state.fields(), **fields))


def _report(handler: Callable[[Any], Any]) -> None:
    """Log a handler's error, once per handler: the call goes on."""
    try:  # by the handler itself while it lives: an id is reused once its owner is gone
        if handler in _failed:
            return
        _failed.add(handler)
    except TypeError:  # a callable that takes no weak reference: by its id
        if id(handler) in _failed_ids:
            return
        _failed_ids.add(id(handler))
    import logging  # here: `import model_registry` stays without it

    logging.getLogger("model_registry").exception(
        "event handler %r raised (its later errors are not logged; the call goes on)", handler
    )


class _Lane:
    """The coroutine-handler calls queued on one event loop, run one at a time by a task
    that lives while there is work (a loop that closes leaves no task behind)."""

    def __init__(self) -> None:
        self.queue: deque[tuple[Callable[[Any], Any], Any]] = deque()
        self.task: Any = None

    async def drain(self) -> None:
        while self.queue:
            handler, event = self.queue.popleft()
            try:
                await handler(event)
            except Exception:
                _report(handler)
        self.task = None


_lanes: weakref.WeakKeyDictionary[Any, _Lane] = weakref.WeakKeyDictionary()


def _schedule(handler: Callable[[Any], Any], event: Any) -> None:
    global _dropped
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _dropped += 1
        return
    lane = _lanes.get(loop)
    if lane is None:
        lane = _lanes[loop] = _Lane()
    if len(lane.queue) >= MAX_QUEUED:
        if not _dropped:
            import logging

            logging.getLogger("model_registry").warning(
                "event handlers fall behind: %d calls queued, later events are dropped "
                "(model_registry.events.dropped() counts them)",
                MAX_QUEUED,
            )
        _dropped += 1
        return
    lane.queue.append((handler, event))
    if lane.task is None:
        # a fresh context: the handler's own calls are calls of their own, not this one's
        lane.task = loop.create_task(lane.drain(), context=contextvars.Context())
