"""Which prompts of a batch this process sends, when other processes may share its store.

A batch's runner (`clients/_batch.py`) reads its prompts a chunk at a time. With a store,
`Claims.take` claims the keys of a chunk's unanswered prompts (`ResultStore.claim`): the
prompts whose keys it got are sent here, a key another live process holds is set aside.
Once every prompt was read, `Claims.refill` polls the set-aside keys in the store: an
answer is emitted as a stored one (`from_store=True`), and a key whose claim ended
unanswered (its holder was killed and the claim expired, or its call failed) is claimed
and sent here.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

import anyio
import anyio.to_thread

from model_registry.clients._batch_records import _stored_generation
from model_registry.clients._structured import OutputSchema
from model_registry.store import ResultStore

__all__ = ["CLAIMED_AT_ONCE", "Claims"]

#: Prompts read (and their keys claimed) at once when a store may be shared: a process
#: holds at most this many claims it has not started on.
CLAIMED_AT_ONCE = 256
_MOST_POLLED_AT_ONCE = 2_000  # set-aside keys looked up per poll, oldest first

#: One prompt of a batch: (index, prompt, store key).
Item = tuple[int, Any, "str | None"]


class Claims:
    """The claims of one batch on its store's keys; see the module docstring."""

    def __init__(self, store: ResultStore, runner: Any, schema: OutputSchema | None) -> None:
        """`runner`: the batch's runner (its `emit` and `bar`; the claims' holder)."""
        self._store, self._runner, self._schema = store, runner, schema
        self._waiting: dict[str, tuple[int, Any]] = {}  # key -> (index, prompt), held elsewhere
        self._poll_s = min(0.5, store.lease_s / 10)

    async def take(self, items: list[Item]) -> list[Item]:
        """The prompts of `items` this process sends: keyless ones (their call raises) and
        those whose keys it claimed; the others are set aside for `refill`. Raises the
        store's ResultStoreError (read-only, or a claim that could not be written)."""
        if not items:
            return []
        wanted = [key for _, _, key in items if key is not None]
        got = set(await self._claim(wanted))
        ready: list[Item] = []
        for index, prompt, key in items:
            if key is None or key in got:
                ready.append((index, prompt, key))
            else:
                self._waiting[key] = (index, prompt)
        return ready

    async def refill(self, todo: deque[Item]) -> bool:
        """Put set-aside prompts whose claims ended into `todo`, emitting the answers other
        processes stored meanwhile; wait while they are still held. False when none is left."""
        while self._waiting:
            keys = list(itertools.islice(self._waiting, _MOST_POLLED_AT_ONCE))
            found = await anyio.to_thread.run_sync(self._store.lookup, keys)
            runner = self._runner
            for key, stored in found.items():
                index, prompt = self._waiting.pop(key)
                generation = _stored_generation(stored, self._schema)
                if generation is None:  # it no longer validates: ask again, as a resume would
                    todo.append((index, prompt, key))
                    continue
                runner.emit(index, generation)
                if runner.bar is not None:
                    runner.bar.advance()
            for key in await self._claim([key for key in keys if key in self._waiting]):
                todo.append((*self._waiting.pop(key), key))
            if todo:
                return True
            if self._waiting:
                await anyio.sleep(self._poll_s)
        return bool(todo)

    async def _claim(self, keys: list[str]) -> list[str]:
        if not keys and not self._store.readonly:
            return []
        return await anyio.to_thread.run_sync(self._store.claim, keys, self._runner)
