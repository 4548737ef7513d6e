"""Claims on a store's requests, so that processes sharing one store send each request once.

A claim is a row of the `claims` table: the request's key, its holder (one id per open
`ResultStore`, with its process id) and when it expires. The holder renews all its claims
every third of `lease_s` from a thread; a claim whose holder was killed expires `lease_s`
after its last renewal, and another process may then take it over. A claim ends in the
transaction that commits its key's result or error (`END_CLAIM`), or when its batch
releases it. The table is made on the first claim: stores that never shared open as they are.

Every call blocks on SQLite (use them from a worker thread in async code).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from model_registry.errors import ResultStoreError

if TYPE_CHECKING:
    import sqlite3

__all__ = ["END_CLAIM", "Leases", "check_lease_s"]

_TABLE = (
    "CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY NOT NULL, holder TEXT NOT NULL, "
    "pid INTEGER NOT NULL, expires_at REAL NOT NULL)"
)
#: Run by the store's writer, with (key, holder), in the transaction that stores the key.
END_CLAIM = "DELETE FROM claims WHERE key = ? AND holder = ?"
_CHUNK = 400  # keys per statement: well under SQLite's limit on bound parameters

logger = logging.getLogger("model_registry.store")


@contextlib.contextmanager
def _as_store_error(path: Path, error: type[Exception]) -> Iterator[None]:
    try:
        yield
    except error as exc:
        raise ResultStoreError(
            f"Could not claim requests in the result store {path}: {exc}. If another process "
            "holds the store's write lock for minutes, stop it; if the disk is full, free "
            "space; then run again to resume."
        ) from exc


def check_lease_s(lease_s: object) -> float:
    """`lease_s` as a float; ValueError unless it is a number of seconds > 0."""
    if isinstance(lease_s, bool) or not isinstance(lease_s, int | float) or not lease_s > 0:
        raise ValueError(
            f"ResultStore: lease_s={lease_s!r} is not a number of seconds > 0; a claim "
            "expires lease_s after its holder's last renewal (default 30)."
        )
    return float(lease_s)


class Leases:
    """This store's claims: taking them, renewing them while the store is open, ending them."""

    def __init__(self, path: Path, connect: Callable[[], sqlite3.Connection], lease_s: float):
        self.path, self.lease_s = path, lease_s
        self.holder = f"{os.getpid()}-{secrets.token_hex(6)}"
        #: Whether this store ever claimed a key (its writer then ends claims as it stores).
        self.active = False
        self._connect = connect
        self._db: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()
        self._held: dict[str, object] = {}  # key -> the batch that claimed it, until stored
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def claim(self, keys: Sequence[str], batch: object) -> list[str]:
        """Claim for `batch` those of `keys` not answered and not held by another live holder
        (a claim expired, or already this store's, is taken); the keys claimed, in order."""
        import sqlite3

        claimed: list[str] = []
        taken_over: set[int] = set()
        with self._db_lock, _as_store_error(self.path, sqlite3.Error):
            db = self._open()
            # Read first, write only when some key is free: waiting processes poll cheaply.
            free = [
                k for i in range(0, len(keys), _CHUNK) for k in self._free(db, keys[i : i + _CHUNK])
            ]
            if free:
                db.execute("BEGIN IMMEDIATE")
                try:
                    for start in range(0, len(free), _CHUNK):
                        chunk = free[start : start + _CHUNK]
                        claimed += self._claim_chunk(db, chunk, taken_over)
                    db.execute("COMMIT")
                except BaseException:
                    db.rollback()
                    raise
        with self._held_lock:
            self._held.update(dict.fromkeys(claimed, batch))
        if taken_over:
            logger.info(
                "took over claims in %s whose holders stopped renewing them (pid %s)",
                self.path,
                ", ".join(map(str, sorted(taken_over))),
            )
        return claimed

    def stored(self, key: str) -> None:
        """`key`'s result or error is queued: its claim ends when the writer commits it."""
        if self.active:
            with self._held_lock:
                self._held.pop(key, None)

    def release(self, batch: object) -> None:
        """End the claims `batch` holds on keys it did not store (it stopped early)."""
        with self._held_lock:
            keys = [key for key, owner in self._held.items() if owner is batch]
            for key in keys:
                del self._held[key]
        if keys:
            import sqlite3

            with self._db_lock:
                try:
                    self._open().executemany(END_CLAIM, [(key, self.holder) for key in keys])
                except sqlite3.Error as exc:  # they expire lease_s after the last renewal
                    logger.warning(
                        "could not release %d claims in %s: %s", len(keys), self.path, exc
                    )

    def close(self) -> None:
        """Stop renewing and end every claim this store still holds (after its last commit)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        with self._db_lock:
            if self._db is not None:
                with contextlib.suppress(Exception):  # unended claims expire on their own
                    self._db.execute("DELETE FROM claims WHERE holder = ?", (self.holder,))
                self._db.close()
                self._db = None

    def _claim_chunk(
        self, db: sqlite3.Connection, chunk: Sequence[str], taken_over: set[int]
    ) -> list[str]:
        """Claim the free keys of `chunk` (inside the caller's write transaction)."""
        free = self._free(db, chunk, taken_over)
        expires = time.time() + self.lease_s
        db.executemany(
            "INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)",
            [(key, self.holder, os.getpid(), expires) for key in free],
        )
        return free

    def _free(
        self, db: sqlite3.Connection, chunk: Sequence[str], taken_over: set[int] | None = None
    ) -> list[str]:
        """The keys of `chunk` not answered and held by no other live holder; the pids of
        the expired holders among them go to `taken_over`."""
        marks = ", ".join("?" * len(chunk))
        answered = {
            key
            for (key,) in db.execute(
                f"SELECT key FROM results WHERE ok = 1 AND key IN ({marks})", chunk
            )
        }
        now = time.time()
        holders = {
            key: (holder, pid, expires_at)
            for key, holder, pid, expires_at in db.execute(
                f"SELECT key, holder, pid, expires_at FROM claims WHERE key IN ({marks})", chunk
            )
        }
        free = []
        for key in chunk:
            holder, pid, expires_at = holders.get(key, (self.holder, 0, 0.0))
            if key in answered or (holder != self.holder and expires_at > now):
                continue
            if holder != self.holder and taken_over is not None:
                taken_over.add(pid)
            free.append(key)
        return free

    def _open(self) -> sqlite3.Connection:
        """The claims' own connection (the table made if missing), and the renewing thread."""
        if self._db is None:
            self._db = self._connect()
            self._db.execute(_TABLE)
            self.active = True
            self._renewer = threading.Thread(
                target=self._renew, name=f"ResultStore leases({self.path.name})", daemon=True
            )
            self._renewer.start()
        return self._db

    def _renew(self) -> None:
        import sqlite3

        while not self._stop.wait(self.lease_s / 3):
            with self._db_lock:
                if self._db is None:
                    return
                try:
                    self._db.execute(
                        "UPDATE claims SET expires_at = ? WHERE holder = ?",
                        (time.time() + self.lease_s, self.holder),
                    )
                except sqlite3.Error as exc:  # busy past the timeout: the next turn renews
                    logger.warning("could not renew the claims in %s: %s", self.path, exc)
