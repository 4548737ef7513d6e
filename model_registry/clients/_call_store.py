"""A result store for single calls (`generate`, `stream`) and the client's default store.

A call's key is the key a batch gives the first occurrence of the same request
(`<hash>#0`), whatever the method: a stream replays what `generate` or a batch stored, and
two separate identical calls share one answer. Stored successes come back without a request
(`from_store=True`); errors are stored but never served, so the call is made again.
Identical calls of one client in flight at once send one request; the others wait for its
outcome (`CallStores.open_call`).

A store given as a path is opened once per process for every client that names the same
file (one writer thread per file), held by each client that used it, and closed when the
last of them closes (`aclose`). Every answer of a call is committed before the call returns.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, TypeAlias

import anyio
import anyio.to_thread

from model_registry._prompts import Prompt, to_messages
from model_registry.clients._batch import _record, _stored_generation
from model_registry.clients._batch_checks import check_results_db
from model_registry.clients._structured import output_schema
from model_registry.errors import ClientClosedError, ModelRegistryError
from model_registry.store import ResultStore, StoredResult
from model_registry.types import Generation

__all__ = ["CLIENT_DEFAULT", "CallStores", "ClientDefault", "ResultsDb", "StoredCall"]

#: What `results_db=` takes: a path, a `ResultStore` of the caller's, or None (no store).
ResultsDb: TypeAlias = str | os.PathLike[str] | ResultStore | None


class ClientDefault(enum.Enum):
    """The default of a call's `results_db=`: the store given to `get_client` (or none)."""

    CLIENT = "the client's results_db"

    def __repr__(self) -> str:
        return "<the client's results_db>"


CLIENT_DEFAULT: Final = ClientDefault.CLIENT

#: Stores opened from a path, by real path: the store and how many clients hold it.
_opened: dict[str, tuple[ResultStore, int]] = {}
_opened_lock = threading.Lock()


def _where(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path))


def _acquire(path: str | os.PathLike[str]) -> ResultStore:
    """The process's store for `path`, opened if no client holds it (blocking: a thread)."""
    where = _where(path)
    with _opened_lock:
        store, users = _opened.get(where) or (ResultStore(path), 0)
        _opened[where] = (store, users + 1)
        return store


def _acquire_if_open(where: str) -> ResultStore | None:
    """The process's store at `where` with one more holder, if one is open (no I/O)."""
    with _opened_lock:
        if (entry := _opened.get(where)) is None:
            return None
        _opened[where] = (entry[0], entry[1] + 1)
        return entry[0]


def _release(where: str) -> None:
    """One holder fewer; the last one closes the store (blocking: a thread)."""
    with _opened_lock:
        store, users = _opened[where]
        if users > 1:
            _opened[where] = (store, users - 1)
            return
        del _opened[where]
        store.close()  # under the lock: a store opened next for the path waits for it


class CallStores:
    """The stores of one client: its default (`get_client(results_db=)`) and the stores it
    opened from paths, released by `aclose`."""

    def __init__(self) -> None:
        self.default: Any = None
        self._held: dict[str, ResultStore] = {}
        self._target: str | None = None
        #: (store, key) of the calls being sent -> set when their outcome is committed.
        self._in_flight: dict[tuple[int, str], anyio.Event] = {}
        #: Store reads and commits under way; aclose() waits for them before closing a store.
        self._busy = 0
        self._idle: anyio.Event | None = None

    def set_default(self, results_db: Any) -> None:
        """Make `results_db` the default of every call and batch; checked here."""
        check_results_db(results_db)
        self.default = results_db

    def wanted(self, results_db: Any) -> Any:
        """What a call's `results_db=` stands for: the default when not given."""
        return self.default if results_db is CLIENT_DEFAULT else results_db

    def for_batch(self, results_db: Any) -> Any:
        """A batch's `results_db`: a path this process holds open becomes its store (flushed,
        not closed, by the batch); other values as given (the batch checks them)."""
        wanted = self.wanted(results_db)
        if not isinstance(wanted, str | os.PathLike):
            return wanted
        where = _where(wanted)
        held = self._held.get(where)
        if held is None and (held := _acquire_if_open(where)) is not None:
            self._held[where] = held
        return wanted if held is None else held

    async def store(self, results_db: Any) -> ResultStore | None:
        """The store a call uses (None: none), opened from a path on first use."""
        wanted = self.wanted(results_db)
        if wanted is None or isinstance(wanted, ResultStore):
            return wanted
        check_results_db(wanted)
        key = _where(wanted)
        if (held := self._held.get(key)) is not None:
            return held
        store = await anyio.to_thread.run_sync(_acquire, wanted)
        if key in self._held:  # another call of this client opened it meanwhile
            await anyio.to_thread.run_sync(_release, key)
        return self._held.setdefault(key, store)

    async def open_call(
        self, client: Any, store: ResultStore, prompt: Prompt, kwargs: Mapping[str, Any]
    ) -> StoredCall:
        """The call's key and stored answer (`answer`); while another call of this client
        sends the same request to the same store, that one's outcome is awaited first. A call
        left to send holds its key until its `done()`."""
        params = {**client.params, **kwargs}
        while True:
            with self.using():
                call = await StoredCall.look_up(client, store, prompt, kwargs)
            call.using = self.using
            call.answer = call.replay(params)
            if call.answer is not None or call.key is None:
                return call
            slot = (id(store), call.key)
            if (other := self._in_flight.get(slot)) is None:
                sent = self._in_flight[slot] = anyio.Event()
                call.done = functools.partial(self._sent, slot, sent)
                return call
            await other.wait()
            client._check_open()  # ClientClosedError once aclose() ran meanwhile

    def _sent(self, slot: tuple[int, str], sent: anyio.Event) -> None:
        if self._in_flight.get(slot) is sent:
            del self._in_flight[slot]
        sent.set()

    def target(self, client: Any) -> str:
        """The client's store target, computed once (a local model's reads its files)."""
        if self._target is None:
            self._target = client._store_target()
        return self._target

    @contextlib.contextmanager
    def using(self) -> Iterator[None]:
        """Mark a store read or commit under way (aclose() waits for it)."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy and self._idle is not None:
                self._idle.set()

    async def aclose(self) -> None:
        """Release every store this client opened from a path, once the reads and commits
        under way ended; the last holder closes it."""
        held, self._held = list(self._held), {}
        with anyio.CancelScope(shield=True):
            if self._busy:
                self._idle = anyio.Event()
                await self._idle.wait()
            for where in held:
                await anyio.to_thread.run_sync(_release, where)


def _nothing() -> None:
    pass


class StoredCall:
    """One call's key in its store and the answer stored for it, if any."""

    def __init__(self, store: ResultStore, key: str | None, found: StoredResult | None) -> None:
        self.store, self.key, self.found = store, key, found
        #: The stored answer as the call returns it (`replay`), or None: send the call.
        self.answer: Generation | None = None
        #: Called once the call's outcome is kept: the same calls waiting go on.
        self.done: Callable[[], None] = _nothing
        #: Marks the commit of its outcome as under way (`CallStores.using`).
        self.using: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext

    @classmethod
    async def look_up(
        cls, client: Any, store: ResultStore, prompt: Prompt, kwargs: Mapping[str, Any]
    ) -> StoredCall:
        """The call's key and stored success (a worker thread: hashing, files, SQLite)."""

        def look() -> StoredCall:
            try:
                messages: Any = to_messages(prompt)
            except ModelRegistryError:  # no prompt: the call raises its own error
                return cls(store, None, None)
            params = {**client.params, **kwargs}
            content = ResultStore.request_key(client._stores.target(client), messages, params)
            key = ResultStore.batch_keys([content])[0]
            return cls(store, key, store.lookup([key]).get(key))

        return await anyio.to_thread.run_sync(look)

    def replay(self, params: Mapping[str, Any]) -> Generation | None:
        """The stored answer as a `Generation` (parsed by the call's response_format, as its
        call parsed it); None to call: nothing stored, or it no longer validates."""
        if self.found is None:
            return None
        return _stored_generation(self.found, output_schema(params.get("response_format")))

    async def keep(self, outcome: Generation | BaseException) -> None:
        """Store the call's answer or error and wait until it is committed; a call cut short
        by `aclose` leaves nothing."""
        key, store = self.key, self.store
        if key is None or isinstance(outcome, ClientClosedError):
            return
        with self.using(), anyio.CancelScope(shield=True):
            if isinstance(outcome, Generation):
                store.put_result(key, 0, _record(outcome))
            else:
                status = getattr(outcome, "status_code", None)
                status = status if isinstance(status, int) else None
                store.put_error(key, 0, type(outcome).__name__, str(outcome), status)
            await store.aflush()
