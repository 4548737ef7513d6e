"""One batch of prompts through a client: `generate_many` and `iter_many` share it.

A fixed number of worker tasks pull prompts from one feed (the concurrency cap holds
without a limiter, and 10,000 prompts cost `workers` tasks, not 10,000). The feed reads the
prompts a chunk at a time (`_batch_feed`: any iterable, async ones too), so memory holds a
chunk, not the input. With a results_db, each chunk's keys are computed and looked up as it
is read, stored successes come back without a call (`from_store=True`), and every call's
result or error is queued to the store as it completes (an enqueue: the store's writer thread commits in the background). Whatever
ends the batch (its last answer, its first error, a cancel, Ctrl-C), what finished is
committed before the batch returns or raises.

With `max_cost`, each call's attempts reserve their cost from the batch's budget before they
are sent (`_policy.spend`: the store's recorded cost counts, other processes' spend in it
read again at each reservation); prompts that do not fit get BudgetExceededError, never
stored, while the calls in flight finish and are stored.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import (
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any

import anyio
import anyio.to_thread

from model_registry._prompts import Prompt
from model_registry._store_read import new_batch, record_inputs
from model_registry.clients._batch_api.options import batch_options
from model_registry.clients._batch_checks import (
    batch_api_prompts,
    check_concurrency,
    check_results_db,
    mark_index,
    prompt_source,
    refuse_local,
)
from model_registry.clients._batch_feed import CHUNK, ChunkKeys, Emit, PromptFeed, Room, iterate
from model_registry.clients._batch_records import (
    _generation,
    _record,
    _stored_generation,
    keep_in_store,
)
from model_registry.clients._claims import CLAIMED_AT_ONCE, Claims
from model_registry.clients._policy.cost_bound import pricing
from model_registry.clients._policy.spend import Budget, Spending, StoreSpend, check_max_cost
from model_registry.clients._structured import OutputSchema, output_schema
from model_registry.errors import BudgetExceededError, ResultStoreError
from model_registry.store import ResultStore
from model_registry.types import Generation, Resolution

__all__ = [
    "Batch",
    "Emit",
    "PromptSource",
    "_generation",
    "_keys",
    "_record",
    "_stored_generation",
    "iterate",
    "keep_at",
]

#: What a batch reads its prompts from.
PromptSource = Iterable[Prompt] | AsyncIterable[Prompt]


class Batch:
    """The prompts, options and store of one `generate_many`/`iter_many` call, checked at once
    (before any await): prompts an iterable (a list: `total` known), concurrency a positive
    whole number, results_db a path or a ResultStore, max_cost a number of USD >= 0."""

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
        self.prompts, self.total = prompt_source(prompts, caller)
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
        if self.batch_api and not isinstance(self.prompts, list):  # jobs are built whole
            self.prompts = batch_api_prompts(self.prompts, caller)
            self.total = len(self.prompts)

    async def run(self, client: Any, emit: Emit, room: Room | None = None) -> None:
        """Run every prompt through `client` (a BaseClient, started only when some prompt
        needs a call), `emit` each result as it completes; raise the first error (with
        `.index`) unless `return_exceptions`. Its store target and params with this batch's
        kwargs make the store keys; the names of its chain are priced for max_cost. `room`
        is awaited before each prompt is taken (`iterate`: a reader that keeps up)."""
        if self.batch_api:  # the provider's batch API (`_batch_api`)
            await client._run_batch_jobs(self, emit)
            return
        names: Sequence[Resolution] = client._chain()
        if self.max_cost is not None:
            refuse_local(names)
        store, owned = await _open_store(self.results_db)
        bar = _ProgressBar(self.total, client.name) if self.progress else None
        runner = _Runner(self, client, emit, store, bar)
        runner.names, runner.room = names, room
        try:
            cap = self.concurrency if self.concurrency is not None else client.default_concurrency
            await runner.run(CHUNK if cap is None else cap)
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
        """The budget of this batch (the store's recorded cost spent already, and the
        others' spend in it read at each reservation) and the price of each name;
        InvalidParameterError for a name with no known price."""
        prices = {n.name: pricing(n, self.kwargs) for n in names}
        if store is None:
            return Spending(Budget(max_cost), prices)
        spent, shared = await StoreSpend.start(store)
        return Spending(Budget(max_cost, spent, shared), prices)

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


class _Runner:
    """The worker tasks of one batch, and the error that ended it."""

    def __init__(
        self, batch: Batch, client: Any, emit: Emit, store: ResultStore | None, bar: Any
    ) -> None:
        self.batch, self.client, self.emit, self.store, self.bar = batch, client, emit, store, bar
        #: The client's `_call`, called with `batched=True` (a partial would make a dict a call)
        self.call: Callable[..., Awaitable[Generation]] = client._call
        self.failure: BaseException | None = None
        #: The budget and prices of a batch with max_cost (set once the backend started).
        self.spending: Spending | None = None
        self.names: Sequence[Resolution] = ()
        self.room: Room | None = None
        #: With a store, fewer prompts a chunk: a chunk's keys are claimed at once.
        self.feed = PromptFeed(batch.prompts, CHUNK if store is None else CLAIMED_AT_ONCE)
        #: The prompts read and still to call: (index, prompt, store key).
        self.todo: deque[tuple[int, Any, str | None]] = deque()
        self.reading = anyio.Lock()
        #: Every prompt was read (and, with claims, none is left to take): the workers
        #: that find `todo` empty end without taking the lock.
        self.read_all = False
        self.started = False
        self.workers = 0
        self.keys: ChunkKeys | None = None
        #: The number this batch's inputs are recorded under in the store (`_store_read`).
        self.inputs = new_batch()
        self.schema: OutputSchema | None = None
        if store is not None:
            params = {**client.params, **batch.kwargs}
            self.keys = ChunkKeys(client._store_target(), params)
            self.schema = output_schema(params.get("response_format"))
        #: Which prompts this process sends when other processes share the store.
        self.claims = None if store is None else Claims(store, self, self.schema)

    async def run(self, cap: int) -> None:
        """Up to `cap` workers, started as the prompts read call for them."""
        self.cap = cap
        async with anyio.create_task_group() as tg:
            self.tg = tg
            self.workers = 1
            tg.start_soon(self.worker)

    async def next(self) -> tuple[int, Any, str | None] | None:
        """The next prompt to call; None once every prompt was read."""
        if self.room is not None:
            await self.room()
        while not self.todo:  # the lock only to read: taking it for every prompt costs a turn
            if self.read_all:
                return None
            async with self.reading:
                if self.todo or self.read_all:  # another worker read meanwhile
                    continue
                if await self.read_chunk():
                    continue
                # every prompt read: those other processes held, answered there or sent here
                if self.claims is None or not await self.claims.refill(self.todo):
                    self.read_all = True
                    return None
        return self.todo.popleft()

    async def read_chunk(self) -> bool:
        """Read a chunk: emit its stored answers, queue the rest, start the workers it needs
        (and the backend for the first call); False at the end of the prompts."""
        chunk = await self.feed.read()
        if not chunk:
            return False
        if self.store is None or self.keys is None:
            self.todo.extend([(index, prompt, None) for index, prompt in chunk])
        else:
            keys = await anyio.to_thread.run_sync(self.keys, [prompt for _, prompt in chunk])
            emit = self.emit

            def emit_stored(position: int, result: Any) -> None:
                emit(chunk[position][0], result)

            indexed = ((chunk[position][0], key) for position, key in enumerate(keys))
            record_inputs(self.store, self.inputs, ((i, k) for i, k in indexed if k is not None))
            todo = await self.batch._from_store(
                self.store, keys, emit_stored, self.bar, self.schema
            )
            unsent = [(*chunk[position], keys[position]) for position in todo]
            self.todo.extend(unsent if self.claims is None else await self.claims.take(unsent))
        if self.todo and not self.started:
            await self.start()
        while self.workers < self.cap and self.workers < len(self.todo):
            self.workers += 1
            self.tg.start_soon(self.worker)
        return True

    async def start(self) -> None:
        """Start the backend, and price the chain for max_cost, before the first call."""
        self.started = True
        await self.client.start()
        if self.batch.max_cost is not None:
            self.spending = await self.batch._spending(self.batch.max_cost, self.store, self.names)

    async def worker(self) -> None:
        batch, scope = self.batch, self.tg.cancel_scope
        first = True
        while True:
            try:
                item = await self.next()
            except Exception as exc:  # reading the prompts, the store, starting the backend
                self.fail(exc, scope)
                return
            if item is None:
                return
            index, prompt, key = item
            if not first:
                # Start the next call on the loop's next turn, as a task waiting on a
                # semaphore would (asyncio.gather's pattern), not in the middle of the
                # turn that handles the last answer: measured side by side
                # (benchmarks/_paired.py), LiteLLM spends 1.5-2% less CPU per call then.
                # asyncio's sleep(0) is anyio's checkpoint on asyncio (the one loop LiteLLM
                # and vLLM run on) without its two layers of coroutines.
                await asyncio.sleep(0)
            first = False
            result: Any
            try:
                result = await self.one(prompt)
            except Exception as exc:
                mark_index(exc, index, batch.total, batch.caller)
                result = exc
            try:
                self.keep(key, index, result)
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

    def one(self, prompt: Any) -> Awaitable[Generation]:
        """One prompt's call, under the batch's budget when it has one (BudgetExceededError
        without a call once the budget is closed). Without a budget, the call's coroutine
        itself (see `_policy`'s docstring on the hot path's depth)."""
        spending = self.spending
        if spending is None:
            return self.call(prompt, self.batch.kwargs, batched=True)
        return self._budgeted(spending, prompt)

    async def _budgeted(self, spending: Spending, prompt: Any) -> Generation:
        if spending.budget.closed:
            raise spending.budget.exceeded()
        with spending.call(prompt) as spend:
            generation = await self.call(prompt, self.batch.kwargs, batched=True)
            spend.settle(generation)
            return generation

    def keep(self, key: str | None, index: int, result: Any) -> None:
        """Queue a result or error to the store (an enqueue, no I/O here); a prompt not sent
        for the budget is not stored (a rerun with a higher max_cost sends it)."""
        if self.store is not None:
            keep_in_store(self.store, key, index, result)

    def fail(self, error: BaseException, scope: anyio.CancelScope) -> None:
        if self.failure is None or (
            isinstance(error, ResultStoreError) and not isinstance(self.failure, ResultStoreError)
        ):
            self.failure = error
        scope.cancel()


def keep_at(results: list[Any]) -> Emit:
    """`generate_many`'s emit: `results[index] = result`, the list grown for prompts read
    from an iterable (their number unknown ahead)."""

    def keep(index: int, result: Any) -> None:
        if index >= len(results):
            results.extend([None] * (index + 1 - len(results)))
        results[index] = result

    return keep


# --- the store -------------------------------------------------------------------------


async def _open_store(results_db: Any) -> tuple[ResultStore | None, bool]:
    """The batch's store and whether the batch owns it (opened from a path: closed at the end)."""
    if results_db is None or isinstance(results_db, ResultStore):
        return results_db, False
    return await anyio.to_thread.run_sync(ResultStore, results_db), True


def _keys(prompts: list[Any], target: str, params: Mapping[str, Any]) -> list[str | None]:
    """Each prompt's store key; None for a prompt that is no prompt (its call raises)."""
    return ChunkKeys(target, params)(prompts)


class _ProgressBar:
    """A rich progress bar on stderr, imported only when asked for."""

    def __init__(self, total: int | None, name: str) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=False)
        self._task = self._progress.add_task(name, total=total)
        self._progress.start()

    def advance(self, steps: int = 1) -> None:
        self._progress.advance(self._task, steps)

    def close(self) -> None:
        self._progress.stop()
