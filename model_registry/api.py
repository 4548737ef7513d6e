"""The public functions: get_client, list_available_models, list_providers, limits_in_force.

Functions only: a name becomes a chain of resolutions (the name's, then each fallback's,
walked once by `_chain`), and `get_client` builds the client from it under the declared
limits (`[limits."NAME"]` of its provider and of its name, and `limits=`); the call policy
around each attempt (limits, cooldowns, retries, the fallback wrapper) is the clients'
(`clients._policy`), which never import `resolve`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from model_registry._limits_declared import Limits, validate_limits
from model_registry._options import OWN_KWARGS, not_a_kwarg
from model_registry.aliases import Alias, Registry
from model_registry.errors import InvalidParameterError
from model_registry.providers import ProviderSpec
from model_registry.resolve import current_registry, resolve_in
from model_registry.types import Resolution

if TYPE_CHECKING:
    from model_registry.clients.base import BaseClient
    from model_registry.store import ResultStore

__all__ = [
    "fallback_chain",
    "get_client",
    "limits_in_force",
    "list_available_models",
    "list_providers",
]

#: (name, warning) pairs already logged: each typo-guard warning is logged once per name.
_warned: set[tuple[str, str]] = set()


def get_client(
    name: str,
    *,
    limits: Mapping[str, Any] | Limits | None = None,
    fallbacks: Sequence[str] | None = None,
    strict: bool | None = None,
    results_db: str | os.PathLike[str] | ResultStore | None = None,
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
    `results_db` (a path or a `ResultStore`) is the store of every call and batch of the
    client unless a call names its own (`results_db=None`: none); docs/runs.md.
    """
    if own := sorted(OWN_KWARGS.keys() & kwargs.keys()):
        raise InvalidParameterError(not_a_kwarg(own[0], f"get_client({name!r})"))
    registry = current_registry()
    primary = _resolve(registry, name, kwargs, strict)
    code = None if limits is None else validate_limits(limits, f"get_client({name!r}, limits=)")
    client = _client_for(registry, primary, code)
    # the rest of the chain of resolutions: each fallback name resolved once, here
    chain = [
        _resolve(registry, other, kwargs, strict) for other in _chain(registry, name, fallbacks)
    ]
    # clients (and anyio, their event-loop library) load with the first client, not at import
    from model_registry.clients._policy.fallback import fallback_client

    client = fallback_client(client, chain, lambda r: _client_for(registry, r, None))
    if results_db is not None:
        client.set_results_db(results_db)
    return client


def _resolve(
    registry: Registry, name: str, kwargs: Mapping[str, Any], strict: bool | None
) -> Resolution:
    """`name` resolved with `kwargs`; its typo-guard warnings logged (once per name)."""
    resolution = resolve_in(registry, name, kwargs, strict=strict)
    _log_warnings(resolution)
    return resolution


def _log_warnings(resolution: Resolution) -> None:
    for warning in resolution.warnings:
        if (resolution.name, warning) not in _warned:
            _warned.add((resolution.name, warning))
            import logging  # here: loaded by the first warning, not at import

            logging.getLogger("model_registry").warning("%s", warning)


def _client_for(registry: Registry, resolution: Resolution, code: Limits | None) -> BaseClient:
    """A client for `resolution` under the limits declared for its provider and its name."""
    from model_registry.clients import client_class

    client = client_class(resolution.kind)(resolution)
    provider = registry.limits.get(resolution.provider)
    alias = None if resolution.name == resolution.provider else registry.limits.get(resolution.name)
    client.set_limits(provider=provider, alias=alias, code=code)
    return client


def fallback_chain(name: str, fallbacks: Sequence[str] | None = None) -> list[str]:
    """The names a client of `name` falls back to, in the order it tries them: `fallbacks`
    (or the alias's own), each followed by that name's own fallbacks; every name once."""
    return _chain(current_registry(), name, fallbacks)


def _chain(registry: Registry, name: str, explicit: Sequence[str] | None) -> list[str]:
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
