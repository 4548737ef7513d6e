"""Name resolution: a model name and kwargs become a `Resolution`. Pure, no network.

Order (first match wins):
    1. exact alias from the alias files (a match only when case is ignored: an error)
    2. explicit "provider:model_id", where the provider is ours or any LiteLLM chat
       provider and the text before the first ":" has no "/" (ids may hold ":");
       "vllm:" is our local engine, "ft:" an OpenAI fine-tune
    3. provider shortcut ("openai" -> its default model)
    4. LiteLLM route whose first "/" segment is a hosted provider of ours or any LiteLLM
       provider ("groq/llama3-70b-8192", "openrouter/anthropic/..."), passed as written;
       "vllm/ORG/REPO" is our local engine
    5. names without "/": heuristic (case-insensitive prefix: gpt*, claude*, grok-*, ...),
       else the provider LiteLLM's model list names the chat or embedding id under
    6. any other name with "/", and paths -> local (a Hugging Face repo id or a path); a
       first segment that is a provider in another case is refused, one that reads as a
       misspelt provider or a hosted id under an organisation's name warns

The typo guard (`_typo_guard.py`) warns about hosted ids and kwargs LiteLLM does not list;
with `strict` they are refused.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from model_registry import aliases
from model_registry._kwarg_names import kwarg_warnings
from model_registry._options import LOCAL_ONLY, local_only
from model_registry._prompts import check_finite
from model_registry.aliases import Alias, Registry, provider_of
from model_registry.errors import UnknownModelError
from model_registry.types import ProviderSpec, Resolution

if TYPE_CHECKING:
    from model_registry._typo_guard import Match

__all__ = ["Resolution", "alias_warnings", "load_registry", "resolve", "validate_files"]

#: Set to 1 to make `strict=True` the default of `resolve()` (and of `get_client()`).
STRICT_ENV_VAR = "MODEL_REGISTRY_STRICT"

_MAX_CACHED_NAMES = 4096


def strict_default() -> bool:
    """The default of `strict`: true when MODEL_REGISTRY_STRICT is 1 (or true, yes, on)."""
    return os.environ.get(STRICT_ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def resolve(name: str, *, strict: bool | None = None, **kwargs: Any) -> Resolution:
    """Resolve `name` against the layered alias files; kwargs beat alias defaults.

    `strict=True` turns the warnings into errors (an UnknownModelError for a name, an
    InvalidParameterError for a kwarg that looks misspelt); None (the default) reads
    MODEL_REGISTRY_STRICT. `strict` is ours and never reaches a backend.
    """
    return resolve_in(current_registry(), name, kwargs, strict=strict)


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
        warnings = _alias_warnings(registry, name)
        if warnings and (strict or (strict is None and strict_default())):
            _kwarg_warnings(spec, alias.defaults, True, alias)  # raises for a misspelt default
        if kwargs:
            warnings = (*warnings, *_kwarg_warnings(spec, kwargs, strict))
        return _resolution(
            name,
            spec,
            alias.model_id,
            f"exact alias from {alias.source}",
            kwargs,
            defaults=alias.defaults,
            alias=name,
            warnings=warnings,
        )
    match = _cached_match(registry, name)
    found: tuple[str, ...] = ()
    # an api_base of the user's points at a server whose models LiteLLM's list cannot know
    if match.warning is not None and not (match.guard and "api_base" in kwargs):
        if strict or (strict is None and strict_default()):
            reason = f"{match.warning} ({match.refusal})"
            from model_registry._unknown_names import unknown

            raise unknown(registry, name, reason, suggestions=match.suggestions)
        found = (match.warning,)
    warnings = (*found, *_kwarg_warnings(match.spec, kwargs, strict))
    return _resolution(name, match.spec, match.model_id, match.source, kwargs, warnings=warnings)


def _kwarg_warnings(
    spec: ProviderSpec, kwargs: Mapping[str, Any], strict: bool | None, alias: Alias | None = None
) -> tuple[str, ...]:
    """Warnings for hosted kwargs (an alias's defaults, with `alias`) that look misspelt."""
    if spec.kind != "hosted" or not kwargs:
        return ()
    where = "" if alias is None else f"alias {alias.name!r} defaults in {alias.source}"
    return kwarg_warnings(kwargs, bool(strict or (strict is None and strict_default())), where)


# (registry, alias -> its defaults' kwarg warnings); replaced whole when the registry changes
_alias_cache: tuple[Registry | None, dict[str, tuple[str, ...]]] = (None, {})


def _alias_warnings(registry: Registry, name: str) -> tuple[str, ...]:
    """Warnings about alias `name`'s defaults that look misspelt, remembered per registry.
    (Its model id is checked by `alias_warnings` only: resolving an alias never reads
    LiteLLM's model list.)"""
    global _alias_cache
    cached_registry, found = _alias_cache
    if cached_registry is not registry:
        found = {}
        _alias_cache = (registry, found)
    if name not in found:
        alias = registry.aliases[name]
        spec = provider_of(registry, alias.provider)
        assert spec is not None, "a loaded alias names a known provider"
        found[name] = _kwarg_warnings(spec, alias.defaults, False, alias)
    return found[name]


def alias_warnings(registry: Registry | None = None) -> list[str]:
    """What the typo guards find in the aliases (for `list` and `validate`): model ids
    LiteLLM's list does not know, hosted defaults that look misspelt or are local-only."""
    registry = current_registry() if registry is None else registry
    from model_registry._typo_guard import checked  # LiteLLM's model list, on first use

    found: list[str] = []
    for name, alias in registry.aliases.items():
        spec = provider_of(registry, alias.provider)
        assert spec is not None, "a loaded alias names a known provider"
        match = checked(
            registry, f"{spec.name}:{alias.model_id}", spec, alias.model_id, "", f"{spec.name}:"
        )
        # an api_base of the user's points at a server whose models LiteLLM's list cannot know
        if match.warning is not None and not (match.guard and "api_base" in alias.defaults):
            found.append(f"alias {name!r}: {match.warning}")
        found.extend(_alias_warnings(registry, name))
        if spec.kind == "hosted":  # get_client refuses these
            where = f"the defaults of alias {name!r} ({alias.source})"
            found.extend(local_only(key, where) for key in alias.defaults if key in LOCAL_ONLY)
    return found


# (registry, name -> match, lower-cased alias -> alias); replaced whole when the registry changes
_cache: tuple[Registry | None, dict[str, Match], dict[str, str]] = (None, {}, {})


def _cached_match(registry: Registry, name: str) -> Match:
    """Rules 2-6 for a name that is no alias, remembered per registry (errors are not)."""
    global _cache
    cached_registry, matches, lowered = _cache
    if cached_registry is not registry:
        # aliases whose lower case differs from them (the first in sorted order wins); an
        # all-lower-case alias is found in registry.aliases itself
        cased = list(itertools.filterfalse(str.islower, registry.aliases))[::-1]
        lowered = dict(zip(map(str.lower, cased), cased, strict=True))
        matches = {}
        _cache = (registry, matches, lowered)
    match = matches.get(name)
    if match is not None:
        return match
    # one cheap test for the common, clean name; the slow path finds out what is wrong
    from model_registry._unknown_names import stray_characters, unknown

    if not (name.isprintable() and name == name.strip()):
        raise stray_characters(registry, name)
    folded = name.lower()
    found = [a for a in (lowered.get(folded, folded), folded) if a in registry.aliases]
    if found:
        same_but_case = min(found)
        raise unknown(
            registry,
            name,
            f"it matches alias {same_but_case!r} only when case is ignored; write "
            f"{same_but_case!r} (as another name it would lose the alias's settings)",
            suggestions=(same_but_case,),
        )
    from model_registry._name_match import match_rule  # rules 2-6 and the typo guard

    match = match_rule(registry, name)
    if len(matches) >= _MAX_CACHED_NAMES:
        matches.clear()
    matches[name] = match
    return match


def _fallback_problem(registry: Registry, name: str) -> str | None:
    """Why a fallback name does not resolve in `registry` (None: it does; MODEL_REGISTRY_STRICT applies)."""
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
