"""One prompt through a client: `generate` and `stream`, with or without a result store.

`OneCallMethods` is a base of every client. Without a store a call is the client's `_call`
(or `_stream_events`) as it is; with one (`results_db=`, or the client's default), a stored
success comes back without a request and a new answer is committed before the call returns
(`_call_store`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from model_registry._prompts import Prompt
from model_registry.clients._batch_checks import check_results_db
from model_registry.clients._call_store import (
    CLIENT_DEFAULT,
    CallStores,
    ClientDefault,
    ResultsDb,
)
from model_registry.clients._policy.call_limits import CallLimits, call_timeout
from model_registry.clients._policy.observed import observed_stream, stored_call
from model_registry.types import Generation, GenerationStream

__all__ = ["OneCallMethods"]

_ParsedT = TypeVar("_ParsedT")


class OneCallMethods:
    """`generate` and `stream`, shared by every client (see the module docstring)."""

    if TYPE_CHECKING:
        _stores: CallStores
        _limits: CallLimits

        @property
        def params(self) -> Any: ...
        async def start(self) -> Any: ...
        def _check_open(self) -> None: ...
        @staticmethod
        def _deadline(timeout: float | None) -> float: ...
        def _call(
            self, prompt: Prompt, kwargs: dict[str, Any], *, batched: bool = False
        ) -> Awaitable[Generation]: ...
        def _stream(
            self, prompt: Prompt, kwargs: dict[str, Any], deadline: float | None
        ) -> AsyncGenerator[str | Generation, None]: ...

    @overload
    async def generate(
        self, prompt: Prompt, *, response_format: type[_ParsedT], **kwargs: Any
    ) -> Generation[_ParsedT]: ...
    @overload
    async def generate(self, prompt: Prompt, **kwargs: Any) -> Generation: ...
    async def generate(
        self,
        prompt: Prompt,
        *,
        results_db: ResultsDb | ClientDefault = CLIENT_DEFAULT,
        **kwargs: Any,
    ) -> Generation:
        """One prompt (a string or chat messages) to one `Generation`; kwargs beat the client's.

        `results_db` (a path or a `ResultStore`; default: the client's, None for none)
        answers a request stored before without a call (`from_store=True`) and keeps this one."""
        self._check_open()
        store = await self._stores.store(results_db)
        if store is None:
            await self.start()
            return await self._call(prompt, kwargs)
        call = await self._stores.open_call(self, store, prompt, kwargs)
        if call.answer is not None:
            stored_call(self, prompt, call.answer)
            return call.answer
        try:
            await self.start()
            try:
                generation = await self._call(prompt, kwargs)
            except Exception as exc:
                await call.keep(exc)
                raise
            await call.keep(generation)
        finally:
            call.done()
        return generation

    def stream(
        self,
        prompt: Prompt,
        *,
        results_db: ResultsDb | ClientDefault = CLIENT_DEFAULT,
        **kwargs: Any,
    ) -> GenerationStream:
        """Text deltas as they arrive; the stream's `result` holds the `Generation` at the end.

        `results_db` as `generate`'s: a stored answer comes as one delta, then its result."""
        self._check_open()
        wanted = self._stores.wanted(results_db)
        if wanted is None:
            return GenerationStream(self._stream_events(prompt, kwargs))
        check_results_db(wanted)
        return GenerationStream(self._stored_stream(prompt, kwargs, results_db))

    async def _stored_stream(
        self, prompt: Prompt, kwargs: dict[str, Any], results_db: ResultsDb | ClientDefault
    ) -> AsyncGenerator[str | Generation, None]:
        store = await self._stores.store(results_db)
        assert store is not None  # `stream` came here for a store
        call = await self._stores.open_call(self, store, prompt, kwargs)
        if (stored := call.answer) is not None:
            stored_call(self, prompt, stored)
            if stored.text:
                yield stored.text
            yield stored
            return
        result: Generation | None = None
        events = self._stream_events(prompt, kwargs)
        try:
            async for event in events:
                if isinstance(event, Generation):
                    result = event
                    break
                yield event
            if result is not None:
                await call.keep(result)  # committed before the caller sees the result
        except Exception as exc:
            await call.keep(exc)
            raise
        finally:
            call.done()
            await events.aclose()
        if result is not None:
            yield result

    @observed_stream
    async def _stream_events(
        self, prompt: Prompt, kwargs: dict[str, Any]
    ) -> AsyncGenerator[str | Generation, None]:
        await self.start()
        timeout = call_timeout(self.params, kwargs)
        deadline = self._deadline(timeout)
        async with self._limits.permit(prompt, kwargs, deadline, timeout) as permit:
            events = self._stream(prompt, kwargs, deadline)
            try:
                async for event in events:
                    if permit is not None and isinstance(event, Generation):
                        permit.report_usage(event.usage.total_tokens)
                    yield event
            finally:
                await events.aclose()
