"""The files of a result store on disk: what may stand at its path, and the SQLite files
beside it. A store is three files, `<db>`, `<db>-wal` and `<db>-shm`: the last commits live
in `-wal` until a checkpoint copies them into `<db>`, so the three move together."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from model_registry.errors import ResultStoreError

__all__ = ["check_store_path", "companions", "move_together"]

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
