"""The files of a result store on disk: what may stand at its path, and the SQLite files
beside it. A store is three files, `<db>`, `<db>-wal` and `<db>-shm`: the last commits live
in `-wal` until a checkpoint copies them into `<db>`, so the three move together."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from model_registry.errors import ResultStoreError

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "BUSY_TIMEOUT_S",
    "check_store_path",
    "checkpoint",
    "companions",
    "connect",
    "move_together",
]

#: How long a connection waits for another process's transaction before it fails.
BUSY_TIMEOUT_S = 60
logger = logging.getLogger("model_registry.store")

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def companions(path: Path) -> tuple[Path, Path]:
    """The write-ahead log and shared-memory index SQLite keeps beside `path`."""
    return path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")


def move_together(path: Path) -> str:
    """The advice every message that says "move the store" gives."""
    wal, shm = companions(path)
    return f"move {path.name}, {wal.name} and {shm.name} together"


def check_store_path(path: Path) -> None:
    """Refuse, before any file is made beside it, a `path` that is neither a regular file nor
    free, and a database that is missing (or empty) beside a `-wal` of its last commits."""
    try:
        info: os.stat_result | None = path.stat()
    except OSError:  # nothing there (or unreachable: opening it says why)
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
        raise ResultStoreError(
            f"results_db {str(path)!r} is {kind}, not a file: a result store is an SQLite "
            "file of its own. Pass a file name (e.g. run.sqlite; a new file is created)."
        )
    wal, shm = companions(path)
    if (info is None or info.st_size == 0) and os.path.lexists(wal):
        left = [repr(str(p)) for p in (wal, shm) if os.path.lexists(p)]
        hold = "hold" if len(left) > 1 else "holds"
        missing = "is missing" if info is None else "is empty"
        raise ResultStoreError(
            f"{' and '.join(left)} {hold} the last results of a result store whose database {str(path)!r} "
            f"{missing}: it was moved or deleted without them. Put the database back beside "
            f"them, or move them to where it went (a store is three files: "
            f"{move_together(path)}); to start afresh, move all of them away. Nothing was "
            "changed."
        )


def checkpoint(db: sqlite3.Connection, path: Path) -> None:
    """Copy the WAL's commits into the database file, so the file alone holds every result.

    Never waits: skipped, with a debug line, while another connection reads or writes (the
    WAL then stays, for the last store that closes)."""
    import sqlite3

    try:
        db.execute("PRAGMA busy_timeout = 0")
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        busy, why = 1, str(exc)
    else:
        why = "another connection is using it"
    finally:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
    if busy:
        logger.debug("the WAL of %s was not checkpointed: %s", path, why)


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the store at `path` in WAL mode; it waits for other writers up to
    `BUSY_TIMEOUT_S` (each holds the file for one short transaction)."""
    import sqlite3

    if readonly:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        return sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
        )
    db = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
    )
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    return db
