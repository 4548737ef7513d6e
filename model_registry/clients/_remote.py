"""A batch answered elsewhere (Ray actors), kept in this process's store exactly as
`generate_many` keeps it: the same keys, the same stored records, stored answers reused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from model_registry.clients._batch import _keys, _record, _stored_generation
from model_registry.clients._structured import output_schema
from model_registry.clients.base import BaseClient
from model_registry.store import ResultStore
from model_registry.types import Generation

__all__ = ["StoredRun"]


class StoredRun:
    """The store side of one run of `prompts` through `client` with per-call `kwargs`."""

    def __init__(
        self, client: BaseClient, prompts: list[Any], kwargs: Mapping[str, Any], store: ResultStore
    ) -> None:
        params = {**client.params, **kwargs}
        self.store = store
        self.keys = _keys(prompts, client._store_target(), params)
        self._schema = output_schema(params.get("response_format"))

    def stored(self) -> dict[int, Generation]:
        """The prompts (by index) whose success is in the store, as Generations."""
        found = self.store.lookup([k for k in self.keys if k is not None])
        done: dict[int, Generation] = {}
        for index, key in enumerate(self.keys):
            stored = found.get(key) if key is not None else None
            generation = None if stored is None else _stored_generation(stored, self._schema)
            if generation is not None:
                done[index] = generation
        return done

    def keep(self, index: int, result: Generation | BaseException) -> None:
        """Queue one answer or error to the store (the store's writer commits it)."""
        key = self.keys[index]
        if key is None:
            return
        if isinstance(result, Generation):
            self.store.put_result(key, index, _record(result))
        else:
            status = getattr(result, "status_code", None)
            status = status if isinstance(status, int) else None
            self.store.put_error(key, index, type(result).__name__, str(result), status)
