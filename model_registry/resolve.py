"""Name resolution: a model name and kwargs become a `Resolution`. Pure, no network.

Order (first match wins):
    1. exact alias from the alias files
    2. explicit "provider:model_id"
    3. provider shortcut ("openai" -> its default model)
    4. LiteLLM route whose first "/" segment is a hosted provider ("anthropic/claude-...")
    5. heuristic on names without "/" (case-insensitive prefix: gpt*, claude*, ...)
    6. any other name with "/" -> local (a Hugging Face repo id or a path)
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from model_registry.aliases import Registry, current_registry
from model_registry.errors import UnknownModelError
from model_registry.providers import ProviderSpec
from model_registry.types import ClientKind, redact

__all__ = ["Resolution", "resolve", "resolve_in"]

_MAX_LISTED_ALIASES = 20


class Resolution(msgspec.Struct, frozen=True):
    """What a name resolved to, and why.

    `route` is the LiteLLM route string (None for local models); `params` is a
    read-only mapping of the alias defaults overridden by explicit kwargs.
    """

    name: str
    provider: str
    model_id: str
    route: str | None
    params: Mapping[str, Any]
    source: str
    alias: str | None
    spec: ProviderSpec

    @property
    def kind(self) -> ClientKind:
        """The client kind: "hosted" (LiteLLM) or "local" (vLLM)."""
        return self.spec.kind

    def with_params(self, **kwargs: Any) -> Resolution:
        """A copy whose params are these params overridden by `kwargs`."""
        merged = {**self.params, **kwargs}
        return msgspec.structs.replace(self, params=MappingProxyType(merged))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON, credentials redacted."""
        return {
            "name": self.name,
            "provider": self.provider,
            "model_id": self.model_id,
            "route": self.route,
            "kind": self.kind,
            "params": redact(self.params),
            "source": self.source,
            "alias": self.alias,
        }

    def __repr__(self) -> str:
        return (
            f"Resolution(name={self.name!r}, provider={self.provider!r}, "
            f"model_id={self.model_id!r}, route={self.route!r}, params={redact(self.params)!r}, "
            f"source={self.source!r}, alias={self.alias!r})"
        )


def resolve(name: str, **kwargs: Any) -> Resolution:
    """Resolve `name` against the layered alias files; kwargs beat alias defaults."""
    return resolve_in(current_registry(), name, kwargs)


def _resolution(
    name: str,
    spec: ProviderSpec,
    model_id: str,
    source: str,
    kwargs: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
    alias: str | None = None,
) -> Resolution:
    if defaults is None:
        defaults = {"api_base": spec.api_base} if spec.api_base is not None else {}
    params = {**defaults, **kwargs} if kwargs else dict(defaults)
    return Resolution(
        name=name,
        provider=spec.name,
        model_id=model_id,
        route=spec.route(model_id),
        params=MappingProxyType(params),
        source=source,
        alias=alias,
        spec=spec,
    )


def resolve_in(registry: Registry, name: str, kwargs: Mapping[str, Any]) -> Resolution:
    """Resolve `name` in `registry` (see the module docstring for the order)."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    providers = registry.providers

    alias = registry.aliases.get(name)
    if alias is not None:
        return _resolution(
            name,
            providers[alias.provider],
            alias.model_id,
            f"exact alias from {alias.source}",
            kwargs,
            defaults=alias.defaults,
            alias=name,
        )

    prefix, colon, rest = name.partition(":")
    if colon and prefix in providers:
        if not rest.strip():
            raise _unknown(
                registry, name, f"nothing after '{prefix}:'; write '{prefix}:<model id>'"
            )
        return _resolution(name, providers[prefix], rest, "explicit provider:model", kwargs)

    spec = providers.get(name)
    if spec is not None:
        if spec.default_model is None:
            raise _unknown(
                registry,
                name,
                f"provider '{name}' has no default model; name one, as in "
                f"'{name}:<Hugging Face repo id or path>'"
                + (" (e.g. 'local:Qwen/Qwen3-4B-Instruct-2507')" if spec.kind == "local" else ""),
            )
        return _resolution(
            name,
            spec,
            spec.default_model,
            f"provider shortcut: {name} -> {spec.default_model}",
            kwargs,
        )

    head, slash, tail = name.partition("/")
    if slash:
        spec = providers.get(head)
        if spec is not None and spec.kind == "hosted" and tail:
            return _resolution(name, spec, tail, f"LiteLLM route: {head}/...", kwargs)
    else:
        lowered = name.lower()
        for spec in providers.values():
            for pattern in spec.name_prefixes:
                if lowered.startswith(pattern):
                    return _resolution(
                        name, spec, name, f"heuristic: {pattern}* -> {spec.name}", kwargs
                    )

    if slash and name.strip("/"):
        local = providers["local"]
        return _resolution(name, local, name, "name with '/' -> local", kwargs)

    reason = None
    if colon:
        reason = f"'{prefix}' is not a known provider"
    raise _unknown(registry, name, reason)


def _unknown(registry: Registry, name: str, reason: str | None) -> UnknownModelError:
    candidates = [c for c in (*registry.aliases, *registry.providers) if c != name]
    suggestions = tuple(difflib.get_close_matches(name, candidates, n=3, cutoff=0.6))
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered and lowered[name.lower()] not in suggestions:
        suggestions = (lowered[name.lower()], *suggestions)[:3]
    aliases = list(registry.aliases)
    listed = ", ".join(aliases[:_MAX_LISTED_ALIASES])
    if len(aliases) > _MAX_LISTED_ALIASES:
        listed += f", ... ({len(aliases) - _MAX_LISTED_ALIASES} more: run 'model-registry list')"
    lines = [
        f"unknown model {name!r}: " + (reason or "no alias, provider or naming rule matches it")
    ]
    if suggestions:
        lines.append("  did you mean: " + ", ".join(repr(s) for s in suggestions) + "?")
    lines.append(f"  known aliases ({len(aliases)}): {listed or '(none)'}")
    lines.append(f"  known providers: {', '.join(sorted(registry.providers))}")
    lines.append(
        "  hint: name the provider explicitly, as in 'openai:gpt-4.1' or "
        "'local:Qwen/Qwen3-4B-Instruct-2507'"
    )
    return UnknownModelError("\n".join(lines), name=name, suggestions=suggestions)
