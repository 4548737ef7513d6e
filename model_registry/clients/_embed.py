"""Embeddings through a client: `embed` (one request) and `embed_many` (requests of up to
`batch_size` texts run concurrently, kept per text in a results_db).

`EmbedMethods` is a base of every client. A backend fills in `_embed_attempt` (one request,
its retries included); the call policy around it (declared limits, timeout, cancellation
by `aclose`) is the one `generate` runs under. In a results_db each text is a row of its
own: its vector in the `extra` JSON (`{"embedding": [...]}`), the request's usage and cost
on the row of its first text (0 on the others), so the store's sums are the calls' sums.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.to_thread

from model_registry._embeddings import Embeddings
from model_registry._prompts import Message, check_text
from model_registry.clients._batch import _open_store
from model_registry.clients._batch_checks import check_concurrency, check_results_db
from model_registry.clients._call_store import CLIENT_DEFAULT, CallStores, ClientDefault
from model_registry.clients._policy.call_limits import CallLimits, call_timeout
from model_registry.clients._policy.observed import observed_embeddings, run_embed_many
from model_registry.errors import InvalidParameterError, ModelCallError
from model_registry.store import ResultStore, StoredResult
from model_registry.types import Usage

__all__ = ["EmbedMethods", "check_texts", "join"]

#: What a text's store key is made of besides the text: a generate of the same words never
#: shares a key with its embedding.
_KEY_ROLE = "embedding input"
_DEFAULT_BATCH_SIZE = 256


def check_texts(texts: Any, caller: str) -> list[str]:
    """`texts` as a list of strings (a single string is one text); InvalidParameterError for
    an empty list, an item that is not a string or one that is not valid Unicode, naming its
    index."""
    if isinstance(texts, str):
        check_text(texts, f"{caller}: the text")
        return [texts]
    if isinstance(texts, bytes) or not isinstance(texts, Sequence):
        raise InvalidParameterError(
            f"{caller} takes a string or a list of strings, got {type(texts).__name__}"
        )
    if not texts:
        raise InvalidParameterError(f"{caller} was given no texts: pass at least one string")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidParameterError(
                f"{caller}: text {index} is a {type(text).__name__}, not a string "
                f"({_short(text)}); embed strings only"
            )
        if not text.isascii():  # the common case skips the check and its message
            check_text(text, f"{caller}: text {index}")
    return list(texts)


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else f"{shown[:57]}..."


def join(parts: Sequence[Embeddings], *, name: str | None = None) -> Embeddings:
    """Embeddings of consecutive texts as one: vectors in order, usage and cost summed (cost
    None when no part has one)."""
    first = parts[0]
    costs = [p.cost for p in parts if p.cost is not None]
    return Embeddings(
        vectors=[v for p in parts for v in p.vectors],
        usage=_sum_usage([p.usage for p in parts]),
        model=first.model,
        provider=first.provider,
        cost=sum(costs) if costs else None,
        name=name if name is not None else first.name,
        latency_s=max(p.latency_s for p in parts),
        from_store=sum(p.from_store for p in parts),
    )


def _sum_usage(usages: Sequence[Usage]) -> Usage:
    def total(field: str) -> int | None:
        found = [getattr(u, field) for u in usages if getattr(u, field) is not None]
        return sum(found) if found else None

    return Usage(
        prompt_tokens=total("prompt_tokens"),
        completion_tokens=total("completion_tokens"),
        total_tokens=total("total_tokens"),
    )


class EmbedMethods:
    """`embed` and `embed_many`, shared by every client (see the module docstring)."""

    if TYPE_CHECKING:
        name: str
        provider: str
        model_id: str
        _limits: CallLimits
        _stores: CallStores
        default_concurrency: ClassVar[int | None]

        @property
        def params(self) -> Any: ...
        async def start(self) -> Any: ...
        def _check_open(self) -> None: ...
        def _store_target(self) -> str: ...
        @staticmethod
        def _deadline(timeout: float | None) -> float: ...

    async def embed(self, texts: str | Sequence[str], **kwargs: Any) -> Embeddings:
        """Vectors for `texts` (a string is one text) in one request, in input order;
        kwargs (`dimensions=`, ...) beat the client's."""
        checked = check_texts(texts, "embed")
        self._check_embeds()
        await self.start()
        return await self._embed_call(checked, kwargs)

    async def embed_many(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = _DEFAULT_BATCH_SIZE,
        concurrency: int | None = None,
        results_db: str | os.PathLike[str] | ResultStore | ClientDefault | None = CLIENT_DEFAULT,
        progress: bool = False,
        **kwargs: Any,
    ) -> Embeddings:
        """Vectors for many texts: requests of up to `batch_size` texts, at most `concurrency`
        at once (default: the client's cap), one `Embeddings` in input order, usage and cost
        summed. `results_db` keeps each text's vector as its request ends; a rerun with it
        embeds only the texts not stored yet (default: the client's results_db; None: none).
        The first error cancels the rest and is raised."""
        checked = check_texts(texts, "embed_many")
        results_db = self._stores.for_batch(results_db)
        _check_batch_size(batch_size)
        check_concurrency(concurrency)
        check_results_db(results_db)
        self._check_open()
        self._check_embeds()
        run = _ManyRun(self, checked, kwargs, progress)
        cap = concurrency if concurrency is not None else self.default_concurrency
        return await run_embed_many(self, run, run.run(batch_size, cap, results_db))

    @observed_embeddings
    def _embed_call(
        self, texts: list[str], kwargs: dict[str, Any], *, batched: bool = False
    ) -> Awaitable[Embeddings]:
        """One request under the client's limits (a permit charged the texts' tokens); its
        `timeout` bounds the waits for them too, except in a batch, as `_call` does (and
        like it, hands on `_embed_attempt`'s coroutine when there is nothing to wait for)."""
        limits = self._limits
        cooldown = limits.cooldown
        if not limits.binding and (cooldown is None or not cooldown.cooldown_until):
            return self._embed_attempt(texts, kwargs, None)
        return self._limited_embed(texts, kwargs, batched)

    async def _limited_embed(
        self, texts: list[str], kwargs: dict[str, Any], batched: bool
    ) -> Embeddings:
        limits = self._limits
        timeout = call_timeout(self.params, kwargs)
        deadline = math.inf if batched else self._deadline(timeout)
        prompt: list[Message] = [{"role": "user", "content": t} for t in texts]
        async with limits.permit(prompt, {"max_tokens": 0}, deadline, timeout) as permit:
            result = await self._embed_attempt(texts, kwargs, None if batched else deadline)
            if permit is not None:
                permit.report_usage(result.usage.total_tokens)
            return result

    async def _embed_attempt(
        self, texts: list[str], kwargs: dict[str, Any], deadline: float | None
    ) -> Embeddings:
        """One embedding request, retries included; `deadline` as `_generate`'s."""
        raise NotImplementedError

    def _cannot_embed(self) -> str | None:
        """Why this client cannot embed (None: it can); a backend that embeds overrides it."""
        if type(self)._embed_attempt is not EmbedMethods._embed_attempt:
            return None
        return (
            f"{self.name!r} ({self.provider} model {self.model_id!r}) cannot embed: use an "
            "embedding model such as 'openai:text-embedding-3-small'"
        )

    def _check_embeds(self) -> None:
        """InvalidParameterError, before anything starts, for a client that cannot embed."""
        if (reason := self._cannot_embed()) is not None:
            raise InvalidParameterError(reason)


def _check_batch_size(batch_size: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidParameterError(
            f"batch_size must be a whole number of texts per request, 1 or more, got {batch_size!r}"
        )


class _ManyRun:
    """One `embed_many`: its texts, their store keys, and what has come back so far."""

    def __init__(
        self, client: EmbedMethods, texts: list[str], kwargs: dict[str, Any], progress: bool
    ) -> None:
        self.client, self.texts, self.kwargs = client, texts, kwargs
        self.parts: dict[int, Embeddings] = {}  # by the index of the part's first text
        self.keys: list[str] | None = None
        self.store: ResultStore | None = None
        self.failed = 0  # texts of the requests that failed
        self.bar: Any = None
        if progress:
            from model_registry.clients._batch import _ProgressBar

            self.bar = _ProgressBar(len(texts), client.name)

    async def run(self, batch_size: int, cap: int | None, results_db: Any) -> Embeddings:
        store, owned = await _open_store(results_db)
        self.store = store
        try:
            todo = list(range(len(self.texts)))
            if store is not None:
                todo = await self._from_store(store)
            if todo:
                await self.client.start()
                await self._requests(_chunks(todo, batch_size), cap)
        finally:
            with anyio.CancelScope(shield=True):
                if self.bar is not None:
                    self.bar.close()
                if store is not None:
                    await (store.aclose() if owned else store.aflush())
        return join([self.parts[i] for i in sorted(self.parts)], name=self.client.name)

    async def _from_store(self, store: ResultStore) -> list[int]:
        """Keep the stored vectors; the indexes of the texts still to embed."""
        client = self.client
        params = {**client.params, **self.kwargs}
        target = client._store_target()
        hashes = [
            ResultStore.request_key(target, [{"role": _KEY_ROLE, "content": t}], params)
            for t in self.texts
        ]
        self.keys = keys = ResultStore.batch_keys(hashes)
        found = await anyio.to_thread.run_sync(store.lookup, keys)
        todo = []
        for index, key in enumerate(keys):
            stored = found.get(key)
            vector = None if stored is None else stored.extra.get("embedding")
            if stored is None or not isinstance(vector, list):
                todo.append(index)
                continue
            self.parts[index] = _stored_part(stored, vector)
        if self.bar is not None:
            self.bar.advance(len(self.texts) - len(todo))
        return todo

    async def _requests(self, chunks: list[list[int]], cap: int | None) -> None:
        """Each chunk in one request, at most `cap` at once; the first error cancels the rest."""
        pending = iter(chunks)
        failure: list[BaseException] = []

        async def worker(scope: anyio.CancelScope) -> None:
            for position, chunk in enumerate(pending):
                if position:
                    # The next request starts on the loop's next turn, as `_batch`'s workers
                    # do: LiteLLM spends less CPU per request then (benchmarks/README.md).
                    await asyncio.sleep(0)
                try:
                    await self._request(chunk)
                except Exception as exc:
                    failure.append(exc)
                    scope.cancel()
                    return

        async with anyio.create_task_group() as tg:
            for _ in range(len(chunks) if cap is None else min(cap, len(chunks))):
                tg.start_soon(worker, tg.cancel_scope)
        if failure:
            raise failure[0]

    async def _request(self, chunk: list[int]) -> None:
        texts = [self.texts[i] for i in chunk]
        try:
            part = await self.client._embed_call(texts, self.kwargs, batched=True)
        except Exception as exc:
            self.failed += len(chunk)
            self._keep_error(chunk, exc)
            first, last = chunk[0], chunk[-1]
            exc.add_note(f"(texts {first} to {last} of the {len(self.texts)} given to embed_many)")
            raise
        if len(part.vectors) != len(chunk):
            raise ModelCallError(
                f"{self.client.name!r} returned {len(part.vectors)} vectors for "
                f"{len(chunk)} texts (texts {chunk[0]} to {chunk[-1]})",
                provider=part.provider,
                model=part.model,
            )
        self._keep(chunk, part)
        if chunk[-1] - chunk[0] == len(chunk) - 1:  # consecutive texts: the part is in order
            self.parts[chunk[0]] = part
        else:
            for offset, index in enumerate(chunk):
                self.parts[index] = _one_text(part, offset)
        if self.bar is not None:
            self.bar.advance(len(chunk))

    def _keep(self, chunk: list[int], part: Embeddings) -> None:
        """Queue each text's vector to the store (the request's usage on its first text)."""
        if self.store is None or self.keys is None:
            return
        for offset, index in enumerate(chunk):
            one = _one_text(part, offset)
            record = StoredResult(
                text="",
                finish_reason=None,
                prompt_tokens=one.usage.prompt_tokens,
                completion_tokens=None,
                total_tokens=one.usage.total_tokens,
                cost=one.cost,
                latency_s=part.latency_s,
                model=part.model,
                provider=part.provider,
                name=part.name or "",
                extra={"embedding": one.vectors[0]},
            )
            self.store.put_result(self.keys[index], index, record)

    def _keep_error(self, chunk: list[int], exc: Exception) -> None:
        if self.store is None or self.keys is None:
            return
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) else None
        for index in chunk:
            self.store.put_error(self.keys[index], index, type(exc).__name__, str(exc), status)


def _chunks(indexes: list[int], size: int) -> list[list[int]]:
    return [indexes[start : start + size] for start in range(0, len(indexes), size)]


def _one_text(part: Embeddings, offset: int) -> Embeddings:
    """The `offset`th text of a request's answer; the request's usage and cost go with its
    first text, the others carry 0 (so sums over texts are the request's)."""
    usage, cost = part.usage, part.cost
    if offset:
        usage = Usage(
            prompt_tokens=None if usage.prompt_tokens is None else 0,
            total_tokens=None if usage.total_tokens is None else 0,
        )
        cost = None if cost is None else 0.0
    return Embeddings(
        vectors=[part.vectors[offset]],
        usage=usage,
        model=part.model,
        provider=part.provider,
        cost=cost,
        name=part.name,
        latency_s=part.latency_s,
    )


def _stored_part(stored: StoredResult, vector: list[Any]) -> Embeddings:
    return Embeddings(
        vectors=[[float(x) for x in vector]],
        usage=Usage(prompt_tokens=stored.prompt_tokens, total_tokens=stored.total_tokens),
        model=stored.model,
        provider=stored.provider,
        cost=stored.cost,
        name=stored.name or None,
        latency_s=stored.latency_s,
        from_store=1,
    )
