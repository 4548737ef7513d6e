"""Reading a result store: `StoredResult` (what it keeps of an answer), each batch's inputs
in order (a table of its own, `inputs`: the batch, the prompt's index, its key and `run`'s
id), the failed requests, the requests of the latest batch in input order, and their export
in `model-registry run`'s output format.

Stores written before the table existed open as they are: their requests are read by index.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from model_registry._store_values import split_extra

#: A `ResultStore` (this module stands below `store`, so it is not named here).
ResultStore = Any

__all__ = [
    "FailedRequest",
    "StoreReading",
    "StoredRequest",
    "StoredResult",
    "export",
    "failed",
    "new_batch",
    "record_batch",
    "record_ids",
    "record_inputs",
    "requests",
]

_TABLE = (
    "CREATE TABLE IF NOT EXISTS inputs (batch INTEGER NOT NULL, idx INTEGER NOT NULL, "
    "key TEXT NOT NULL, input_id TEXT, PRIMARY KEY (batch, idx))"
)
_PUT = "INSERT OR REPLACE INTO inputs (batch, idx, key, input_id) VALUES"
_SET_ID = "UPDATE inputs SET input_id = ? WHERE batch = ? AND idx = ?"
_LATEST = "SELECT MAX(batch) FROM inputs"
_HAS_INPUTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'inputs'"
_FIELDS = (
    "r.ok, r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens, r.total_tokens, "
    "r.cost, r.latency_s, r.model, r.provider, r.name, r.extra, r.error_class, "
    "r.error_message, r.status_code"
)
_IN_INPUT_ORDER = (
    f"SELECT i.idx, i.input_id, {_FIELDS} FROM inputs i LEFT JOIN results r ON r.key = i.key "
    "WHERE i.batch = ? ORDER BY i.idx"
)
_BY_INDEX = f"SELECT r.idx, NULL, {_FIELDS} FROM results r ORDER BY r.idx, r.updated_at"
_FAILED = (
    "SELECT idx, error_class, status_code, error_message FROM results WHERE ok = 0 ORDER BY idx"
)
#: Inputs a statement (3 bound values each: well under SQLite's limit on bound values).
_INPUTS_AT_ONCE = 256
#: What an export line says of a request of the batch with no outcome in the store.
_NOT_ANSWERED = "no outcome in the store (not sent, or stopped): run the batch again to send it"


class StoredResult(msgspec.Struct, frozen=True):
    """What a store keeps of one answer: enough to rebuild a `Generation`. `extra` holds later
    fields (parsed, logprobs, reasoning) as JSON; a non-finite float in it (a logprob of -inf)
    is stored as `{"$float": "-inf"}` (plain JSON) and read back as the float. The cached and
    reasoning token counts are kept in that JSON too, so older store files open unchanged."""

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost: float | None
    latency_s: float
    model: str
    provider: str
    name: str
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


class FailedRequest(msgspec.Struct, frozen=True):
    """A request whose last outcome is an error: its index in its batch and the error."""

    index: int
    error_class: str
    status_code: int | None
    message: str


class StoredRequest(msgspec.Struct, frozen=True):
    """One request of a store's latest batch, in input order: its index, `run`'s id for it
    (else the index), and its answer or error (both None: no outcome stored)."""

    index: int
    id: Any
    result: StoredResult | None
    error: FailedRequest | None

    def record(self) -> dict[str, Any]:
        """This request as `model-registry run` writes its output line (a dict)."""
        return output_line(self)


class StoreReading:
    """What `ResultStore` reads besides `lookup` and `summary` (its base class)."""

    def failed(self) -> list[FailedRequest]:
        """The requests whose last outcome is an error, by index."""
        return failed(self)

    def export(self, path: str | os.PathLike[str]) -> int:
        """Write the latest batch's requests to `path` in input order, as `model-registry
        run` writes its output lines; the number of lines."""
        return export(self, path)

    def record_ids(self, ids: Iterable[tuple[int, Any]]) -> None:
        """Give the latest batch's requests (index, id) the ids of its input (`run`'s)."""
        record_ids(self, ids)

    def __iter__(self) -> Iterator[StoredRequest]:
        """The latest batch's requests in input order (`StoredRequest`), read as it goes."""
        return requests(self)


def new_batch() -> int:
    """A number for a batch's inputs, later batches higher (nanoseconds since the epoch)."""
    return time.time_ns()


def record_inputs(store: ResultStore, batch: int, rows: Iterable[tuple[int, str]]) -> None:
    """Queue a chunk of a batch's `(index, key)` pairs as one statement (an enqueue:
    committed with its answers)."""
    values = [value for index, key in rows for value in (batch, index, key)]
    if values:
        store.put_other(_TABLE, ())
        marks = ", ".join(["(?, ?, ?, NULL)"] * (len(values) // 3))
        store.put_other(f"{_PUT} {marks}", tuple(values))


def record_batch(store: ResultStore, keys: list[str | None]) -> None:
    """Queue the inputs of a batch given whole (each prompt's key by index; None: no prompt,
    not recorded) as a new batch of the store, its latest: read back in input order."""
    batch = new_batch()
    keyed = [(index, key) for index, key in enumerate(keys) if key is not None]
    for start in range(0, len(keyed), _INPUTS_AT_ONCE):
        record_inputs(store, batch, keyed[start : start + _INPUTS_AT_ONCE])


def record_ids(store: ResultStore, ids: Iterable[tuple[int, Any]]) -> None:
    """Give the latest batch's requests their input ids (`run`'s `id`), committed on return."""
    store.put_other(_TABLE, ())
    store.flush()
    with store._reading() as db:
        batch = db.execute(_LATEST).fetchone()[0]
    if batch is None:
        return
    for index, given in ids:
        store.put_other(_SET_ID, (json.dumps(given), batch, index))
    store.flush()


def failed(store: ResultStore) -> list[FailedRequest]:
    """The requests whose last outcome is an error, by index."""
    store.flush()
    with store._reading() as db:
        return [FailedRequest(*row) for row in db.execute(_FAILED)]


def requests(store: ResultStore) -> Iterator[StoredRequest]:
    """The latest batch's requests in input order (a store with no recorded inputs: every
    request by index), read as the iteration goes; it writes nothing."""
    store.flush()
    with store._reading() as db:
        batch = db.execute(_LATEST).fetchone()[0] if db.execute(_HAS_INPUTS).fetchone() else None
        rows = db.execute(_BY_INDEX) if batch is None else db.execute(_IN_INPUT_ORDER, (batch,))
        for index, given, ok, *fields, error_class, message, status in rows:
            result = error = None
            if ok == 1:
                extra, counts = split_extra(fields[-1])
                result = StoredResult(*(*fields[:-1], extra), **counts)
            elif ok == 0:
                error = FailedRequest(index, error_class, status, message)
            shown = index if given is None else json.loads(given)
            yield StoredRequest(index, shown, result, error)


def export(store: ResultStore, path: str | os.PathLike[str]) -> int:
    """Write the latest batch's requests to `path`, one JSON line each in input order, in
    `model-registry run`'s output format; the number of lines."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as file:
        for request in requests(store):
            file.write(json.dumps(output_line(request), ensure_ascii=False) + "\n")
            count += 1
    return count


def output_line(request: StoredRequest) -> dict[str, Any]:
    """One request as `run` writes it: id, text, finish_reason, usage, cost, error."""
    line: dict[str, Any] = {"id": request.id, "text": None, "finish_reason": None}
    line.update(usage=None, cost=None)
    stored = request.result
    if stored is None:
        failure = request.error
        line["error"] = {
            "class": "NotAnswered" if failure is None else failure.error_class,
            "message": _NOT_ANSWERED if failure is None else failure.message,
            "status_code": None if failure is None else failure.status_code,
        }
        return line
    # a lone surrogate (which no encoding can write) as U+FFFD, as `run` writes it
    line["text"] = stored.text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    line["finish_reason"] = stored.finish_reason
    line["usage"] = {
        "prompt_tokens": stored.prompt_tokens,
        "completion_tokens": stored.completion_tokens,
        "total_tokens": stored.total_tokens,
        "cached_tokens": stored.cached_tokens,
        "reasoning_tokens": stored.reasoning_tokens,
    }
    cost = stored.cost
    line["cost"] = cost if cost is None or math.isfinite(cost) else None
    line["error"] = None
    return line
