"""The public functions: get_client, list_available_models, list_providers, limits_in_force.

`get_client` resolves a name, applies the declared limits (`[limits."NAME"]` of its
provider and of its name, and `limits=`) and, when the name has fallbacks, wraps the
client in a `FallbackClient`: the fallback chain resolves names, so it lives here, above
the clients, which never import `resolve`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any, ClassVar

import msgspec

from model_registry._options import OWN_KWARGS, not_a_kwarg
from model_registry.aliases import Alias, Registry
from model_registry.clients import client_class
from model_registry.clients._retries import RETRIED_ERRORS
from model_registry.clients.base import BaseClient
from model_registry.errors import InvalidParameterError, ModelCallError
from model_registry.limits import Limits, validate_limits
from model_registry.providers import ProviderSpec
from model_registry.resolve import current_registry, resolve_in
from model_registry.types import ClientKind, Generation, Prompt, Resolution

__all__ = [
    "FALLBACK_ERRORS",
    "FallbackClient",
    "fallback_chain",
    "get_client",
    "limits_in_force",
    "list_available_models",
    "list_providers",
]

logger = logging.getLogger("model_registry")

#: The failures a fallback can fix, the ones a retry may fix: the primary is out of
#: capacity or out of reach (RateLimitError, ServiceUnavailableError, APIConnectionError,
#: RequestTimeoutError). Any other error (bad request, authentication, content filter,
#: ...) is raised at once.
FALLBACK_ERRORS: tuple[type[ModelCallError], ...] = RETRIED_ERRORS

#: (name, warning) pairs already logged: each typo-guard warning is logged once per name.
_warned: set[tuple[str, str]] = set()


def get_client(
    name: str,
    *,
    limits: Mapping[str, Any] | Limits | None = None,
    fallbacks: Sequence[str] | None = None,
    strict: bool | None = None,
    **kwargs: Any,
) -> BaseClient:
    """A client for `name`; kwargs beat the alias defaults.

    Resolves at once (an unknown name raises here, before any await). The client is
    awaitable (`client = await get_client(name)` starts its backend), an async context
    manager, and otherwise starts on its first call:
    `await get_client(name).generate(prompt)`.

    `limits` ({"rpm": ..., "tpm": ..., "concurrency": ...}) applies to the clients of
    `name` made with it, shared by them, on top of the declared limits of its provider and
    name. `fallbacks` (names) replaces the alias's declared fallbacks: after the primary's
    retries fail with a rate limit, a 5xx, a timeout or a connection error, the call goes
    to the next name (its own alias defaults plus these kwargs). `strict` is `resolve`'s;
    the typo guard's warnings are logged once per name on the "model_registry" logger.
    """
    if own := sorted(OWN_KWARGS.keys() & kwargs.keys()):
        raise InvalidParameterError(not_a_kwarg(own[0], f"get_client({name!r})"))
    registry = current_registry()
    resolution = resolve_in(registry, name, kwargs, strict=strict)
    _log_warnings(resolution)
    code = None if limits is None else validate_limits(limits, f"get_client({name!r}, limits=)")
    client = _client_for(registry, resolution, code)
    chain = _fallback_chain(registry, name, fallbacks)
    if not chain:
        return client
    resolutions = [resolve_in(registry, other, kwargs, strict=strict) for other in chain]
    for other in resolutions:
        _log_warnings(other)
    wrapper = _LocalFallbackClient if resolution.kind == "local" else FallbackClient
    return wrapper(client, resolutions, lambda r: _client_for(registry, r, None))


def _log_warnings(resolution: Resolution) -> None:
    for warning in resolution.warnings:
        if (resolution.name, warning) not in _warned:
            _warned.add((resolution.name, warning))
            logger.warning("%s", warning)


def _client_for(registry: Registry, resolution: Resolution, code: Limits | None) -> BaseClient:
    """A client for `resolution` under the limits declared for its provider and its name."""
    client = client_class(resolution.kind)(resolution)
    provider = registry.limits.get(resolution.provider)
    alias = None if resolution.name == resolution.provider else registry.limits.get(resolution.name)
    client.set_limits(provider=provider, alias=alias, code=code)
    return client


def fallback_chain(name: str, fallbacks: Sequence[str] | None = None) -> list[str]:
    """The names a client of `name` falls back to, in the order it tries them: `fallbacks`
    (or the alias's own), each followed by that name's own fallbacks; every name once."""
    return _fallback_chain(current_registry(), name, fallbacks)


def _fallback_chain(registry: Registry, name: str, explicit: Sequence[str] | None) -> list[str]:
    """The names after `name`, in order: its fallbacks (explicit, or its alias's), each
    followed by that name's own fallbacks; every name once, `name` itself never."""
    if isinstance(explicit, str):
        raise InvalidParameterError(
            f"fallbacks must be a list of names, got the string {explicit!r}: write "
            f"fallbacks=[{explicit!r}]"
        )
    chain: list[str] = []
    seen = {name}

    def add(names: Sequence[str]) -> None:
        for other in names:
            if other in seen:
                continue
            seen.add(other)
            chain.append(other)
            alias = registry.aliases.get(other)
            add(alias.fallbacks if alias is not None else ())

    alias = registry.aliases.get(name)
    add(explicit if explicit is not None else (alias.fallbacks if alias is not None else ()))
    return chain


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

    async def _call(self, prompt: Prompt, kwargs: dict[str, Any]) -> Generation:
        tried: list[str] = []
        order = self._order()
        for index in order:
            self._check_open()
            client = self._client(index)
            try:
                await client.start()
                return await client._call(prompt, kwargs)
            except FALLBACK_ERRORS as exc:
                self._failed(client, exc, tried, len(order))
                last = exc
        raise last

    def _failed(self, client: BaseClient, exc: ModelCallError, tried: list[str], of: int) -> None:
        """Note a name that failed; on the last one, name every name tried on its error."""
        tried.append(f"{client.name!r} ({type(exc).__name__})")
        if len(tried) < of:
            logger.info("%r failed (%s); trying the next fallback", client.name, exc)
        else:
            exc.add_note(f"every name failed; tried in order: {', '.join(tried)}")

    async def _stream_events(
        self, prompt: Prompt, kwargs: dict[str, Any]
    ) -> AsyncGenerator[str | Generation, None]:
        await self.start()
        tried: list[str] = []
        order = self._order()
        for index in order:
            self._check_open()
            client = self._client(index)
            said_something = False
            events = client._stream_events(prompt, kwargs)
            try:
                async for event in events:
                    said_something = True
                    yield event
                return
            except FALLBACK_ERRORS as exc:
                if said_something:  # the caller has part of this answer: no other may follow
                    raise
                self._failed(client, exc, tried, len(order))
                last = exc
            finally:
                await events.aclose()
        raise last


class _LocalFallbackClient(FallbackClient):
    """A FallbackClient whose primary is a local model."""

    kind: ClassVar[ClientKind] = "local"
    default_concurrency: ClassVar[int | None] = None


def limits_in_force(resolution: Resolution) -> dict[str, dict[str, float]]:
    """The declared limits that apply to calls of `resolution`, by the NAME they were
    declared for (its provider, its name), only the keys set: `{"openai": {"rpm": 600}}`.
    Empty when none are declared. (`get_client(limits=)` is the caller's own and not here.)"""
    registry = current_registry()
    names = [resolution.provider]
    if resolution.name != resolution.provider:
        names.append(resolution.name)
    found: dict[str, dict[str, float]] = {}
    for name in names:
        declared = registry.limits.get(name)
        if declared is not None:
            values = msgspec.structs.asdict(declared)
            found[name] = {k: _plain(v) for k, v in values.items() if v is not None}
    return found


def _plain(value: float) -> float:
    """600.0 -> 600, so printed limits read as written."""
    return int(value) if float(value).is_integer() else value


def list_available_models() -> list[Alias]:
    """Every alias of the layered alias files, sorted by name, with the file it came from."""
    return list(current_registry().aliases.values())


def list_providers() -> list[ProviderSpec]:
    """Every provider (built-in, registered, declared in alias files), sorted by name."""
    providers = current_registry().providers
    return [providers[name] for name in sorted(providers)]
