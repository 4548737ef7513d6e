"""Opening a result store's file: a new or empty file becomes a store; any other file is
checked, before anything is written, and refused unless it is a sound store of ours (then it
is left byte for byte as it was). Several processes may open one new file at once."""

from __future__ import annotations

import contextlib
from pathlib import Path

from model_registry._store_files import BUSY_TIMEOUT_S, move_together
from model_registry.errors import ResultStoreError

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "open_checked"]

APPLICATION_ID = 0x4D52_5253  # "MRRS": model-registry result store, at byte 68 of the file
SCHEMA_VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"


def open_checked(path: Path, readonly: bool, table: str) -> None:
    """Initialise `path` with a `results` table of columns `table` when new or empty (unless
    `readonly`); otherwise refuse it, before writing anything, unless it is a sound store of
    ours."""
    import sqlite3

    schema = (
        f"CREATE TABLE results ({table})",
        f"PRAGMA application_id = {APPLICATION_ID}",
        f"PRAGMA user_version = {SCHEMA_VERSION}",
    )

    expected = [column.split()[0] for column in table.split(", ")]
    _finish_killed_transaction(path, readonly)
    header = _header(path, readonly)
    if not header and not readonly:
        # Under the write lock: another process may be initialising the same new file.
        new = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        with contextlib.closing(new) as db, contextlib.suppress(sqlite3.DatabaseError):
            db.execute("BEGIN IMMEDIATE")  # not ours after all: refused below, unchanged
            if db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
                for statement in schema:
                    db.execute(statement)
            db.execute("COMMIT")
        header = _header(path, readonly)
    if readonly and not header:
        raise _refused(path, "is empty: there is no result store to read yet")
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise _refused(path, "is not a model-registry result store (not an SQLite database)")
    if (app_id := int.from_bytes(header[68:72], "big")) != APPLICATION_ID:
        raise _refused(path, f"is an SQLite database of another program ({app_id=:#x})")
    # Read-only: a damaged store must not be touched (a read-write close could checkpoint).
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        ) as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            columns = [row[1] for row in db.execute("PRAGMA table_info(results)")]
            problems = [row[0] for row in db.execute("PRAGMA quick_check(5)") if row[0] != "ok"]
    except sqlite3.Error as exc:
        version, columns, problems = SCHEMA_VERSION, expected, [str(exc)]
    if version > SCHEMA_VERSION:
        raise _refused(path, f"was written by a newer model-registry (store version {version})")
    if problems or columns != expected:
        why = "; ".join(problems) or "its results table is missing or altered"
        raise _refused(path, f"is a model-registry result store but it is damaged ({why})")


def _finish_killed_transaction(path: Path, readonly: bool) -> None:
    """Roll back what a process killed mid-transaction left in `path`'s rollback journal (a
    store's first transaction, which creates it, runs before WAL mode): SQLite's own
    recovery, which a read-only connection cannot run. A file SQLite cannot read is left
    as it is for the checks to refuse."""
    import sqlite3

    journal = path.with_name(path.name + "-journal")
    if not journal.is_file() or journal.stat().st_size == 0:
        return
    if readonly:
        raise ResultStoreError(
            f"{path} was left mid-transaction by a process that ended (its rollback journal "
            f"{journal.name} is there), and a read-only store cannot roll it back: open it "
            "once with ResultStore(path) (not readonly) or run the batch again, then read it"
        )
    writer = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    with contextlib.closing(writer) as db, contextlib.suppress(sqlite3.DatabaseError):
        db.execute("PRAGMA user_version").fetchone()  # a reader first rolls a hot journal back


def _header(path: Path, readonly: bool) -> bytes:
    """The first 100 bytes of `path`, made empty when new (unless `readonly`)."""
    try:
        with open(path, "rb" if readonly else "ab+") as file:  # never changes an existing file
            file.seek(0)
            return file.read(100)
    except OSError as exc:
        hint = (
            "readonly=True opens an existing store only: check the path"
            if readonly
            else "Check that the folder exists and is writable, or pass another results_db"
        )
        raise ResultStoreError(
            f"Cannot open the result store {path}: {exc.strerror}. {hint}."
        ) from None


def _refused(path: Path, what: str) -> ResultStoreError:
    return ResultStoreError(
        f"{path} {what}. It was left unchanged; pass a new file name for results_db, or "
        f"{move_together(path)} to another folder (a damaged store's results are then "
        "requested again; sqlite3's `.recover` may save them)."
    )
