"""The result store: every answer of a batch kept in an SQLite file as it arrives.

A writer thread commits whatever is queued in one transaction, again and again (group
commit, never on a timer): a killed process loses only what sat in the queue (WAL mode,
`synchronous=NORMAL`: a power cut may lose the last moments, never the file). Several
processes may open one store: their writers take turns, each holding the file for one short
transaction, and a batch claims each request before sending it (`_store_leases`), so the
same batch run by several processes sends each prompt once. A file that is not a store of
ours is refused and never written to. A store is three files (`run.sqlite`, `run.sqlite-wal`,
`run.sqlite-shm`): the WAL is checkpointed into the database when a store opens (a crashed
run's last commits included) and when it closes, and a `-wal` whose database is missing is
refused, never deleted. `sqlite3` is imported on the first store opened.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, cast

import msgspec

from model_registry._options import NOT_IN_KEY
from model_registry._store_files import check_store_path, checkpoint, connect, move_together
from model_registry._store_leases import END_CLAIM, Leases, check_lease_s
from model_registry._store_open import open_checked
from model_registry._store_read import StoredResult as StoredResult  # importable from here too
from model_registry._store_read import StoreReading
from model_registry._store_values import USAGE_SUMS, content_hash, encode_extra, split_extra
from model_registry.errors import ResultStoreError

if TYPE_CHECKING:
    import sqlite3

__all__ = ["ResultStore", "ResultStoreError", "StoreSummary"]

#: Our own kwargs and call options (`_options.NOT_IN_KEY`): they change how a call is made,
#: never its answer, so they are not part of a request's key.
EXCLUDED_FROM_KEY = NOT_IN_KEY
# Besides those, credentials never enter a key: values of keys named like a credential
# (`_redaction.is_secret_key`, at any depth: `api_key`, `extra_headers.Authorization`), URL
# userinfo (`https://user:pass@host`) and credential query parameters (`?key=...`).

_TABLE = (
    "key TEXT PRIMARY KEY NOT NULL, idx INTEGER NOT NULL, ok INTEGER NOT NULL, text TEXT, "
    "finish_reason TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, total_tokens INTEGER, "
    "cost REAL, latency_s REAL, model TEXT, provider TEXT, name TEXT, extra TEXT, "
    "error_class TEXT, error_message TEXT, status_code INTEGER, updated_at REAL NOT NULL"
)
_COLUMNS = [column.split()[0] for column in _TABLE.split(", ")]
_ERROR_FIELDS = ("idx", "error_class", "error_message", "status_code", "updated_at")
_INSERT = f"INTO results ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_PUT_RESULT = f"INSERT OR REPLACE {_INSERT}"
# An error never replaces a success (a success is never asked again, but be safe).
_UPDATE = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c in _ERROR_FIELDS)
_PUT_ERROR = f"INSERT {_INSERT} ON CONFLICT(key) DO UPDATE SET {_UPDATE} WHERE results.ok = 0"
_STORED = ", ".join(_COLUMNS[3:14])  # text ... extra: the fields of a StoredResult
_LOOKUP = f"SELECT key, {_STORED} FROM results WHERE ok = 1 AND key IN ({{}})"
_LOOKUP_CHUNK = 500
_STOP = object()
_COST = _COLUMNS.index("cost")
#: The cost of the rows after a row number, and the last row's number (the rowid: a row
#: written later has a higher one, a result replacing a row included).
_RECORDED_AFTER = "SELECT total(cost), max(rowid) FROM results WHERE rowid > ?"
_RECORDED = "SELECT total(cost), max(rowid) FROM results"

logger = logging.getLogger("model_registry.store")


class StoreSummary(msgspec.Struct, frozen=True):
    """Totals over everything in a store file. `failed` counts keys whose last outcome is an
    error (an error later replaced by a success counts in `results`); `cost` is None when no
    stored result has a known cost (local models); `cached_tokens`, `reasoning_tokens` likewise."""

    results: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


class ResultStore(StoreReading):
    """An SQLite file of results and errors keyed by request; see the module docstring.

        with ResultStore("run.sqlite") as store:
            keys = ResultStore.batch_keys([ResultStore.request_key(route, m, params) for m in batch])
            done = store.lookup(keys)              # stored successes: no call needed
            store.put_result(keys[i], i, record)   # enqueues: never blocks the event loop

    `put_result`/`put_error` only enqueue (safe on the event loop); `lookup`, `summary`,
    `flush` and `close` block (use `aflush`/`aclose` from async code). Several processes may
    open one file; a claim lasts `lease_s` seconds after its holder's last renewal. With
    `readonly=True` an existing store is only read: it never blocks writers, and puts raise."""

    def __init__(
        self, path: str | os.PathLike[str], *, lease_s: float = 30, readonly: bool = False
    ) -> None:
        self.path, self.readonly, self.lease_s = Path(path), readonly, check_lease_s(lease_s)
        self._leases = Leases(self.path, lambda: connect(self.path), self.lease_s)
        check_store_path(self.path)
        open_checked(self.path, readonly, _TABLE)
        self._reader = connect(self.path, readonly)
        self._writer = None if readonly else connect(self.path)
        if self._writer is not None:
            checkpoint(self._writer, self.path)  # a crashed run's last commits, into the file
        self._reader_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._failure: BaseException | None = None
        self._closed = False
        #: The finite costs of the results this store's writer committed (`committed_cost`).
        self._committed_cost = 0.0
        self._thread = threading.Thread(
            target=self._write_loop, name=f"ResultStore({self.path.name})", daemon=True
        )
        if not readonly:
            self._thread.start()

    @staticmethod
    def request_key(target: str, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> str:
        """The content hash of a request: sha256 (hex) of the route or local model, the
        messages and the params, without credentials or call options (`EXCLUDED_FROM_KEY`)."""
        kept = {k: v for k, v in params.items() if k not in EXCLUDED_FROM_KEY}
        return content_hash(target, messages, kept)

    @staticmethod
    def batch_keys(contents: Iterable[str]) -> list[str]:
        """Keys for a batch from its content hashes: `<hash>#<n>`, n the occurrence number of
        that hash so far, so repeated prompts get separate results and reordering or inserting
        prompts never gives a prompt another's answer."""
        seen: Counter[str] = Counter()
        keys = []
        for content in contents:
            keys.append(f"{content}#{seen[content]}")
            seen[content] += 1
        return keys

    def lookup(self, keys: Iterable[str]) -> dict[str, StoredResult]:
        """The stored successes among `keys` (stored errors are left out: they are retried)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, StoredResult] = {}
        with self._reading() as db:
            for start in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[start : start + _LOOKUP_CHUNK]
                marks = ", ".join("?" * len(chunk))
                for key, *fields, text in db.execute(_LOOKUP.format(marks), chunk):
                    extra, counts = split_extra(text)
                    found[key] = StoredResult(*(*fields, extra), **counts)
        return found

    def summary(self) -> StoreSummary:
        """Totals over every row of the file, what was put so far included (it flushes)."""
        self.flush()
        with self._reading() as db:
            row = db.execute(
                "SELECT COALESCE(SUM(ok), 0), COALESCE(SUM(1 - ok), 0), "
                "COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
                f"SUM(cost), {USAGE_SUMS} FROM results"
            ).fetchone()
        return StoreSummary(*row)

    def recorded_cost(self, after: int | None = None) -> tuple[float, int | None]:
        """`(cost, row)`: the cost recorded in the rows written after row number `after`
        (None: in every row), by any process, and the last row's number (`after` when there
        is none), to pass as `after` next time. It reads only those rows. It does not flush:
        what this store has queued counts once committed."""
        with self._reading() as db:
            if after is None:
                cost, last = db.execute(_RECORDED).fetchone()
            else:
                cost, last = db.execute(_RECORDED_AFTER, (after,)).fetchone()
        return cost, after if last is None else last

    @property
    def committed_cost(self) -> float:
        """The sum of the (finite) costs of the results this store's own writer has
        committed to the file so far; it grows after each commit, never before it."""
        return self._committed_cost

    def put_result(self, key: str, index: int, record: StoredResult) -> None:
        """Queue a success for `key` (the prompt at `index`); it replaces a stored error."""
        self._raise_if_unusable(writing=True)
        try:
            extra = encode_extra(record.extra, (record.cached_tokens, record.reasoning_tokens))
        except (TypeError, ValueError) as exc:
            raise ResultStoreError(
                f"Cannot store the result for prompt {index} in {self.path}: its extra fields "
                f"are not JSON data ({exc}); store only dicts, lists, str, numbers and None."
            ) from None
        usage = (record.prompt_tokens, record.completion_tokens, record.total_tokens)
        who = (record.cost, record.latency_s, record.model, record.provider, record.name, extra)
        row = (key, index, 1, record.text, record.finish_reason, *usage, *who)
        self._queue.put((_PUT_RESULT, (*row, None, None, None, time.time())))
        self._leases.stored(key)

    def put_error(
        self, key: str, index: int, error_class: str, message: str, status_code: int | None
    ) -> None:
        """Queue a failure for `key`; `lookup` ignores it, so the next run retries it."""
        self._raise_if_unusable(writing=True)
        row = (key, index, 0, *([None] * 11), error_class, message, status_code, time.time())
        self._queue.put((_PUT_ERROR, row))
        self._leases.stored(key)

    def put_other(self, statement: str, row: tuple[Any, ...]) -> None:
        """Queue a write to another table of the file (`_store_jobs`), committed in order."""
        self._raise_if_unusable(writing=True)
        self._queue.put((statement, row))

    def claim(self, keys: Sequence[str], batch: object) -> list[str]:
        """Claim for `batch` the keys no other live process holds and none answered (see
        `_store_leases`); the keys claimed. Each claim ends when its key is stored."""
        self._raise_if_unusable(writing=True)
        return self._leases.claim(keys, batch)

    def release_claims(self, batch: object) -> None:
        """End the claims of `batch` on keys it did not store, so other processes send them."""
        if not self._closed:
            self._leases.release(batch)

    def flush(self) -> None:
        """Wait until everything queued so far is committed; raise a writer failure."""
        self._raise_if_unusable()
        if self.readonly:
            return
        done = threading.Event()
        self._queue.put(done)
        while not done.wait(0.05):
            if not self._thread.is_alive():  # closed meanwhile: what was queued is committed
                break
        self._raise_if_unusable(closing=True)

    async def aflush(self) -> None:
        """`flush` from async code, in a worker thread."""
        import anyio.to_thread  # loaded with the first batch, not at import

        await anyio.to_thread.run_sync(self.flush)

    def close(self) -> None:
        """Commit what is queued, stop the writer, end this store's claims, close the file.

        Idempotent; raises ResultStoreError if a write failed (after closing)."""
        if self._closed:
            return
        self._closed = True
        with self._reader_lock:  # a lookup in another thread finishes first
            self._reader.close()
        if self._writer is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._leases.close()
            checkpoint(self._writer, self.path)
            self._writer.close()
        self._raise_if_unusable(closing=True)

    async def aclose(self) -> None:
        """`close` from async code, in a worker thread."""
        import anyio.to_thread

        await anyio.to_thread.run_sync(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _reading(self) -> Any:
        import sqlite3

        with self._reader_lock:  # close() takes it too: a closed store is seen here
            self._raise_if_unusable()
            try:
                yield self._reader
            except sqlite3.Error as exc:
                raise ResultStoreError(
                    f"Could not read the result store {self.path}: {exc}. If the file is "
                    f"damaged, {move_together(self.path)} to another folder to start afresh."
                ) from exc

    def _raise_if_unusable(self, closing: bool = False, writing: bool = False) -> None:
        if self._closed and not closing:
            raise ResultStoreError(f"The result store {self.path} is closed; open it again.")
        if writing and self.readonly:
            raise ResultStoreError(
                f"The result store {self.path} was opened with readonly=True: it cannot store "
                "results or claim requests. Open it without readonly=True to write to it."
            )
        if self._failure is not None:
            raise ResultStoreError(
                f"Could not write to the result store {self.path}: {self._failure}. Results "
                "since the last commit are lost (they will be requested again); fix the cause "
                "(disk space, permissions) and run again to resume."
            ) from self._failure

    def _write_loop(self) -> None:
        """Block for the first item, drain what else is queued, commit it all in one go."""
        import sqlite3

        writer = self._writer
        assert writer is not None  # a read-only store has no writer thread
        while True:
            batch = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._queue.get_nowait())
            puts = [item for item in batch if isinstance(item, tuple)]
            if puts and self._failure is None:
                try:
                    self._commit(puts)
                except Exception as exc:  # disk full, I/O error: raised by the next call
                    self._failure = exc
                    with contextlib.suppress(sqlite3.Error):
                        writer.rollback()
            for waiter in (item for item in batch if isinstance(item, threading.Event)):
                waiter.set()
            if _STOP in batch:
                return

    def _commit(self, puts: list[tuple[str, tuple[Any, ...]]]) -> None:
        # The order of the two statements does not matter: an error never replaces a success.
        db = cast("sqlite3.Connection", self._writer)
        db.execute("BEGIN IMMEDIATE")
        for statement in (_PUT_RESULT, _PUT_ERROR):
            db.executemany(statement, [row for sql, row in puts if sql is statement])
        if self._leases.active:  # the claims on what this commit stores end with it
            holder, stored = self._leases.holder, (_PUT_RESULT, _PUT_ERROR)
            db.executemany(END_CLAIM, [(r[0], holder) for sql, r in puts if sql in stored])
        for sql, row in (p for p in puts if p[0] is not _PUT_RESULT and p[0] is not _PUT_ERROR):
            db.execute(sql, row)  # other tables' writes (`put_other`), in the order queued
        db.execute("COMMIT")
        costs = (row[_COST] for sql, row in puts if sql is _PUT_RESULT)
        self._committed_cost += math.fsum(c for c in costs if c is not None and math.isfinite(c))
