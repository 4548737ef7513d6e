"""Which prompts of a batch this process sends, when other processes may share its store.

The batch's workers take the indexes to send from `claimed(runner, todo, workers)`, an
async iterator. With a store, it claims the keys of the next prompts a chunk at a time
(`ResultStore.claim`) and hands out those it got; a key another live process holds is set
aside. Once nothing else is left, the set-aside keys are polled in the store: an answer is
emitted as a stored one (`from_store=True`), and a key whose claim ended unanswered (its
holder was killed and the claim expired, or its call failed) is claimed and sent here.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

import anyio
import anyio.to_thread

from model_registry.errors import ResultStoreError
from model_registry.store import ResultStore, StoredResult
from model_registry.types import Generation

__all__ = ["claimed"]

_MOST_CLAIMED_AT_ONCE = 256
_MOST_POLLED_AT_ONCE = 2_000  # set-aside keys looked up per poll, oldest first


class Runner(Protocol):
    """What `claimed` uses of a batch's runner (`clients/_batch.py`)."""

    store: ResultStore | None
    keys: list[str | None]
    #: A stored answer as a Generation; None when it must be asked again.
    stored: Callable[[StoredResult], Generation | None] | None
    emit: Callable[[int, Any], None]
    bar: Any
    #: The error that ends the batch (a store that can no longer claim, here).
    failure: BaseException | None


def claimed(runner: Runner, todo: Iterable[int], workers: int) -> AsyncIterator[int]:
    """The indexes of `todo` this process sends, shared by the batch's `workers` tasks."""
    if runner.store is None or runner.stored is None:
        return _Plain(iter(todo))
    if runner.store.readonly:  # before any call: its answer could not be kept
        runner.store.claim([], runner)  # raises the store's read-only error
    return _Claimed(runner, runner.store, iter(todo), max(1, min(workers, _MOST_CLAIMED_AT_ONCE)))


class _Plain:
    """`todo` as it is: no store, nothing to share."""

    def __init__(self, todo: Iterator[int]) -> None:
        self._todo = todo

    def __aiter__(self) -> _Plain:
        return self

    async def __anext__(self) -> int:
        try:
            return next(self._todo)
        except StopIteration:
            raise StopAsyncIteration from None


class _Claimed:
    """The indexes whose keys this process claimed; see the module docstring."""

    def __init__(self, runner: Runner, store: ResultStore, todo: Iterator[int], chunk: int) -> None:
        self._runner, self._store, self._todo, self._chunk = runner, store, todo, chunk
        self._ready: deque[int] = deque()
        self._waiting: dict[str, int] = {}  # key -> index: held by another process
        self._lock = anyio.Lock()
        self._failed = False  # the store could not claim: nothing more is sent
        self._poll_s = min(0.5, store.lease_s / 10)

    def __aiter__(self) -> _Claimed:
        return self

    async def __anext__(self) -> int:
        async with self._lock:
            try:
                while not self._ready and not self._failed:
                    if not await self._refill():
                        break
            except ResultStoreError as exc:  # the calls in flight finish; the batch raises it
                self._failed = True
                if not isinstance(self._runner.failure, ResultStoreError):
                    self._runner.failure = exc
            if not self._ready or self._failed:
                raise StopAsyncIteration
            return self._ready.popleft()

    async def _refill(self) -> bool:
        """Claim the next chunk of prompts, else poll the set-aside keys; False when done."""
        indexes = list(itertools.islice(self._todo, self._chunk))
        if not indexes:
            if not self._waiting:
                return False
            await self._poll()
            return True
        keys = self._runner.keys
        wanted = [key for key in (keys[i] for i in indexes) if key is not None]
        got = set(await self._claim(wanted)) if wanted else set()
        for index in indexes:
            key = keys[index]
            if key is None or key in got:  # a keyless prompt is sent (its call raises)
                self._ready.append(index)
            else:
                self._waiting[key] = index
        return True

    async def _poll(self) -> None:
        """Emit the answers that came, claim the keys whose claims ended; then, with nothing
        to send and keys still awaited, wait a while."""
        keys = list(itertools.islice(self._waiting, _MOST_POLLED_AT_ONCE))
        found = await anyio.to_thread.run_sync(self._store.lookup, keys)
        runner = self._runner
        for key, stored in found.items():
            index = self._waiting.pop(key)
            generation = None if runner.stored is None else runner.stored(stored)
            if generation is None:  # it no longer validates: ask again, as a resume would
                self._ready.append(index)
                continue
            runner.emit(index, generation)
            if runner.bar is not None:
                runner.bar.advance()
        for key in await self._claim([key for key in keys if key in self._waiting]):
            self._ready.append(self._waiting.pop(key))
        if self._waiting and not self._ready:
            await anyio.sleep(self._poll_s)

    async def _claim(self, keys: Sequence[str]) -> list[str]:
        if not keys:
            return []
        return await anyio.to_thread.run_sync(self._store.claim, keys, self._runner)
