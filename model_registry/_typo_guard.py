"""The typo guard: a hosted id checked against LiteLLM's model list (read as data), with
the closest listed ids and aliases as suggestions. Used by `resolve`."""

from __future__ import annotations

import difflib
from typing import NamedTuple

from model_registry._model_list import model_list
from model_registry._name_rules import publishes_weights
from model_registry._unknown_names import close_aliases
from model_registry.aliases import Registry
from model_registry.types import ProviderSpec

__all__ = ["Match", "checked"]

# Model names of these providers are the user's own (deployments, endpoints, pulled
# models): LiteLLM's list cannot know them, so they are not checked.
_USER_NAMED = frozenset(
    {"azure", "azure_ai", "azure_text", "databricks", "ollama", "ollama_chat", "sagemaker"}
)


GUARD_REFUSAL = (
    "strict mode refuses ids LiteLLM does not list: use a listed id or an alias, or strict=False"
)


class Match(NamedTuple):
    """What rules 2-6 made of a name (cached per registry): the typo guard's finding included."""

    spec: ProviderSpec
    model_id: str
    source: str
    warning: str | None = None  # "'x' is not in LiteLLM's model list; did you mean ...?"
    suggestions: tuple[str, ...] = ()
    refusal: str = GUARD_REFUSAL  # why strict mode refuses the name (after the warning)
    guard: bool = True  # the warning is the typo guard's (an api_base of the user's ends it)


def checked(
    registry: Registry, name: str, spec: ProviderSpec, model_id: str, source: str, form: str
) -> Match:
    """A hosted match, with the typo guard's finding when LiteLLM's list does not have it.

    `form` is how the name spelled its provider ("groq/", "openai:", "" for a heuristic),
    so suggestions are written the same way.
    """
    provider = spec.route_prefix
    if spec.kind != "hosted" or spec.api_base is not None or provider in _USER_NAMED:
        return Match(spec, model_id, source)
    if provider == "openai" and model_id.startswith("ft:"):  # a fine-tune: the user's own id
        return Match(spec, model_id, source)
    models = model_list()
    if models is None or not models.has_models(provider) or models.is_listed(provider, model_id):
        return Match(spec, model_id, source)
    names = tuple(_spelled(spec, form, i) for i in _close_ids(registry, spec, model_id))
    aliases = tuple(
        a
        for a in close_aliases(registry, name, 3)
        if (registry.aliases[a].provider, registry.aliases[a].model_id) != (spec.name, model_id)
    )[:2]
    said = [repr(n) for n in names]
    if aliases:
        said.append(("alias " if len(aliases) == 1 else "aliases ") + _quoted(aliases))
    # reads like a Hugging Face "org/name", of an organisation that publishes weights
    if form.endswith("/") and "/" not in model_id and publishes_weights(form[:-1]):
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
    return Match(spec, model_id, source, f"{name!r} {unlisted}", (*names, *aliases))


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
