"""The public functions: get_client, list_available_models, list_providers."""

from __future__ import annotations

from typing import Any

from model_registry.aliases import Alias, current_registry
from model_registry.clients import client_class
from model_registry.clients.base import BaseClient
from model_registry.providers import ProviderSpec
from model_registry.resolve import resolve

__all__ = ["get_client", "list_available_models", "list_providers"]


def get_client(name: str, **kwargs: Any) -> BaseClient:
    """A client for `name`; kwargs beat the alias defaults.

    Resolves at once (an unknown name raises here, before any await). The client is
    awaitable (`client = await get_client(name)` starts its backend), an async context
    manager, and otherwise starts on its first call:
    `await get_client(name).generate(prompt)`.
    """
    resolution = resolve(name, **kwargs)
    return client_class(resolution.kind)(resolution)


def list_available_models() -> list[Alias]:
    """Every alias of the layered alias files, sorted by name, with the file it came from."""
    return list(current_registry().aliases.values())


def list_providers() -> list[ProviderSpec]:
    """Every provider (built-in, registered, declared in alias files), sorted by name."""
    providers = current_registry().providers
    return [providers[name] for name in sorted(providers)]
