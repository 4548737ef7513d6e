"""Rules 2-6 of the resolution order (see `resolve.py`): the provider, model id and reason
for a name that is no alias. Loaded with the typo guard by the first such name.
"""

from __future__ import annotations

from model_registry._name_rules import (
    bare_family,
    hosted_under_org,
    listed_owners,
    looks_like_org,
    provider_in_other_case,
    provider_near_miss,
)
from model_registry._typo_guard import Match, checked
from model_registry._unknown_names import (
    empty_model,
    stray_characters,
    unknown,
    unknown_prefix,
)
from model_registry.aliases import Registry, provider_of
from model_registry.providers import litellm_provider_spec

__all__ = ["match_rule"]


def match_rule(registry: Registry, name: str) -> Match:
    """Rules 2-6: the provider, model id and reason for a name that is not an alias."""
    prefix, colon, rest = name.partition(":")
    if colon and prefix in ("vllm", "ft") and prefix not in registry.providers:
        if prefix == "ft":
            return _fine_tune(registry, name, rest)
        return Match(registry.providers["local"], rest, "vllm:... -> local (our vLLM engine)")
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
        return Match(spec, spec.default_model, f"provider shortcut: {name} -> {spec.default_model}")

    head, slash, tail = name.partition("/")
    if slash:
        return _route_or_local(registry, name, head, tail)
    return _bare(registry, name)


def _bare(registry: Registry, name: str) -> Match:
    """Rule 5: a name without "/" by its family, else by the one provider LiteLLM lists it
    under."""
    lowered = name.lower()
    for spec in registry.providers.values():
        for pattern in spec.name_prefixes:
            if lowered.startswith(pattern):
                return checked(
                    registry, name, spec, name, f"heuristic: {pattern}* -> {spec.name}", ""
                )
    family = bare_family(name)
    owner = provider_of(registry, family[1]) if family is not None else None
    if family is not None and owner is not None:
        source = f"heuristic: {family[0]}* -> {owner.name}"
        return checked(registry, name, owner, name, source, f"{owner.name}:")
    owners = listed_owners(registry, name)
    owner = provider_of(registry, owners[0]) if len(owners) == 1 else None
    if owner is not None:
        return Match(owner, name, f"LiteLLM's model list: {name} -> {owner.name}")
    if owners:
        written = tuple(f"{p}:{name}" for p in owners)
        raise unknown(
            registry,
            name,
            f"LiteLLM's model list has {name!r} under several providers "
            f"({', '.join(owners)}); name one, as in {written[0]!r}",
            suggestions=written,
        )
    raise unknown(registry, name, None)


def _fine_tune(registry: Registry, name: str, rest: str) -> Match:
    """`ft:BASE:...`, a fine-tune id, goes to the provider of BASE (OpenAI's id form)."""
    base = rest.partition(":")[0].lower()
    for spec in registry.providers.values():
        if spec.route_prefix == "openai" and base.startswith(spec.name_prefixes or ("\0",)):
            return Match(spec, name, f"fine-tune of {base} -> {spec.name}")
    raise unknown(registry, name, f"'ft:' names a fine-tune, but {base!r} is no OpenAI model")


def _explicit(registry: Registry, name: str, prefix: str, rest: str) -> Match:
    """Rule 2, "provider:model_id"; an unknown prefix is an error, whatever follows it."""
    spec = provider_of(registry, prefix.rstrip())
    if spec is None:
        raise unknown_prefix(registry, name, prefix, rest)
    if not rest.strip():
        raise empty_model(registry, name, prefix.rstrip() + ":")
    if prefix != prefix.rstrip() or rest[0].isspace():
        raise stray_characters(registry, name)
    return checked(registry, name, spec, rest, "explicit provider:model", f"{spec.name}:")


def _route_or_local(registry: Registry, name: str, head: str, tail: str) -> Match:
    """Rule 4 (a LiteLLM route, hosted, as written) or rule 6 (local)."""
    if head == "vllm" and "vllm" not in registry.providers and tail.strip("/ "):
        return Match(registry.providers["local"], tail, "vllm/... -> local (our vLLM engine)")
    spec = provider_of(registry, head)
    if spec is not None:
        if not tail.strip("/ "):
            raise empty_model(registry, name, head + "/")
        if tail[0].isspace():
            raise stray_characters(registry, name)
        if spec.kind == "hosted":
            return checked(registry, name, spec, tail, f"LiteLLM route: {head}/...", f"{head}/")
    if name.strip("/"):
        return _local(registry, name, head, tail)
    raise unknown(registry, name, None)


def _local(registry: Registry, name: str, head: str, tail: str) -> Match:
    """Rule 6, with a warning where the first segment reads as a misspelt provider or the
    rest as a hosted model id (`local:` says local weights are meant)."""
    local = registry.providers["local"]
    source = "name with '/' -> local"
    if head in registry.providers:  # "local/..." as written
        return Match(local, name, source)
    other_case = provider_in_other_case(registry, head)
    if other_case is not None:
        fixed = f"{other_case}/{tail}"
        raise unknown(
            registry,
            name,
            f"{head!r} is not a known provider (ours or LiteLLM's); did you mean {fixed!r}? "
            f"(for local weights of a Hugging Face organisation {head!r}, write 'local:{name}')",
            suggestions=(fixed,),
        )
    refusal = f"strict mode refuses it: write 'local:{name}' for local weights, or strict=False"
    near = provider_near_miss(registry, head)
    if near is not None:
        fixed = f"{near}/{tail}"
        warning = (
            f"{name!r} resolves to local weights, but {head!r} looks like the provider "
            f"{near!r}: for it write {fixed!r}; for local weights write 'local:{name}'"
        )
        return Match(local, name, source, warning, (fixed, f"local:{name}"), refusal, False)
    hosted = hosted_under_org(tail) if looks_like_org(head) else None
    if hosted is not None:
        fixed = f"{hosted}/{tail}"
        warning = (
            f"{name!r} resolves to local weights, but {tail!r} is a hosted model that "
            f"LiteLLM lists under {hosted}: for it write {fixed!r}; for local weights "
            f"write 'local:{name}'"
        )
        return Match(local, name, source, warning, (fixed, f"local:{name}"), refusal, False)
    return Match(local, name, source)
