"""The fallback wrapper: a client whose calls go on to the next name of a chain when one
fails with a transient error (`TRANSIENT_ERRORS`, after its own retries).

`api.get_client` builds it from the chain of resolutions of a name (this module resolves
nothing: clients never import `resolve`); `fallback_client` picks the class by the
primary's kind.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, ClassVar

from model_registry._events import HANDLERS, emit_in_call
from model_registry._prompts import Prompt
from model_registry.clients._policy.observed import observed, observed_stream
from model_registry.clients.base import BaseClient
from model_registry.errors import TRANSIENT_ERRORS, ModelCallError
from model_registry.events import Fallback
from model_registry.types import ClientKind, Generation, Resolution

__all__ = ["FallbackClient", "LocalFallbackClient", "fallback_client"]

logger = logging.getLogger("model_registry")


def fallback_client(
    primary: BaseClient,
    fallbacks: Sequence[Resolution],
    make: Callable[[Resolution], BaseClient],
) -> BaseClient:
    """`primary`, wrapped so its calls fall back to `fallbacks` (clients made by `make`,
    only when needed); `primary` itself when there are none."""
    if not fallbacks:
        return primary
    wrapper = LocalFallbackClient if primary.kind == "local" else FallbackClient
    return wrapper(primary, fallbacks, make)


class FallbackClient(BaseClient):
    """A client whose calls go on to the next name when one fails for want of capacity.

    It is the client get_client returns for a name with fallbacks: the same interface,
    the primary's name, params and resolution. Fallback clients start only when needed and
    close with it. Each name gets a fresh timeout; `Generation.name`, `.provider` and
    `.model` say which answered. When every name fails, the last error is raised with a
    note naming every name tried, in order.
    """

    kind: ClassVar[ClientKind] = "hosted"
    #: The primary's cap (a batch's store keys are the primary's requests too, so a resume
    #: finds an answer whoever gave it)
    default_concurrency: ClassVar[int | None] = 64

    def __init__(
        self,
        primary: BaseClient,
        fallbacks: Sequence[Resolution],
        make: Callable[[Resolution], BaseClient],
    ) -> None:
        super().__init__(primary.resolution)
        self._resolutions = [primary.resolution, *fallbacks]
        self._clients: list[BaseClient | None] = [primary, *(None for _ in fallbacks)]
        self._make = make
        #: The names tried after the primary, in order.
        self.fallbacks: tuple[str, ...] = tuple(r.name for r in fallbacks)

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} fallbacks={list(self.fallbacks)!r}>"

    def _chain(self) -> Sequence[Resolution]:
        return self._resolutions

    def _client(self, index: int) -> BaseClient:
        client = self._clients[index]
        if client is None:
            client = self._clients[index] = self._make(self._resolutions[index])
        return client

    async def _start(self) -> None:
        await self._client(0).start()

    async def aclose(self) -> None:
        """Close the primary and every fallback client that started; idempotent."""
        self._closed = True
        for client in self._clients:
            if client is not None:
                await client.aclose()
        await self._stores.aclose()

    def _order(self) -> list[int]:
        """The names to try for one call: those whose provider is not cooling down (no
        Retry-After in force) in their order, then the others, soonest back first; so a
        run moves on at once instead of waiting out a primary's pause."""
        # a name not yet needed has no client (making one may need its key): taken as ready
        remaining = [0.0 if c is None else c.cooldown_remaining() for c in self._clients]
        ready = [i for i, seconds in enumerate(remaining) if seconds == 0]
        cooling = sorted((i for i, s in enumerate(remaining) if s > 0), key=remaining.__getitem__)
        if cooling and ready:
            names = ", ".join(repr(self._resolutions[i].name) for i in cooling)
            logger.info("%s tried last: cooling down after a Retry-After", names)
        return ready + cooling

    def cooldown_remaining(self) -> float:
        """Seconds until some name of the chain is out of its provider's pause (0.0: now)."""
        return min(0.0 if c is None else c.cooldown_remaining() for c in self._clients)

    @observed
    async def _call(
        self, prompt: Prompt, kwargs: dict[str, Any], *, batched: bool = False
    ) -> Generation:
        tried: list[str] = []
        order = self._order()
        last: ModelCallError | None = None
        for index in order:
            self._check_open()
            client = self._client(index)
            if HANDLERS:
                self._moved_on(index, order, last)
            try:
                await client.start()
                return await client._call(prompt, kwargs, batched=batched)
            except TRANSIENT_ERRORS as exc:
                self._failed(client, exc, tried, len(order))
                last = exc
        assert last is not None  # the chain has at least one name
        raise last

    def _failed(self, client: BaseClient, exc: ModelCallError, tried: list[str], of: int) -> None:
        """Note a name that failed; on the last one, name every name tried on its error."""
        tried.append(f"{client.name!r} ({type(exc).__name__})")
        if len(tried) < of:
            logger.info("%r failed (%s); trying the next fallback", client.name, exc)
        else:
            exc.add_note(f"every name failed; tried in order: {', '.join(tried)}")

    def _moved_on(self, index: int, order: list[int], last: ModelCallError | None) -> None:
        """Emit a `fallback` event when the call goes on to another name than the primary:
        after the last name's error, or first when the primary's provider is cooling down."""
        position = order.index(index)
        if position == 0 and index == 0:
            return
        before = order[position - 1] if position else 0
        reason = type(last).__name__ if last is not None else "cooldown"
        emit_in_call(
            Fallback,
            from_name=self._resolutions[before].name,
            to_name=self._resolutions[index].name,
            reason=reason,
        )

    @observed_stream
    async def _stream_events(
        self, prompt: Prompt, kwargs: dict[str, Any]
    ) -> AsyncGenerator[str | Generation, None]:
        await self.start()
        tried: list[str] = []
        order = self._order()
        last: ModelCallError | None = None
        for index in order:
            self._check_open()
            client = self._client(index)
            if HANDLERS:
                self._moved_on(index, order, last)
            said_something = False
            events = client._stream_events(prompt, kwargs)
            try:
                async for event in events:
                    said_something = True
                    yield event
                return
            except TRANSIENT_ERRORS as exc:
                if said_something:  # the caller has part of this answer: no other may follow
                    raise
                self._failed(client, exc, tried, len(order))
                last = exc
            finally:
                await events.aclose()
        assert last is not None  # the chain has at least one name
        raise last


class LocalFallbackClient(FallbackClient):
    """A FallbackClient whose primary is a local model."""

    kind: ClassVar[ClientKind] = "local"
    default_concurrency: ClassVar[int | None] = None
