"""Name resolution: a model name and kwargs become a `Resolution`. Pure, no network.

Order (first match wins):
    1. exact alias from the alias files (a name that matches an alias only when case is
       ignored is an error suggesting the alias: its defaults are never lost to case)
    2. explicit "provider:model_id", where the provider is ours or any LiteLLM chat
       provider and the text before the first ":" has no "/" (ids may hold ":")
    3. provider shortcut ("openai" -> its default model)
    4. LiteLLM route whose first "/" segment is a hosted provider of ours or any LiteLLM
       provider ("groq/llama3-70b-8192", "openrouter/anthropic/..."), passed as written
    5. heuristic on names without "/" (case-insensitive prefix: gpt*, claude*, ...)
    6. any other name with "/", and paths -> local (a Hugging Face repo id or a path)

The typo guard: a name resolved by rule 2, 4 or 5 to a provider LiteLLM lists models for,
without an `api_base` of the user's, is looked up in LiteLLM's bundled model list (read as
data). An unlisted id still resolves, with a warning naming the closest ids and aliases;
with `strict` it is an UnknownModelError.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from model_registry import aliases
from model_registry._model_list import model_list
from model_registry._unknown_names import (
    empty_model,
    provider_of,
    stray_characters,
    unknown,
    unknown_prefix,
)
from model_registry.aliases import Registry
from model_registry.errors import UnknownModelError
from model_registry.providers import litellm_provider_spec
from model_registry.types import ProviderSpec, Resolution, check_finite

__all__ = ["STRICT_ENV_VAR", "Resolution", "resolve", "resolve_in", "strict_default"]

#: Set to 1 to make `strict=True` the default of `resolve()` (and of `get_client()`).
STRICT_ENV_VAR = "MODEL_REGISTRY_STRICT"

_MAX_CACHED_NAMES = 4096
# Model names of these providers are the user's own (deployments, endpoints, pulled
# models): LiteLLM's list cannot know them, so they are not checked.
_USER_NAMED = frozenset(
    {"azure", "azure_ai", "azure_text", "databricks", "ollama", "ollama_chat", "sagemaker"}
)


def strict_default() -> bool:
    """The default of `strict`: true when MODEL_REGISTRY_STRICT is 1 (or true, yes, on)."""
    return os.environ.get(STRICT_ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def resolve(name: str, *, strict: bool | None = None, **kwargs: Any) -> Resolution:
    """Resolve `name` against the layered alias files; kwargs beat alias defaults.

    `strict=True` makes a model id missing from LiteLLM's model list an UnknownModelError
    instead of a warning; None (the default) reads MODEL_REGISTRY_STRICT. `strict` is
    ours and never reaches a backend.
    """
    return resolve_in(current_registry(), name, kwargs, strict=strict)


class _Match(NamedTuple):
    """What rules 2-6 made of a name (cached per registry): the typo guard's finding included."""

    spec: ProviderSpec
    model_id: str
    source: str
    warning: str | None = None  # "'x' is not in LiteLLM's model list; did you mean ...?"
    suggestions: tuple[str, ...] = ()


def _resolution(
    name: str,
    spec: ProviderSpec,
    model_id: str,
    source: str,
    kwargs: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
    alias: str | None = None,
    warnings: tuple[str, ...] = (),
) -> Resolution:
    if defaults is None:  # an alias's defaults hold its provider's params already
        defaults = spec.default_params()
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
        warnings=warnings,
    )


def resolve_in(
    registry: Registry, name: str, kwargs: Mapping[str, Any], *, strict: bool | None = None
) -> Resolution:
    """Resolve `name` in `registry` (see the module docstring for the order and `resolve`
    for `strict`)."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    alias = registry.aliases.get(name)
    if alias is not None:
        spec = provider_of(registry, alias.provider)
        assert spec is not None, "a loaded alias names a known provider"
        return _resolution(
            name,
            spec,
            alias.model_id,
            f"exact alias from {alias.source}",
            kwargs,
            defaults=alias.defaults,
            alias=name,
        )
    match = _cached_match(registry, name)
    warnings: tuple[str, ...] = ()
    # an api_base of the user's points at a server whose models LiteLLM's list cannot know
    if match.warning is not None and "api_base" not in kwargs:
        if strict or (strict is None and strict_default()):
            raise unknown(
                registry,
                name,
                f"{match.warning} (strict mode refuses ids LiteLLM does not list: "
                "use a listed id or an alias, or strict=False)",
                suggestions=match.suggestions,
            )
        warnings = (match.warning,)
    return _resolution(name, match.spec, match.model_id, match.source, kwargs, warnings=warnings)


# (registry, name -> match, lower-cased alias -> alias); replaced whole when the registry changes
_cache: tuple[Registry | None, dict[str, _Match], dict[str, str]] = (None, {}, {})


def _cached_match(registry: Registry, name: str) -> _Match:
    """Rules 2-6 for a name that is no alias, remembered per registry (errors are not)."""
    global _cache
    cached_registry, matches, lowered = _cache
    if cached_registry is not registry:
        lowered = {}
        for known in reversed(list(registry.aliases)):  # the first in sorted order wins
            lowered[known.lower()] = known
        matches = {}
        _cache = (registry, matches, lowered)
    match = matches.get(name)
    if match is not None:
        return match
    # one cheap test for the common, clean name; the slow path finds out what is wrong
    if not (name.isprintable() and name == name.strip()):
        raise stray_characters(registry, name)
    same_but_case = lowered.get(name.lower())
    if same_but_case is not None:
        raise unknown(
            registry,
            name,
            f"it matches alias {same_but_case!r} only when case is ignored; write "
            f"{same_but_case!r} (as another name it would lose the alias's settings)",
            suggestions=(same_but_case,),
        )
    match = _match_rule(registry, name)
    if len(matches) >= _MAX_CACHED_NAMES:
        matches.clear()
    matches[name] = match
    return match


def _match_rule(registry: Registry, name: str) -> _Match:
    """Rules 2-6: the provider, model id and reason for a name that is not an alias."""
    prefix, colon, rest = name.partition(":")
    if colon and "/" not in prefix:
        return _explicit(registry, name, prefix, rest)

    spec = registry.providers.get(name) or litellm_provider_spec(name)
    if spec is not None:
        if spec.default_model is None:
            example = "<Hugging Face repo id or path>" if spec.kind == "local" else "<model id>"
            raise unknown(
                registry,
                name,
                f"provider '{name}' has no default model; name one, as in '{name}:{example}'"
                + (" (e.g. 'local:Qwen/Qwen3-4B-Instruct-2507')" if spec.kind == "local" else ""),
            )
        return _Match(
            spec, spec.default_model, f"provider shortcut: {name} -> {spec.default_model}"
        )

    head, slash, tail = name.partition("/")
    if slash:
        return _route_or_local(registry, name, head, tail)
    lowered = name.lower()
    for spec in registry.providers.values():
        for pattern in spec.name_prefixes:
            if lowered.startswith(pattern):
                return _checked(
                    registry, name, spec, name, f"heuristic: {pattern}* -> {spec.name}", ""
                )
    raise unknown(registry, name, None)


def _explicit(registry: Registry, name: str, prefix: str, rest: str) -> _Match:
    """Rule 2, "provider:model_id"; an unknown prefix is an error, whatever follows it."""
    spec = provider_of(registry, prefix.rstrip())
    if spec is None:
        raise unknown_prefix(registry, name, prefix, rest)
    if not rest.strip():
        raise empty_model(registry, name, prefix.rstrip() + ":")
    if prefix != prefix.rstrip() or rest[0].isspace():
        raise stray_characters(registry, name)
    return _checked(registry, name, spec, rest, "explicit provider:model", f"{spec.name}:")


def _route_or_local(registry: Registry, name: str, head: str, tail: str) -> _Match:
    """Rule 4 (a LiteLLM route, hosted, as written) or rule 6 (local)."""
    spec = provider_of(registry, head)
    if spec is not None:
        if not tail.strip("/ "):
            raise empty_model(registry, name, head + "/")
        if tail[0].isspace():
            raise stray_characters(registry, name)
        if spec.kind == "hosted":
            return _checked(registry, name, spec, tail, f"LiteLLM route: {head}/...", f"{head}/")
    if name.strip("/"):
        return _Match(registry.providers["local"], name, "name with '/' -> local")
    raise unknown(registry, name, None)


def _checked(
    registry: Registry, name: str, spec: ProviderSpec, model_id: str, source: str, form: str
) -> _Match:
    """A hosted match, with the typo guard's finding when LiteLLM's list does not have it.

    `form` is how the name spelled its provider ("groq/", "openai:", "" for a heuristic),
    so suggestions are written the same way.
    """
    provider = spec.route_prefix
    if spec.kind != "hosted" or spec.api_base is not None or provider in _USER_NAMED:
        return _Match(spec, model_id, source)
    models = model_list()
    if models is None or not models.has_models(provider) or models.is_listed(provider, model_id):
        return _Match(spec, model_id, source)
    names = tuple(_spelled(spec, form, i) for i in _close_ids(registry, spec, model_id))
    aliases = tuple(difflib.get_close_matches(name, list(registry.aliases), n=2, cutoff=0.6))
    said = [repr(n) for n in names]
    if aliases:
        said.append(("alias " if len(aliases) == 1 else "aliases ") + _quoted(aliases))
    if form.endswith("/") and "/" not in model_id:  # reads like a Hugging Face "org/name"
        unlisted = (
            f"resolves to the hosted provider {spec.name}; for the Hugging Face model write "
            f"'local:{name}'. The id is not in LiteLLM's model list"
        )
    else:
        unlisted = "is not in LiteLLM's model list"
    if said:
        unlisted += f"; did you mean {_one_of(said)}?"
    else:
        unlisted += f" of {provider} models; check the model id"
    return _Match(spec, model_id, source, f"{name!r} {unlisted}", (*names, *aliases))


def _close_ids(registry: Registry, spec: ProviderSpec, model_id: str) -> list[str]:
    """Up to two listed ids closest to `model_id`; the registry's own ids of this provider
    (its default model, its aliases' ids) count a little closer, being the user's world."""
    models = model_list()
    if models is None:
        return []
    provider = spec.route_prefix
    own = {a.model_id for a in registry.aliases.values() if a.provider == spec.name}
    if spec.default_model is not None:
        own.add(spec.default_model)
    candidates = {i: 0.1 for i in own if models.is_listed(provider, i)}
    for listed in models.closest(provider, model_id, 3):
        candidates.setdefault(listed, 0.0)
    matcher = difflib.SequenceMatcher(b=model_id.lower())
    scored = []
    for candidate, bonus in candidates.items():
        matcher.set_seq1(candidate.lower())
        score = matcher.ratio()
        if score >= 0.6:
            scored.append((-(score + bonus), candidate))
    return [candidate for _, candidate in sorted(scored)[:2]]


def _one_of(items: list[str]) -> str:
    """ "a", "a or b", "a, b or c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _spelled(spec: ProviderSpec, form: str, model_id: str) -> str:
    """`model_id` written as the user wrote the name; a heuristic's bare id only when the
    heuristic would send it back to the same provider."""
    if form:
        return form + model_id
    lowered = model_id.lower()
    plain = ":" not in model_id and "/" not in model_id
    if plain and any(lowered.startswith(p) for p in spec.name_prefixes):
        return model_id
    return f"{spec.name}:{model_id}"


def _quoted(items: tuple[str, ...]) -> str:
    return ", ".join(repr(i) for i in items)


def _fallback_problem(registry: Registry, name: str) -> str | None:
    """What is wrong with a fallback name in `registry` (None: it resolves), strict by
    MODEL_REGISTRY_STRICT as any name."""
    try:
        resolve_in(registry, name, {})
    except (UnknownModelError, TypeError) as exc:
        return str(exc)
    return None


def current_registry() -> Registry:
    """The layered alias files in force (cached), their fallback names checked by these rules."""
    return aliases.current_registry(_fallback_problem)


def load_registry(*paths: str | os.PathLike[str], layered: bool = True) -> Registry:
    """`aliases.load_registry`, fallback names checked by these rules."""
    return aliases.load_registry(*paths, layered=layered, name_check=_fallback_problem)


def validate_files(*paths: str | os.PathLike[str]) -> list[str]:
    """`aliases.validate_files`, fallback names checked by these rules."""
    return aliases.validate_files(*paths, name_check=_fallback_problem)
