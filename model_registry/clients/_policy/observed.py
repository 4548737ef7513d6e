"""The events of a call and of a batch (`events`): `call_start` and `call_end` around a
client's `_call`, `batch_start` and `batch_end` around a batch, and `call_end` for each
answer a batch reads back from its store.

With no handler registered (`_events.HANDLERS` empty), each costs one dict check. A call
made inside another (a fallback's name inside the fallback client's call) is the same
call: it only moves the call's name, provider and route to its own.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from model_registry._events import BATCH, CURRENT, HANDLERS, CallState, emit, new_id
from model_registry._redaction import redact_text, secret_values
from model_registry.events import Attempt, BatchEnd, BatchStart, CallEnd, CallStart
from model_registry.types import Generation, Resolution

__all__ = ["observed", "run_batch"]

_F = TypeVar("_F", bound=Callable[..., Awaitable[Generation]])


def observed(call: _F) -> _F:
    """Wrap a client's `_call(prompt, kwargs, *, batched)` with the call's events."""

    @functools.wraps(call)
    async def observed_call(
        client: Any, prompt: Any, kwargs: Any, *, batched: bool = False
    ) -> Generation:
        if not HANDLERS:
            return await call(client, prompt, kwargs, batched=batched)
        return await _observe(call, client, prompt, kwargs, {"batched": batched})

    return observed_call  # type: ignore[return-value]


async def _observe(
    call: Callable[..., Awaitable[Generation]],
    client: Any,
    prompt: Any,
    kwargs: Any,
    options: dict[str, Any],
) -> Generation:
    resolution: Resolution = client.resolution
    state = CURRENT.get()
    if state is not None:  # a fallback's name: the same call, on another name
        state.move(resolution)
        _local_attempt(client, state)
        return await call(client, prompt, kwargs, **options)
    state = CallState(resolution, BATCH.get())
    token = CURRENT.set(state)
    try:
        emit(CallStart(**state.fields(), prompt=prompt, batch_id=state.batch_id))
        _local_attempt(client, state)
        try:
            generation = await call(client, prompt, kwargs, **options)
        except BaseException as exc:  # a cancelled call ends too
            _end(state, None, exc, resolution)
            raise
        _end(state, generation, None, resolution)
        return generation
    finally:
        CURRENT.reset(token)


def _local_attempt(client: Any, state: CallState) -> None:
    """A local model's one attempt (the engine request; hosted attempts come from the
    retries, `retries.call_with_retries`)."""
    if client.kind == "local" and not hasattr(client, "fallbacks"):
        state.attempts += 1
        emit(Attempt(**state.fields(), number=state.attempts, started=time.time()))


def _end(
    state: CallState,
    generation: Generation | None,
    error: BaseException | None,
    resolution: Resolution,
) -> None:
    if "call_end" not in HANDLERS:
        return
    latency = time.perf_counter() - state.started
    if generation is not None:
        where = state.fields()
        where["name"] = generation.name or state.name
        emit(
            CallEnd(
                **where,
                generation=generation,
                latency_s=latency,
                cost=generation.cost,
                attempts=state.attempts,
            )
        )
        return
    status = getattr(error, "status_code", None)
    emit(
        CallEnd(
            **state.fields(),
            error=type(error).__name__,
            message=redact_text(str(error), _secrets(resolution)),
            status_code=status if isinstance(status, int) else None,
            latency_s=latency,
            attempts=state.attempts,
        )
    )


def _secrets(resolution: Resolution) -> list[str]:
    """The credentials a call's message could hold: its params' and its provider's env key."""
    found = secret_values(resolution.params)
    env_var = resolution.spec.api_key_env
    key = os.environ.get(env_var) if env_var else None
    return sorted({*found, key}, key=len, reverse=True) if key else found


async def run_batch(client: Any, batch: Any, emit_result: Callable[[int, Any], None]) -> None:
    """`batch.run(client, emit_result)` between `batch_start` and `batch_end`."""
    if not HANDLERS:
        await batch.run(client, emit_result)
        return
    resolution: Resolution = client.resolution
    where: dict[str, Any] = {
        "call_id": new_id(),
        "name": resolution.name,
        "provider": resolution.provider,
        "model": resolution.model_id,
        "route": resolution.route,
    }
    tally = _Tally(where)
    started = time.perf_counter()
    emit(BatchStart(**where, at=time.time(), prompts=len(batch.prompts)))
    token = BATCH.set(where["call_id"])
    error: str | None = None
    try:
        await batch.run(client, tally.counting(emit_result))
    except BaseException as exc:
        error = type(exc).__name__
        tally.failed += hasattr(exc, "index")  # the prompt whose error ended the batch
        raise
    finally:
        BATCH.reset(token)
        total = len(batch.prompts)
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
