"""The prompts of a batch read a chunk at a time (a list, any iterable, an async iterable),
and each chunk's store keys, numbered across chunks, so a batch holds one chunk of prompts
and keys, never the whole input; and `iterate`, which gives `iter_many` the results, its
workers held while results wait for the reader, so none pile up."""

from __future__ import annotations

import array
import bisect
import contextlib
import heapq
import itertools
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, cast

import anyio

from model_registry._prompts import to_messages
from model_registry.errors import ModelRegistryError
from model_registry.store import ResultStore

__all__ = ["CHUNK", "ChunkKeys", "Emit", "PromptFeed", "Room", "iterate"]

#: Prompts read, keyed and looked up in the store at a time; also the number of calls at
#: once of a batch with no concurrency cap.
CHUNK = 1024
#: How many results `iter_many` holds for its reader before its workers wait.
_WAITING_RESULTS = 256

#: Called with (index, result) as each prompt completes; result a Generation or an exception.
Emit = Callable[[int, Any], None]
#: Awaited before a worker takes a prompt: waits while the results wait for their reader.
Room = Callable[[], Awaitable[None]]


class PromptFeed:
    """`(index, prompt)` chunks of the prompts given to a batch, in input order."""

    def __init__(self, prompts: Any, size: int = CHUNK) -> None:
        self._size = size
        self._sync: Iterator[Any] | None = None
        self._async: AsyncIterator[Any] | None = None
        if hasattr(prompts, "__aiter__"):
            self._async = aiter(prompts)
        else:
            self._sync = iter(prompts)
        self._next = 0

    async def read(self) -> list[tuple[int, Any]]:
        """The next chunk; empty once every prompt was read."""
        if self._sync is not None:
            chunk = list(itertools.islice(self._sync, self._size))
        else:
            chunk = await self._read_async()
        start, self._next = self._next, self._next + len(chunk)
        return list(enumerate(chunk, start))

    async def _read_async(self) -> list[Any]:
        chunk: list[Any] = []
        source = cast(AsyncIterator[Any], self._async)
        while len(chunk) < self._size:
            try:
                chunk.append(await anext(source))
            except StopAsyncIteration:
                self._async = _exhausted()
                break
        return chunk


async def _exhausted() -> AsyncIterator[Any]:
    return
    yield  # an async generator with nothing more to give


class ChunkKeys:
    """The store keys of a batch's prompts, chunk by chunk: `<hash>#<n>`, n the occurrence
    number of that request so far in the batch (`ResultStore.batch_keys`'s numbering)."""

    #: Requests seen are kept as a set until it holds this many, then merged into a
    #: sorted array of 8 bytes each (bisected), so a million prompts take 8 MB, not 70.
    merge_at = 65_536

    def __init__(self, target: str, params: Mapping[str, Any]) -> None:
        self.target, self.params = target, params
        # Python's 64-bit hash of each request's content stands for it: two different
        # requests share one only by a 1-in-2**64 chance, and then the later one is
        # numbered as a repeat, still a key of its own.
        self._sorted = array.array("q")
        self._recent: set[int] = set()
        self._repeats: dict[int, int] = {}

    def __call__(self, prompts: list[Any]) -> list[str | None]:
        """Each prompt's key; None for a prompt that is no prompt (its call raises)."""
        keys: list[str | None] = []
        for prompt in prompts:
            try:
                messages = cast(Any, to_messages(prompt))
                content = ResultStore.request_key(self.target, messages, self.params)
            except ModelRegistryError:
                keys.append(None)
                continue
            keys.append(f"{content}#{self._occurrence(hash(content))}")
        return keys

    def _occurrence(self, short: int) -> int:
        if short not in self._recent and not self._in_sorted(short):
            self._recent.add(short)
            if len(self._recent) >= max(self.merge_at, len(self._sorted) // 4):
                merged = heapq.merge(self._sorted, sorted(self._recent))
                self._sorted, self._recent = array.array("q", merged), set()
            return 0
        n = self._repeats.get(short, 1)
        self._repeats[short] = n + 1
        return n

    def _in_sorted(self, short: int) -> bool:
        at = bisect.bisect_left(self._sorted, short)
        return at < len(self._sorted) and self._sorted[at] == short


async def iterate(
    run: Callable[[Emit, Room], Awaitable[None]],
) -> AsyncGenerator[tuple[int, Any], None]:
    """`(index, result)` as `run(emit, room)` emits them, then its error if it raised one;
    `room` holds `run`'s workers while `_WAITING_RESULTS` results wait for the reader.
    Closing the iterator early cancels `run` (what finished is kept: `run` commits it)."""
    send, receive = anyio.create_memory_object_stream[tuple[int, Any]](math.inf)
    failure: list[BaseException] = []
    taken: list[anyio.Event] = []  # set when the reader takes a result

    def emit(index: int, result: Any) -> None:
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            send.send_nowait((index, result))

    async def room() -> None:
        while receive.statistics().current_buffer_used >= _WAITING_RESULTS:
            if not taken:
                taken.append(anyio.Event())
            await taken[0].wait()

    async def produce() -> None:
        try:
            await run(emit, room)
        except Exception as exc:
            failure.append(exc)
        finally:
            send.close()

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        try:
            with receive:
                async for item in receive:
                    if taken:
                        taken.pop().set()
                    yield item
        except GeneratorExit:  # closed early by the caller: cancel the rest, keep what ended
            tg.cancel_scope.cancel()
            return
    if failure:
        raise failure[0]
