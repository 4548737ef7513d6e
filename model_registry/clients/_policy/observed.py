"""The events of a call and of a batch (`events`): `call_start` and `call_end` around a
client's `_call`, `_stream_events` and `_embed_call`, `batch_start` and `batch_end` around a
batch or an `embed_many`, and `call_end` for each answer a batch reads back from its store.

With no handler registered (`_events.HANDLERS` empty), each costs one dict check. A call
made inside another (a fallback's name inside the fallback client's call) is the same
call: it only moves the call's name, provider and route to its own.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

from model_registry._embeddings import Embeddings
from model_registry._events import BATCH, CURRENT, HANDLERS, CallState, emit, new_id
from model_registry._redaction import redact_text, secret_values
from model_registry.events import Attempt, BatchEnd, BatchStart, CallEnd, CallStart
from model_registry.types import Generation, Resolution

__all__ = [
    "observed",
    "observed_embeddings",
    "observed_stream",
    "run_batch",
    "run_embed_many",
    "stored_call",
]

_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])
_S = TypeVar("_S", bound=Callable[..., AsyncGenerator[Any, None]])
_Answer = Generation | Embeddings


def observed(call: _F, operation: str = "chat") -> _F:
    """Wrap a client's `_call(prompt, kwargs, *, batched)` with the call's events."""

    @functools.wraps(call)
    def observed_call(
        client: Any, prompt: Any, kwargs: Any, *, batched: bool = False
    ) -> Awaitable[Any]:
        if not HANDLERS:  # the call's own coroutine: no layer more (`_policy`'s docstring)
            return call(client, prompt, kwargs, batched=batched)
        return _observe(call, client, prompt, kwargs, {"batched": batched}, operation)

    return observed_call  # type: ignore[return-value]


def observed_embeddings(call: _F) -> _F:
    """Wrap a client's `_embed_call(texts, kwargs, *, batched)` with the call's events."""
    return observed(call, "embeddings")


async def _observe(
    call: Callable[..., Awaitable[Any]],
    client: Any,
    prompt: Any,
    kwargs: Any,
    options: dict[str, Any],
    operation: str,
) -> Any:
    resolution: Resolution = client.resolution
    state = CURRENT.get()
    if state is not None:  # a fallback's name: the same call, on another name
        state.move(resolution)
        _local_attempt(client, state)
        return await call(client, prompt, kwargs, **options)
    state = _started(client, prompt, operation)
    token = CURRENT.set(state)
    try:
        try:
            answer = await call(client, prompt, kwargs, **options)
        except BaseException as exc:  # a cancelled call ends too
            _end(state, None, exc, resolution)
            raise
        _end(state, answer, None, resolution)
        return answer
    finally:
        CURRENT.reset(token)


def _started(client: Any, prompt: Any, operation: str) -> CallState:
    """A new call of `client`: its `call_start` (and a local model's `attempt`) emitted."""
    state = CallState(client.resolution, BATCH.get(), operation)
    fields: Any = {"operation": operation, "prompt": prompt, "batch_id": state.batch_id}
    emit(CallStart(**state.fields(), **fields))
    _local_attempt(client, state)
    return state


def observed_stream(stream_events: _S) -> _S:
    """Wrap a client's `_stream_events(prompt, kwargs)` with the call's events: the call is
    the one in progress while the stream reads its next piece, never in between."""

    @functools.wraps(stream_events)
    def observed_events(client: Any, prompt: Any, kwargs: Any) -> AsyncGenerator[Any, None]:
        events = stream_events(client, prompt, kwargs)
        if not HANDLERS:
            return events
        state = CURRENT.get()
        if state is not None:  # a fallback's name, read by the fallback client's stream
            state.move(client.resolution)
            _local_attempt(client, state)
            return events
        return _observe_stream(client, prompt, events)

    return observed_events  # type: ignore[return-value]


_END = object()


async def _observe_stream(
    client: Any, prompt: Any, events: AsyncGenerator[Any, None]
) -> AsyncGenerator[Any, None]:
    state = _started(client, prompt, "chat")
    ended = False
    try:
        while True:
            token = CURRENT.set(state)
            try:
                piece = await anext(events, _END)
            finally:
                CURRENT.reset(token)
            if piece is _END:
                return
            if isinstance(piece, Generation):
                ended = True
                _end(state, piece, None, client.resolution)
            yield piece
    except BaseException as exc:
        if not ended:
            if isinstance(exc, GeneratorExit):
                exc = GeneratorExit("the caller closed the stream before its end")
            _end(state, None, exc, client.resolution)
        raise
    finally:
        token = CURRENT.set(state)
        try:
            await events.aclose()
        finally:
            CURRENT.reset(token)


def stored_call(client: Any, prompt: Any, generation: Generation) -> None:
    """A `generate` or `stream` answered from its results_db: its `call_start`, then a
    `call_end` with `from_store=True` (no attempt: nothing was sent)."""
    if not HANDLERS:
        return
    state = CallState(client.resolution, BATCH.get(), "chat")
    emit(CallStart(**state.fields(), operation="chat", prompt=prompt, batch_id=state.batch_id))
    if "call_end" in HANDLERS:
        where = {**state.fields(), "name": generation.name or state.name}
        latency = time.perf_counter() - state.started
        emit(
            CallEnd(
                **where,
                operation="chat",
                generation=generation,
                latency_s=latency,
                cost=generation.cost,
                from_store=True,
            )
        )


def _local_attempt(client: Any, state: CallState) -> None:
    """A local model's one attempt (the engine request; hosted attempts come from the
    retries, `retries.call_with_retries`)."""
    if client.kind == "local" and not hasattr(client, "fallbacks"):
        state.attempts += 1
        emit(Attempt(**state.fields(), number=state.attempts, started=time.time()))


def _end(
    state: CallState,
    answer: _Answer | None,
    error: BaseException | None,
    resolution: Resolution,
) -> None:
    if "call_end" not in HANDLERS:
        return
    latency = time.perf_counter() - state.started
    operation: Any = state.operation
    if answer is not None:
        where = state.fields()
        where["name"] = answer.name or state.name
        generation = answer if isinstance(answer, Generation) else None
        emit(
            CallEnd(
                **where,
                operation=operation,
                generation=generation,
                embeddings=answer if isinstance(answer, Embeddings) else None,
                latency_s=latency,
                cost=answer.cost,
                attempts=state.attempts,
                queue_s=None if generation is None else _queue_seconds(generation.raw),
            )
        )
        return
    status = getattr(error, "status_code", None)
    emit(
        CallEnd(
            **state.fields(),
            operation=operation,
            error=type(error).__name__,
            message=redact_text(str(error), _secrets(resolution)),
            status_code=status if isinstance(status, int) else None,
            latency_s=latency,
            attempts=state.attempts,
        )
    )


def _queue_seconds(raw: Any) -> float | None:
    """How long a local request waited in vLLM's queue: its output's `metrics` (vLLM V1's
    `RequestStateStats`, engine-core clock), from queued to first scheduled; None without."""
    metrics = getattr(raw, "metrics", None)
    queued = getattr(metrics, "queued_ts", None)
    scheduled = getattr(metrics, "scheduled_ts", None)
    if not isinstance(queued, float) or not isinstance(scheduled, float) or not queued:
        return None
    return max(scheduled - queued, 0.0) if scheduled else None


def _secrets(resolution: Resolution) -> list[str]:
    """The credentials a call's message could hold: its params' and its provider's env key."""
    found = secret_values(resolution.params)
    env_var = resolution.spec.api_key_env
    key = os.environ.get(env_var) if env_var else None
    return sorted({*found, key}, key=len, reverse=True) if key else found


def _batch_where(resolution: Resolution) -> dict[str, Any]:
    """The fields a new batch's events share: its id, and the client's name and route."""
    return {
        "call_id": new_id(),
        "name": resolution.name,
        "provider": resolution.provider,
        "model": resolution.model_id,
        "route": resolution.route,
    }


async def run_batch(
    client: Any, batch: Any, emit_result: Callable[[int, Any], None], room: Any = None
) -> None:
    """`batch.run(client, emit_result, room)` between `batch_start` and `batch_end`."""
    if not HANDLERS:
        await batch.run(client, emit_result, room)
        return
    where = _batch_where(client.resolution)
    tally = _Tally(where)
    started = time.perf_counter()
    emit(BatchStart(**where, at=time.time(), prompts=batch.total))
    token = BATCH.set(where["call_id"])
    error: str | None = None
    try:
        await batch.run(client, tally.counting(emit_result), room)
    except BaseException as exc:
        error = type(exc).__name__
        tally.failed += hasattr(exc, "index")  # the prompt whose error ended the batch
        raise
    finally:
        BATCH.reset(token)
        total = batch.total if batch.total is not None else tally.succeeded + tally.failed
        emit(
            BatchEnd(
                **where,
                at=time.time(),
                prompts=total,
                succeeded=tally.succeeded,
                failed=tally.failed,
                from_store=tally.from_store,
                cost=tally.cost,
                latency_s=time.perf_counter() - started,
                error=error,
            )
        )


class _Tally:
    """What a batch's results were; an answer read from the store gets its `call_end`."""

    def __init__(self, where: dict[str, Any]) -> None:
        self.where = where
        self.succeeded = self.failed = self.from_store = 0
        self.cost = 0.0

    def counting(self, emit_result: Callable[[int, Any], None]) -> Callable[[int, Any], None]:
        def counted(index: int, result: Any) -> None:
            if isinstance(result, Generation):
                self.succeeded += 1
                if result.from_store:
                    self.from_store += 1
                    self._stored(result)
                elif result.cost is not None:
                    self.cost += result.cost
            else:
                self.failed += 1
            emit_result(index, result)

        return counted

    def _stored(self, generation: Generation) -> None:
        if "call_end" in HANDLERS:
            emit(
                CallEnd(
                    **{
                        **self.where,
                        "call_id": new_id(),
                        "name": generation.name or self.where["name"],
                    },
                    at=time.time(),
                    generation=generation,
                    latency_s=0.0,
                    cost=generation.cost,
                    from_store=True,
                )
            )


async def run_embed_many(client: Any, run: Any, work: Awaitable[Embeddings]) -> Embeddings:
    """`await work`, the `embed_many` of `run.texts`, between `batch_start` and `batch_end`
    (their counts are texts; `failed`: the texts of the request whose error ended it)."""
    if not HANDLERS:
        return await work
    where = _batch_where(client.resolution)
    started = time.perf_counter()
    emit(BatchStart(**where, at=time.time(), prompts=len(run.texts)))
    token = BATCH.set(where["call_id"])
    error: str | None = None
    try:
        return await work
    except BaseException as exc:
        error = type(exc).__name__
        raise
    finally:
        BATCH.reset(token)
        parts = list(run.parts.values())
        new = [p.cost for p in parts if not p.from_store and p.cost is not None]
        emit(
            BatchEnd(
                **where,
                at=time.time(),
                prompts=len(run.texts),
                succeeded=sum(len(p.vectors) for p in parts),  # a part: one request's texts
                failed=run.failed,
                from_store=sum(p.from_store for p in parts),
                cost=sum(new),
                latency_s=time.perf_counter() - started,
                error=error,
            )
        )
