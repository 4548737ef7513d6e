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
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from model_registry.aliases import Registry, current_registry
from model_registry.errors import UnknownModelError
from model_registry.providers import ProviderSpec
from model_registry.types import ClientKind, check_finite, redact

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
    for key, value in kwargs.items():
        # cheap for the common scalar; containers are walked
        if (isinstance(value, float) and not math.isfinite(value)) or isinstance(
            value, dict | list | tuple
        ):
            check_finite(value, f"kwarg '{key}'")
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
    alias = registry.aliases.get(name)
    if alias is not None:
        return _resolution(
            name,
            registry.providers[alias.provider],
            alias.model_id,
            f"exact alias from {alias.source}",
            kwargs,
            defaults=alias.defaults,
            alias=name,
        )
    # one cheap test for the common, clean name; the slow path finds out what is wrong
    if not (name.isprintable() and name == name.strip()):
        raise _stray_characters(registry, name)
    spec, model_id, source = _match_rule(registry, name)
    return _resolution(name, spec, model_id, source, kwargs)


def _match_rule(registry: Registry, name: str) -> tuple[ProviderSpec, str, str]:
    """Rules 2-6: the provider, model id and reason for a name that is not an alias."""
    providers = registry.providers
    prefix, colon, rest = name.partition(":")
    if colon and prefix.rstrip() in providers:
        if not rest.strip():
            raise _empty_model(registry, name, prefix.rstrip() + ":")
        if prefix != prefix.rstrip() or rest[0].isspace():
            raise _stray_characters(registry, name)
        return providers[prefix], rest, "explicit provider:model"

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
        return spec, spec.default_model, f"provider shortcut: {name} -> {spec.default_model}"

    head, slash, tail = name.partition("/")
    if slash and head in providers:
        if not tail.strip("/ "):
            raise _empty_model(registry, name, head + "/")
        if tail[0].isspace():
            raise _stray_characters(registry, name)
    if slash:
        spec = providers.get(head)
        if spec is not None and spec.kind == "hosted":
            return spec, tail, f"LiteLLM route: {head}/..."
    else:
        lowered = name.lower()
        for spec in providers.values():
            for pattern in spec.name_prefixes:
                if lowered.startswith(pattern):
                    return spec, name, f"heuristic: {pattern}* -> {spec.name}"

    if slash and name.strip("/"):
        return providers["local"], name, "name with '/' -> local"
    raise _unknown(registry, name, f"'{prefix}' is not a known provider" if colon else None)


def _cleaned(name: str, registry: Registry) -> str:
    """`name` without unprintable characters, outer whitespace, or whitespace after
    "provider:" or "provider/"."""
    text = "".join(c for c in name if c.isprintable()).strip()
    for sep in (":", "/"):
        head, found, tail = text.partition(sep)
        if found and head.strip() in registry.providers:
            text = f"{head.strip()}{sep}{tail.strip()}" if tail.strip() else head.strip()
    return text


def _stray_characters(registry: Registry, name: str) -> UnknownModelError:
    odd = next((c for c in name if not c.isprintable()), None)
    if odd is not None:
        what = f"an unprintable character (U+{ord(odd):04X})"
    elif name != name.strip():
        what = "leading or trailing whitespace"
    else:
        what = "whitespace next to the provider name"
    cleaned = _cleaned(name, registry)
    reason = f"the name has {what}"
    if cleaned and cleaned != name:
        reason += f"; did you mean {cleaned!r}?"
        return _unknown(registry, name, reason, suggestions=(cleaned,))
    return _unknown(registry, name, reason + "; check where the name came from", suggestions=())


def _empty_model(registry: Registry, name: str, prefix: str) -> UnknownModelError:
    provider = prefix[:-1]
    spec = registry.providers[provider]
    reason = f"nothing after '{prefix}'; write '{provider}:<model id>'"
    if spec.default_model is None:
        return _unknown(registry, name, reason, suggestions=())
    reason += f", or {provider!r} for its default model ({spec.default_model})"
    return _unknown(registry, name, reason, suggestions=(provider,))


def _unknown(
    registry: Registry,
    name: str,
    reason: str | None,
    suggestions: tuple[str, ...] | None = None,
) -> UnknownModelError:
    """The error for a name that resolves to nothing; `suggestions` (when given) replace the
    close matches and are named in `reason` already."""
    said = suggestions is not None
    if suggestions is None:
        suggestions = _close_matches(registry, name)
    aliases = list(registry.aliases)
    listed = ", ".join(aliases[:_MAX_LISTED_ALIASES])
    if len(aliases) > _MAX_LISTED_ALIASES:
        listed += f", ... ({len(aliases) - _MAX_LISTED_ALIASES} more: run 'model-registry list')"
    lines = [
        f"unknown model {name!r}: " + (reason or "no alias, provider or naming rule matches it")
    ]
    if suggestions and not said:
        lines.append("  did you mean: " + ", ".join(repr(s) for s in suggestions) + "?")
    lines.append(f"  known aliases ({len(aliases)}): {listed or '(none)'}")
    lines.append(f"  known providers: {', '.join(sorted(registry.providers))}")
    lines.append(
        "  hint: name the provider explicitly, as in 'openai:gpt-4.1' or "
        "'local:Qwen/Qwen3-4B-Instruct-2507'"
    )
    return UnknownModelError("\n".join(lines), name=name, suggestions=suggestions)


def _close_matches(registry: Registry, name: str) -> tuple[str, ...]:
    candidates = [c for c in (*registry.aliases, *registry.providers) if c != name]
    suggestions = tuple(difflib.get_close_matches(name, candidates, n=3, cutoff=0.6))
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered and lowered[name.lower()] not in suggestions:
        suggestions = (lowered[name.lower()], *suggestions)[:3]
    return suggestions
