"""One batch of prompts through a client: `generate_many` and `iter_many` share it.

A fixed number of worker tasks pull prompts from one iterator (the concurrency cap holds
without a limiter, and 10,000 prompts cost `workers` tasks, not 10,000). With a results_db,
each prompt's key is computed before the batch, stored successes come back without a call
(`from_store=True`), and every call's result or error is queued to the store as it
completes (an enqueue: the store's writer thread commits in the background). Whatever
ends the batch (its last answer, its first error, a cancel, Ctrl-C), what finished is
committed before the batch returns or raises.

With `max_cost`, each call's attempts reserve their cost from the batch's budget before they
are sent (`_policy.spend`); prompts that do not fit get BudgetExceededError, never stored,
while the calls in flight finish and are stored.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import anyio
import anyio.lowlevel
import anyio.to_thread
import msgspec

from model_registry._prompts import Prompt, to_messages
from model_registry.clients._batch_api.options import batch_options
from model_registry.clients._batch_checks import (
    check_concurrency,
    check_results_db,
    mark_index,
    prompt_list,
    refuse_local,
)
from model_registry.clients._claims import claimed
from model_registry.clients._policy.cost_bound import pricing
from model_registry.clients._policy.spend import Budget, Spending, check_max_cost
from model_registry.clients._structured import OutputSchema, output_schema
from model_registry.errors import (
    BudgetExceededError,
    ModelRegistryError,
    OutputValidationError,
    ResultStoreError,
)
from model_registry.store import ResultStore, StoredResult
from model_registry.types import Generation, Resolution, TokenLogprob, ToolCall, Usage

__all__ = ["Batch", "Emit", "iterate"]

#: Called with (index, result) as each prompt completes; result a Generation or an exception.
Emit = Callable[[int, Any], None]
#: The client's one-prompt call: (prompt, kwargs) -> Generation.
Call = Callable[[Prompt, dict[str, Any]], Awaitable[Generation]]


class Batch:
    """The prompts, options and store of one `generate_many`/`iter_many` call, checked at once
    (before any await): prompts a list, concurrency a positive whole number, results_db a path
    or a ResultStore, max_cost a number of USD >= 0."""

    def __init__(
        self,
        prompts: Any,
        *,
        concurrency: int | None,
        return_exceptions: bool,
        progress: bool,
        results_db: Any,
        kwargs: dict[str, Any],
        caller: str,
        max_cost: Any = None,
    ) -> None:
        self.prompts = prompt_list(prompts, caller)
        check_concurrency(concurrency)
        check_results_db(results_db)
        self.max_cost = check_max_cost(max_cost)
        self.concurrency = concurrency
        self.return_exceptions = return_exceptions
        self.progress = progress
        self.results_db = results_db
        self.kwargs = kwargs
        self.caller = caller
        options = batch_options(kwargs, results_db, caller)
        self.batch_api, self.batch_size, self.on_batch_status = options

    async def run(self, client: Any, emit: Emit) -> None:
        """Run every prompt through `client` (a BaseClient, started only when some prompt
        needs a call), `emit` each result as it completes; raise the first error (with
        `.index`) unless `return_exceptions`. Its store target and params with this batch's
        kwargs make the store keys; the names of its chain are priced for max_cost."""
        if self.batch_api:  # the provider's batch API (`_batch_api`)
            await client._run_batch_jobs(self, emit)
            return
        names: Sequence[Resolution] = client._chain()
        if self.max_cost is not None:
            refuse_local(names)
        store, owned = await _open_store(self.results_db)
        bar = _ProgressBar(len(self.prompts), client.name) if self.progress else None
        call = functools.partial(client._call, batched=True)
        runner = _Runner(self, call, emit, store, [None] * len(self.prompts), bar)
        try:
            todo: Sequence[int] = range(len(self.prompts))
            if store is not None:
                params = {**client.params, **self.kwargs}
                runner.keys = _keys(self.prompts, client._store_target(), params)
                schema = output_schema(params.get("response_format"))
                todo = await self._from_store(store, runner.keys, emit, bar, schema)
                runner.stored = functools.partial(_stored_generation, schema=schema)
            cap = self.concurrency if self.concurrency is not None else client.default_concurrency
            if todo:
                await client.start()
                if self.max_cost is not None:
                    runner.spending = await self._spending(self.max_cost, store, names)
            await runner.run(todo, cap)
        finally:
            with anyio.CancelScope(shield=True):
                if bar is not None:
                    bar.close()
                if store is not None:
                    await anyio.to_thread.run_sync(store.release_claims, runner)
                    await (store.aclose() if owned else store.aflush())
        if runner.failure is not None:
            raise runner.failure

    async def _spending(
        self, max_cost: float, store: ResultStore | None, names: Sequence[Resolution]
    ) -> Spending:
        """The budget of this batch (the store's recorded cost spent already) and the price
        of each name; InvalidParameterError for a name with no known price."""
        prices = {n.name: pricing(n, self.kwargs) for n in names}
        summary = None if store is None else await anyio.to_thread.run_sync(store.summary)
        spent = 0.0 if summary is None or summary.cost is None else summary.cost
        return Spending(Budget(max_cost, spent), prices)

    async def _from_store(
        self,
        store: ResultStore,
        keys: list[str | None],
        emit: Emit,
        bar: _ProgressBar | None,
        schema: OutputSchema | None,
    ) -> list[int]:
        """Emit the stored successes (a stored answer parsed again by `schema`, as its call
        parsed it); the indexes still to call."""
        found = await anyio.to_thread.run_sync(store.lookup, [k for k in keys if k is not None])
        todo = []
        for index, key in enumerate(keys):
            stored = found.get(key) if key is not None else None
            generation = None if stored is None else _stored_generation(stored, schema)
            if generation is None:
                todo.append(index)
            else:
                emit(index, generation)
        if bar is not None:
            bar.advance(len(keys) - len(todo))
        return todo


async def iterate(
    run: Callable[[Emit], Awaitable[None]],
) -> AsyncGenerator[tuple[int, Any], None]:
    """`(index, result)` as `run(emit)` emits them, then its error if it raised one; closing
    the iterator early cancels `run` (what finished is kept: `run` commits it)."""
    send, receive = anyio.create_memory_object_stream[tuple[int, Any]](math.inf)
    failure: list[BaseException] = []

    def emit(index: int, result: Any) -> None:
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            send.send_nowait((index, result))

    async def produce() -> None:
        try:
            await run(emit)
        except Exception as exc:
            failure.append(exc)
        finally:
            send.close()

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        try:
            with receive:
                async for item in receive:
                    yield item
        except GeneratorExit:  # closed early by the caller: cancel the rest, keep what ended
            tg.cancel_scope.cancel()
            return
    if failure:
        raise failure[0]


class _Runner:
    """The worker tasks of one batch, and the error that ended it."""

    def __init__(
        self,
        batch: Batch,
        call: Call,
        emit: Emit,
        store: ResultStore | None,
        keys: list[str | None],
        bar: _ProgressBar | None,
    ) -> None:
        self.batch, self.call, self.emit = batch, call, emit
        self.store, self.keys, self.bar = store, keys, bar
        self.failure: BaseException | None = None
        #: The budget and prices of a batch with max_cost (set once the backend started).
        self.spending: Spending | None = None
        #: A stored answer as a Generation, for the answers of processes sharing the store.
        self.stored: Callable[[StoredResult], Generation | None] | None = None

    async def run(self, todo: Sequence[int], cap: int | None) -> None:
        workers = len(todo) if cap is None else min(cap, len(todo))
        pending = claimed(self, todo, workers)
        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(self.worker, pending, tg.cancel_scope)

    async def worker(self, pending: Any, scope: anyio.CancelScope) -> None:
        batch, total = self.batch, len(self.batch.prompts)
        first = True
        async for index in pending:
            if not first:
                # Start the next call on the loop's next turn, as a task waiting on a
                # semaphore would (asyncio.gather's pattern), not in the middle of the
                # turn that handles the last answer: measured side by side
                # (benchmarks/_paired.py), LiteLLM spends 1.5-2% less CPU per call then.
                await anyio.lowlevel.checkpoint()
            first = False
            result: Any
            try:
                result = await self.one(batch.prompts[index])
            except Exception as exc:
                mark_index(exc, index, total, batch.caller)
                result = exc
            try:
                self.keep(index, result)
            except ResultStoreError as exc:  # the run can no longer be kept: stop it
                self.fail(exc, scope)
                return
            if isinstance(result, BudgetExceededError) and not batch.return_exceptions:
                self.failure = self.failure or result  # the calls in flight finish
                return
            if isinstance(result, Exception) and not batch.return_exceptions:
                self.fail(result, scope)
                return
            self.emit(index, result)
            if self.bar is not None:
                self.bar.advance()

    async def one(self, prompt: Any) -> Generation:
        """One prompt's call, under the batch's budget when it has one (BudgetExceededError
        without a call once the budget is closed)."""
        spending = self.spending
        if spending is None:
            return await self.call(prompt, self.batch.kwargs)
        if spending.budget.closed:
            raise spending.budget.exceeded()
        with spending.call(prompt) as spend:
            generation = await self.call(prompt, self.batch.kwargs)
            spend.settle(generation)
            return generation

    def keep(self, index: int, result: Any) -> None:
        """Queue a result or error to the store (an enqueue, no I/O here); a prompt not sent
        for the budget is not stored (a rerun with a higher max_cost sends it)."""
        key = self.keys[index]
        if self.store is None or key is None or isinstance(result, BudgetExceededError):
            return
        if isinstance(result, Generation):
            self.store.put_result(key, index, _record(result))
        else:
            status = getattr(result, "status_code", None)
            status = status if isinstance(status, int) else None
            self.store.put_error(key, index, type(result).__name__, str(result), status)

    def fail(self, error: BaseException, scope: anyio.CancelScope) -> None:
        if self.failure is None or (
            isinstance(error, ResultStoreError) and not isinstance(self.failure, ResultStoreError)
        ):
            self.failure = error
        scope.cancel()


# --- the store -------------------------------------------------------------------------


async def _open_store(results_db: Any) -> tuple[ResultStore | None, bool]:
    """The batch's store and whether the batch owns it (opened from a path: closed at the end)."""
    if results_db is None or isinstance(results_db, ResultStore):
        return results_db, False
    return await anyio.to_thread.run_sync(ResultStore, results_db), True


def _keys(prompts: list[Any], target: str, params: Mapping[str, Any]) -> list[str | None]:
    """Each prompt's store key; None for a prompt that is no prompt (its call raises)."""
    hashes: list[str | None] = []
    for prompt in prompts:
        try:
            hashes.append(ResultStore.request_key(target, cast(Any, to_messages(prompt)), params))
        except ModelRegistryError:
            hashes.append(None)
    numbered = iter(ResultStore.batch_keys(h for h in hashes if h is not None))
    return [None if h is None else next(numbered) for h in hashes]


def _record(generation: Generation) -> StoredResult:
    usage = generation.usage
    return StoredResult(
        text=generation.text,
        finish_reason=generation.finish_reason,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cost=generation.cost,
        latency_s=generation.latency_s,
        model=generation.model,
        provider=generation.provider,
        name=generation.name or "",
        extra=_extra(generation),
        cached_tokens=usage.cached_tokens,
        reasoning_tokens=usage.reasoning_tokens,
    )


def _extra(generation: Generation) -> dict[str, Any]:
    """What a store keeps beyond the columns: logprobs, reasoning and tool calls (`parsed`
    is parsed again from the text on resume, so it comes back as the same type)."""
    extra: dict[str, Any] = {}
    if generation.logprobs is not None:
        extra["logprobs"] = generation.logprobs
    if generation.reasoning is not None:
        extra["reasoning"] = generation.reasoning
    if generation.tool_calls is not None:
        extra["tool_calls"] = [call.to_dict() for call in generation.tool_calls]
    return extra


def _stored_generation(stored: StoredResult, schema: OutputSchema | None) -> Generation | None:
    """A stored answer as a Generation; None (call again) when it no longer validates (the
    schema changed under the same name)."""
    try:
        return _generation(stored, schema)
    except OutputValidationError:
        return None


def _generation(stored: StoredResult, schema: OutputSchema | None = None) -> Generation:
    extra = stored.extra
    logprobs, tool_calls = extra.get("logprobs"), extra.get("tool_calls")
    parsed = None
    if schema is not None and not tool_calls:
        parsed = schema.parse(stored.text, provider=stored.provider, model=stored.model)
    return Generation(
        text=stored.text,
        finish_reason=stored.finish_reason,
        usage=Usage(
            stored.prompt_tokens,
            stored.completion_tokens,
            stored.total_tokens,
            stored.cached_tokens,
            stored.reasoning_tokens,
        ),
        model=stored.model,
        provider=stored.provider,
        latency_s=stored.latency_s,
        cost=stored.cost,
        name=stored.name or None,
        from_store=True,
        parsed=parsed,
        logprobs=None if logprobs is None else msgspec.convert(logprobs, list[TokenLogprob]),
        reasoning=extra.get("reasoning"),
        tool_calls=None if tool_calls is None else msgspec.convert(tool_calls, list[ToolCall]),
        batch_id=extra.get("batch_id"),
    )


class _ProgressBar:
    """A rich progress bar on stderr, imported only when asked for."""

    def __init__(self, total: int, name: str) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=False)
        self._task = self._progress.add_task(name, total=total)
        self._progress.start()

    def advance(self, steps: int = 1) -> None:
        self._progress.advance(self._task, steps)

    def close(self) -> None:
        self._progress.stop()
