"""The provider batch jobs of a result store: a table of its own in the same SQLite file.

A job is recorded in two steps. Before the requests are sent, an intent: a row with a tag
(sent along as the job's metadata where the provider takes some), the provider and the
request keys, and no job id. The moment the provider accepts the job, its id fills that row
(state `pending`). A process killed in between leaves the intent: the next run looks for a
job carrying its tag at the provider, and either adopts it or drops the intent. Collected
jobs stay, for `model-registry batches`. Stores written before this table existed open as
they are: the table is made on the first batch job.

Every write is committed before the function returns (these are blocking calls: use them
from a worker thread in async code).
"""

from __future__ import annotations

import json
import os
import time

import msgspec

from model_registry.store import ResultStore

__all__ = [
    "BatchJob",
    "all_jobs",
    "batch_jobs",
    "drop_intent",
    "open_jobs",
    "record_accepted",
    "record_intent",
    "record_state",
]

_TABLE = (
    "CREATE TABLE IF NOT EXISTS batch_jobs (tag TEXT PRIMARY KEY NOT NULL, job_id TEXT, "
    "provider TEXT NOT NULL, model TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL, keys TEXT NOT NULL, "
    "created_at REAL NOT NULL, updated_at REAL NOT NULL)"
)
_FIELDS = "tag, job_id, provider, model, name, state, keys, created_at, updated_at"


class BatchJob(msgspec.Struct, frozen=True):
    """One job of a store: `state` is `intent` (not known to be accepted), `pending` (accepted,
    not collected), `collected`, or `gone` (unknown to the provider: its requests were sent
    again); `keys` the request keys it holds; `name`
    the model name it was submitted for (`get_client(name)` reaches its provider)."""

    tag: str
    job_id: str | None
    provider: str
    model: str
    name: str
    state: str
    keys: list[str]
    created_at: float
    updated_at: float


def _write(store: ResultStore, statement: str, row: tuple[object, ...]) -> None:
    store.put_other(_TABLE, ())
    store.put_other(statement, row)
    store.flush()


def record_intent(
    store: ResultStore, tag: str, provider: str, model: str, name: str, keys: list[str]
) -> None:
    """Record, before sending, that a job for `keys` is about to be created under `tag`."""
    now = time.time()
    row = (tag, None, provider, model, name, "intent", json.dumps(keys), now, now)
    _write(store, f"INSERT INTO batch_jobs ({_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)


def record_accepted(store: ResultStore, tag: str, job_id: str) -> None:
    """Record that the provider accepted the job of `tag` as `job_id`."""
    _write(
        store,
        "UPDATE batch_jobs SET job_id = ?, state = 'pending', updated_at = ? WHERE tag = ?",
        (job_id, time.time(), tag),
    )


def record_state(store: ResultStore, tag: str, state: str) -> None:
    """Record a job's new state (`collected`, `gone`)."""
    _write(
        store,
        "UPDATE batch_jobs SET state = ?, updated_at = ? WHERE tag = ?",
        (state, time.time(), tag),
    )


def drop_intent(store: ResultStore, tag: str) -> None:
    """Forget an intent whose job the provider never created."""
    _write(store, "DELETE FROM batch_jobs WHERE tag = ? AND state = 'intent'", (tag,))


def open_jobs(store: ResultStore) -> list[BatchJob]:
    """The intents and pending jobs, oldest first."""
    return [j for j in all_jobs(store) if j.state in ("intent", "pending")]


def all_jobs(store: ResultStore) -> list[BatchJob]:
    """Every job the store knows, oldest first."""
    store.put_other(_TABLE, ())
    store.flush()
    with store._reading() as db:  # the store's reader connection, under its lock
        rows = db.execute(f"SELECT {_FIELDS} FROM batch_jobs ORDER BY created_at, tag").fetchall()
    return [
        BatchJob(tag, job_id, provider, model, name, state, json.loads(keys), created, updated)
        for tag, job_id, provider, model, name, state, keys, created, updated in rows
    ]


def batch_jobs(results_db: str | os.PathLike[str]) -> list[BatchJob]:
    """The provider batch jobs recorded in a results_db file, oldest first (their status at
    the provider: `await get_client(job.name).batch_status([job.job_id])`)."""
    with ResultStore(results_db) as store:
        return all_jobs(store)
